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

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import duckdb

from pipelines.destinations import Warehouse, ducklake
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


class MaintenanceFailed(RuntimeError):
    """The maintenance's process failed; its one line says how."""


def maintain_apart(warehouse: Warehouse, retention_hours: float) -> Maintenance:
    """`maintain` in a process of its own. DuckLake 1.5.5's `CHECKPOINT` crashed the process
    running it now and then in the test suite (a segmentation fault, a corrupted heap), after
    the load had committed: apart, a crash costs the maintenance only (the next run retries it),
    never the run that loaded. The child resolves the lake from the environment the parent gives
    it, this lake's resolved credentials included."""
    credentials = lake_credentials(warehouse)
    prefix = "DESTINATION__DUCKLAKE__CREDENTIALS__"
    env = {**os.environ, f"{prefix}CATALOG": credentials.catalog.to_native_representation()}
    if credentials.storage is not None and credentials.storage.bucket_url:
        env[f"{prefix}STORAGE__BUCKET_URL"] = str(credentials.storage.bucket_url)
    if credentials.metadata_schema:
        env[f"{prefix}METADATA_SCHEMA"] = credentials.metadata_schema
    if credentials.ducklake_name:
        env[f"{prefix}DUCKLAKE_NAME"] = credentials.ducklake_name
    done = subprocess.run(
        [sys.executable, "-m", __name__, str(retention_hours)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise MaintenanceFailed(lines[-1] if lines else f"its process exited {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])  # its last line: others may log
    return Maintenance(
        LakeFootprint(**result["before"]), LakeFootprint(**result["after"]), result["seconds"]
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


if __name__ == "__main__":  # maintain_apart's child: the lake from the environment
    print(json.dumps(asdict(maintain(ducklake(), float(sys.argv[1])))))
