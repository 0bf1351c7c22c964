"""Late-arrival telemetry: how much older than the cursor the new records of a run are stamped.

The lookback delivers every recent customer again on every run; those re-deliveries are not
late. A change the API publishes with an `UpdatedAt` below the cursor is, and when it comes
close to the lookback's edge the summary warns: a little later and it would have been missed.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import SimulatedCustomer, TriggSimulator
from pipelines.trigg.settings import TriggSettings
from pipelines.warehouse.status import read_status
from tests.targets import Target


def newest(simulator: TriggSimulator) -> SimulatedCustomer:
    return max(simulator.store.customers.values(), key=lambda c: c.updated_at)


def oldest(simulator: TriggSimulator, count: int) -> list[SimulatedCustomer]:
    return sorted(simulator.store.customers.values(), key=lambda c: c.updated_at)[:count]


def publish_late(customer: SimulatedCustomer, stamp: timedelta, cursor_wall: object) -> None:
    """The customer changed, and the API stamps the change `stamp` before the cursor."""
    customer.data["consents"]["acceptsSms"] = not customer.data["consents"]["acceptsSms"]
    customer.updated_at = cursor_wall - stamp  # type: ignore[operator]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "reference-path"])
def test_changes_published_late_are_counted_and_redeliveries_are_not(
    simulator: TriggSimulator, warehouse: str, fast_path: bool
) -> None:
    settings = TriggSettings(
        base_url=simulator.base_url, api_key=simulator.api_key, fast_path=fast_path
    )
    cursor_wall = newest(simulator).updated_at
    recent = oldest(simulator, 1)[0]
    recent.updated_at = cursor_wall - timedelta(minutes=4)  # the lookback sends it every time

    first = run_once(settings, warehouse)
    assert first.late_arrivals is None  # no cursor yet: nothing can be late

    again = run_once(settings, warehouse)
    assert again.customers_received >= 2  # the newest customer and the recent one, again
    assert again.late_arrivals == 0
    assert again.max_lateness_minutes is None

    late, later = oldest(simulator, 2)
    publish_late(late, timedelta(minutes=3), cursor_wall)
    publish_late(later, timedelta(minutes=9), cursor_wall)
    summary = run_once(settings, warehouse)

    assert summary.late_arrivals == 2
    assert summary.max_lateness_minutes == 9.0
    assert "late arrivals 2 record(s) older than the cursor, the latest 9 min" in summary.render()
    [warning] = [note for note in summary.notes if "arrived late" in note]
    assert "90% of lookback_minutes (10)" in warning
    assert "SOURCES__TRIGG__LOOKBACK_MINUTES) to 20" in warning

    with duckdb.connect(warehouse, read_only=True) as connection:
        recorded = connection.execute(
            "select late_arrivals, max_lateness_minutes from trigg.run_history order by started_at"
        ).fetchall()
    assert recorded == [(None, None), (0, None), (2, 9.0)]
    status = read_status(warehouse)
    assert status.last_run is not None and status.last_run["late_arrivals"] == 2
    assert "late arrivals 2, the latest 9 min older than the cursor" in status.render()


def test_lateness_well_inside_the_lookback_is_reported_without_a_warning(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    cursor_wall = newest(simulator).updated_at
    run_once(settings, warehouse)
    publish_late(oldest(simulator, 1)[0], timedelta(minutes=7, seconds=59), cursor_wall)

    summary = run_once(settings, warehouse)

    assert (summary.late_arrivals, summary.max_lateness_minutes) == (1, 8.0)  # 7.98, shown
    assert not [note for note in summary.notes if "arrived late" in note]


@pytest.mark.parametrize("target", ["postgres"], indirect=True)
def test_late_arrivals_are_counted_on_postgresql(simulator: TriggSimulator, target: Target) -> None:
    settings = TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key)
    cursor_wall = newest(simulator).updated_at
    run_once(settings, target.warehouse)
    publish_late(oldest(simulator, 1)[0], timedelta(minutes=5), cursor_wall)

    summary = run_once(settings, target.warehouse)

    assert (summary.late_arrivals, summary.max_lateness_minutes) == (1, 5.0)
    assert target.query("select max(late_arrivals) from run_history") == [(1,)]
