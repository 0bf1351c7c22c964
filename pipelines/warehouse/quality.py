"""Data-quality checks after each load: counted and reported in the run summary, never fatal.

They look at the customers the run loaded (its load ids), so a run into a warehouse of a million
customers costs what a run into ten thousand does: ids of this load held more than once (merge
failed to replace a customer), and this load's negative or inconsistent points. Child rows have no
load id, and a child row whose customer is gone is what a merge that misses a nested table leaves
behind: they are counted over the whole warehouse when the tables changed (the first load, a new
table or column; `whole_warehouse`). Plain SQL on the raw tables through dlt's SQL client, so they
run on any SQL destination. A count of 0 is good; anything else is a warning.
`points != pointsActive + pointsPending` holds in the spec's examples, but real data may differ
(points may be booked late), hence a count, not a failure.
"""

from __future__ import annotations

from collections.abc import Sequence

from dlt.destinations.sql_client import SqlClientBase

from pipelines.summary import QualityCheck
from pipelines.trigg.schema import LOAD_ID, PRIMARY_KEY, ROOT_TABLE, TABLES

POINT_COLUMNS = (
    "loyalty__points",
    "loyalty__points_active",
    "loyalty__points_pending",
    "loyalty__points_expired",
    "loyalty__points_total",
)
TOLERANCE = 1e-6
"""Points are doubles: a difference below this is rounding, not a mismatch."""

LABELS = {
    "duplicate_customer_ids": "customer ids held more than once",
    "child_rows_without_customer": "child rows without a customer",
    "negative_points": "customers with negative points",
    "points_mismatch": "customers with points != pointsActive + pointsPending",
}


def check_quality(
    client: SqlClientBase,
    dataset_columns: dict[str, list[str]],
    load_ids: Sequence[str] = (),
    whole_warehouse: bool = False,
) -> list[QualityCheck]:
    """Run the checks on the customers of `load_ids`; orphaned child rows only with
    `whole_warehouse` (and then left out of the list otherwise). A table not created yet counts
    0."""
    labels = {
        name: label
        for name, label in LABELS.items()
        if whole_warehouse or name != "child_rows_without_customer"
    }
    if ROOT_TABLE not in dataset_columns:
        return [QualityCheck(name, label, 0) for name, label in labels.items()]
    customers = client.make_qualified_table_name(ROOT_TABLE)
    loaded = ", ".join(client.capabilities.escape_literal(load_id) for load_id in load_ids)
    this_load = f"{LOAD_ID} in ({loaded})" if load_ids else "false"
    children = [
        client.make_qualified_table_name(table.name)
        for table in TABLES[1:]
        if table.name in dataset_columns
    ]
    orphans = [  # one query per table: all in one, DuckDB runs out of its memory limit
        f"""select count(*) from {child} t
            where not exists (select 1 from {customers} c where c._dlt_id = t._dlt_root_id)"""
        for child in children
    ]
    negative = " or ".join(f"{column} < 0" for column in POINT_COLUMNS)
    counts: dict[str, str | list[str]] = {
        "duplicate_customer_ids": f"""select count(*) from (
            select {PRIMARY_KEY} from {customers}
            where {PRIMARY_KEY} in (select {PRIMARY_KEY} from {customers} where {this_load})
            group by {PRIMARY_KEY} having count(*) > 1
        ) duplicated""",
        "child_rows_without_customer": orphans,
        "negative_points": f"select count(*) from {customers} where {this_load} and ({negative})",
        "points_mismatch": f"""select count(*) from {customers} where {this_load} and abs(
            loyalty__points - (loyalty__points_active + loyalty__points_pending)) > {TOLERANCE}""",
    }
    return [
        QualityCheck(name, label, _count(client, counts[name])) for name, label in labels.items()
    ]


def _count(client: SqlClientBase, queries: str | list[str]) -> int:
    """The count a query returns, or the sum of several."""
    total = 0
    for query in [queries] if isinstance(queries, str) else queries:
        rows = client.execute_sql(query)
        total += int(rows[0][0]) if rows and rows[0][0] is not None else 0
    return total
