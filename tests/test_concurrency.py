"""Overlapping runs and readers: one writer at a time, nothing corrupted, nothing half-loaded."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pipelines.simulator import Fault, TriggSimulator
from tests.conftest import TRIGG, run_trigg, trigg_env
from tests.oracle import warehouse_tables
from tests.test_pipeline import assert_warehouse_equals_source

HOLD_OPEN = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
connection.sql("select count(*) from information_schema.tables").fetchall()
print("open", flush=True)
time.sleep(float(sys.argv[2]))
connection.close()
"""


def hold_open(warehouse: str, seconds: float) -> subprocess.Popen[str]:
    """An analyst's process holding the DuckDB file open (read-only) for `seconds`."""
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, warehouse, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "open"
    return reader


def test_a_second_run_exits_promptly_while_the_first_is_in_progress(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    env = trigg_env(simulator, warehouse)
    simulator.inject(Fault(delay_seconds=6))  # the first run's answer is slow
    with subprocess.Popen(
        [*TRIGG, "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as slow:
        deadline = time.monotonic() + 20
        while not simulator.requests:  # the slow run holds the lock and is downloading
            assert time.monotonic() < deadline and slow.poll() is None
            time.sleep(0.05)

        started = time.monotonic()
        second = run_trigg("run", env=env, cwd=tmp_path)
        second_took = time.monotonic() - started

        _, slow_err = slow.communicate(timeout=60)
    assert second.returncode == 75
    assert "another run is in progress" in second.stderr
    assert "Traceback" not in second.stderr
    assert second_took < 5.5  # it did not wait for the slow run's 6 s answer
    assert len(simulator.requests) == 1  # and asked the API nothing
    assert slow.returncode == 0, slow_err
    assert_warehouse_equals_source(warehouse, simulator)


def test_a_run_waits_for_a_reader_to_let_go_then_loads(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    env = trigg_env(simulator, warehouse)
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    simulator.change(10)
    reader = hold_open(warehouse, seconds=2)

    result = run_trigg("run", env=env, cwd=tmp_path)

    reader.wait()
    assert result.returncode == 0, result.stderr
    assert_warehouse_equals_source(warehouse, simulator)


def test_a_reader_holding_on_too_long_fails_the_run_clearly_and_loads_nothing(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    env = trigg_env(simulator, warehouse, SOURCES__TRIGG__LOCK_TIMEOUT_SECONDS="1.5")
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    before = warehouse_tables(warehouse)
    simulator.change(10)
    reader = hold_open(warehouse, seconds=120)  # for longer than any wait of the run

    result = run_trigg("run", env=env, cwd=tmp_path)

    reader.kill()
    reader.wait()
    assert result.returncode == 1
    assert "held open by another process" in result.stderr
    assert "lock_timeout_seconds" in result.stderr
    assert "Traceback" not in result.stderr
    assert warehouse_tables(warehouse) == before  # not half a load
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0  # and the next run repairs
    assert_warehouse_equals_source(warehouse, simulator)


def test_the_lock_timeout_applies_to_each_wait_not_to_the_whole_run(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    """A slow download (4 s) then a reader holding the file (until 6.5 s): with a 3 s timeout
    for each wait the load waits about two seconds and loads; one deadline for the whole run
    would have passed before the load even started."""
    warehouse = str(tmp_path / "w.duckdb")
    env = trigg_env(simulator, warehouse, SOURCES__TRIGG__LOCK_TIMEOUT_SECONDS="3")
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    simulator.change(10)
    simulator.inject(Fault(delay_seconds=4))
    with subprocess.Popen(
        [*TRIGG, "run"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as run:
        deadline = time.monotonic() + 30
        while len(simulator.requests) < 2:  # the run has synced and is downloading
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.02)
        reader = hold_open(warehouse, seconds=6.5)
        _, stderr = run.communicate(timeout=60)
    reader.wait()
    assert run.returncode == 0, stderr
    assert_warehouse_equals_source(warehouse, simulator)
