"""Fully qualified table names for DuckDB files named like their dataset (`trigg.duckdb`).

DuckDB names a file's catalog after the file, so in `trigg.duckdb` the name `trigg.customers` could
mean catalog `trigg` or schema `trigg`, and DuckDB refuses it as ambiguous. dlt 1.31 writes
`"trigg"."customers"`; with this, it writes `"trigg"."trigg"."customers"` for such files only.
"""

from __future__ import annotations

import os

from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

_dlt_catalog_name = DuckDbSqlClient.catalog_name


def file_catalog(database: object) -> str | None:
    """The catalog name DuckDB gives a database file: its name without the extension."""
    if not isinstance(database, str) or database.startswith(":") or "://" in database:
        return None
    return os.path.splitext(os.path.basename(database))[0]


def _catalog_name(self: DuckDbSqlClient, quote: bool = True, casefold: bool = True) -> str | None:
    catalog = file_catalog(getattr(self.credentials, "database", None))
    if catalog is None or catalog != self.dataset_name:
        return _dlt_catalog_name(self, quote=quote, casefold=casefold)
    if casefold:
        catalog = self.capabilities.casefold_identifier(catalog)
    return self.capabilities.escape_identifier(catalog) if quote else catalog


def _warn_only_if_unqualified(self: DuckDbSqlClient) -> None:
    if self.catalog_name() is None:  # qualified names leave nothing for the binder to confuse
        _dlt_warning(self)


_dlt_warning = DuckDbSqlClient.warn_if_catalog_equals_dataset_name


def qualify_colliding_catalogs() -> None:
    """Install the qualification (a patch of dlt's DuckDB SQL client); idempotent."""
    DuckDbSqlClient.catalog_name = _catalog_name  # type: ignore[method-assign]
    DuckDbSqlClient.warn_if_catalog_equals_dataset_name = _warn_only_if_unqualified  # type: ignore[method-assign]
