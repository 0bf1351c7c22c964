"""Analysts and the schedule never block each other: a separate process keeps a DuckLake attached
and queried while scheduled runs land (SQLite and PostgreSQL catalogs), and a `trigg sql` session
stays open on a DuckDB file across runs. Every answer of the session reflects whole loads only;
a lake's reader does too but for DuckLake 1.5.5's known limit (docs/team.md)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pipelines.duckdb_extensions import extension_directory
from pipelines.simulator import TriggSimulator
from tests.conftest import TRIGG, lake, run_trigg, trigg_env
from tests.oracle import expected_tables
from tests.postgres import PostgresServer
from tests.targets import Target, postgres_ducklake_target
from tests.test_pipeline import assert_warehouse_equals_source

ANALYST = """
import json, os, sys, time
import duckdb

attach, extensions, stop = sys.argv[1:4]
connection = duckdb.connect(config={
    "extension_directory": extensions,
    "autoinstall_known_extensions": False,
})
connection.execute("set enable_progress_bar = false")
connection.execute(attach)
query = '''select
    (select count(*) from lake.trigg.customers),
    (select count(*) from lake.trigg.customers__promotions),
    (select count(*) from lake.trigg.customers__promotions p where not exists (
        select 1 from lake.trigg.customers c where c._dlt_id = p._dlt_root_id)),
    (select count(*) from lake.trigg.customer_overview)'''
print(json.dumps({"attached": time.time()}), flush=True)
while not os.path.exists(stop):
    started = time.time()
    customers, promotions, orphans, overview = connection.execute(query).fetchone()
    print(json.dumps({"at": started, "state": [customers, promotions],
                      "orphans": orphans, "overview": overview}), flush=True)
    time.sleep(0.05)
"""
"""A third party's Python process: plain `duckdb`, the lake attached read-only, querying one
snapshot per statement until the stop file appears."""


def load_state(simulator: TriggSimulator) -> tuple[int, int]:
    """(customers, promotions) the warehouse holds once the simulator's state is loaded."""
    tables = expected_tables(simulator.store.snapshot())
    return len(tables["customers"]), len(tables["customers__promotions"])


def analyst_attached_to(target: Target, stop_file: Path) -> subprocess.Popen[str]:
    attach = f"attach 'ducklake:{target.dsn}' as lake (read_only{target.attach_options})"
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, attach, extension_directory(), str(stop_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert analyst.stdout is not None
    first = analyst.stdout.readline()
    assert "attached" in first, analyst.stderr.read() if analyst.stderr else first
    return analyst


def three_runs_beside_an_analyst(simulator: TriggSimulator, target: Target, tmp_path: Path) -> None:
    env = trigg_env(simulator, target)
    first = run_trigg("run", *target.cli_args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    states = {load_state(simulator)}
    stop = tmp_path / "stop-the-analyst"
    analyst = analyst_attached_to(target, stop)
    runs: list[tuple[float, float]] = []
    try:
        for _ in range(3):
            simulator.change(15)
            started = time.time()
            result = run_trigg("run", *target.cli_args, env=env, cwd=tmp_path)
            runs.append((started, time.time()))
            assert result.returncode == 0, result.stderr
            assert "maintenance   " in result.stdout, result.stdout  # the lake was maintained
            states.add(load_state(simulator))
        stop.touch()
        output, errors = analyst.communicate(timeout=60)
    finally:
        analyst.kill()
    assert analyst.returncode == 0, errors
    seen = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert seen, errors
    whole = [list(state) for state in states]
    torn = [
        a for a in seen if a["state"] not in whole or a["orphans"] or a["overview"] != a["state"][0]
    ]
    # DuckLake 1.5.5's reader now and then answers one query from two snapshots (docs/team.md,
    # "Known limits": measured about one answer in 150): tolerated that rarely, never more
    assert len(torn) <= max(1, len(seen) // 50), f"{len(torn)} of {len(seen)} torn: {torn[:3]}"
    final = seen[-1]  # read after the last run: the lake as loaded, whole
    assert final["state"] == list(load_state(simulator)) and final["orphans"] == 0, final
    for started, finished in runs:  # and kept reading while each run wrote
        assert any(started <= answer["at"] <= finished for answer in seen)
    assert len({tuple(answer["state"]) for answer in seen}) > 1  # it saw the runs land
    assert_warehouse_equals_source(target, simulator)


def test_three_runs_land_while_an_analyst_keeps_the_lake_attached(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    three_runs_beside_an_analyst(simulator, lake(tmp_path), tmp_path)


def test_the_same_with_the_lake_catalog_in_postgresql(
    simulator: TriggSimulator, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    catalog = postgres_server.create_database(f"lake_{tmp_path.name}"[:60].lower())
    target = postgres_ducklake_target(catalog, str(tmp_path / "shared-files"), "trigg_lake")
    three_runs_beside_an_analyst(simulator, target, tmp_path)


class Session:
    """A `trigg sql` session in its own process, fed statements through stdin over time."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [*TRIGG, "sql", *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def ask(self, statement: str, lines: int) -> list[str]:
        assert self.process.stdin is not None
        self.process.stdin.write(statement + "\n")
        self.process.stdin.flush()
        return [self.lines.get(timeout=60) for _ in range(lines)]

    def close(self) -> tuple[int, str]:
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(timeout=60)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


def test_a_trigg_sql_session_stays_open_on_a_duckdb_file_across_three_runs(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "trigg_customers.duckdb")
    # a run waits at most 2 s for the file: a session holding it would fail the runs
    env = trigg_env(simulator, warehouse, SOURCES__TRIGG__LOCK_TIMEOUT_SECONDS="2")
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    session = Session(env, tmp_path, "--format", "csv")
    counts = "select count(*) as customers, (select count(*) from customers__promotions) as p"
    answers: list[Any] = [session.ask(counts + " from customers;", lines=2)]
    expected = [load_state(simulator)]
    for _ in range(3):
        simulator.change(15)
        result = run_trigg("run", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        expected.append(load_state(simulator))
        answers.append(session.ask(counts + "\nfrom customers\n;", lines=2))
    code, errors = session.close()
    assert code == 0, errors
    assert [lines[0] for lines in answers] == ["customers,p"] * 4
    assert [tuple(map(int, lines[1].split(","))) for lines in answers] == expected
    assert_warehouse_equals_source(warehouse, simulator)


def test_a_session_answers_statements_that_span_lines_in_each_format(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"))
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    script = "select 'a;b' as text,\n  2 as n; -- a comment; not a statement\nselect 3 as n"
    expected = {
        "table": "text | n\n-----+--\na;b  | 2\n(1 row)\nn\n-\n3\n(1 row)\n",
        "csv": "text,n\na;b,2\nn\n3\n",
        "json": '[{"text": "a;b", "n": 2}]\n[{"n": 3}]\n',
    }
    for output_format, answer in expected.items():
        session = subprocess.run(
            [*TRIGG, "sql", "--format", output_format],
            input=script,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert session.returncode == 0, session.stderr
        assert session.stdout == answer
