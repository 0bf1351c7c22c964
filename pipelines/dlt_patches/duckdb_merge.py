"""Merge into DuckDB deduplicating staging rows by `rowid`, in bounded memory.

Before inserting staging rows, dlt 1.31 drops the copies with `ROW_NUMBER() OVER (PARTITION BY
...)` over the whole staging table, carrying every column: rows of a nested table loaded twice
(a load job retried after a crash) by `_dlt_id`, and root rows sent twice by their primary key
(the newest `dedup_sort` value wins). DuckDB holds that window in memory: merging 200,000
customers (six million child rows) failed at 256 MB, and `customer_versions` of 1,000,000
customers at 128 MB. Picking the `rowid` of the row to keep per key aggregates two or three
narrow columns, which DuckDB spills: it merges the same loads in 128 MB. The result is the same:
rows sharing a `_dlt_id` are copies of one row, and of the rows sharing a primary key the one
with the highest (`desc`) or lowest (`asc`) sort value is kept, any one of them without a sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlt.destinations.impl.duckdb.duck import DuckDbClient
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
        if skip_dedup or not primary_keys:
            return super().gen_select_from_dedup_sql(
                table_name,
                primary_keys,
                columns,
                dedup_sort,
                condition,
                condition_columns,
                skip_dedup,
            )
        return (
            f"SELECT {', '.join(columns)} FROM {table_name}"
            f" WHERE rowid IN ({kept_rows(table_name, primary_keys, dedup_sort)})"
            f" AND ({condition or '1 = 1'})"
        )


def kept_rows(table_name: str, keys: Sequence[str], dedup_sort: Any = None) -> str:
    """The `rowid` of the row kept per key: the first copy, or the newest (oldest) by the sort
    column; rows whose sort value is NULL lose to any other, as in dlt's `ORDER BY`."""
    if dedup_sort is None:
        pick = "min(rowid)"
    else:
        chosen = "arg_max" if str(dedup_sort[1]).lower() == "desc" else "arg_min"
        pick = f"coalesce({chosen}(rowid, {dedup_sort[0]}), min(rowid))"
    return f"SELECT {pick} FROM {table_name} GROUP BY {', '.join(keys)}"


def _create_merge_followup_jobs(self: DuckDbClient, table_chain: Sequence[Any]) -> list[Any]:
    return [FirstCopyMergeJob.from_table_chain(table_chain, self.sql_client)]


def deduplicate_by_rowid() -> None:
    """Install it (a patch of dlt's DuckDB job client); idempotent."""
    DuckDbClient._create_merge_followup_jobs = _create_merge_followup_jobs  # type: ignore[method-assign]
