"""`trigg verify` asks the API itself whether the warehouse is right, and `--repair` fixes it.

The changes an ordinary run cannot see: one stamped far below the cursor (beyond the lookback),
one that keeps its old `UpdatedAt`, and a new customer stamped long ago. Verify names each, exits
3, and `--repair` makes the warehouse equal the simulator's truth without moving the cursor.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.runner import as_warehouse, exclusive_run, run_once
from pipelines.simulator import SimulatedCustomer, TriggSimulator
from pipelines.trigg.errors import RunInProgress
from pipelines.trigg.settings import FULL_BACKFILL_SINCE, TriggSettings
from pipelines.verify import VerifyError, verify
from pipelines.warehouse.status import read_status
from tests.conftest import run_trigg, trigg_env
from tests.oracle import (
    expected_tables,
    expected_versions,
    row_counts,
    warehouse_tables,
    warehouse_versions,
)
from tests.targets import Target

EXIT_DIFFERENCES = 3
KINDS = ("missing", "stale", "differs")


def assert_equals_truth(warehouse: Target | str, simulator: TriggSimulator) -> None:
    expected = expected_tables(simulator.store.snapshot())
    assert warehouse_tables(warehouse) == expected
    counts = row_counts(warehouse)
    for table, rows in expected.items():
        assert counts.get(table, 0) == len(rows), f"{table} holds rows of no current customer"


def cursor_wall_time(simulator: TriggSimulator) -> datetime:
    """The cursor a run leaves, as the API's wall-clock time: the newest `UpdatedAt`."""
    return max(customer.updated_at for customer in simulator.store.customers.values())


def long_unchanged(simulator: TriggSimulator, count: int) -> list[SimulatedCustomer]:
    """Customers last changed more than two hours before the cursor, far beyond the lookback."""
    edge = cursor_wall_time(simulator) - timedelta(hours=2)
    old = sorted(
        (c for c in simulator.store.customers.values() if c.updated_at < edge),
        key=lambda c: c.updated_at,
    )
    assert len(old) >= count
    return old[:count]


def changes_no_run_sees(simulator: TriggSimulator) -> dict[str, str]:
    """Three changes at the vendor that the next run cannot see: id -> what verify must say."""
    stamped_late, silent = long_unchanged(simulator, 2)
    loyalty = stamped_late.data["loyalty"]
    for key in ("points", "pointsActive", "pointsTotal"):
        loyalty[key] += 25
    stamped_late.updated_at += timedelta(minutes=1)  # published with an old stamp
    silent.data["promotions"].pop()  # changed, its UpdatedAt kept
    newcomer = simulator.store.generator.customer(simulator.clock())
    newcomer.updated_at = cursor_wall_time(simulator) - timedelta(hours=3)
    simulator.store.customers[newcomer.data["id"]] = newcomer
    return {
        stamped_late.data["id"]: "stale",
        silent.data["id"]: "differs",
        newcomer.data["id"]: "missing",
    }


