"""The fast path (DuckDB -> parquet or Arrow -> dlt) loads exactly what dlt's normalizer loads.

Each test loads the same responses twice, once with the fast path and once through dlt's row
normalizer (the reference path, `fast_path = false`), and compares the two warehouses whole: every
column of every table (`tests/contents.py`), `customer_versions` and `customers_rejected` included,
and every column's type. Both halves are checked to have really run their way: the fast run's
customers carry the fast path's `_dlt_id` (and it logged its steps), the reference run's carry
dlt's own.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import Fault, TriggSimulator
from pipelines.simulator.clock import SimulatedClock
from pipelines.summary import RunSummary
from pipelines.trigg import BATCH_SIZE, fast_path
from pipelines.trigg.events import LOGGER
from pipelines.trigg.schema import FINGERPRINT
from pipelines.trigg.settings import TriggSettings
from tests.contents import columns_of, difference, setting, warehouse_contents
from tests.oracle import expected_tables, expected_versions, warehouse_tables, warehouse_versions
from tests.targets import Target, as_target

FAST_ROW_ID = 24
"""The fast path's `_dlt_id` of a customer is 24 hex digits; dlt's own are shorter."""
KEY = "pii-test-key"
RUN_COUNTS = ("customers_received", "rows_written", "rows_per_table")


def settings_for(simulator: TriggSimulator, fast: bool, **extra: Any) -> TriggSettings:
    return TriggSettings(
        base_url=simulator.base_url, api_key=simulator.api_key, fast_path=fast, **extra
    )


@contextmanager
def fast_path_steps() -> Iterator[list[str]]:
    """The fast path's steps logged meanwhile (`fast_path` events)."""
    steps: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "event", None) == "fast_path":
                steps.append(record.fields["step"])  # type: ignore[attr-defined]

    handler = Collect()
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.INFO)
    logger.disabled = False  # a logging configuration of an earlier test may have disabled it
    try:
        yield steps
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled


def customer_row_ids(target: Target | str) -> list[str]:
    return [row[0] for row in as_target(target).query("select _dlt_id from customers")]


def python_way(target: Target | str) -> int:
    """Customers the fast run loaded the Python way (through dlt's normalizer)."""
    return sum(len(row_id) != FAST_ROW_ID for row_id in customer_row_ids(target))


def resting_simulator(**arguments: Any) -> TriggSimulator:
    """A simulator whose time stands still unless a test moves it: the two paths' runs happen
    at different moments, and a cursor that stops at the response's `Date` must not differ."""
    return TriggSimulator(clock=SimulatedClock(datetime(2026, 11, 30, 12, 0)), **arguments)


def load_both(
    simulator: TriggSimulator,
    fast: Target | str,
    reference: Target | str,
    bodies: list[bytes | None] | None = None,
    **settings: Any,
) -> list[tuple[RunSummary, RunSummary]]:
    """Load what the simulator serves (or `bodies`, one per run) through both paths: into `fast`
    with the fast path, into `reference` with dlt's normalizer. Proves each took its way."""
    summaries = []
    for body in bodies or [None]:
        runs = []
        for on, target in ((True, fast), (False, reference)):
            if body is not None:
                simulator.inject(Fault(body=body))
            warehouse = as_target(target).warehouse
            with fast_path_steps() as steps:
                runs.append(
                    run_once(settings_for(simulator, on, **settings), warehouse, "20000101T0000")
                )
            if on:
                assert "values checked" in steps, f"the fast path did not take it: {runs[-1]}"
                assert not any("normalizer" in note for note in runs[-1].notes), runs[-1].notes
            else:
                assert steps == []
        summaries.append((runs[0], runs[1]))
    assert all(len(row_id) != FAST_ROW_ID for row_id in customer_row_ids(reference))
    return summaries


