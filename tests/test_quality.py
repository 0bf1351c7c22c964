"""Data-quality checks after each load: counted in the run summary, never failing the run."""

from __future__ import annotations

import json

import duckdb

from pipelines.runner import make_pipeline, run_once
from pipelines.simulator import Fault, TriggSimulator
from pipelines.summary import RunSummary
from pipelines.trigg.settings import TriggSettings
from pipelines.warehouse.catalog import dataset_columns
from pipelines.warehouse.quality import check_quality

CHECKS = (
    "duplicate_customer_ids",
    "child_rows_without_customer",
    "negative_points",
    "points_mismatch",
)


def findings(summary: RunSummary) -> dict[str, int]:
    return {check.name: check.count for check in summary.quality_checks}


def test_a_clean_first_load_reports_every_check_with_nothing_found(
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


def test_the_checks_count_the_customers_of_the_load_they_are_given(
    settings: TriggSettings, warehouse: str
) -> None:
    summary = run_once(settings, warehouse)
    with duckdb.connect(warehouse) as connection:  # damage done by hand, outside the pipeline
        connection.execute(
            """insert into trigg.customers select * replace ('copy-' || _dlt_id as _dlt_id)
               from trigg.customers limit 1"""
        )
        connection.execute(
            """insert into trigg.customers__interests
               select * replace ('nobody' as _dlt_root_id, 'orphan-' || _dlt_id as _dlt_id)
               from trigg.customers__interests limit 3"""
        )
        connection.execute("update trigg.customers set loyalty__points = -1 where rowid < 2")

    with make_pipeline(warehouse).sql_client() as client:
        columns = dataset_columns(client)
        this_load = check_quality(client, columns, summary.load_ids, whole_warehouse=True)
        other_load = check_quality(client, columns, ["1700000000.1"])

    assert {check.name: check.count for check in this_load} == {
        "duplicate_customer_ids": 1,
        "child_rows_without_customer": 3,
        "negative_points": 2,
        "points_mismatch": 2,
    }
    assert {check.name: check.count for check in other_load} == {
        "duplicate_customer_ids": 0,  # another load's customers are not looked at
        "negative_points": 0,
        "points_mismatch": 0,
    }  # and child rows only when the tables changed


def test_a_run_that_changes_no_table_leaves_views_and_comments_as_they_are(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    first = run_once(settings, warehouse)
    run_once(settings, warehouse)  # run_history, created after the first run's checks, is new
    with duckdb.connect(warehouse) as connection:
        connection.execute("comment on view trigg.stamp_cards is 'an analyst was here'")
        connection.execute("drop view trigg.customer_interests")

    simulator.change(5)
    changed = run_once(settings, warehouse)
    with duckdb.connect(warehouse, read_only=True) as connection:
        views = dict(
            connection.execute(
                "select view_name, comment from duckdb_views() where schema_name = 'trigg'"
            ).fetchall()
        )

    assert "child_rows_without_customer" in findings(first)  # the tables were new
    assert views["customer_interests"] is not None  # a missing view is made again ...
    assert views["stamp_cards"] != "an analyst was here"  # ... with every description
    assert "child_rows_without_customer" in findings(changed)

    simulator.change(5)
    unchanged = run_once(settings, warehouse)
    with duckdb.connect(warehouse) as connection:
        connection.execute("comment on view trigg.stamp_cards is 'an analyst was here'")
    simulator.change(5)
    run_once(settings, warehouse)
    with duckdb.connect(warehouse, read_only=True) as connection:
        comment = connection.execute(
            "select comment from duckdb_views() where view_name = 'stamp_cards'"
        ).fetchone()

    assert "child_rows_without_customer" not in findings(unchanged)
    assert comment == ("an analyst was here",)  # nothing rewritten when nothing would change
