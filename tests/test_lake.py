"""DuckLake as a first-class warehouse: the `trigg` command end to end on a lake, its status,
descriptions and quality checks, its maintenance, and DuckDB never reaching for the internet."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

from pipelines.destinations import ducklake
from pipelines.simulator import TriggSimulator
from pipelines.trigg.schema import VIEWS
from tests.conftest import lake, run_trigg, trigg_env
from tests.postgres import free_port
from tests.targets import Target, environment
from tests.test_pipeline import assert_warehouse_equals_source


class RecordingRepository(BaseHTTPRequestHandler):
    """An extension repository on 127.0.0.1 that records every request and serves nothing."""

    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        RecordingRepository.requests.append(self.path)
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


def test_a_run_on_a_lake_never_asks_the_network_for_an_extension(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    repository = HTTPServer(("127.0.0.1", 0), RecordingRepository)
    threading.Thread(target=repository.serve_forever, daemon=True).start()
    home = tmp_path / "empty-home"  # no ~/.duckdb/extensions to fall back on
    home.mkdir()
    target = lake(tmp_path)
    settings = {"custom_extension_repository": f"http://127.0.0.1:{repository.server_port}"}
    env = trigg_env(
        simulator,
        target,
        HOME=str(home),
        DESTINATION__DUCKLAKE__CREDENTIALS__GLOBAL_CONFIG=json.dumps(settings),
    )
    try:
        result = run_trigg("run", "--destination", "ducklake", env=env, cwd=tmp_path)
        status = run_trigg("status", "--destination", "ducklake", env=env, cwd=tmp_path)
    finally:
        repository.shutdown()
    assert result.returncode == 0, result.stderr
    assert status.returncode == 0, status.stderr
    assert RecordingRepository.requests == []
    assert not (home / ".duckdb").exists()
    assert_warehouse_equals_source(target, simulator)


def test_status_quality_checks_descriptions_and_maintenance_on_a_lake(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    target = lake(tmp_path)
    env = trigg_env(simulator, target)
    for run in range(3):
        if run:
            simulator.change(10)
        result = run_trigg("run", "--destination", "ducklake", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "customer ids held more than once" in result.stdout  # the quality checks ran
        assert "maintenance   " in result.stdout

    status = run_trigg("status", "--destination", "ducklake", "--json", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["warehouse"] == f"ducklake:sqlite://{tmp_path / 'catalog.sqlite'}"
    assert report["last_successful_run"]["outcome"] == "succeeded"
    assert report["rows_per_table"]["run_history"] == 3
    assert report["rows_per_table"]["customers"] == len(simulator.store.customers)
    assert report["cursor"] is not None

    ours = "database_name = 'lake' and schema_name = 'trigg'"
    described = dict(target.query(f"select table_name, comment from duckdb_tables() where {ours}"))
    assert described["customers"] and described["customer_versions"]
    columns = target.query(
        f"select comment from duckdb_columns() where {ours} and table_name = 'customers'"
        " and column_name = 'loyalty__points'"
    )
    assert columns[0][0]
    views = dict(target.query(f"select view_name, comment from duckdb_views() where {ours}"))
    assert all(views[view.name] for view in VIEWS)  # views keep their own description

    live_files = "select count(*) from __ducklake_metadata_lake.ducklake_data_file"
    live_files += " where end_snapshot is null"
    files_before = target.query(live_files)[0][0]
    snapshots_before = target.query("select count(*) from lake.snapshots()")[0][0]
    env["SOURCES__TRIGG__LAKE_RETENTION_HOURS"] = "0"
    maintained = run_trigg("maintain", env=env, cwd=tmp_path)
    assert maintained.returncode == 0, maintained.stderr
    assert maintained.stdout.startswith("lake maintenance: ")
    snapshots_after = target.query("select count(*) from lake.snapshots()")[0][0]
    assert snapshots_after < snapshots_before / 10  # only the newest few are kept
    assert target.query(live_files)[0][0] <= files_before
    simulator.change(10)
    assert run_trigg("run", "--destination", "ducklake", env=env, cwd=tmp_path).returncode == 0
    assert_warehouse_equals_source(target, simulator)


def test_maintain_refuses_a_duckdb_file_in_one_sentence(tmp_path: Path) -> None:
    result = run_trigg(
        "maintain", "--destination", "duckdb", env=trigg_env(None, None), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "not a DuckLake" in result.stderr and "Traceback" not in result.stderr


def test_sql_on_a_lake_reads_the_newest_load(simulator: TriggSimulator, tmp_path: Path) -> None:
    target: Target = lake(tmp_path)
    env = trigg_env(simulator, target)
    assert run_trigg("run", "--destination", "ducklake", env=env, cwd=tmp_path).returncode == 0
    answer = run_trigg(
        "sql",
        "--destination",
        "ducklake",
        "--format",
        "csv",
        "select count(*) as members from customer_overview",
        env=env,
        cwd=tmp_path,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == "members\n60\n"


def test_a_lake_catalogs_password_is_never_part_of_its_identity_nor_printed(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    password = "sekret-Passw0rd"
    closed = free_port()  # nothing listens: DuckDB quotes the catalog's URL in its error
    env = trigg_env(
        simulator,
        None,
        DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG=f"postgresql://loader:{password}@127.0.0.1:{closed}/lake",
        DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE__BUCKET_URL=str(tmp_path / "files"),
        DESTINATION__DUCKLAKE__CREDENTIALS__METADATA_SCHEMA="trigg_lake",
    )
    with environment(env):
        warehouse = ducklake()
    assert password not in warehouse.location + warehouse.key + str(warehouse)
    assert warehouse.location == f"postgres://127.0.0.1:{closed}/lake#trigg_lake"

    for command in ("run", "sql", "status", "maintain"):
        args = [command, "--destination", "ducklake"] + (["select 1"] if command == "sql" else [])
        result = run_trigg(*args, env=env, cwd=tmp_path)
        assert result.returncode == 1, (command, result.stdout)
        assert password not in result.stdout + result.stderr, command
        assert "Traceback" not in result.stderr
        verbose = run_trigg("-v", *args, env=env, cwd=tmp_path)
        assert password not in verbose.stdout + verbose.stderr, command