def assert_same_warehouses(
    fast: Target | str, reference: Target | str, counted_alike: bool = True
) -> None:
    """Every column of every table equal, and typed alike, but for `customer_versions`'
    `fingerprint` (see `trigg/fingerprint.py`: only the fast path computes it). Without
    `counted_alike`, the rows each run counted (`run_history`) may differ: for a customer sent
    twice, the fast path counts the copy it keeps, dlt counts both before its merge drops one."""
    first, second = warehouse_contents(fast), warehouse_contents(reference)
    for contents in (first, second):  # the fast path keeps one, dlt's normalizer cannot
        contents["customer_versions"] = [
            tuple(item for item in row if item[0] != FINGERPRINT)
            for row in contents["customer_versions"]
        ]
    if not counted_alike:
        for contents in (first, second):
            contents["run_history"] = [
                tuple(item for item in row if item[0] not in RUN_COUNTS)
                for row in contents["run_history"]
            ]
    assert difference(first, second) == {}
    assert columns_of(as_target(fast)) == columns_of(as_target(reference))


@pytest.fixture
def fast(tmp_path: Path) -> str:
    return str(tmp_path / "fast.duckdb")


@pytest.fixture
def reference(tmp_path: Path) -> str:
    return str(tmp_path / "ref.duckdb")


def envelopes_of(simulator: TriggSimulator, count: int | None = None) -> list[dict[str, Any]]:
    return [copy.deepcopy(c.envelope()) for c in simulator.store.snapshot()[:count]]


def body_with(simulator: TriggSimulator, change: Callable[[list[dict[str, Any]]], Any]) -> bytes:
    envelopes = envelopes_of(simulator)
    change(envelopes)
    return json.dumps(envelopes).encode()


def test_initial_and_incremental_loads_are_identical_through_both_paths(
    fast: str, reference: str
) -> None:
    with resting_simulator(customers=150, seed=5) as simulator:
        for warehouse, on in ((fast, True), (reference, False)):
            run_once(settings_for(simulator, on), warehouse, "20000101T0000")
        for round_number in range(2):
            simulator.change(60)
            customer = next(
                c for c in simulator.store.customers.values() if len(c.data["promotions"]) > 1
            )
            removed = customer.data["promotions"].pop()  # a promotion removed at the source
            customer.updated_at = simulator.clock().replace(microsecond=0)
            simulator.gzip = round_number == 1
            for warehouse, on in ((fast, True), (reference, False)):
                summary = run_once(settings_for(simulator, on), warehouse)
                assert not summary.notes, summary.notes
            promotions = duckdb_ids(fast, "customers__promotions")
            assert removed["id"] not in promotions
            assert warehouse_tables(fast) == expected_tables(simulator.store.snapshot())
        assert python_way(fast) == 0
        assert_same_warehouses(fast, reference)


def duckdb_ids(warehouse: str, table: str) -> set[str]:
    with duckdb.connect(warehouse, read_only=True) as connection:
        return {row[0] for row in connection.sql(f"select id from trigg.{table}").fetchall()}


def test_several_thousand_customers_in_one_response_cross_the_record_batches(
    fast: str, reference: str
) -> None:
    """More customers than one batch of `BATCH_SIZE` holds, through both paths, one response."""
    customers = 2 * BATCH_SIZE + 500
    with resting_simulator(customers=customers, seed=12) as simulator:
        load_both(simulator, fast, reference)
        truth = simulator.store.snapshot()
    for warehouse in (fast, reference):
        assert warehouse_tables(warehouse) == expected_tables(truth)
        assert warehouse_versions(warehouse) == expected_versions([truth])
    assert_same_warehouses(fast, reference)


