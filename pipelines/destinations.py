"""Where the data goes: any dlt destination, DuckDB being the embedded default and DuckLake the
one for teams.

A warehouse is identified by its destination type and data location (a file path, a host and
database, a lake's catalog: never a secret). That identity keys dlt's local working folder and the
run lock, so two warehouses on one machine never share a cursor. The DuckDB-specific parts (the
default file, the catalog qualification, waiting for a file another process holds) and the
DuckLake-specific ones (its catalog and storage, resolved here so that its identity never depends
on the pipeline that opens it) are marked as such below. Every DuckDB connection takes its
extensions from the pinned packages (`duckdb_extensions`), never from the internet.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import dlt
import duckdb
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs.connection_string_credentials import ConnectionStringCredentials
from dlt.common.destination import Destination
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.impl.ducklake.configuration import DuckLakeCredentials

from pipelines import dlt_patches
from pipelines.duckdb_extensions import STARTUP_SETTINGS, offline_settings
from pipelines.trigg.errors import ConfigError, keep_secret
from pipelines.trigg.settings import DEFAULT_DUCKDB_FILE, DEFAULT_LAKE_NAME

DEFAULT_DESTINATION = "duckdb"
DUCKLAKE = "ducklake"


@dataclass(frozen=True)
class Warehouse:
    destination: Destination
    kind: str
    """dlt's destination type: `duckdb`, `postgres`, `motherduck`, `bigquery`, ..."""
    location: str
    """Where it keeps the data, without credentials: a file path, `host:port/database`."""

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.kind}:{self.location}".encode()).hexdigest()[:16]

    @property
    def is_duckdb_file(self) -> bool:
        return self.kind == "duckdb"

    @property
    def is_ducklake(self) -> bool:
        return self.kind == DUCKLAKE

    @property
    def loads_parquet_files(self) -> bool:
        """Whether it loads parquet files itself, so the fast path hands over files, not Arrow."""
        return self.kind in ("duckdb", "motherduck", DUCKLAKE)

    def __str__(self) -> str:
        return self.location if self.is_duckdb_file else f"{self.kind}:{self.location}"


DUCKDB_SETTINGS = {"memory_limit": "192MB", "threads": 2, "preserve_insertion_order": False}
"""The warehouse connection's DuckDB settings: a bounded buffer pool (DuckDB's default is 80% of
the machine), spilling to `<file>.tmp` beyond it, so a big merge costs disk, not memory. What a
transaction deletes stays in memory until it commits (about 8 bytes per row of each vector of
2,048 rows it touches): merge deletes a changed customer's old child rows in one transaction, and
1,000 customers changed at random in a warehouse of 1,000,000 touch most vectors of every child
table, which ran out of 128 MB (about 200 MB in all; 192 MB holds it)."""


LAKE_SETTINGS = {"ducklake_default_data_inlining_row_limit": 0}
"""DuckLake-specific: every load writes parquet files, no rows "inlined" in the catalog. With
inlining (DuckLake's default, up to 10 rows), a reader attached while the lake's maintenance merged
files saw a load's deleted rows again for a moment (measured: 1 query in 1,000, DuckLake 1.5.5;
inlined and parquet tombstones of one file are a known source of such bugs, duckdb/ducklake#1084).
Without it, none in several thousand; the maintenance keeps the files few."""


def duckdb_file(path: str) -> Warehouse:
    """A DuckDB file (DuckDB-specific): the default warehouse, loaded in bounded memory."""
    location = os.path.abspath(path)
    dlt_patches.install()
    credentials = DuckDbCredentials(location, global_config=connection_settings())
    return Warehouse(dlt.destinations.duckdb(credentials), "duckdb", location)


def connection_settings() -> dict[str, object]:
    """The DuckDB settings of every warehouse connection dlt opens: bounded, and offline."""
    return {**DUCKDB_SETTINGS, **offline_settings()}


