"""DuckLake connections opened with the settings DuckDB takes only at start-up.

dlt 1.31 opens a new DuckDB database for every DuckLake connection (each load job, each step:
about 35 per run) and passes only `custom_user_agent` to `duckdb.connect`; every other setting of
`global_config` it applies with `SET GLOBAL`, which DuckDB refuses for start-up settings such as
`allow_unsigned_extensions`. That one matters: DuckDB checks the signature of each extension it
loads into each new database, 0.3 s for the ducklake extension and as much for its catalog's, so
a run spent about 20 s checking the same files. The files come from PyPI packages whose hashes
`uv.lock` pins and uv checks at install, and DuckDB loads them from trigg's extension directory
only (`pipelines.duckdb_extensions`), so the check is skipped. With this, DuckLake's pool passes
the start-up settings found in `global_config` to `duckdb.connect` and applies the rest as dlt
does.
"""

from __future__ import annotations

from typing import Any

import duckdb
from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool
from dlt.destinations.impl.ducklake.configuration import DuckLakeCredentials

STARTUP_SETTINGS = (
    "allow_unsigned_extensions",
    "custom_user_agent",
    "extension_directory",
    "autoinstall_known_extensions",
    "autoload_known_extensions",
    "custom_extension_repository",
)
"""Settings given to `duckdb.connect`: the ones DuckDB accepts only when a database opens, and the
ones that say where extensions come from, which must hold before dlt loads any (it loads
`extensions` before it applies `global_config`, and DuckDB's default would download them)."""

_dlt_on_resolved = DuckLakeCredentials.on_resolved


class StartupSettingsPool(DuckDbConnectionPool):
    """dlt's DuckLake pool (a new database per borrow), opening each database with the start-up
    settings of `global_config`."""

    def borrow_conn(
        self,
        global_config: dict[str, Any] | None = None,
        local_config: dict[str, Any] | None = None,
        pragmas: list[str] | None = None,
    ) -> duckdb.DuckDBPyConnection:
        if not self.always_open_connection:
            return super().borrow_conn(global_config, local_config, pragmas)
        with self._conn_lock:
            settings = {**(self.credentials.global_config or {}), **(global_config or {})}
            startup = {key: settings.pop(key) for key in STARTUP_SETTINGS if key in settings}
            connection = duckdb.connect(
                self.credentials._conn_str(), read_only=self.credentials.read_only, config=startup
            )
            try:
                for extension in self.credentials.extensions or ():
                    connection.sql(f"LOAD {extension}")
                self._apply_config(connection, "GLOBAL", settings)
                self._execute_statements(connection)
                self._apply_local_config(connection, local_config, pragmas)
            except Exception:
                connection.close()
                raise
            self._conn_borrows += 1
            return connection


def _on_resolved(self: DuckLakeCredentials) -> None:
    _dlt_on_resolved(self)
    self.conn_pool = StartupSettingsPool(self, always_open_connection=True)


def open_lakes_with_startup_settings() -> None:
    """Install the pool (a patch of dlt's DuckLake credentials); idempotent."""
    DuckLakeCredentials.on_resolved = _on_resolved  # type: ignore[method-assign]
