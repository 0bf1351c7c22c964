"""Merge child tables into DuckDB (and DuckLake) deduplicating by `rowid`, in bounded memory.

Before inserting a nested table's staging rows, dlt 1.31 drops rows loaded twice (by a load job
retried after a crash) with `ROW_NUMBER() OVER (PARTITION BY _dlt_id)` over the whole staging
table, carrying every column. DuckDB holds that in memory: merging 200,000 customers (six million
child rows) failed at 256 MB and, as `DISTINCT ON`, at 384 MB. Keeping the first `rowid` of each
`_dlt_id` aggregates two narrow columns, which DuckDB spills: it merges the same load in 128 MB.
The result is the same: rows sharing a `_dlt_id` are copies of one row. DuckLake tables have a
`rowid` too, and dlt's DuckLake client merges with a job of its own: it gets the same query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlt.destinations.impl.duckdb.duck import DuckDbClient
from dlt.destinations.impl.ducklake.ducklake import DuckLakeClient, DuckLakeMergeFollowupJob
from dlt.destinations.sql_jobs import SqlMergeFollowupJob

NESTED_ROW_KEY = '"_dlt_id"'


class FirstCopyMergeJob(SqlMergeFollowupJob):
    @classmethod
    def gen_select_from_dedup_sql(
        cls,
        table_name: str,
        primary_keys: Sequence[str],
        columns: Sequence[str],
        dedup_sort: Any = None,
        condition: str | None = None,
        condition_columns: Sequence[str] | None = None,
        skip_dedup: bool = False,
    ) -> str:
        if skip_dedup or dedup_sort is not None or list(primary_keys) != [NESTED_ROW_KEY]:
            return super().gen_select_from_dedup_sql(
                table_name,
                primary_keys,
                columns,
                dedup_sort,
                condition,
                condition_columns,
                skip_dedup,
            )
        first_copies = f"SELECT min(rowid) FROM {table_name} GROUP BY {NESTED_ROW_KEY}"
        return (
            f"SELECT {', '.join(columns)} FROM {table_name}"
            f" WHERE rowid IN ({first_copies}) AND ({condition or '1 = 1'})"
        )


class FirstCopyLakeMergeJob(FirstCopyMergeJob, DuckLakeMergeFollowupJob):
    """DuckLake's merge (its own upsert), deduplicating child rows by their first `rowid`."""


def _create_merge_followup_jobs(self: DuckDbClient, table_chain: Sequence[Any]) -> list[Any]:
    return [FirstCopyMergeJob.from_table_chain(table_chain, self.sql_client)]


def _create_lake_merge_followup_jobs(self: DuckLakeClient, table_chain: Sequence[Any]) -> list[Any]:
    return [FirstCopyLakeMergeJob.from_table_chain(table_chain, self.sql_client)]


def deduplicate_child_rows_by_first_copy() -> None:
    """Install it (a patch of dlt's DuckDB and DuckLake job clients); idempotent."""
    DuckDbClient._create_merge_followup_jobs = _create_merge_followup_jobs  # type: ignore[method-assign]
    DuckLakeClient._create_merge_followup_jobs = _create_lake_merge_followup_jobs  # type: ignore[method-assign]
