"""Keeping a DuckLake compact: DuckLake's own maintenance, bundled in its `CHECKPOINT`.

DuckLake never deletes a data file by itself, and every commit adds a snapshot and small files
(or rows inlined in the catalog): a year of five-minute runs would leave about 100,000 snapshots
and many more files, and every read would open them all. `CHECKPOINT` writes inlined rows to
files, expires snapshots older than the retention, merges adjacent small files, rewrites files
heavy with deletes, and deletes the files no snapshot needs any more.

It runs after every successful `trigg run` into a DuckLake (and on demand, `trigg maintain`),
under the run's lock, so it never races a load. It never blocks analysts: they read snapshots, and
a file a snapshot stops needing is deleted only `FILE_GRACE` after it was scheduled for deletion,
so a query that started before the maintenance still finds its files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import duckdb

from pipelines.destinations import Warehouse
from pipelines.warehouse.lake import LAKE_ALIAS, lake_credentials, metadata_schema, open_lake

FILE_GRACE = "1 hour"
"""How long a data file no snapshot needs is kept for queries still reading it."""
METADATA = f"__ducklake_metadata_{LAKE_ALIAS}"
"""Where DuckLake attaches the lake's catalog database (its tables in schema `main` of a SQLite
file, in the metadata schema of a PostgreSQL database)."""


@dataclass(frozen=True)
class LakeFootprint:
    """What the lake is made of: its snapshots and the files its newest snapshot reads."""

    snapshots: int
    data_files: int
    delete_files: int
    bytes: int
    inlined_tables: int = 0

    def render(self) -> str:
        return (
            f"{self.snapshots:,} snapshots, {self.data_files:,} data files and"
            f" {self.delete_files:,} delete files ({self.bytes / 1e6:.1f} MB)"
        )


@dataclass(frozen=True)
class Maintenance:
    before: LakeFootprint
    after: LakeFootprint
    seconds: float

    def render(self) -> str:
        return (
            f"lake maintenance: {self.before.render()} -> {self.after.render()}"
            f" in {self.seconds:.1f} s"
        )


def maintain(warehouse: Warehouse, retention_hours: float) -> Maintenance:
    """Checkpoint the lake, expiring snapshots older than `retention_hours`."""
    started = time.monotonic()
    schema = metadata_schema(lake_credentials(warehouse)) or "main"
    with open_lake(warehouse, read_only=False) as connection:
        before = footprint(connection, schema)
        _set_option(connection, "expire_older_than", f"{int(retention_hours * 3600)} seconds")
        _set_option(connection, "delete_older_than", FILE_GRACE)
        _set_option(connection, "data_inlining_row_limit", "0")  # see destinations.LAKE_SETTINGS
        connection.execute(f"USE {LAKE_ALIAS}")
        connection.execute("CHECKPOINT")
        after = footprint(connection, schema)
    return Maintenance(before, after, time.monotonic() - started)


def footprint(connection: duckdb.DuckDBPyConnection, schema: str = "main") -> LakeFootprint:
    """The lake's snapshots, and the files and bytes of its newest snapshot."""
    meta = f'{METADATA}."{schema}"'
    row = connection.execute(
        f"""select
              (select count(*) from {meta}.ducklake_snapshot),
              (select count(*) from {meta}.ducklake_data_file where end_snapshot is null),
              (select count(*) from {meta}.ducklake_delete_file where end_snapshot is null),
              (select coalesce(sum(file_size_bytes), 0) from {meta}.ducklake_data_file
                where end_snapshot is null)
              + (select coalesce(sum(file_size_bytes), 0) from {meta}.ducklake_delete_file
                where end_snapshot is null)"""
    ).fetchone()
    assert row is not None
    return LakeFootprint(*(int(value) for value in row))


def _set_option(connection: duckdb.DuckDBPyConnection, name: str, value: str) -> None:
    """Set a lake-wide DuckLake option, unless it already has that value (a set is a commit)."""
    current = connection.execute(
        f"select value from {LAKE_ALIAS}.options() where option_name = ? and scope = 'GLOBAL'",
        [name],
    ).fetchone()
    if current is None or current[0] != value:
        connection.execute(f"CALL {LAKE_ALIAS}.set_option('{name}', '{value}')")
