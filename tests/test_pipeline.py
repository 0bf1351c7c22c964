"""The warehouse equals the source: initial and incremental loads against the simulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import SHAPES, Fault, TriggSimulator
from pipelines.trigg.errors import ResponseShapeError
from pipelines.trigg.settings import TriggSettings
from pipelines.trigg.timestamps import format_since
from tests.conftest import ON_EVERY_WAREHOUSE
from tests.oracle import OSLO, expected_tables, row_counts, warehouse_tables
from tests.targets import Target


def newest_updated_at(simulator: TriggSimulator) -> datetime:
    newest = max(customer.updated_at for customer in simulator.store.snapshot())
    return newest.replace(tzinfo=OSLO).astimezone(UTC)


def assert_warehouse_equals_source(warehouse: Target | str, simulator: TriggSimulator) -> None:
    expected = expected_tables(simulator.store.snapshot())
    actual = warehouse_tables(warehouse)
    for table in expected:
        assert actual[table] == expected[table], f"{table} differs from the simulator"
    counts = row_counts(warehouse)
    for table, rows in expected.items():
        assert counts.get(table, 0) == len(rows), f"{table} holds rows of no current customer"


def test_initial_load_holds_every_served_customer_and_child_row(
    simulator: TriggSimulator, settings: TriggSettings, target: Target
) -> None:
    summary = run_once(settings, target.warehouse)

    served = simulator.store.snapshot()
    expected = expected_tables(served)
    loaded = {t: len(rows) for t, rows in expected.items() if rows} | {"customer_versions": 60}
    assert summary.customers_received == len(served) == 60
    assert row_counts(target) == loaded | {"run_history": 1}
    assert summary.rows_per_table == loaded
    assert_warehouse_equals_source(target, simulator)


@ON_EVERY_WAREHOUSE
def test_incremental_run_after_changes_equals_the_simulator_state(
    simulator: TriggSimulator, settings: TriggSettings, target: Target
) -> None:
    run_once(settings, target.warehouse)
    for _ in range(3):
        simulator.change(25)
        run_once(settings, target.warehouse)
        assert_warehouse_equals_source(target, simulator)


def test_a_promotion_removed_at_the_source_disappears_from_the_warehouse(
    simulator: TriggSimulator, settings: TriggSettings, target: Target
) -> None:
    run_once(settings, target.warehouse)
    customer = next(c for c in simulator.store.customers.values() if len(c.data["promotions"]) > 1)
    removed = customer.data["promotions"].pop()
    customer.data["loyalty"]["loyaltyCards"].clear()
    customer.updated_at = simulator.clock().replace(microsecond=0)

    run_once(settings, target.warehouse)

    promotion_ids = {row[0] for row in target.query("select id from customers__promotions")}
    [(cards,)] = target.query(
        f"""select count(*) from customers__loyalty__loyalty_cards k
            join customers c on k._dlt_root_id = c._dlt_id where c.id = '{customer.data["id"]}'"""
    )
    assert removed["id"] not in promotion_ids
    assert cards == 0
    assert_warehouse_equals_source(target, simulator)


def test_cursor_is_the_newest_updated_at_and_the_next_since_subtracts_the_lookback(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    first = run_once(settings, warehouse)
    assert first.cursor_before is None
    assert first.cursor_after == newest_updated_at(simulator)

    second = run_once(settings, warehouse)
    expected_since = format_since(first.cursor_after - timedelta(minutes=10), OSLO)
    assert second.since == expected_since
    assert simulator.requests[-1].since == expected_since
    assert second.cursor_before == second.cursor_after == first.cursor_after


@pytest.mark.parametrize("lookback", [0, 45])
def test_lookback_is_configurable(simulator: TriggSimulator, warehouse: str, lookback: int) -> None:
    settings = TriggSettings(
        base_url=simulator.base_url, api_key=simulator.api_key, lookback_minutes=lookback
    )
    first = run_once(settings, warehouse)
    run_once(settings, warehouse)
    cursor_wall = first.cursor_after.astimezone(OSLO) - timedelta(minutes=lookback)
    assert simulator.requests[-1].since == cursor_wall.strftime("%Y%m%dT%H%M")


def test_a_first_run_without_initial_since_is_a_full_backfill_of_every_customer(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    old = simulator.store.snapshot()[0]
    old.updated_at = datetime(2009, 5, 17, 12, 0)  # a member untouched for years

    first = run_once(settings, warehouse)
    second = run_once(settings, warehouse)

    assert simulator.requests[0].since == first.since == "20000101T0000"
    assert first.full_backfill and "a full backfill" in first.render()
    assert first.as_dict()["full_backfill"] is True
    assert first.customers_received == 60
    assert not second.full_backfill and second.since != "20000101T0000"
    assert_warehouse_equals_source(warehouse, simulator)


def test_first_run_starts_at_the_configured_initial_since(
    simulator: TriggSimulator, warehouse: str
) -> None:
    settings = TriggSettings(
        base_url=simulator.base_url, api_key=simulator.api_key, initial_since="2024-03-01"
    )
    first = run_once(settings, warehouse)
    run_once(settings, warehouse)
    assert simulator.requests[0].since == "20240301T0000"
    assert not first.full_backfill and "full backfill" not in first.render()
    assert simulator.requests[1].since != "20240301T0000"  # later runs follow the cursor


def test_explicit_since_is_sent_as_given_and_never_moves_the_cursor_back(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    first = run_once(settings, warehouse)
    again = run_once(settings, warehouse, since="2020-01-01T08:30")
    assert simulator.requests[-1].since == "20200101T0830"
    assert again.cursor_after == first.cursor_after
    assert_warehouse_equals_source(warehouse, simulator)


def test_a_utc_api_gets_its_since_and_timestamps_in_utc(warehouse: str) -> None:
    with TriggSimulator(customers=10, seed=3, timezone="UTC") as simulator:
        settings = TriggSettings(
            base_url=simulator.base_url, api_key=simulator.api_key, timezone="UTC"
        )
        first = run_once(settings, warehouse)
        newest = max(c.updated_at for c in simulator.store.snapshot()).replace(tzinfo=UTC)
        assert first.cursor_after == newest
        run_once(settings, warehouse)
        assert simulator.requests[-1].since == (newest - timedelta(minutes=10)).strftime(
            "%Y%m%dT%H%M"
        )
        expected = expected_tables(simulator.store.snapshot(), zone=ZoneInfo("UTC"))
        assert warehouse_tables(warehouse)["customers"] == expected["customers"]


def test_rerun_with_nothing_new_changes_nothing(
    simulator: TriggSimulator, settings: TriggSettings, target: Target
) -> None:
    first = run_once(settings, target.warehouse)
    before = warehouse_tables(target)
    again = run_once(settings, target.warehouse)
    assert warehouse_tables(target) == before
    assert again.cursor_after == first.cursor_after


@pytest.mark.parametrize("shape", SHAPES)
def test_every_envelope_shape_loads_the_same_warehouse(shape: str, warehouse: str) -> None:
    customers = 1 if shape == "single" else 15
    with TriggSimulator(customers=customers, seed=11, shape=shape) as simulator:
        settings = TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key)
        summary = run_once(settings, warehouse)
        assert summary.customers_received == customers
        assert summary.cursor_after == newest_updated_at(simulator)
        assert_warehouse_equals_source(warehouse, simulator)


@pytest.mark.parametrize(
    "body",
    [
        b'{"customers": []}',
        b'"ok"',
        b"[1, 2, 3]",
        b'{"data": "nothing"}',
        b"<html><body>Maintenance</body></html>",
        b'[{"data": {"id": "A"}, "metaData": {}}, {"data": {"id"',
    ],
    ids=["unknown-object", "string", "numbers", "data-string", "html", "truncated"],
)
@pytest.mark.parametrize("target", ["duckdb"], indirect=True)  # fails before any load
def test_a_body_of_unknown_shape_fails_clearly_and_loads_nothing(
    simulator: TriggSimulator, settings: TriggSettings, target: Target, body: bytes
) -> None:
    first = run_once(settings, target.warehouse)
    before = warehouse_tables(target)
    simulator.change(5)
    simulator.inject(Fault(body=body))

    with pytest.raises(ResponseShapeError, match="nothing was loaded"):
        run_once(settings, target.warehouse)

    assert warehouse_tables(target) == before
    retry = run_once(settings, target.warehouse)  # the next run repairs everything
    assert retry.cursor_before == first.cursor_after
    assert_warehouse_equals_source(target, simulator)


def test_newest_version_wins_when_one_response_holds_a_customer_twice(
    simulator: TriggSimulator, settings: TriggSettings, target: Target
) -> None:
    customer = simulator.store.snapshot()[0]
    newer = customer.envelope()
    newer["metaData"]["UpdatedAt"] = "2030-01-01 12:00:00"
    newer["data"] = {**newer["data"], "firstName": "Newest", "promotions": []}
    older = customer.envelope()
    simulator.inject(Fault(body=json.dumps([newer, older]).encode()))

    run_once(settings, target.warehouse)

    rows = target.query(f"select first_name from customers where id = '{customer.data['id']}'")
    assert rows == [("Newest",)]
    promotions = target.tables() & {"customers__promotions"}
    if promotions:  # the table may not even exist: no promotion row was ever loaded
        assert target.query("select count(*) from customers__promotions") == [(0,)]


def test_drifting_types_are_coerced_to_the_pinned_types_without_variant_columns(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    customer = simulator.store.snapshot()[0].envelope()
    drifted = json.loads(json.dumps(customer))
    drifted["data"]["zip"] = 1010
    drifted["data"]["loyalty"]["loyaltyCards"] = [
        {"id": "4", "namn": "Black coffee", "total": "6", "count": 3}
    ]
    promotion = drifted["data"]["promotions"][0]
    promotion["redemptionChannels"] = [{"type": "POS", "valueType": "PERCENT", "value": 10}]
    promotion["productsIncluded"] = [{"id": 123, "type": "description"}]
    as_text = json.loads(json.dumps(drifted))
    as_text["data"]["id"] = "ANOTHER-CUSTOMER"
    as_text["data"]["zip"] = "0150"
    as_text["data"]["loyalty"]["loyaltyCards"][0]["id"] = 5
    as_text["data"]["promotions"][0]["redemptionChannels"][0]["value"] = "10"
    as_text["data"]["promotions"][0]["productsIncluded"][0]["id"] = "A-123"
    simulator.inject(Fault(body=json.dumps([drifted]).encode()))
    simulator.inject(Fault(body=json.dumps([as_text]).encode()))

    run_once(settings, warehouse)
    run_once(settings, warehouse, since="20200101T0000")

    with duckdb.connect(warehouse, read_only=True) as connection:
        columns = connection.sql(
            """select table_name, column_name, data_type from information_schema.columns
               where table_schema = 'trigg'"""
        ).fetchall()
        zips = sorted(r[0] for r in connection.sql("select zip from trigg.customers").fetchall())
        card_ids = sorted(
            r[0]
            for r in connection.sql(
                "select id from trigg.customers__loyalty__loyalty_cards"
            ).fetchall()
        )
    types = {(table, column): data_type for table, column, data_type in columns}
    assert not [name for _, name, _ in columns if "__v_" in name]
    assert types[("customers", "zip")] == "VARCHAR"
    assert types[("customers__loyalty__loyalty_cards", "id")] == "BIGINT"
    assert types[("customers__promotions__redemption_channels", "value")] == "VARCHAR"
    assert types[("customers__promotions__products_included", "id")] == "VARCHAR"
    assert types[("customers", "birth_date")] == "DATE"
    assert types[("customers", "updated_at")] == "TIMESTAMP WITH TIME ZONE"
    assert types[("customers__promotions", "valid_from")] == "TIMESTAMP WITH TIME ZONE"
    assert types[("customers", "extended_properties")] == "JSON"
    assert types[("customers__loyalty__loyalty_cards", "extended_properties")] == "JSON"
    assert types[("customers", "loyalty__points")] == "DOUBLE"
    assert "0150" in zips and "1010" in zips
    assert card_ids == [4, 5]


def test_the_cursor_is_kept_in_the_warehouse_with_the_data(
    simulator: TriggSimulator, settings: TriggSettings, target: Target, isolated_dlt
) -> None:
    import shutil

    first = run_once(settings, target.warehouse)
    shutil.rmtree(isolated_dlt)  # the local dlt folder is lost; the target.warehouse still knows

    second = run_once(settings, target.warehouse)

    assert second.cursor_before == first.cursor_after
    assert simulator.requests[-1].since == format_since(
        first.cursor_after - timedelta(minutes=10), OSLO
    )


def test_two_warehouses_on_one_machine_keep_separate_cursors(
    simulator: TriggSimulator, settings: TriggSettings, tmp_path
) -> None:
    run_once(settings, str(tmp_path / "a.duckdb"))
    fresh = run_once(settings, str(tmp_path / "b.duckdb"))
    assert fresh.cursor_before is None
    assert fresh.customers_received == 60
