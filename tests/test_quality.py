"""Data-quality checks after each load: counted in the run summary, never failing the run."""

from __future__ import annotations

import json

import duckdb

from pipelines.runner import run_once
from pipelines.simulator import Fault, TriggSimulator
from pipelines.summary import RunSummary
from pipelines.trigg.settings import TriggSettings

CHECKS = (
    "duplicate_customer_ids",
    "child_rows_without_customer",
    "negative_points",
    "points_mismatch",
)


def findings(summary: RunSummary) -> dict[str, int]:
    return {check.name: check.count for check in summary.quality_checks}


def test_a_clean_load_reports_every_check_with_nothing_found(
    settings: TriggSettings, warehouse: str
) -> None:
    summary = run_once(settings, warehouse)

    assert findings(summary) == dict.fromkeys(CHECKS, 0)
    assert "checks" in summary.render() and "warning" not in summary.render()


def test_negative_points_and_points_that_do_not_add_up_are_warnings_with_counts(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    customers = [customer.envelope() for customer in simulator.store.snapshot()]
    customers[0]["data"]["loyalty"].update(points=100, pointsActive=50, pointsPending=20)
    customers[1]["data"]["loyalty"].update(points=-10, pointsActive=-10, pointsPending=0)
    customers[2]["data"]["loyalty"].update(points=5, pointsActive=-5, pointsPending=3)
    simulator.inject(Fault(body=json.dumps(customers).encode()))

    summary = run_once(settings, warehouse)

    assert summary.customers_received == 60  # the run did not fail: everything was loaded
    assert findings(summary) == {
        "duplicate_customer_ids": 0,
        "child_rows_without_customer": 0,
        "negative_points": 2,
        "points_mismatch": 2,
    }
    assert "points != pointsActive + pointsPending (warning)" in summary.render()


def test_duplicate_ids_and_orphaned_child_rows_in_the_warehouse_are_reported(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)
    oldest = min(simulator.store.snapshot(), key=lambda c: c.updated_at).data["id"]
    with duckdb.connect(warehouse) as connection:  # damage done by hand, outside the pipeline
        connection.execute(
            """insert into trigg.customers select * replace ('copy-' || _dlt_id as _dlt_id)
               from trigg.customers where id = ?""",
            [oldest],
        )
        connection.execute(
            """insert into trigg.customers__interests
               select * replace ('nobody' as _dlt_root_id, 'orphan-' || _dlt_id as _dlt_id)
               from trigg.customers__interests limit 3"""
        )

    simulator.change(5)  # the next run does not deliver the duplicated (oldest) customer again
    summary = run_once(settings, warehouse)

    assert findings(summary) == {
        "duplicate_customer_ids": 1,
        "child_rows_without_customer": 3,
        "negative_points": 0,
        "points_mismatch": 0,
    }
