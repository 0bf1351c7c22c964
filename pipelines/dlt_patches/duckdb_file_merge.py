"""Merge parquet files into DuckDB straight from the files, without copying them to staging.

dlt 1.31 merges in two passes: every load job copies its file into a staging table, then one
merge job (a single transaction) deletes the changed rows and inserts the staging rows. For a
DuckDB file the copy is half of the load: DuckDB compresses and writes every row twice. With
this, a parquet file of a plain delete-insert merge is not copied: its load job completes
without work, and the merge job reads the file itself (`read_parquet`), still in one
transaction, so a failure never leaves half a load visible and a retried merge replaces what an
earlier attempt committed instead of doubling it. Files dlt's normalizer wrote in other formats
(the reference path's `insert_values`) still go through staging; a table with both is read from
both.

Deduplication keeps dlt's rules in bounded memory: of the rows sharing a primary key the one
with the newest `dedup_sort` value wins (an arbitrary one without the hint), and nested rows of
the losing copies are not inserted. Only the keys sent more than once are collected
(`GROUP BY ... HAVING count(*) > 1`, an aggregate DuckDB spills to disk), so a load without
duplicates pays one aggregate over the root keys and nothing per nested row, and a root file
whose writer vouches for unique keys (`DEDUPLICATED_METADATA`, the fast path's) not even that.
Staging rows are first reduced to one copy per row key, as `duckdb_merge` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import duckdb
from dlt.common.destination.utils import resolve_merge_strategy
from dlt.common.schema.utils import (
    get_columns_names_with_prop,
    get_dedup_sort_tuple,
    get_first_column_name_with_prop,
    get_root_table,
)
from dlt.common.storages.load_package import LoadJobInfo, ParsedLoadJobFileName
from dlt.destinations.impl.duckdb.duck import DuckDbClient, DuckDbCopyJob
from dlt.destinations.sql_client import SqlClientBase
from dlt.destinations.sql_jobs import SqlMergeFollowupJob

_dlt_create_load_job = DuckDbClient.create_load_job
_dlt_create_chain_followup_jobs = DuckDbClient.create_table_chain_completed_followup_jobs

DEDUPLICATED_METADATA = {"dlt.deduplicated": "true"}
"""Parquet key-value metadata of a file whose writer vouches that no two of its rows share a
primary key: merge then inserts a single such root file without looking for repeated keys (the
fast path writes it; it keeps the newest copy of a customer itself)."""

UNSAFE_IN_SQL_FILE = (";", "\n", "\r")
"""dlt splits a merge job's SQL file into statements at these: a path holding one is copied."""


def merges_from_file(root_table: Any, file_path: str) -> bool:
    """Whether the merge of `root_table`'s chain reads this file itself (a plain delete-insert
    merge by primary key of a parquet file). The load job and the merge job both ask, so they
    always agree on which files were not copied."""
    if ParsedLoadJobFileName.parse(file_path).file_format != "parquet":
        return False
    if any(mark in file_path for mark in UNSAFE_IN_SQL_FILE):
        return False
    return (
        root_table.get("write_disposition") == "merge"
        and resolve_merge_strategy({root_table["name"]: root_table}, root_table) == "delete-insert"
        and bool(get_columns_names_with_prop(root_table, "primary_key"))
        and not get_columns_names_with_prop(root_table, "merge_key")
        and get_first_column_name_with_prop(root_table, "hard_delete") is None
        and not root_table.get("x-merge-source-filter")
        and not root_table.get("x-merge-destination-scope")
        and _row_key(root_table) is not None
    )


def _row_key(table: Any) -> str | None:
    return get_first_column_name_with_prop(table, "row_key") or (
        "_dlt_id" if "_dlt_id" in table.get("columns", {}) else None
    )


class FileReadByMergeJob(DuckDbCopyJob):
    """A load job whose file the merge job reads: nothing to copy anywhere."""

    def run(self) -> None:
        pass


def _create_load_job(
    self: DuckDbClient, table: Any, file_path: str, load_id: str, restore: bool = False
) -> Any:
    job = _dlt_create_load_job(self, table, file_path, load_id, restore)
    if type(job) is DuckDbCopyJob and self.should_load_data_to_staging_dataset(table["name"]):
        root = self.prepare_load_table(get_root_table(self.schema.tables, table["name"])["name"])
        if merges_from_file(root, file_path):
            return FileReadByMergeJob(file_path)
    return job


