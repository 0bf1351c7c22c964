"""The warehouses the core tests run against: a DuckDB file, a real PostgreSQL database and a
DuckLake (SQLite catalog, files in a folder), read as a third party would: attached read-only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dlt
import duckdb
import psycopg2

from pipelines import duckdb_extensions
from pipelines.destinations import Warehouse, destination_warehouse, ducklake


@dataclass
class Target:
    kind: str
    warehouse: Warehouse | str
    """What `run_once` takes: a DuckDB path or a configured warehouse."""
    env: dict[str, str] = field(default_factory=dict)
    """What the `trigg` command needs to load into it."""
    cli_args: tuple[str, ...] = ()
    dsn: str = ""
    """PostgreSQL: the database; DuckLake: what follows `ducklake:` in an `ATTACH`."""
    attach_options: str = ""

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A DB-API connection with the dataset as the default schema (read-only for DuckDB)."""
        if self.kind == "duckdb":
            connection = duckdb.connect(str(self.warehouse), read_only=True)
            connection.execute("set schema 'trigg'")
        elif self.kind == "ducklake":
            connection = duckdb_extensions.connect()
            connection.execute(
                f"attach 'ducklake:{self.dsn}' as lake (read_only{self.attach_options})"
            )
            connection.execute("use lake.trigg")
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
            if self.kind != "postgres":  # a DuckDB cursor is a new session, without `set schema`
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


def ducklake_target(catalog: str, storage: str) -> Target:
    """A DuckLake with its catalog in the SQLite file `catalog` and its files in `storage`."""
    env = {
        "DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG": f"sqlite:///{catalog}",
        "DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE__BUCKET_URL": storage,
    }
    with environment(env):
        warehouse = ducklake()
    return Target("ducklake", warehouse, env, ("--destination", "ducklake"), f"sqlite:{catalog}")


def postgres_ducklake_target(catalog_dsn: str, storage: str, metadata_schema: str) -> Target:
    """A DuckLake with its catalog in a PostgreSQL database (schema `metadata_schema`)."""
    env = {
        "DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG": catalog_dsn,
        "DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE__BUCKET_URL": storage,
        "DESTINATION__DUCKLAKE__CREDENTIALS__METADATA_SCHEMA": metadata_schema,
    }
    with environment(env):
        warehouse = ducklake()
    libpq = psycopg2.extensions.make_dsn(catalog_dsn)
    return Target(
        "ducklake",
        warehouse,
        env,
        ("--destination", "ducklake"),
        f"postgres:{libpq}",
        f", metadata_schema '{metadata_schema}'",
    )


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """dlt resolves a destination from the environment: these values, for a moment."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def as_target(target: Target | str) -> Target:
    return target if isinstance(target, Target) else duckdb_target(os.fspath(target))
