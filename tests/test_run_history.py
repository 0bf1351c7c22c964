"""`run_history`: one row per run, successful or failed, written through dlt."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import TriggSimulator
from pipelines.trigg.errors import ApiError
from pipelines.trigg.schema import RUN_HISTORY
from pipelines.trigg.settings import TriggSettings

COLUMNS = [c.name for c in RUN_HISTORY.columns if not c.name.startswith("_dlt")]


def runs(warehouse: str) -> list[dict[str, Any]]:
    with duckdb.connect(warehouse, read_only=True) as connection:
        rows = connection.execute(
            f"select {', '.join(COLUMNS)} from trigg.run_history order by started_at"
        ).fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def test_each_run_appends_one_row_with_its_summary(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    summaries = [run_once(settings, warehouse)]
    simulator.change(10)
    summaries.append(run_once(settings, warehouse))
    summaries.append(run_once(settings, warehouse))

    recorded = runs(warehouse)
    assert len(recorded) == 3
    for run, summary in zip(recorded, summaries, strict=True):
        assert run["outcome"] == "succeeded" and run["error"] is None
        assert run["started_at"] < run["finished_at"]
        assert run["since"] == summary.since
        assert run["cursor_before"] == summary.cursor_before
        assert run["cursor_after"] == summary.cursor_after
        assert run["customers_received"] == summary.customers_received
        assert json.loads(run["rows_per_table"]) == summary.rows_per_table
        assert run["rows_written"] == sum(summary.rows_per_table.values())
        assert json.loads(run["load_ids"]) == summary.load_ids
        assert json.loads(run["quality_checks"]) == {
            check.name: check.count for check in summary.quality_checks
        }
        assert run["full_backfill"] == summary.full_backfill
        assert json.loads(run["warnings"]) == summary.warnings == []
    assert [run["full_backfill"] for run in recorded] == [True, False, False]
    assert recorded[0]["finished_at"] <= recorded[1]["started_at"]
    assert recorded[1]["customers_received"] >= 10
    assert recorded[2]["customers_received"] < 60  # only the lookback's re-deliveries


def test_a_failed_run_is_recorded_with_its_reason_and_never_the_key(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    first = run_once(settings, warehouse)
    secret = "wrong-key-that-must-not-be-stored"
    rejected = TriggSettings(base_url=simulator.base_url, api_key=secret)

    with pytest.raises(ApiError, match="API key was rejected"):
        run_once(rejected, warehouse)

    failed = runs(warehouse)[-1]
    assert failed["outcome"] == "failed"
    assert "API key was rejected" in failed["error"]
    assert failed["since"] == simulator.requests[-1].since
    assert failed["cursor_before"] == failed["cursor_after"] == first.cursor_after
    assert failed["customers_received"] == failed["rows_written"] == 0
    with duckdb.connect(warehouse, read_only=True) as connection:
        stored = connection.sql("select * from trigg.run_history").fetchall()
    assert secret not in repr(stored)