def test_verify_finds_what_runs_missed_and_repair_makes_the_warehouse_equal_the_truth(
    simulator: TriggSimulator, warehouse: str, tmp_path: Path
) -> None:
    env = trigg_env(simulator, warehouse)
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    loaded = simulator.store.snapshot()
    clean = run_trigg("verify", env=env, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "the warehouse equals the API" in clean.stdout

    missed = changes_no_run_sees(simulator)
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    held = {row[0]: row for row in warehouse_tables(warehouse)["customers"]}
    assert warehouse_tables(warehouse) != expected_tables(simulator.store.snapshot())
    assert [customer for customer in missed if customer not in held] == [
        c for c, kind in missed.items() if kind == "missing"
    ]
    cursor = read_status(warehouse).cursor
    runs = read_status(warehouse).rows_per_table["run_history"]

    found = run_trigg("verify", env=env, cwd=tmp_path)
    assert found.returncode == EXIT_DIFFERENCES, found.stderr
    for customer, kind in missed.items():
        assert f"{customer}  {kind}" in found.stdout
    for kind in KINDS:
        assert re.search(rf"^  {kind}\s+1  ", found.stdout, re.MULTILINE), found.stdout

    repaired = run_trigg("verify", "--repair", "--json", env=env, cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stderr
    report = json.loads(repaired.stdout)
    assert {kind: report["ids"][kind] for kind in KINDS} == {
        kind: [c for c, k in missed.items() if k == kind] for kind in KINDS
    }
    assert report["since"] == simulator.requests[0].since  # the first run's: the whole base
    assert report["repair"]["customers_loaded"] == 3
    assert report["after_repair"]["equal"] and report["equal"]
    assert_equals_truth(warehouse, simulator)
    assert warehouse_versions(warehouse) == expected_versions([loaded, simulator.store.snapshot()])
    assert read_status(warehouse).cursor == cursor
    assert read_status(warehouse).rows_per_table["run_history"] == runs  # a load, not a run

    simulator.change(12)
    later = run_trigg("run", env=env, cwd=tmp_path)
    assert later.returncode == 0, later.stderr
    assert read_status(warehouse).cursor > cursor
    assert_equals_truth(warehouse, simulator)


@pytest.mark.parametrize("target", ["postgres"], indirect=True)
def test_verify_and_repair_on_postgresql(
    simulator: TriggSimulator, target: Target, tmp_path: Path
) -> None:
    env = trigg_env(simulator, target)
    assert run_trigg("run", *target.cli_args, env=env, cwd=tmp_path).returncode == 0
    clean = run_trigg("verify", *target.cli_args, env=env, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr

    missed = changes_no_run_sees(simulator)
    found = run_trigg("verify", *target.cli_args, env=env, cwd=tmp_path)
    assert found.returncode == EXIT_DIFFERENCES, found.stderr
    for customer, kind in missed.items():
        assert f"{customer}  {kind}" in found.stdout

    repaired = run_trigg("verify", "--repair", *target.cli_args, env=env, cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stderr
    assert_equals_truth(target, simulator)


def test_customers_without_a_fingerprint_count_as_differing_until_repaired(
    simulator: TriggSimulator, warehouse: str
) -> None:
    """dlt's normalizer keeps no fingerprint: verify cannot prove such a customer's content, so
    it says so; the repair loads it through the fast path, which keeps one."""
    reference = TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key)
    reference.fast_path = False
    run_once(reference, warehouse)
    settings = TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key)

    report = verify(settings, warehouse)
    assert report.found.counts == {"missing": 0, "stale": 0, "differs": 60, "newer": 0}
    assert report.found.without_fingerprint == 60
    assert not report.equal
    assert any("no fingerprint" in note for note in report.notes)

    repaired = verify(settings, warehouse, repair=True)
    assert repaired.after is not None and repaired.after.differences == 0
    assert repaired.equal
    assert_equals_truth(warehouse, simulator)


def test_an_empty_warehouse_misses_every_customer_of_the_whole_base(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    report = verify(settings, warehouse)
    assert report.since == FULL_BACKFILL_SINCE
    assert simulator.requests[-1].since == FULL_BACKFILL_SINCE
    assert report.found.counts["missing"] == 60
    shown = [line for line in report.render().splitlines() if line.endswith("  missing")]
    assert len(shown) == 20
    assert "the first 20; all of them with --json" in report.render()
    assert len(verify(settings, warehouse, all_ids=True).found.ids["missing"]) == 60


def test_a_version_kept_before_fingerprints_existed_counts_as_differing(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)
    with duckdb.connect(warehouse) as connection:  # as a warehouse an older trigg loaded
        connection.execute("alter table trigg.customer_versions drop column fingerprint")
    report = verify(settings, warehouse)
    assert report.found.counts["differs"] == report.found.without_fingerprint == 60


def test_verify_never_deletes_a_customer_the_api_no_longer_sends(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)
    gone = simulator.store.customers.pop(sorted(simulator.store.customers)[0]).data["id"]

    report = verify(settings, warehouse, repair=True)

    assert report.found.only_in_warehouse == 1
    assert report.equal and report.repair is None
    assert "did not send (verify never deletes them)" in report.render()
    assert [gone] == [row[0] for row in warehouse_tables(warehouse)["customers"] if row[0] == gone]


def test_an_answer_the_fast_path_cannot_read_fails_the_verify_and_changes_nothing(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)
    before = warehouse_tables(warehouse)
    odd = simulator.store.snapshot()[0].envelope()
    odd["data"]["matrix"] = [["a list in a list"]]  # a shape nobody has seen
    simulator.extra_envelopes.append(odd)

    with pytest.raises(VerifyError, match="cannot be compared"):
        verify(settings, warehouse, repair=True)
    assert warehouse_tables(warehouse) == before


def test_verify_holds_the_run_lock(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    with exclusive_run(as_warehouse(warehouse)), pytest.raises(RunInProgress):
        verify(settings, warehouse)


def test_a_customer_without_updated_at_is_reported_unchecked_not_as_a_difference(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    """Its fingerprint is kept by version, and it has none: verify says so and moves on."""
    timeless = simulator.store.generator.customer(simulator.clock()).envelope()
    del timeless["metaData"]["UpdatedAt"]
    simulator.extra_envelopes.append(timeless)
    run_once(settings, warehouse)

    report = verify(settings, warehouse)

    assert report.found.unchecked == 1
    assert report.equal
    assert "content cannot be compared" in report.render()
