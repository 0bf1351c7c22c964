"""The analyst layer: views with customer_id (and promotion_id), described in the warehouse."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import Fault, TriggSimulator
from pipelines.trigg.schema import DUCKDB_TYPES, VIEWS, described_tables
from pipelines.trigg.settings import TriggSettings
from tests.oracle import CHILD_TABLES, PROMOTION_TABLES, _convert, expected_tables, instant
from tests.targets import Target

VIEW_OF_TABLE: dict[str, tuple[str, dict[str, str]]] = {
    "customer_promotions": (
        "customers__promotions",
        {
            "promotion_id": "id",
            "type": "type",
            "name": "name",
            "available": "available",
            "valid_from": "valid_from",
            "valid_to": "valid_to",
            "redemption_limit": "redemption_limit",
            "redemption_count": "redemption_count",
            "affiliate_id": "affiliate__id",
            "affiliate_name": "affiliate__name",
        },
    ),
    "promotion_channels": (
        "customers__promotions__redemption_channels",
        {"channel": "type", "value_type": "value_type", "value": "value", "message": "message"},
    ),
    "promotion_redemptions": (
        "customers__promotions__redemption_history",
        {"store_id": "store_id", "receipt_id": "receipt_id", "redeemed_at": "redeem_date_time"},
    ),
    "promotion_products_included": (
        "customers__promotions__products_included",
        {"product_id": "id", "product_id_type": "type"},
    ),
    "promotion_products_excluded": (
        "customers__promotions__products_excluded",
        {"product_id": "id", "product_id_type": "type"},
    ),
    "promotion_stores_included": ("customers__promotions__stores_included", {"store_id": "value"}),
    "stamp_cards": (
        "customers__loyalty__loyalty_cards",
        {
            "stamp_card_id": "id",
            "name": "namn",
            "total": "total",
            "count": "count",
            "image_url": "image_url",
            "sort_order": "sort_order",
        },
    ),
    "customer_consents": (
        "customers__consents__extended_consents",
        {"consent_id": "id", "accepted": "value", "name": "name", "consent_date": "consent_date"},
    ),
    "customer_favorite_stores": ("customers__favorite_stores", {"store_id": "value"}),
    "customer_interests": ("customers__interests", {"interest": "value"}),
}
"""Each view over one raw table: view column -> raw column, to compare it with the oracle."""


def query(warehouse: str | Target, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    if isinstance(warehouse, Target):
        assert not params
        return warehouse.query(sql)
    with duckdb.connect(warehouse, read_only=True) as connection:
        catalog = connection.sql("select current_database()").fetchone()[0]
        connection.execute(f'use "{catalog}".trigg')
        return connection.execute(sql, list(params)).fetchall()


def expected_view(view: str, expected: dict[str, list[tuple[Any, ...]]]) -> Counter[tuple]:
    """A view's rows as the oracle sees them: owner ids first, then the mapped columns."""
    table, mapping = VIEW_OF_TABLE[view]
    if table in PROMOTION_TABLES:
        owners, columns = 2, PROMOTION_TABLES[table][2]
    else:
        owners, columns = 1, CHILD_TABLES[table][2]
    rows = Counter()
    for row in expected[table]:
        values = dict(zip(columns, row[owners + 1 :], strict=True))
        rows[(*row[:owners], *(values[raw] for raw in mapping.values()))] += 1
    return rows


def actual_view(view: str, warehouse: str | Target) -> Counter[tuple]:
    table, mapping = VIEW_OF_TABLE[view]
    owners = ["customer_id", "promotion_id"] if table in PROMOTION_TABLES else ["customer_id"]
    columns = [name for name in mapping if name not in owners]
    selected = ", ".join(f'"{name}"' for name in [*owners, *columns])
    rows = Counter()
    for row in query(warehouse, f"select {selected} from {view}"):
        values = (
            _convert(mapping[name], value, UTC, table)
            for name, value in zip(columns, row[len(owners) :], strict=True)
        )
        rows[(*row[: len(owners)], *values)] += 1
    return rows


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def age_band(age: int | None) -> str:
    if age is None:
        return "unknown"
    for limit, band in ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44")):
        if age < limit:
            return band
    return "45-54" if age < 55 else "55-64" if age < 65 else "65+"


