"""A record stamped in the future is loaded and named, and never stalls the cursor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import TriggSimulator
from pipelines.simulator import server as simulator_server
from pipelines.trigg.settings import TriggSettings
from pipelines.trigg.timestamps import format_since
from tests.oracle import OSLO
from tests.test_pipeline import assert_warehouse_equals_source

YEAR_2036 = datetime(2036, 1, 1, 12, 0)  # Oslo wall-clock time, as the API writes it


def serve_date(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """The simulator's responses carry `Date: moment` (its HTTP server's clock, moved)."""
    header = format_datetime(moment.astimezone(UTC), usegmt=True)
    monkeypatch.setattr(
        simulator_server._Handler, "date_time_string", lambda self, timestamp=None: header
    )


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "reference-path"])
def test_a_record_from_the_future_is_loaded_named_and_does_not_move_the_cursor_past_now(
    simulator: TriggSimulator, warehouse: str, fast_path: bool
) -> None:
    settings = TriggSettings(
        base_url=simulator.base_url, api_key=simulator.api_key, fast_path=fast_path
    )
    stamped = simulator.store.snapshot()[3]
    simulator.store.customers[stamped.data["id"]].updated_at = YEAR_2036

    first = run_once(settings, warehouse)
    changed = set(simulator.change(8))  # a customer may be changed twice
    second = run_once(settings, warehouse)

    assert first.customers_received == 60  # the record is loaded like any other
    [warning] = first.warnings
    assert stamped.data["id"] in warning and "UpdatedAt 2036-01-01T11:00:00+00:00" in warning
    assert first.cursor_after is not None and first.cursor_after <= datetime.now(UTC)
    assert second.since <= format_since(datetime.now(UTC), OSLO)  # asks for now, not 2036
    assert second.customers_received >= len(changed)
    assert_warehouse_equals_source(warehouse, simulator)
    with duckdb.connect(warehouse, read_only=True) as connection:
        recorded = connection.sql("select warnings from trigg.run_history order by started_at")
        assert json.loads(recorded.fetchall()[0][0]) == [warning]


def test_the_cursor_follows_the_responses_date_header_and_a_future_cursor_comes_back(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str, monkeypatch
) -> None:
    stamped = simulator.store.snapshot()[0]
    simulator.store.customers[stamped.data["id"]].updated_at = YEAR_2036
    serve_date(monkeypatch, datetime(2036, 6, 1, tzinfo=UTC))  # the API's clock says 2036 too

    trusted = run_once(settings, warehouse)
    assert trusted.warnings == []  # no later than the API's own clock: not from the future
    assert trusted.cursor_after == datetime(2036, 1, 1, 11, 0, tzinfo=UTC)

    # the API's clock is back to today and the record fixed: a warehouse stalled in 2036
    monkeypatch.undo()
    fixed = simulator.store.customers[stamped.data["id"]]
    fixed.updated_at = datetime.now(OSLO).replace(tzinfo=None, microsecond=0)
    changed = {fixed.data["id"], *simulator.change(5)}  # a customer may be changed twice
    repaired = run_once(settings, warehouse)
    after = run_once(settings, warehouse)

    assert repaired.customers_received == 0  # it asked for 2036 one last time
    assert "the cursor 2036-01-01T11:00:00+00:00 was later than" in repaired.warnings[0]
    assert repaired.cursor_after is not None and repaired.cursor_after <= datetime.now(UTC)
    assert after.since <= format_since(datetime.now(UTC), OSLO)
    assert after.customers_received >= len(changed)
    assert_warehouse_equals_source(warehouse, simulator)


def test_a_record_a_few_minutes_ahead_of_the_api_clock_is_clock_skew_not_a_warning(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    ahead = simulator.store.snapshot()[0]
    wall_now = datetime.now(OSLO).replace(tzinfo=None, microsecond=0)
    simulator.store.customers[ahead.data["id"]].updated_at = wall_now + timedelta(minutes=2)

    summary = run_once(settings, warehouse)

    assert summary.warnings == []
    assert summary.cursor_after is not None and summary.cursor_after <= datetime.now(UTC)