def test_timestamps_around_daylight_saving_changes_are_read_like_python_does(
    fast: str, reference: str
) -> None:
    """Naive API times are Oslo wall-clock time; in the repeated autumn hour the earlier instant
    is meant (fold=0), in the skipped spring hour the offset before the change."""
    with resting_simulator(customers=6, seed=9) as simulator:
        envelopes = envelopes_of(simulator, 6)
        walls = [
            "2024-10-27 02:30:00",  # happens twice: +02:00 first
            "2024-10-27 01:59:59",
            "2024-10-27 03:00:00",
            "2024-03-31 02:30:00",  # never happens
            "2023-10-29T02:15:00.250",
            "2024-06-01 12:00:00",
        ]
        for envelope, wall in zip(envelopes, walls, strict=True):
            envelope["metaData"]["UpdatedAt"] = wall
            envelope["metaData"]["CreatedAt"] = wall
            for consent in envelope["data"]["consents"]["extendedConsents"]:
                consent["consentDate"] = wall
            for promotion in envelope["data"]["promotions"]:
                promotion["validFrom"] = "2024-10-27T00:30:00+02:00"
                promotion["validTo"] = "2024-10-27T02:30:00.123456Z"
        load_both(simulator, fast, reference, [json.dumps(envelopes).encode()])
        assert_same_warehouses(fast, reference)


def test_a_customer_sent_twice_keeps_the_newest_and_every_version_in_history(
    fast: str, reference: str
) -> None:
    """The newest copy of a customer wins; `customer_versions` keeps the older version too. A
    version sent twice (the same `UpdatedAt`) is one row."""
    with resting_simulator(customers=4, seed=3) as simulator:
        first, second, *_ = envelopes_of(simulator, 4)
        older = copy.deepcopy(first)
        older["metaData"]["UpdatedAt"] = "2020-01-01 00:00:00"
        older["data"]["firstName"] = "Older"
        older["data"]["promotions"] = older["data"]["promotions"][:1]
        body = json.dumps([first, second, older, copy.deepcopy(second)]).encode()
        load_both(simulator, fast, reference, [body])
    with duckdb.connect(fast, read_only=True) as connection:
        names = dict(connection.sql("select id, first_name from trigg.customers").fetchall())
    assert names[first["data"]["id"]] == first["data"]["firstName"]
    assert len(warehouse_versions(fast)) == 3
    assert_same_warehouses(fast, reference, counted_alike=False)


def test_on_a_tie_the_later_copy_of_a_customer_wins_with_its_own_child_rows(
    fast: str,
) -> None:
    """Two copies with the same `UpdatedAt` but different content (dlt's merge would keep either):
    the fast path keeps the later one, and none of the earlier one's child rows."""
    with resting_simulator(customers=3, seed=3) as simulator:
        _, second, _ = envelopes_of(simulator, 3)
        earlier, later = copy.deepcopy(second), copy.deepcopy(second)
        earlier["data"]["firstName"] = "Earlier copy"
        later["data"]["firstName"] = "Later copy"
        later["data"]["promotions"] = later["data"]["promotions"][:1]
        simulator.inject(Fault(body=json.dumps([earlier, later]).encode()))
        run_once(settings_for(simulator, True), fast, "20000101T0000")
    tables = warehouse_tables(fast)
    assert [row[4] for row in tables["customers"]] == ["Later copy"]
    assert len(tables["customers__promotions"]) == 1
    assert [row[-1] for row in warehouse_versions(fast)] == [1]


def test_the_body_is_cut_in_two_halves_that_hold_every_record_in_order(tmp_path: Path) -> None:
    with resting_simulator(customers=9, seed=6) as simulator:
        envelopes = envelopes_of(simulator, 9)
    whole = tmp_path / "body.json"
    whole.write_text(json.dumps(envelopes))
    with open(whole, "rb") as body:
        first, second = fast_path._halves(body, str(tmp_path))
    halves = [json.loads(Path(half).read_bytes()) for half in (first, second)]
    assert all(halves)
    assert halves[0] + halves[1] == envelopes


def test_a_cut_where_a_record_only_seems_to_begin_falls_back_to_the_whole_body(
    tmp_path: Path, fast: str, reference: str
) -> None:
    """A nested object with a `data` key looks like a record boundary: the halves cut there do
    not parse, so DuckDB reads the body whole, and the load is the same."""
    with resting_simulator(customers=4, seed=8) as simulator:
        envelopes = envelopes_of(simulator, 4)
        envelopes[1]["data"]["extendedProperties"] = {"log": [{"data": n} for n in range(4000)]}
        body = json.dumps(envelopes).encode()
        spooled = tmp_path / "body.json"
        spooled.write_bytes(body)
        with open(spooled, "rb") as whole:
            halves = fast_path._halves(whole, str(tmp_path))
        with pytest.raises(duckdb.Error), duckdb.connect() as connection:
            connection.sql(f"select * from read_json({halves!r}, format = 'array')").fetchall()
        load_both(simulator, fast, reference, [body])
        assert_same_warehouses(fast, reference)


