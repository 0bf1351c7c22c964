"""Shared fixtures: a real simulator on 127.0.0.1, real DuckDB files, the real `trigg` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.simulator import DEMO_API_KEY, TriggSimulator
from pipelines.trigg.settings import TriggSettings
from tests.postgres import PostgresServer
from tests.targets import Target, duckdb_target, ducklake_target, postgres_target

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
_INSTALLED = Path(sys.executable).parent / "trigg"
TRIGG = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "pipelines.cli"]
"""The real `trigg` command as installed by the project (its console script)."""
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own dlt data dir and no config leaking in from the environment."""
    data_dir = tmp_path / "dlt-data"
    monkeypatch.setenv("DLT_DATA_DIR", str(data_dir))
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DESTINATION__")):
            monkeypatch.delenv(name)
    return data_dir


@pytest.fixture
def simulator() -> Iterator[TriggSimulator]:
    with TriggSimulator(customers=60, seed=7) as running:
        yield running


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse.duckdb")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL 15 for the session; each test gets its own database."""
    server = PostgresServer().start()
    yield server
    server.stop()


ON_EVERY_WAREHOUSE = pytest.mark.parametrize(
    "target", ["duckdb", "postgres", "ducklake"], indirect=True
)
"""A test that also runs on a DuckLake (merge semantics, quarantine, views): a lake's run costs
several times a DuckDB file's, so the rest of the core tests leave it to `test_lake.py` and
`test_team.py`."""


@pytest.fixture(params=["duckdb", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """The core correctness and crash tests run against DuckDB and a real PostgreSQL (and, marked
    `ON_EVERY_WAREHOUSE`, a DuckLake)."""
    if request.param == "duckdb":
        return duckdb_target(str(tmp_path / "warehouse.duckdb"))
    if request.param == "ducklake":
        return lake(tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return postgres_target(server.create_database(f"trigg_{tmp_path.name}"[:60].lower()))


def lake(folder: Path) -> Target:
    """A DuckLake in `folder`: the catalog in SQLite, the files beside it."""
    return ducklake_target(str(folder / "catalog.sqlite"), str(folder / "lake-files"))


@pytest.fixture
def settings(simulator: TriggSimulator) -> TriggSettings:
    return TriggSettings(base_url=simulator.base_url, api_key=DEMO_API_KEY)


def trigg_env(
    simulator: TriggSimulator | None, warehouse: str | Target | None, **extra: str
) -> dict[str, str]:
    """The environment a scheduler would give `trigg run`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SOURCES__", "DESTINATION__"))
    }
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    if simulator is not None:
        env["SOURCES__TRIGG__BASE_URL"] = simulator.base_url
        env["SOURCES__TRIGG__API_KEY"] = simulator.api_key
    if isinstance(warehouse, Target):
        env.update(warehouse.env)
    elif warehouse is not None:
        env["DESTINATION__DUCKDB__CREDENTIALS"] = warehouse
    env.update(extra)
    return env


def run_trigg(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `trigg` command in a separate process, as cron would."""
    return subprocess.run(
        [*TRIGG, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
