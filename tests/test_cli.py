"""The `trigg` command as a scheduler and a person use it: a separate process, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import requests

from pipelines.simulator import Fault, TriggSimulator
from tests.conftest import TRIGG, run_trigg, trigg_env


def assert_one_clear_sentence(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_run_prints_a_summary_and_works_from_any_directory(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = tmp_path / "data" / "loyalty.duckdb"
    warehouse.parent.mkdir()
    elsewhere = tmp_path / "cron-home"
    elsewhere.mkdir()

    first = run_trigg("run", env=trigg_env(simulator, str(warehouse)), cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    assert "60 customers received" in first.stdout
    assert "since asked" in first.stdout and "cursor" in first.stdout
    assert "customers__promotions" in first.stdout
    assert " s\n" in first.stdout.split("\n", 1)[0] + "\n"  # the duration

    simulator.change(5)
    second = run_trigg("run", env=trigg_env(simulator, str(warehouse)), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert not list(elsewhere.glob("*.duckdb")) and not list(tmp_path.glob("*.duckdb"))
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        customers = connection.sql("select count(*) from loyalty.trigg.customers").fetchone()[0]
    assert customers == len(simulator.store.customers)


def test_the_default_warehouse_is_trigg_customers_duckdb_in_the_working_directory(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    for _ in range(2):
        result = run_trigg("run", env=trigg_env(simulator, None), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    with duckdb.connect(str(tmp_path / "trigg_customers.duckdb"), read_only=True) as connection:
        # the file's catalog is `trigg_customers`: `trigg.` can only mean the dataset
        count = connection.sql("select count(*) from trigg.customer_overview").fetchone()[0]
    assert count == 60


def test_sql_runs_one_query_with_the_dataset_as_the_default_schema(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    env = trigg_env(simulator, None)
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    query = "select count(*) as members, count(distinct city) > 1 as many from customer_overview"

    table = run_trigg("sql", query, env=env, cwd=tmp_path)
    csv = run_trigg("sql", "--format", "csv", query, env=env, cwd=tmp_path)
    as_json = run_trigg("sql", "--format", "json", query, env=env, cwd=tmp_path)

    assert table.returncode == csv.returncode == as_json.returncode == 0, table.stderr
    assert table.stdout == "members | many\n--------+-----\n     60 | True\n(1 row)\n"
    assert csv.stdout == "members,many\n60,True\n"
    assert json.loads(as_json.stdout) == [{"members": 60, "many": True}]


def test_sql_refuses_a_bad_query_and_any_write_in_one_sentence(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    env = trigg_env(simulator, None)
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    unknown = run_trigg("sql", "select * from no_such_table", env=env, cwd=tmp_path)
    write = run_trigg("sql", "drop table customers", env=env, cwd=tmp_path)
    assert_one_clear_sentence(unknown, "no_such_table")
    assert_one_clear_sentence(write, "read-only")
    assert unknown.returncode == write.returncode == 1
    after = run_trigg(
        "sql", "--format", "csv", "select count(*) n from customers", env=env, cwd=tmp_path
    )
    assert after.stdout == "n\n60\n"


def test_missing_base_url_names_the_env_var(tmp_path: Path) -> None:
    env = trigg_env(None, str(tmp_path / "w.duckdb"), SOURCES__TRIGG__API_KEY="k")
    result = run_trigg("run", env=env, cwd=tmp_path)
    assert_one_clear_sentence(result, "SOURCES__TRIGG__BASE_URL")
    assert result.returncode == 1


def test_missing_api_key_names_the_env_var(simulator: TriggSimulator, tmp_path: Path) -> None:
    env = trigg_env(None, str(tmp_path / "w.duckdb"), SOURCES__TRIGG__BASE_URL=simulator.base_url)
    result = run_trigg("run", env=env, cwd=tmp_path)
    assert_one_clear_sentence(result, "SOURCES__TRIGG__API_KEY")
    assert simulator.requests == []


def test_a_rejected_key_is_reported_without_ever_printing_it(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    secret = "s3cret-key-that-must-not-leak"
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"), SOURCES__TRIGG__API_KEY=secret)
    result = run_trigg("run", "--verbose", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "API key was rejected" in result.stderr
    assert "SOURCES__TRIGG__API_KEY" in result.stderr
    assert secret not in result.stdout + result.stderr
    assert simulator.requests[-1].status == 401


def test_a_400_quotes_the_since_and_the_apis_own_message(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    simulator.inject(
        Fault(
            status=400,
            body=b'{"code": "400", "message": "Bad Request",'
            b' "detailedErrorMessage": ["Timestamp too old"]}',
        )
    )
    result = run_trigg(
        "run",
        "--since",
        "20240101T2210",
        env=trigg_env(simulator, str(tmp_path / "w.duckdb")),
        cwd=tmp_path,
    )
    assert_one_clear_sentence(result, "'20240101T2210'", "Bad Request", "Timestamp too old")


def test_a_malformed_since_is_refused_before_any_request(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    result = run_trigg(
        "run",
        "--since",
        "last tuesday",
        env=trigg_env(simulator, str(tmp_path / "w.duckdb")),
        cwd=tmp_path,
    )
    assert_one_clear_sentence(result, "--since", "last tuesday")
    assert simulator.requests == []


def test_since_forms_are_sent_as_given(simulator: TriggSimulator, tmp_path: Path) -> None:
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"))
    for given, sent in [
        ("20240101T2210", "20240101T2210"),
        ("2024-01-01", "20240101T0000"),
        ("2024-06-01T08:15:42", "20240601T0815"),
    ]:
        result = run_trigg("run", "--since", given, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert simulator.requests[-1].since == sent
        assert f"since asked   {sent}" in result.stdout


def test_demo_loads_twice_and_shows_queries_in_its_own_warehouse(tmp_path: Path) -> None:
    result = run_trigg(
        "demo",
        "--customers",
        "80",
        "--changes",
        "15",
        env=trigg_env(None, None),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Initial load" in result.stdout and "Incremental load" in result.stdout
    assert "80 customers received" in result.stdout
    assert "Members by city" in result.stdout
    assert "customer ids held more than once" in result.stdout  # the quality checks
    assert "trigg status:" in result.stdout and "freshness lag" in result.stdout
    assert (tmp_path / "trigg_demo.duckdb").exists()
    assert not (tmp_path / "trigg_customers.duckdb").exists()


def test_simulator_command_serves_the_api_and_prints_url_and_key(tmp_path: Path) -> None:
    with subprocess.Popen(
        [*TRIGG, "simulator", "--port", "0", "--customers", "12", "--seed", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env=trigg_env(None, None),
        cwd=tmp_path,
    ) as process:
        try:
            url_line = process.stdout.readline()
            key_line = process.stdout.readline()
            base_url = url_line.split()[3]
            key = key_line.split()[-1]
            deadline = time.monotonic() + 10
            while True:
                try:
                    response = requests.get(
                        f"{base_url}/customers/changed/", headers={"x-api-key": key}, timeout=5
                    )
                    break
                except requests.ConnectionError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            assert response.status_code == 200
            assert len(response.json()) == 12
        finally:
            process.terminate()


def test_an_unconfigured_destination_names_what_to_set(tmp_path: Path) -> None:
    env = trigg_env(
        None, None, SOURCES__TRIGG__BASE_URL="https://api.oculos.no/v4", SOURCES__TRIGG__API_KEY="k"
    )
    result = run_trigg("run", "--destination", "snowflake", env=env, cwd=tmp_path)
    assert_one_clear_sentence(result, "DESTINATION__SNOWFLAKE__CREDENTIALS")


def test_an_unknown_destination_is_refused(tmp_path: Path) -> None:
    env = trigg_env(
        None, None, SOURCES__TRIGG__BASE_URL="https://api.oculos.no/v4", SOURCES__TRIGG__API_KEY="k"
    )
    result = run_trigg("run", "--destination", "nosuchwarehouse", env=env, cwd=tmp_path)
    assert_one_clear_sentence(result, "'nosuchwarehouse' is not a dlt destination")


def arrow_pool_of_a_command(env: dict[str, str], cwd: Path) -> str:
    """The allocator pyarrow uses in a process that ran a `trigg` command first."""
    script = (
        "import sys; from pipelines.cli import main;"
        " main(['status', '--warehouse', sys.argv[1]]);"
        " import pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    )
    command = [sys.executable, "-c", script, str(cwd / "none.duckdb")]
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    assert result.stdout.strip(), result.stderr
    return result.stdout.split()[-1]


def test_trigg_gives_arrow_the_system_allocator_unless_another_is_chosen(tmp_path: Path) -> None:
    """pyarrow's mimalloc keeps what dlt's normalizer frees; the system allocator returns it."""
    env = trigg_env(None, None)
    env.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    assert arrow_pool_of_a_command(env, tmp_path) == "system"
    chosen = {**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
    assert arrow_pool_of_a_command(chosen, tmp_path) == "mimalloc"


def test_verbose_and_log_format_work_before_and_after_the_command_name(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"))
    for args in (("--log-format", "json", "run"), ("run", "--log-format", "json")):
        result = run_trigg(*args, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert [json.loads(line)["event"] for line in result.stdout.splitlines()][-1] == "summary"
    for args in (("-v", "run", "--since", "yesterday"), ("run", "-v", "--since", "yesterday")):
        verbose = run_trigg(*args, env=env, cwd=tmp_path)
        assert verbose.returncode == 1
        assert "Traceback" in verbose.stderr, verbose.stderr


ANALYST_SQL = """
import sys, duckdb
with duckdb.connect(sys.argv[1]) as connection:
    connection.execute(sys.argv[2])