def ducklake(credentials: DuckLakeCredentials | None = None) -> Warehouse:
    """A DuckLake (DuckLake-specific): tables as parquet files in `storage`, their metadata in a
    SQLite or PostgreSQL `catalog`, so analysts read while runs write.

    Resolved from `DESTINATION__DUCKLAKE__CREDENTIALS__*` unless given. Defaults: the catalog
    `trigg_customers.sqlite` in the working directory, the files in a folder beside a file catalog
    (`<catalog>.files`); a PostgreSQL catalog needs its storage named (every machine must see it).
    Relative paths are made absolute here, so the lake's identity does not move with the working
    directory of whoever opens it.
    """
    if credentials is None:
        credentials = resolve_configuration(
            DuckLakeCredentials(),
            sections=("destination", DUCKLAKE, "credentials"),
            accept_partial=True,
        )
    if credentials.ducklake_name in (None, "", "ducklake"):
        credentials.ducklake_name = DEFAULT_LAKE_NAME
    if credentials.catalog is None or not credentials.catalog.drivername:
        credentials.catalog = ConnectionStringCredentials(f"sqlite:///{DEFAULT_LAKE_NAME}.sqlite")
    catalog = credentials.catalog
    file_catalog = catalog.drivername in ("sqlite", "duckdb")
    keep_secret(catalog.password)  # DuckDB quotes the catalog's URL when it cannot connect
    if file_catalog:
        catalog.database = os.path.abspath(catalog.database)
    elif catalog.drivername not in ("postgres", "postgresql"):
        raise ConfigError(
            f"DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG: {catalog.drivername!r} catalogs are not"
            " supported; use sqlite:///path/catalog.sqlite or a postgresql:// URL"
        )
    if credentials.storage is None or not credentials.storage.bucket_url:
        if not file_catalog:
            raise ConfigError(
                "a DuckLake with a PostgreSQL catalog needs its files' location: set"
                " DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE__BUCKET_URL (a folder every machine"
                " sees, or object storage)"
            )
        folder = os.path.splitext(catalog.database)[0] + ".files"
        credentials.storage = FilesystemConfiguration(bucket_url=folder)
    storage = credentials.storage
    if storage.is_local_filesystem:
        url = storage.bucket_url
        path = url if storage.is_local_path(url) else storage.make_local_path(url)
        storage.bucket_url = storage.make_file_url(os.path.abspath(path))
    dlt_patches.install()  # the start-up settings reach DuckDB through `ducklake_connections`
    credentials.extensions = ["ducklake"]  # loaded first (from the packages): it owns a setting
    credentials.global_config = {
        **(credentials.global_config or {}),
        **connection_settings(),
        **STARTUP_SETTINGS,
        **LAKE_SETTINGS,
    }
    credentials.resolve()
    return Warehouse(
        dlt.destinations.ducklake(credentials=credentials),
        DUCKLAKE,
        credentials.catalog_location(),
    )


def resolve_warehouse(destination: str | None = None) -> Warehouse:
    """The warehouse `trigg run` loads into, configured the dlt way.

    DuckDB reads `DESTINATION__DUCKDB__CREDENTIALS` (a file path, default `trigg_customers.duckdb`
    in the working directory); DuckLake its `DESTINATION__DUCKLAKE__CREDENTIALS__*` (see
    `ducklake`); any other dlt destination its usual `DESTINATION__<NAME>__*`.
    """
    kind = destination or DEFAULT_DESTINATION
    if kind == "duckdb":
        configured = dlt.config.get("destination.duckdb.credentials")
        return duckdb_file(str(configured) if configured else DEFAULT_DUCKDB_FILE)
    if kind == DUCKLAKE:
        return ducklake()
    try:
        return destination_warehouse(Destination.from_reference(kind))
    except ConfigurationException:
        raise ConfigError(
            f"the {kind} destination is not configured: set"
            f" DESTINATION__{kind.upper()}__CREDENTIALS (see the README's 'Other warehouses')"
        ) from None
    except (UnknownDestinationModule, ImportError):
        raise ConfigError(
            f"{kind!r} is not a dlt destination: use duckdb, postgres, motherduck, bigquery,"
            " snowflake or another name from dlt's destination list"
        ) from None


def destination_warehouse(factory: Destination) -> Warehouse:
    """A warehouse for any configured dlt destination factory."""
    location = factory.configuration(factory.spec(), accept_partial=True).data_location()
    return Warehouse(factory, factory.destination_type.rsplit(".", 1)[-1], location)


def lock_holder(failure: BaseException) -> str | None:
    """DuckDB-specific: the process named by a DuckDB file-lock conflict, or None."""
    text = str(failure)
    if not isinstance(failure, duckdb.IOException) or "lock" not in text.lower():
        return None
    pid = text.rsplit("PID", 1)[-1].strip(" )\n") if "PID" in text else ""
    return f"PID {pid}" if pid.isdigit() else "a lock conflict"