def _create_table_chain_completed_followup_jobs(
    self: DuckDbClient,
    table_chain: Sequence[Any],
    completed_table_chain_jobs: Sequence[LoadJobInfo] | None = None,
) -> list[Any]:
    jobs = list(completed_table_chain_jobs or [])
    files: dict[str, list[str]] = {}
    staged: set[str] = set()
    root = table_chain[0] if table_chain else None
    for job in jobs:
        table = job.job_file_info.table_name
        if root is not None and merges_from_file(root, job.file_path):
            files.setdefault(table, []).append(job.file_path)
        else:
            staged.add(table)
    if not files:
        return _dlt_create_chain_followup_jobs(self, table_chain, completed_table_chain_jobs)
    return [FileMergeJob.from_files(table_chain, self.sql_client, files, staged)]


class FileMergeJob(SqlMergeFollowupJob):
    """The merge of one table chain, reading parquet files (and staging tables) directly."""

    @classmethod
    def from_files(
        cls,
        table_chain: Sequence[Any],
        sql_client: SqlClientBase[Any],
        files: dict[str, list[str]],
        staged: set[str],
    ) -> FileMergeJob:
        file_info = ParsedLoadJobFileName(
            table_chain[0]["name"], ParsedLoadJobFileName.new_file_id(), 0, "sql"
        )
        sql = [" ".join(s.splitlines()) for s in merge_sql(table_chain, sql_client, files, staged)]
        job = cls(file_info.file_name())
        job._save_text_file("\n".join(sql))
        return job


