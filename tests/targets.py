"""The warehouses the core tests run against: a DuckDB file and a real PostgreSQL database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dlt
import duckdb
import psycopg2

from pipelines.destinations import Warehouse, destination_warehouse


@dataclass
class Target:
    kind: str
    warehouse: Warehouse | str
    """What `run_once` takes: a DuckDB path or a configured warehouse."""
    env: dict[str, str] = field(default_factory=dict)
    """What the `trigg` command needs to load into it."""
    cli_args: tuple[str, ...] = ()
    dsn: str = ""

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A DB-API connection with the dataset as the default schema (read-only for DuckDB)."""
        if self.kind == "duckdb":
            connection = duckdb.connect(str(self.warehouse), read_only=True)
            connection.execute("set schema 'trigg'")
        else:
            connection = psycopg2.connect(self.dsn)
            with connection.cursor() as cursor:
                cursor.execute("set search_path to trigg")
        try:
            yield connection
        finally:
            connection.close()

    def tables(self) -> set[str]:
        rows = self.query(
            "select table_name from information_schema.tables where table_schema = 'trigg'"
        )
        return {row[0] for row in rows}

    def base_tables(self) -> set[str]:
        """Tables, not views."""
        rows = self.query(
            "select table_name from information_schema.tables where table_schema = 'trigg'"
            " and table_type = 'BASE TABLE'"
        )
        return {row[0] for row in rows}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.connect() as connection:
            if self.kind == "duckdb":  # a DuckDB cursor is a new session, without `set schema`
                return connection.execute(sql).fetchall()
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return [tuple(row) for row in cursor.fetchall()]


def duckdb_target(path: str) -> Target:
    return Target("duckdb", path, {"DESTINATION__DUCKDB__CREDENTIALS": path})


def postgres_target(dsn: str) -> Target:
    warehouse = destination_warehouse(dlt.destinations.postgres(credentials=dsn))
    return Target(
        "postgres",
        warehouse,
        {"DESTINATION__POSTGRES__CREDENTIALS": dsn},
        ("--destination", "postgres"),
        dsn,
    )


def as_target(target: Target | str) -> Target:
    return target if isinstance(target, Target) else duckdb_target(os.fspath(target))
