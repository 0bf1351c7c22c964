"""DuckDB's extensions come from PyPI packages pinned to DuckDB's own version: nothing here may
download them at run time. An upgrade of DuckDB fails here until matching packages exist."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import duckdb
import pytest

EXTENSION_PACKAGES = {
    "ducklake": "duckdb-extension-ducklake",
    "sqlite_scanner": "duckdb-extension-sqlite-scanner",
    "postgres_scanner": "duckdb-extension-postgres-scanner",
}


@pytest.mark.parametrize("extension", sorted(EXTENSION_PACKAGES))
def test_each_extension_package_matches_the_installed_duckdb(extension: str) -> None:
    package = EXTENSION_PACKAGES[extension]
    assert importlib.metadata.version(package) == duckdb.__version__, (
        f"{package} {importlib.metadata.version(package)} does not match duckdb"
        f" {duckdb.__version__}: pin both to a version that has the extension on PyPI"
    )
    module = package.replace("-", "_")
    folder = Path(importlib.import_module(module).__file__).parent
    built = folder / "extensions" / f"v{duckdb.__version__}" / f"{extension}.duckdb_extension"
    assert built.is_file(), f"{built} is missing"