def _new_fields(envelopes: list[dict[str, Any]]) -> None:
    for position, envelope in enumerate(envelopes):
        data = envelope["data"]
        data["loyaltyTier"] = ("Gold", "Silver")[position % 2]
        data["visitCount"] = position
        data["averageBasket"] = 100.5 + position
        data["isVip"] = position % 3 == 0
        data["lastVisit"] = f"2024-05-{1 + position % 28:02d}T10:00:00"  # dlt: a timestamp, UTC
        data["middleName"] = None  # dlt makes no column of only nulls
        data["profile"] = {"nickName": f"n{position}", "score": position * 2}
        data["loyalty"]["pointsBonus"] = 15
        for promotion in data["promotions"]:
            promotion["campaignCode"] = f"C{position}"


def test_a_field_the_spec_does_not_list_becomes_the_column_dlt_would_make(
    fast: str, reference: str
) -> None:
    """New fields on every customer, of every JSON type, nested in an object and in a list: the
    fast path names and types them as dlt's normalizer does (snake_case, `__` for nesting, its
    `iso_timestamp` detection), and still names them in the summary."""
    with resting_simulator(customers=12, seed=4) as simulator:
        [(fast_run, reference_run)] = load_both(
            simulator, fast, reference, [body_with(simulator, _new_fields)]
        )
    [note] = [note for note in fast_run.notes if "new fields" in note]
    assert note in reference_run.notes
    for column in ("customers.loyalty_tier", "customers.profile__nick_name"):
        assert column in note
    assert "customers__promotions.campaign_code" in note
    assert python_way(fast) == 0
    assert_same_warehouses(fast, reference)
    types = {column: kind for column, kind, _ in columns_of(as_target(fast))["customers"]}
    assert types["last_visit"] == "TIMESTAMP WITH TIME ZONE"
    assert types["visit_count"] == "BIGINT" and types["is_vip"] == "BOOLEAN"
    assert "middle_name" not in types


def test_a_new_field_of_mixed_types_splits_into_dlts_variant_columns_both_ways(
    fast: str, reference: str
) -> None:
    """A field that is first an integer, then a fraction: dlt keeps the integer column and puts
    the fractions in a variant column. Those records take the Python way; the result is dlt's."""

    def mixed(envelopes: list[dict[str, Any]]) -> None:
        for position, envelope in enumerate(envelopes):
            envelope["data"]["ratio"] = 2 if position % 2 == 0 else 1.5

    with resting_simulator(customers=8, seed=4) as simulator:
        load_both(simulator, fast, reference, [body_with(simulator, mixed)])
    assert python_way(fast) == 4
    assert_same_warehouses(fast, reference)
    columns = {column for column, _, _ in columns_of(as_target(fast))["customers"]}
    assert {"ratio", "ratio__v_double"} <= columns


def test_a_new_list_becomes_a_child_table_merged_like_the_known_ones(
    fast: str, reference: str
) -> None:
    """A list the spec does not list becomes `customers__<name>` with dlt's join columns; when
    the customer changes, its old rows go, as with the pinned child tables."""
    with resting_simulator(customers=10, seed=4) as simulator:

        def with_lists(envelopes: list[dict[str, Any]]) -> None:
            for position, envelope in enumerate(envelopes):
                envelope["data"]["badges"] = [
                    {"code": f"B{n}", "level": n, "earnedAt": "2024-01-02 10:00:00"}
                    for n in range(position % 3 + 1)
                ]
                envelope["data"]["tags"] = ["early", "app"][: position % 3]

        first = body_with(simulator, with_lists)
        changed = json.loads(first)
        changed[0]["data"]["badges"] = []  # the customer lost its badges
        changed[0]["metaData"]["UpdatedAt"] = "2099-01-01 00:00:00"
        changed[1]["data"]["badges"] = changed[1]["data"]["badges"][:1]
        changed[1]["metaData"]["UpdatedAt"] = "2099-01-01 00:00:00"
        [(fast_run, reference_run), _] = load_both(
            simulator, fast, reference, [first, json.dumps(changed[:2]).encode()]
        )
    assert "table customers__badges (code, level, earned_at)" in fast_run.notes[0]
    assert fast_run.notes == reference_run.notes
    badges = warehouse_contents(fast)["customers__badges"]
    owners = [dict(row)["_dlt_root_id"][0] for row in badges]
    assert owners.count(changed[0]["data"]["id"]) == 0
    assert owners.count(changed[1]["data"]["id"]) == 1
    assert python_way(fast) == 0
    assert_same_warehouses(fast, reference)