@pytest.fixture(params=["warehouse.duckdb", "trigg.duckdb"])
def any_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A warehouse file named like the dataset (catalog `trigg` = schema `trigg`) and one not."""
    return str(tmp_path / request.param)


def test_every_view_exists_with_its_declared_columns_and_types(
    settings: TriggSettings, any_warehouse: str
) -> None:
    run_once(settings, any_warehouse)

    for view in VIEWS:
        columns = query(
            any_warehouse,
            """select column_name, data_type from duckdb_columns()
               where database_name = current_database() and schema_name = 'trigg'
                 and table_name = ? order by column_index""",
            view.name,
        )
        declared = [(c.name, DUCKDB_TYPES[c.data_type]) for c in view.columns]
        assert columns == declared, view.name
    assert {"customer_id"} <= {c.name for view in VIEWS for c in view.columns}


def test_each_child_view_carries_its_customer_and_promotion_and_equals_the_source(
    simulator: TriggSimulator, settings: TriggSettings, target: Target
) -> None:
    run_once(settings, target.warehouse)
    simulator.change(30)
    run_once(settings, target.warehouse)

    expected = expected_tables(simulator.store.snapshot())
    for view in VIEW_OF_TABLE:
        assert actual_view(view, target) == expected_view(view, expected), view


def test_stamp_cards_show_their_completion_ratio(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)

    expected = Counter(
        (customer.data["id"], int(card["id"]), card["count"] / card["total"])
        for customer in simulator.store.snapshot()
        for card in customer.data["loyalty"]["loyaltyCards"]
    )
    actual = Counter(
        query(warehouse, "select customer_id, stamp_card_id, completion from stamp_cards")
    )
    assert actual == expected
    assert {ratio for _, _, ratio in expected} & {0.0, 1.0}  # empty and full cards occur


def test_customer_overview_has_one_row_per_customer_with_its_figures(
    simulator: TriggSimulator, settings: TriggSettings, target: Target
) -> None:
    run_once(settings, target.warehouse)
    simulator.change(30)
    run_once(settings, target.warehouse)

    now, today = datetime.now(UTC), date.today()
    expected = set()
    for customer in simulator.store.snapshot():
        data = customer.data
        promotions = data["promotions"]
        cards = data["loyalty"]["loyaltyCards"]
        birth = datetime.fromisoformat(data["birthDate"]).date()
        active = [
            p
            for p in promotions
            if p["available"] and instant(UTC)(p["validFrom"]) <= now < instant(UTC)(p["validTo"])
        ]
        expected.add(
            (
                data["id"],
                data["city"],
                age_band(age_on(birth, today)),
                float(data["loyalty"]["points"]),
                len(promotions),
                len(active),
                sum(len(p["redemptionHistory"]) for p in promotions),
                len(cards),
                sum(1 for card in cards if card["count"] >= card["total"]),
                data["consents"]["acceptsTerms"],
                data["consents"]["acceptsEmail"],
                data["consents"]["acceptsSms"],
            )
        )
    rows = query(
        target,
        """select customer_id, city, age_band, points, promotions, active_promotions,
                  redemptions, stamp_cards, stamp_cards_completed,
                  accepts_terms, accepts_email, accepts_sms
           from customer_overview""",
    )
    assert len(rows) == len(expected) == len(simulator.store.customers)
    assert set(rows) == expected


def test_views_work_on_a_fresh_warehouse_where_child_tables_never_received_a_row(
    simulator: TriggSimulator, settings: TriggSettings, any_warehouse: str
) -> None:
    bare = simulator.store.snapshot()[0].envelope()
    data = bare["data"]
    data.update(favoriteStores=[], interests=[], promotions=[], birthDate=None)
    data["loyalty"]["loyaltyCards"] = []
    data["consents"]["extendedConsents"] = []
    simulator.inject(Fault(body=json.dumps([bare]).encode()))

    run_once(settings, any_warehouse)

    for view in VIEW_OF_TABLE:
        assert query(any_warehouse, f"select count(*) from {view}") == [(0,)], view
    overview = query(
        any_warehouse,
        """select customer_id, age_band, promotions, active_promotions, redemptions,
                  stamp_cards, stamp_cards_completed from customer_overview""",
    )
    assert overview == [(data["id"], "unknown", 0, 0, 0, 0, 0)]

    run_once(settings, any_warehouse, since="2020-01-01")  # now every table gets rows

    expected = expected_tables(simulator.store.snapshot())
    for view in VIEW_OF_TABLE:
        assert actual_view(view, any_warehouse) == expected_view(view, expected), view


def test_every_table_view_and_column_carries_its_description_as_a_comment(
    simulator: TriggSimulator, settings: TriggSettings, any_warehouse: str
) -> None:
    run_once(settings, any_warehouse)
    simulator.change(10)
    run_once(settings, any_warehouse)

    described = {relation.name: relation for relation in (*described_tables(), *VIEWS)}
    relations = query(
        any_warehouse,
        """select table_name, comment from duckdb_tables()
             where database_name = current_database() and schema_name = 'trigg'
           union all
           select view_name, comment from duckdb_views()
             where database_name = current_database() and schema_name = 'trigg'""",
    )
    assert {name for name, _ in relations} >= {view.name for view in VIEWS} | {"customers"}
    for name, comment in relations:
        assert name in described, f"{name} has no description in pipelines/trigg/schema.py"
        assert comment == described[name].description, name
    columns = query(
        any_warehouse,
        """select table_name, column_name, comment from duckdb_columns()
           where database_name = current_database() and schema_name = 'trigg'""",
    )
    for table, column, comment in columns:
        descriptions = {c.name: c.description for c in described[table].columns}
        assert column in descriptions, f"{table}.{column} has no description"
        assert comment == descriptions[column], f"{table}.{column}"


def test_the_views_keep_working_when_the_warehouse_file_is_renamed(
    settings: TriggSettings, any_warehouse: str, tmp_path: Path
) -> None:
    run_once(settings, any_warehouse)
    renamed = tmp_path / "copy-for-analysts.duckdb"
    shutil.copyfile(any_warehouse, renamed)

    for view in VIEWS:  # the views name their tables without a catalog
        assert query(str(renamed), f"select count(*) from {view.name}")[0][0] >= 0
    assert query(str(renamed), "select count(*) from customer_overview") == [(60,)]