def merge_sql(
    table_chain: Sequence[Any],
    sql_client: SqlClientBase[Any],
    files: dict[str, list[str]],
    staged: set[str],
) -> list[str]:
    """The statements of a delete-insert merge whose sources are `files` per table, and the
    staging tables of the tables in `staged`."""
    root, nested = table_chain[0], list(table_chain[1:])
    column = sql_client.escape_column_name
    literal = sql_client.capabilities.escape_literal
    keys = [column(name) for name in get_columns_names_with_prop(root, "primary_key")]
    row_key = column(_row_key(root))  # type: ignore[arg-type]

    def source(table: Any) -> str | None:
        _, staging = sql_client.get_qualified_table_names(table["name"])
        parts = []
        if table["name"] in staged:  # a retried copy job may have copied its file twice
            own_key = column(_row_key(table) or "_dlt_id")
            parts.append(
                f"SELECT * FROM {staging} WHERE rowid IN"
                f" (SELECT min(rowid) FROM {staging} GROUP BY {own_key})"
            )
        if table["name"] in files:
            paths = ", ".join(literal(path) for path in files[table["name"]])
            parts.append(f"SELECT * FROM read_parquet([{paths}], union_by_name = true)")
        return "(" + " UNION ALL BY NAME ".join(parts) + ")" if parts else None

    def temp(op: str) -> str:
        return SqlMergeFollowupJob._new_temp_table_name(root["name"], op, sql_client)

    def same_key(left: str, right: str) -> str:
        return " AND ".join(f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in keys)

    root_source = source(root)
    table, _ = sql_client.get_qualified_table_names(root["name"])
    vouched = root["name"] not in staged and _deduplicated(files.get(root["name"], []))
    sort = get_dedup_sort_tuple(root)
    if sort is None:
        winner = f"min({row_key})"
    else:
        pick = "arg_max" if sort[1] == "desc" else "arg_min"
        winner = f"coalesce({pick}({row_key}, {column(sort[0])}), min({row_key}))"
    sql: list[str] = []
    # deletes: dlt's own, with the files as the merge source
    if nested:
        deleted = temp("delete")
        sql.append(
            f"CREATE TEMPORARY TABLE {deleted} AS SELECT d.{row_key} FROM {table} AS d"
            f" WHERE EXISTS (SELECT 1 FROM {root_source} AS s WHERE {same_key('d', 's')})"
            if root_source
            else f"CREATE TEMPORARY TABLE {deleted} AS SELECT {row_key} FROM {table} LIMIT 0"
        )
        for child in nested:
            child_table, _ = sql_client.get_qualified_table_names(child["name"])
            root_key = column(_root_key(table_chain, child))
            sql.append(f"DELETE FROM {child_table} WHERE {root_key} IN (SELECT * FROM {deleted})")
        sql.append(f"DELETE FROM {table} WHERE {row_key} IN (SELECT * FROM {deleted})")
    elif root_source:
        sql.append(
            f"DELETE FROM {table} AS d WHERE EXISTS"
            f" (SELECT 1 FROM {root_source} AS s WHERE {same_key('d', 's')})"
        )
    if root_source is None:
        return sql
    if vouched:  # no key sent twice: every row as it is
        sql.append(f"INSERT INTO {table} BY NAME SELECT * FROM {root_source}")
        for child in nested:
            child_table, _ = sql_client.get_qualified_table_names(child["name"])
            if (child_source := source(child)) is not None:
                sql.append(f"INSERT INTO {child_table} BY NAME SELECT * FROM {child_source}")
        return sql
    # keys sent more than once, with the row key of the copy that wins
    repeated = temp("repeated")
    key_list = ", ".join(keys)
    sql.append(
        f"CREATE TEMPORARY TABLE {repeated} AS SELECT {key_list}, {winner} AS {row_key}"
        f" FROM {root_source} GROUP BY {key_list} HAVING count(*) > 1"
    )
    # the keys sent once as they are; of each repeated key the winning row, once
    sql.append(
        f"INSERT INTO {table} BY NAME SELECT * FROM {root_source} AS s"
        f" WHERE NOT EXISTS (SELECT 1 FROM {repeated} AS k WHERE {same_key('k', 's')})"
    )
    sql.append(
        f"INSERT INTO {table} BY NAME SELECT * FROM {root_source} AS s"
        f" WHERE EXISTS (SELECT 1 FROM {repeated} AS k WHERE {same_key('k', 's')}"
        f" AND k.{row_key} = s.{row_key}) QUALIFY row_number() OVER (PARTITION BY {key_list}) = 1"
    )
    if not nested:
        return sql
    losers = temp("losers")
    sql.append(
        f"CREATE TEMPORARY TABLE {losers} AS SELECT s.{row_key} FROM {root_source} AS s"
        f" JOIN {repeated} AS k ON {same_key('k', 's')}"
        f" WHERE s.{row_key} IS DISTINCT FROM k.{row_key}"
    )
    for child in nested:
        child_source = source(child)
        if child_source is None:
            continue
        child_table, _ = sql_client.get_qualified_table_names(child["name"])
        root_key = column(_root_key(table_chain, child))
        own_key = column(_row_key(child) or "_dlt_id")
        sql.append(
            f"INSERT INTO {child_table} BY NAME SELECT * FROM {child_source} AS t"
            f" WHERE NOT EXISTS (SELECT 1 FROM {losers} AS x WHERE x.{row_key} = t.{root_key})"
            f" AND NOT EXISTS (SELECT 1 FROM {repeated} AS k WHERE k.{row_key} = t.{root_key})"
        )
        sql.append(  # children of a winning row sent more than once: each row once
            f"INSERT INTO {child_table} BY NAME SELECT * FROM {child_source} AS t"
            f" WHERE EXISTS (SELECT 1 FROM {repeated} AS k WHERE k.{row_key} = t.{root_key})"
            f" QUALIFY row_number() OVER (PARTITION BY {own_key}) = 1"
        )
    return sql


def _deduplicated(paths: list[str]) -> bool:
    """Whether `paths` is one parquet file whose writer vouches for unique primary keys."""
    if len(paths) != 1:
        return False
    # dlt names the completed path while the job that completes the chain is still started
    folder, name = os.path.split(paths[0])
    started = os.path.join(os.path.dirname(folder), "started_jobs", name)
    path = next((p for p in (paths[0], started) if os.path.exists(p)), None)
    if path is None:
        return False
    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT decode(key), decode(value) FROM parquet_kv_metadata(?)", [path]
        ).fetchall()
    return all(dict(rows).get(k) == v for k, v in DEDUPLICATED_METADATA.items())


def _root_key(table_chain: Sequence[Any], table: Any) -> str:
    return SqlMergeFollowupJob.get_root_key_col(table_chain, table, "", "")


def merge_parquet_files_in_place() -> None:
    """Install it (a patch of dlt's DuckDB job client); idempotent."""
    DuckDbClient.create_load_job = _create_load_job  # type: ignore[method-assign]
    DuckDbClient.create_table_chain_completed_followup_jobs = (  # type: ignore[method-assign]
        _create_table_chain_completed_followup_jobs
    )