"""


def as_analyst(warehouse: Path, sql: str) -> None:
    """An analyst's own session, in a process of its own, changing the warehouse."""
    subprocess.run([sys.executable, "-c", ANALYST_SQL, str(warehouse), sql], check=True)


def test_a_failure_after_the_commit_is_a_warning_and_the_next_run_repairs_it(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    env = trigg_env(simulator, str(warehouse))
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    # an analyst keeps a table where a view belongs: recreating the views fails
    as_analyst(
        warehouse,
        "drop view trigg.customer_overview; create table trigg.customer_overview as select 1 as x",
    )
    changed = simulator.change(6)

    loaded = run_trigg("run", "--log-format", "json", env=env, cwd=tmp_path)

    assert loaded.returncode == 0, loaded.stderr  # the data and the cursor are committed
    summary = json.loads(loaded.stdout.splitlines()[-1])
    [warning] = summary["warnings"]
    assert "views, comments and quality checks" in warning and "not refreshed" in warning
    assert summary["cursor_after"] != summary["cursor_before"]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        ids = {row[0] for row in connection.sql("select id from trigg.customers").fetchall()}
        outcome, warnings = connection.sql(
            "select outcome, warnings from trigg.run_history order by started_at desc limit 1"
        ).fetchone()
    assert set(changed) <= ids
    assert outcome == "succeeded" and json.loads(warnings) == [warning]

    as_analyst(warehouse, "drop table trigg.customer_overview")
    repaired = run_trigg("run", env=env, cwd=tmp_path)

    assert repaired.returncode == 0 and "warning" not in repaired.stdout, repaired.stdout
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        members = connection.sql("select count(*) from trigg.customer_overview").fetchone()
    assert members == (len(simulator.store.customers),)  # the next run recreated the views
