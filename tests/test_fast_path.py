"""The fast path (DuckDB -> parquet or Arrow -> dlt) loads exactly what dlt's normalizer loads.

Each test loads the same responses twice, once with the fast path and once through dlt's row
normalizer (the reference path), and compares the warehouses in the oracle's canonical form.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import Fault, TriggSimulator
from pipelines.trigg import fast_path
from pipelines.trigg.settings import TriggSettings
from tests.oracle import expected_tables, row_counts, warehouse_tables

FAST_ROW_ID = 24
"""The fast path's `_dlt_id` of a customer is 24 hex digits; dlt's own are shorter."""


def settings_for(simulator: TriggSimulator, fast: bool) -> TriggSettings:
    return TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key, fast_path=fast)


def row_id_lengths(warehouse: str) -> set[int]:
    with duckdb.connect(warehouse, read_only=True) as connection:
        rows = connection.sql("select distinct length(_dlt_id) from trigg.customers").fetchall()
    return {length for (length,) in rows}


def column_types(warehouse: str) -> set[tuple[str, str, str]]:
    with duckdb.connect(warehouse, read_only=True) as connection:
        return set(
            connection.sql(
                """select table_name, column_name, data_type from information_schema.columns
                   where table_schema = 'trigg' and table_name not like '\\_dlt%' escape '\\'"""
            ).fetchall()
        )


def load_both(simulator: TriggSimulator, tmp_path: Any, bodies: list[bytes] | None = None) -> None:
    """Load what the simulator serves (or `bodies`, one per run) into fast.duckdb and ref.duckdb."""
    for fast in (True, False):
        warehouse = str(tmp_path / ("fast.duckdb" if fast else "ref.duckdb"))
        for body in bodies or [None]:
            if body is not None:
                simulator.inject(Fault(body=body))
            summary = run_once(settings_for(simulator, fast), warehouse, since="20000101T0000")
            assert not any("normalizer" in note for note in summary.notes) or not fast, (
                summary.notes
            )


def assert_same_warehouses(tmp_path: Any) -> None:
    fast, reference = str(tmp_path / "fast.duckdb"), str(tmp_path / "ref.duckdb")
    assert warehouse_tables(fast) == warehouse_tables(reference)
    assert row_counts(fast) == row_counts(reference)
    assert column_types(fast) == column_types(reference)
    assert row_id_lengths(fast) == {FAST_ROW_ID}
    assert FAST_ROW_ID not in row_id_lengths(reference)


def test_initial_and_incremental_loads_are_identical_through_both_paths(tmp_path: Any) -> None:
    with TriggSimulator(customers=150, seed=5) as simulator:
        fast = str(tmp_path / "fast.duckdb")
        reference = str(tmp_path / "ref.duckdb")
        for warehouse, on in ((fast, True), (reference, False)):
            run_once(settings_for(simulator, on), warehouse)
        for round_number in range(3):
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
            with duckdb.connect(fast, read_only=True) as connection:
                ids = {
                    r[0]
                    for r in connection.sql("select id from trigg.customers__promotions").fetchall()
                }
            assert removed["id"] not in ids
            expected = expected_tables(simulator.store.snapshot())
            assert warehouse_tables(fast) == expected
        assert_same_warehouses(tmp_path)


def _envelopes(simulator: TriggSimulator, count: int) -> list[dict[str, Any]]:
    return [copy.deepcopy(c.envelope()) for c in simulator.store.snapshot()[:count]]


def test_timestamps_around_daylight_saving_changes_are_read_like_python_does(
    tmp_path: Any,
) -> None:
    """Naive API times are Oslo wall-clock time; in the repeated autumn hour the earlier instant
    is meant (fold=0), in the skipped spring hour the offset before the change."""
    with TriggSimulator(customers=6, seed=9) as simulator:
        envelopes = _envelopes(simulator, 6)
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
        body = json.dumps(envelopes).encode()
        load_both(simulator, tmp_path, [body])
        assert_same_warehouses(tmp_path)


def test_a_customer_sent_twice_keeps_the_newest_and_on_a_tie_the_later_copy(
    tmp_path: Any,
) -> None:
    with TriggSimulator(customers=4, seed=3) as simulator:
        first, second, *_ = _envelopes(simulator, 4)
        older = copy.deepcopy(first)
        older["metaData"]["UpdatedAt"] = "2020-01-01 00:00:00"
        older["data"]["firstName"] = "Older"
        tie_a, tie_b = copy.deepcopy(second), copy.deepcopy(second)
        tie_a["data"]["firstName"] = "Earlier copy"
        tie_b["data"]["firstName"] = "Later copy"
        tie_b["data"]["promotions"] = tie_b["data"]["promotions"][:1]
        body = json.dumps([first, tie_a, older, tie_b]).encode()
        load_both(simulator, tmp_path, [body])
        with duckdb.connect(str(tmp_path / "fast.duckdb"), read_only=True) as connection:
            names = dict(connection.sql("select id, first_name from trigg.customers").fetchall())
        assert names[first["data"]["id"]] == first["data"]["firstName"]
        assert names[second["data"]["id"]] == "Later copy"
        expected = {first["data"]["id"], second["data"]["id"]}
        assert set(names) == expected
        fast = warehouse_tables(str(tmp_path / "fast.duckdb"))
        promotions = [
            row for row in fast["customers__promotions"] if row[0] == second["data"]["id"]
        ]
        assert len(promotions) == 1  # the earlier copy's child rows are not there either


def test_the_body_is_cut_in_two_halves_that_hold_every_record_in_order(tmp_path: Any) -> None:
    with TriggSimulator(customers=9, seed=6) as simulator:
        envelopes = _envelopes(simulator, 9)
    whole = tmp_path / "body.json"
    whole.write_text(json.dumps(envelopes))
    with open(whole, "rb") as body:
        first, second = fast_path._halves(body, str(tmp_path))
    halves = [json.loads(Path(half).read_bytes()) for half in (first, second)]
    assert all(halves)
    assert halves[0] + halves[1] == envelopes


def test_a_cut_where_a_record_only_seems_to_begin_falls_back_to_the_whole_body(
    tmp_path: Any,
) -> None:
    """A nested object with a `data` key looks like a record boundary: the halves cut there do
    not parse, so DuckDB reads the body whole, and the load is the same."""
    with TriggSimulator(customers=4, seed=8) as simulator:
        envelopes = _envelopes(simulator, 4)
        envelopes[1]["data"]["extendedProperties"] = {"log": [{"data": n} for n in range(4000)]}
        body = json.dumps(envelopes).encode()
        spooled = tmp_path / "body.json"
        spooled.write_bytes(body)
        with open(spooled, "rb") as whole:
            halves = fast_path._halves(whole, str(tmp_path))
        with pytest.raises(duckdb.Error), duckdb.connect() as connection:
            connection.sql(f"select * from read_json({halves!r}, format = 'array')").fetchall()
        load_both(simulator, tmp_path, [body])
        assert_same_warehouses(tmp_path)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e["data"].update(loyaltyTier="Gold"), "not in the spec"),
        (lambda e: e["data"].update(badges=[{"code": "X"}]), "not in the spec"),
        (lambda e: e["data"]["loyalty"].update(points="lots"), "loyalty__points"),
        (lambda e: e["metaData"].update(UpdatedAt="yesterday"), "updated_at"),
        (lambda e: e["data"].update(id=""), "without an id"),
        (lambda e: e["data"].update(zip=True), "zip"),
        (lambda e: e["data"].update(birthDate="1990-02-30"), "birth_date"),
    ],
    ids=[
        "new-field",
        "new-list",
        "bad-number",
        "bad-timestamp",
        "empty-id",
        "bool-zip",
        "bad-date",
    ],
)
def test_anything_unusual_goes_through_dlts_normalizer_with_the_same_outcome(
    tmp_path: Any, change: Any, reason: str
) -> None:
    with TriggSimulator(customers=5, seed=4) as simulator:
        envelopes = _envelopes(simulator, 5)
        change(envelopes[2])
        body = json.dumps(envelopes).encode()
        warehouses = []
        for fast in (True, False):
            warehouse = str(tmp_path / f"{fast}.duckdb")
            simulator.inject(Fault(body=body))
            summary = run_once(settings_for(simulator, fast), warehouse)
            if fast:
                [note] = [note for note in summary.notes if "normalizer" in note]
                assert reason in note
            warehouses.append(warehouse)
        assert warehouse_tables(warehouses[0]) == warehouse_tables(warehouses[1])
        assert row_counts(warehouses[0]) == row_counts(warehouses[1])
