"""DuckDB's extensions come from PyPI packages pinned to DuckDB's own version: nothing here may
download them at run time. An upgrade of DuckDB fails here until matching packages exist."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import duckdb
import pytest

from pipelines import duckdb_extensions
from pipelines.trigg.errors import ConfigError

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


def test_the_extension_directory_links_each_packaged_file_where_duckdb_autoloads_it(
    tmp_path: Path,
) -> None:
    folder = Path(duckdb_extensions.extension_directory())
    for extension in EXTENSION_PACKAGES:
        link = folder / f"v{duckdb.__version__}" / duckdb_extensions.platform()
        link = link / f"{extension}.duckdb_extension"
        assert link.resolve() == duckdb_extensions.packaged_extension(extension).resolve()
    with duckdb_extensions.connect() as connection:
        connection.execute(
            f"attach 'ducklake:sqlite:{tmp_path / 'c.sqlite'}' as lake (data_path '{tmp_path}/f')"
        )
        loaded = connection.execute(
            "select extension_name, install_path from duckdb_extensions() where loaded"
            " and extension_name in ('ducklake', 'sqlite_scanner')"
        ).fetchall()
    assert sorted(name for name, _ in loaded) == ["ducklake", "sqlite_scanner"]
    assert all(path.startswith(str(folder)) for _, path in loaded)


def test_a_duckdb_without_matching_extension_packages_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(duckdb, "__version__", "9.9.9")
    with pytest.raises(ConfigError, match="pin both to the same version"):
        duckdb_extensions.extension_directory()