BAD = [
    setting("data.id", KeyError),
    setting("data.id", ""),
    setting("metaData.UpdatedAt", "yesterday-ish"),
    setting("data.loyalty.points", "lots"),
    setting("data.loyalty.loyaltyCards.0.id", "four"),
    setting("data.birthDate", "once upon a time"),
    setting("data.promotions.0.available", "maybe"),
    setting("data.zip", {"code": 150}),
    setting("data.consents.extendedConsents", [{"id": "C1", "consentDate": "?"}]),
]
"""Records `validation.problem` or `records.to_customer` quarantines, one of each kind."""


@pytest.mark.parametrize("share", ["one", "one in a hundred", "one of each kind"])
def test_bad_records_are_quarantined_exactly_as_the_reference_path_does(
    fast: str, reference: str, share: str
) -> None:
    """Bad records take the Python way one by one (the same `customers_rejected` rows: record,
    reason, customer id, load), the rest the fast path, in the same load."""
    customers = {"one": 20, "one in a hundred": 100, "one of each kind": 20}[share]
    with resting_simulator(customers=customers, seed=21) as simulator:

        def spoil(envelopes: list[dict[str, Any]]) -> None:
            changes = BAD if share == "one of each kind" else [BAD[3]]
            for position, change in enumerate(changes):
                change(envelopes[2 * position + 1])

        [(fast_run, reference_run)] = load_both(
            simulator, fast, reference, [body_with(simulator, spoil)]
        )
    bad = len(BAD) if share == "one of each kind" else 1
    assert fast_run.rows_per_table["customers_rejected"] == bad
    assert fast_run.notes == reference_run.notes
    assert python_way(fast) == 0  # only the bad records took the Python way: quarantined
    assert_same_warehouses(fast, reference)


def test_a_bad_record_of_a_customer_sent_twice_leaves_the_good_copy_to_dlts_merge(
    fast: str, reference: str
) -> None:
    """Every copy of a customer with a bad record takes the Python way, so dlt's merge picks
    among them exactly as it does on the reference path."""
    with resting_simulator(customers=6, seed=2) as simulator:
        envelopes = envelopes_of(simulator)
        good_copy = copy.deepcopy(envelopes[2])
        good_copy["metaData"]["UpdatedAt"] = "2020-01-01 00:00:00"
        envelopes[2]["data"]["zip"] = True
        body = json.dumps([good_copy, *envelopes]).encode()
        load_both(simulator, fast, reference, [body])
    assert python_way(fast) == 1
    assert_same_warehouses(fast, reference)


def test_drifting_types_stay_on_the_fast_path(fast: str, reference: str) -> None:
    """The spec's own example types on every customer: `zip` a number, card ids strings,
    product ids and channel values numbers, and the points integers."""

    def drift(envelopes: list[dict[str, Any]]) -> None:
        for position, envelope in enumerate(envelopes):
            data = envelope["data"]
            data["zip"] = 1000 + position
            for card in data["loyalty"]["loyaltyCards"]:
                card["id"] = str(card["id"])
            for promotion in data["promotions"]:
                for product in promotion["productsIncluded"]:
                    product["id"] = int(product["id"])
                for channel in promotion["redemptionChannels"]:
                    channel["value"] = 10

    with resting_simulator(customers=10, seed=13) as simulator:
        load_both(simulator, fast, reference, [body_with(simulator, drift)])
    assert python_way(fast) == 0
    assert_same_warehouses(fast, reference)


