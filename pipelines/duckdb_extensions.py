"""DuckDB's extensions from their PyPI packages, never from the internet.

DuckDB installs an extension it needs (ducklake, sqlite, postgres) by downloading it, unless it
already sits in its extension directory. The packages `duckdb-extension-<name>`, pinned in
`uv.lock` to DuckDB's own version, ship each file; here they are linked into a directory laid out
the way DuckDB looks for them (`<dir>/v<version>/<platform>/<name>.duckdb_extension`, under dlt's
data dir), and every connection trigg and dlt open is pointed at it with downloads switched off
(`offline_settings`). A DuckDB without matching packages fails here, loudly, before any query.

DuckDB also checks each extension's signature every time it loads one into a new database (0.3 s
for ducklake, as much for its catalog's scanner). The files' integrity is already pinned: uv
checks each package against its hash in `uv.lock` at install, and DuckDB loads extensions from
this directory only. Connections that load extensions therefore open with
`STARTUP_SETTINGS` (`allow_unsigned_extensions`), which DuckDB takes only when a database opens.
"""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path
from typing import Any

import duckdb
from dlt.common.runtime import run_context

from pipelines.trigg.errors import ConfigError

EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}
"""The extensions a warehouse may need (DuckLake and its SQLite or PostgreSQL catalog), by the
module of the package that ships each."""


def packaged_extension(name: str) -> Path:
    """The extension file the package ships for the installed DuckDB."""
    module = importlib.import_module(EXTENSION_PACKAGES[name])
    built = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    path = built / f"{name}.duckdb_extension"
    if not path.is_file():
        raise ConfigError(
            f"DuckDB {duckdb.__version__} has no {name} extension in"
            f" {module.__name__.replace('_', '-')}: pin both to the same version"
        )
    return path


@functools.cache
def platform() -> str:
    """DuckDB's name for this platform (`linux_amd64`, ...), a part of its extension paths."""
    with duckdb.connect() as connection:
        row = connection.execute("pragma platform").fetchone()
    assert row is not None
    return str(row[0])


def extension_directory() -> str:
    """The directory DuckDB loads extensions from, with every packaged one linked in (idempotent;
    a link left by another installation is replaced)."""
    root = Path(run_context.active().get_data_entity("duckdb_extensions"))
    folder = root / f"v{duckdb.__version__}" / platform()
    folder.mkdir(parents=True, exist_ok=True)
    for name in EXTENSION_PACKAGES:
        source = packaged_extension(name)
        link = folder / f"{name}.duckdb_extension"
        if link.is_symlink() and os.readlink(link) == str(source):
            continue
        fresh = folder / f".{name}.{os.getpid()}.link"
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(source)
        os.replace(fresh, link)  # atomic: a process loading it sees the old link or the new one
    return str(root)


STARTUP_SETTINGS: dict[str, Any] = {"allow_unsigned_extensions": True}
"""Settings for connections that load extensions, taken only when a database opens."""


def offline_settings() -> dict[str, Any]:
    """DuckDB settings for every connection (settable at any time): extensions come from
    `extension_directory()` only, loaded when a statement needs one, never downloaded."""
    return {
        "extension_directory": extension_directory(),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
    }


def connect(database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that loads extensions from the packages and never downloads one."""
    config = {**offline_settings(), **STARTUP_SETTINGS}
    return duckdb.connect(database, read_only=read_only, config=config)
