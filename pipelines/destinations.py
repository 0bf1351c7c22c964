"""Where the data goes: any dlt destination, DuckDB being the embedded default.

A warehouse is identified by its destination type and data location (a file path, a host and
database: never a secret). That identity keys dlt's local working folder and the run lock, so two
warehouses on one machine never share a cursor. The DuckDB-specific parts (the default file, the
catalog qualification, waiting for a file another process holds) are marked as such below.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import dlt
import duckdb
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.destination import Destination
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from pipelines import dlt_patches
from pipelines.trigg.errors import ConfigError
from pipelines.trigg.settings import DEFAULT_DUCKDB_FILE

DEFAULT_DESTINATION = "duckdb"


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
    def loads_parquet_files(self) -> bool:
        """Whether it loads parquet files itself, so the fast path hands over files, not Arrow."""
        return self.kind in ("duckdb", "motherduck")

    def __str__(self) -> str:
        return self.location if self.is_duckdb_file else f"{self.kind}:{self.location}"


DUCKDB_SETTINGS = {"memory_limit": "192MB", "threads": 2, "preserve_insertion_order": False}
"""The warehouse connection's DuckDB settings: a bounded buffer pool (DuckDB's default is 80% of
the machine), spilling to `<file>.tmp` beyond it, so a big merge costs disk, not memory. What a
transaction deletes stays in memory until it commits (about 8 bytes per row of each vector of
2,048 rows it touches): merge deletes a changed customer's old child rows in one transaction, and
1,000 customers changed at random in a warehouse of 1,000,000 touch most vectors of every child
table, which ran out of 128 MB (about 200 MB in all; 192 MB holds it)."""


def duckdb_file(path: str) -> Warehouse:
    """A DuckDB file (DuckDB-specific): the default warehouse, loaded in bounded memory."""
    location = os.path.abspath(path)
    dlt_patches.install()
    credentials = DuckDbCredentials(location, global_config=DUCKDB_SETTINGS)
    return Warehouse(dlt.destinations.duckdb(credentials), "duckdb", location)


def resolve_warehouse(destination: str | None = None) -> Warehouse:
    """The warehouse `trigg run` loads into, configured the dlt way.

    DuckDB reads `DESTINATION__DUCKDB__CREDENTIALS` (a file path, default `trigg.duckdb` in the
    working directory); any other dlt destination reads its usual `DESTINATION__<NAME>__*`.
    """
    kind = destination or DEFAULT_DESTINATION
    if kind == "duckdb":
        configured = dlt.config.get("destination.duckdb.credentials")
        return duckdb_file(str(configured) if configured else DEFAULT_DUCKDB_FILE)
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
