"""Opening a DuckLake from outside dlt: as analysts do (read-only), and for its maintenance.

A DuckLake is its catalog (SQLite or PostgreSQL) plus its files; any DuckDB session attaches it
with `ATTACH 'ducklake:<catalog>' AS lake (READ_ONLY)` and reads snapshot by snapshot, so readers
never wait for a run and a run never waits for them. `attach_sql` writes that statement for the
configured lake; it carries the catalog's password when the catalog has one, so it is never
printed or logged (`analyst_attach_sql` is the one to show people).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient
from dlt.destinations.impl.ducklake.configuration import DuckLakeCredentials

from pipelines import duckdb_extensions
from pipelines.destinations import Warehouse
from pipelines.trigg.errors import redacted
from pipelines.trigg.settings import DATASET_NAME
from pipelines.warehouse.errors import WarehouseError

LAKE_ALIAS = "lake"
"""The name the lake is attached under in trigg's own sessions (`lake.trigg.customers`)."""


def lake_credentials(warehouse: Warehouse) -> DuckLakeCredentials:
    credentials = warehouse.destination.config_params.get("credentials")
    if not isinstance(credentials, DuckLakeCredentials):
        raise WarehouseError(f"{warehouse} is not a DuckLake")
    return credentials


def catalog_path(credentials: DuckLakeCredentials, hide_password: bool = False) -> str:
    """What follows `ducklake:` in an ATTACH: `sqlite:/path` or `postgres:<libpq dsn>`."""
    catalog = credentials.catalog
    if catalog.drivername in ("sqlite", "duckdb"):
        return f"{catalog.drivername}:{catalog.database}"
    parts = {
        "host": catalog.host,
        "port": catalog.port,
        "dbname": catalog.database,
        "user": catalog.username,
        "password": ("***" if hide_password else catalog.password) if catalog.password else None,
    }
    dsn = " ".join(f"{key}={value}" for key, value in parts.items() if value is not None)
    return f"postgres:{dsn}"


def metadata_schema(credentials: DuckLakeCredentials) -> str | None:
    """The PostgreSQL schema holding the lake's metadata (None for a file catalog)."""
    if credentials.catalog.drivername in ("sqlite", "duckdb"):
        return None
    return credentials.metadata_schema or credentials.ducklake_name


def attach_sql(credentials: DuckLakeCredentials, alias: str, read_only: bool) -> str:
    """`ATTACH` for the lake, as any DuckDB session (with the ducklake extension) can run it."""
    options = ["READ_ONLY"] if read_only else []
    if (schema := metadata_schema(credentials)) is not None:
        options.append(f"METADATA_SCHEMA '{schema}'")
    if credentials.catalog.drivername == "sqlite":
        options.append("META_BUSY_TIMEOUT 5000")  # a run's commit holds SQLite's lock briefly
    suffix = f" ({', '.join(options)})" if options else ""
    return f"ATTACH '{_literal(f'ducklake:{catalog_path(credentials)}')}' AS {alias}{suffix}"


def analyst_attach_sql(warehouse: Warehouse) -> str:
    """The read-only `ATTACH` an analyst types, the catalog's password masked."""
    credentials = lake_credentials(warehouse)
    statement = attach_sql(credentials, LAKE_ALIAS, read_only=True)
    if credentials.catalog.password:
        statement = statement.replace(str(credentials.catalog.password), "***")
    return statement


@contextmanager
def open_lake(
    warehouse: Warehouse, read_only: bool = True, dataset: str = DATASET_NAME
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the lake attached as `lake` and, once it exists, the dataset as
    the default schema. Extensions come from the pinned packages (never downloaded)."""
    credentials = lake_credentials(warehouse)
    catalog = credentials.catalog
    if read_only and catalog.drivername == "sqlite" and not os.path.isfile(catalog.database):
        raise WarehouseError(f"there is no DuckLake at {warehouse}: run `trigg run` first")
    connection = duckdb_extensions.connect()
    try:
        _create_storage_secret(connection, credentials)
        try:
            connection.execute(attach_sql(credentials, LAKE_ALIAS, read_only))
        except duckdb.Error as failure:
            raise WarehouseError(
                f"cannot open the DuckLake {warehouse} ({redacted(_first_line(failure))})"
            ) from None
        if _has_schema(connection, dataset):
            connection.execute(f'USE {LAKE_ALIAS}."{dataset}"')
        yield connection
    finally:
        connection.close()


def _create_storage_secret(
    connection: duckdb.DuckDBPyConnection, credentials: DuckLakeCredentials
) -> None:
    """Object storage needs its credentials as a DuckDB secret; a local folder needs nothing."""
    storage = credentials.storage
    if storage is None or storage.is_local_filesystem or storage.credentials is None:
        return
    for statement in DuckDbSqlClient._build_secret_statements(
        storage.bucket_url, storage.credentials, f"{LAKE_ALIAS}_storage", "", False
    ):
        connection.execute(statement)


def _has_schema(connection: duckdb.DuckDBPyConnection, schema: str) -> bool:
    found = connection.execute(
        "select count(*) from duckdb_schemas() where database_name = ? and schema_name = ?",
        [LAKE_ALIAS, schema],
    ).fetchone()
    return bool(found and found[0])


def _literal(text: str) -> str:
    return text.replace("'", "''")


def _first_line(failure: BaseException) -> str:
    text = str(failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__