@pytest.mark.parametrize("shape", ["object", "object-customers", "single"])
def test_every_envelope_shape_takes_the_fast_path(fast: str, reference: str, shape: str) -> None:
    with resting_simulator(
        customers=1 if shape == "single" else 15, seed=3, shape=shape
    ) as simulator:
        load_both(simulator, fast, reference)
    assert python_way(fast) == 0
    assert_same_warehouses(fast, reference)


@pytest.mark.parametrize("mode", ["pseudonymize", "drop"])
def test_personal_data_is_handled_the_same_way_byte_for_byte(
    fast: str, reference: str, mode: str
) -> None:
    """The fast path pseudonymizes (HMAC-SHA256 of the normalised value) or drops in SQL; the one
    customer whose free-form properties hold an e-mail address takes the Python way."""
    with resting_simulator(customers=12, seed=17) as simulator:
        first, second, third, *_ = simulator.store.snapshot()
        first.data["extendedProperties"] = {"contact": {"backup": "Kari.Nordmann@Example.no"}}
        second.data["email"] = "  Kari.Nordmann@Example.NO\t"
        second.data["mobilePhone"] = "0047 912 34 567"
        second.data["firstName"] = "\u3000Åse "
        third.data["mobilePhone"] = "912 34 567"
        for customer in (first, second, third):
            simulator.store.customers[customer.data["id"]] = customer
        simulator.extra_envelopes = [{"data": {"email": "no.id@example.no"}, "metaData": {}}]
        load_both(simulator, fast, reference, pii=mode, pii_key=KEY)
    assert python_way(fast) == 1
    assert_same_warehouses(fast, reference)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda n, data: data.update(extra={"a": 1} if n == 0 else 5), "objects"),
        (lambda n, data: data.update(grid=[[1, 2], [3]]), "lists of lists"),
    ],
    ids=["new-field-of-objects-and-numbers", "list-of-lists"],
)
def test_a_shape_nobody_has_seen_goes_through_dlts_normalizer_with_the_same_outcome(
    tmp_path: Path, change: Any, reason: str
) -> None:
    with resting_simulator(customers=5, seed=4) as simulator:
        envelopes = envelopes_of(simulator)
        for position, envelope in enumerate(envelopes):
            change(position, envelope["data"])
        body = json.dumps(envelopes).encode()
        warehouses = []
        for on in (True, False):
            warehouse = str(tmp_path / f"{on}.duckdb")
            simulator.inject(Fault(body=body))
            summary = run_once(settings_for(simulator, on), warehouse, "20000101T0000")
            if on:
                [note] = [note for note in summary.notes if "normalizer" in note]
                assert reason in note
            warehouses.append(warehouse)
    assert_same_warehouses(*warehouses)


def test_the_arrow_hand_over_to_postgresql_matches_the_normalizer(
    postgres_server: Any, tmp_path: Path
) -> None:
    """For destinations that take Arrow (PostgreSQL), new fields and lists, bad records and
    pseudonymized personal data load as the normalizer loads them."""
    from tests.targets import postgres_target

    targets = [
        postgres_target(postgres_server.create_database(f"fast_{name}_{tmp_path.name}"[:60]))
        for name in ("fast", "ref")
    ]

    def everything(envelopes: list[dict[str, Any]]) -> None:
        _new_fields(envelopes)
        envelopes[0]["data"]["badges"] = [{"code": "X", "level": 1}]
        BAD[3](envelopes[3])
        BAD[6](envelopes[5])

    with resting_simulator(customers=10, seed=23) as simulator:
        load_both(
            simulator,
            *targets,
            [body_with(simulator, everything)],
            pii="pseudonymize",
            pii_key=KEY,
        )
    assert python_way(targets[0]) == 0
    assert_same_warehouses(*targets)
