"""`trigg status`: the warehouse's state for people and machines, read from the warehouse alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.runner import run_once
from pipelines.simulator import TriggSimulator
from pipelines.trigg.settings import TriggSettings
from pipelines.warehouse.status import read_status
from tests.conftest import run_trigg, trigg_env
from tests.oracle import OSLO, row_counts
from tests.test_cli import assert_one_clear_sentence


def newest_updated_at(simulator: TriggSimulator) -> datetime:
    newest = max(customer.updated_at for customer in simulator.store.snapshot())
    return newest.replace(tzinfo=OSLO).astimezone(UTC)


def status_json(warehouse: str, cwd: Path) -> dict:
    """`trigg status --json` as a monitor runs it: no API URL, no key, only the warehouse."""
    result = run_trigg("status", "--json", env=trigg_env(None, warehouse), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_reports_cursor_freshness_last_run_rows_and_quarantine_without_the_api(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "trigg.duckdb")  # catalog and dataset share the name `trigg`
    for changes in (0, 8):
        simulator.change(changes)
        ran = run_trigg("run", env=trigg_env(simulator, warehouse), cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
    requests_before = len(simulator.requests)

    status = status_json(warehouse, tmp_path)

    assert len(simulator.requests) == requests_before  # no network: the API was not asked
    newest = newest_updated_at(simulator)
    checked_at = datetime.fromisoformat(status["checked_at"])
    assert datetime.fromisoformat(status["cursor"]) == newest
    assert datetime.fromisoformat(status["newest_updated_at"]) == newest
    assert status["freshness_lag_seconds"] == (checked_at - newest).total_seconds() > 0
    last = status["last_successful_run"]
    assert last == status["last_run"]
    assert last["outcome"] == "succeeded"
    assert last["cursor_after"] == status["cursor"]
    assert last["rows_per_table"]["customers"] == last["customers_received"] > 0
    assert status["rows_per_table"] == row_counts(warehouse)
    assert status["rows_per_table"]["run_history"] == 2
    assert status["quarantined_records"] == 0

    human = run_trigg("status", env=trigg_env(None, warehouse), cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    for label in ("cursor", "freshness lag", "last success", "rows", "quarantined"):
        assert f"  {label}" in human.stdout
    assert status["cursor"] in human.stdout
    assert "customers__promotions" in human.stdout


def test_quarantined_records_are_counted_once_the_quarantine_table_exists(
    settings: TriggSettings, warehouse: str, tmp_path: Path
) -> None:
    run_once(settings, warehouse)
    with duckdb.connect(warehouse) as connection:
        connection.execute("create table trigg.customers_rejected (reason varchar)")
        connection.execute("insert into trigg.customers_rejected values ('a'), ('b'), ('c')")

    status = status_json(warehouse, tmp_path)

    assert status["quarantined_records"] == 3
    assert status["rows_per_table"]["customers_rejected"] == 3


def test_after_a_failed_run_status_shows_it_next_to_the_last_successful_one(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str, tmp_path: Path
) -> None:
    succeeded = run_once(settings, warehouse)
    env = trigg_env(simulator, warehouse, SOURCES__TRIGG__API_KEY="rejected-key")
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 1

    status = status_json(warehouse, tmp_path)

    assert status["last_run"]["outcome"] == "failed"
    assert "API key was rejected" in status["last_run"]["error"]
    assert status["last_successful_run"]["load_ids"] == succeeded.load_ids
    human = run_trigg("status", env=trigg_env(None, warehouse), cwd=tmp_path).stdout
    assert "last run" in human and "failed" in human and "API key was rejected" in human


def test_status_releases_the_warehouse_as_soon_as_it_has_read_it(
    settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)

    read_status(warehouse)

    with duckdb.connect(warehouse) as writer:  # fails if status still held the file open
        writer.execute("create table trigg.written_after_status (x int)")


def test_status_while_a_run_writes_says_so_in_one_sentence(
    settings: TriggSettings, warehouse: str, tmp_path: Path
) -> None:
    run_once(settings, warehouse)
    with duckdb.connect(warehouse):  # a run holds the write lock
        result = run_trigg("status", env=trigg_env(None, warehouse), cwd=tmp_path)
    assert_one_clear_sentence(result, warehouse, "try again")


def test_status_of_a_missing_warehouse_is_one_sentence(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.duckdb")
    result = run_trigg("status", "--warehouse", missing, env=trigg_env(None, None), cwd=tmp_path)
    assert_one_clear_sentence(result, missing, "trigg run")
    assert not Path(missing).exists()


def test_status_of_a_warehouse_with_nothing_loaded_yet(tmp_path: Path) -> None:
    empty = str(tmp_path / "empty.duckdb")
    duckdb.connect(empty).close()

    status = status_json(empty, tmp_path)

    assert status["cursor"] is None and status["last_run"] is None
    assert status["rows_per_table"] == {} and status["quarantined_records"] == 0


def test_status_reads_a_run_history_written_before_its_newer_columns(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)
    with duckdb.connect(warehouse) as connection:  # as an earlier version left it
        for column in ("warnings", "full_backfill"):
            connection.execute(f"alter table trigg.run_history drop column {column}")

    status = read_status(warehouse)

    assert status.last_run is not None and status.last_run["outcome"] == "succeeded"
    assert status.last_run["warnings"] is None and "(succeeded" in status.render()
