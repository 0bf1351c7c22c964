"""The chaos suite: the real `trigg run`, killed with SIGKILL at seeded random moments while the
simulator changes customers and misbehaves; a plain rerun always converges to the source.

`CHAOS_ROUNDS` and `CHAOS_SEED` scale and vary it (defaults keep CI to about a minute).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from pipelines.simulator import Fault, TriggSimulator
from tests.conftest import TRIGG, run_trigg, trigg_env
from tests.oracle import expected_tables, row_counts, warehouse_tables
from tests.targets import Target

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "16"))
SEED = int(os.environ.get("CHAOS_SEED", "20261127"))

FAULTS = {
    "503": lambda rng: Fault(status=503),
    "429-retry-after-0": lambda rng: Fault(status=429, retry_after="0"),
    "409": lambda rng: Fault(status=409),
    "connection-dropped": lambda rng: Fault(disconnect=True),
    "body-cut-off": lambda rng: Fault(cut_at_fraction=rng.uniform(0.05, 0.95)),
    "slow-answer": lambda rng: Fault(delay_seconds=rng.uniform(0.2, 1.2)),
}
BAD_RECORDS = {
    "no-id": {"data": {"firstName": "Nobody"}, "metaData": {"UpdatedAt": "2024-01-01 10:00:00"}},
    "bad-updated-at": {"data": {"id": "BAD-TS"}, "metaData": {"UpdatedAt": "the day after"}},
    "points-not-a-number": {
        "data": {"id": "BAD-POINTS", "loyalty": {"points": "many"}},
        "metaData": {"UpdatedAt": "2024-01-01 10:00:00"},
    },
}


def differences(warehouse: Target | str, simulator: TriggSimulator) -> tuple[int, int]:
    """(rows lost, rows doubled or stale) between the warehouse and the simulator's state."""
    expected = expected_tables(simulator.store.snapshot())
    actual = warehouse_tables(warehouse)
    counts = row_counts(warehouse)
    lost = doubled = 0
    for table, rows in expected.items():
        want, have = Counter(rows), Counter(actual[table])
        lost += sum((want - have).values())
        doubled += sum((have - want).values()) + max(0, counts.get(table, 0) - len(actual[table]))
    return lost, doubled


@pytest.fixture
def chaos_simulator() -> TriggSimulator:
    with TriggSimulator(customers=400, seed=SEED) as running:
        yield running


def test_kill_minus_9_at_random_moments_never_loses_or_doubles_a_row(
    chaos_simulator: TriggSimulator, tmp_path: Path, target: Target
) -> None:
    simulator = chaos_simulator
    rng = random.Random(SEED)
    warehouse = target
    command = ("run", *target.cli_args)
    env = trigg_env(
        simulator,
        warehouse,
        SOURCES__TRIGG__BACKOFF_SECONDS="0.05",
        SOURCES__TRIGG__REQUEST_TIMEOUT_SECONDS="5",
    )
    tally: Counter[str] = Counter()
    for round_number in range(ROUNDS):
        simulator.change(rng.randint(5, 40))
        fault = rng.choice([None, None, *FAULTS])
        if fault:
            simulator.inject(FAULTS[fault](rng))
            tally[f"fault:{fault}"] += 1
        bad = rng.choice([None, None, *BAD_RECORDS])
        simulator.extra_envelopes = [BAD_RECORDS[bad]] if bad else []
        tally["bad-input"] += bool(bad)
        with subprocess.Popen(
            [*TRIGG, "run"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ) as run:
            time.sleep(rng.uniform(0.8, 3.2))  # start-up ~1.3 s, a run 1-2 s more
            if run.poll() is None:
                run.send_signal(signal.SIGKILL)
                tally["killed"] += 1
            else:
                tally["finished" if run.returncode == 0 else "failed"] += 1
            run.wait()
        if round_number % 4 == 3:  # a plain rerun converges, whatever happened before
            simulator.extra_envelopes = []
            rerun = run_trigg(*command, env=env, cwd=tmp_path)
            assert rerun.returncode == 0, rerun.stderr
            assert differences(warehouse, simulator) == (0, 0), f"after round {round_number}"
    simulator.extra_envelopes = []
    final = run_trigg(*command, env=env, cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    lost, doubled = differences(warehouse, simulator)
    tried = dict(sorted(tally.items()))
    print(f"\nchaos ({target.kind}): {ROUNDS} rounds, {tried}; lost {lost}, doubled {doubled}")
    assert (lost, doubled) == (0, 0)
    assert tally["killed"] >= ROUNDS // 4, "the kills must actually interrupt runs"


def test_a_deleted_warehouse_is_noticed_loudly_and_rebuilt_from_initial_since(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    env = trigg_env(simulator, str(warehouse), SOURCES__TRIGG__INITIAL_SINCE="2020-01-01")
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    simulator.change(5)
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    warehouse.unlink()

    rebuilt = run_trigg("run", env=env, cwd=tmp_path)

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "WARNING" in rebuilt.stdout and "rebuilding from initial_since" in rebuilt.stdout
    assert "rebuilding from initial_since" in rebuilt.stderr  # loud: in the log as well
    assert simulator.requests[-1].since == "20200101T0000"
    assert differences(str(warehouse), simulator) == (0, 0)


def test_a_warehouse_replaced_by_an_older_copy_continues_from_the_copys_cursor(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    backup = tmp_path / "backup.duckdb"
    env = trigg_env(simulator, str(warehouse))
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    shutil.copy(warehouse, backup)
    first_since = simulator.requests[-1].since
    for _ in range(2):
        simulator.change(8)
        assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    shutil.copy(backup, warehouse)  # restored from last night's backup

    restored = run_trigg("run", env=env, cwd=tmp_path)

    assert restored.returncode == 0, restored.stderr
    assert "does not hold the cursor" in restored.stdout
    assert simulator.requests[-1].since <= simulator.requests[1].since
    assert simulator.requests[-1].since != first_since
    assert differences(str(warehouse), simulator) == (0, 0)


def test_an_interrupted_load_is_finished_first_and_new_changes_still_arrive_in_the_same_run(
    simulator: TriggSimulator, target: Target
) -> None:
    from pipelines.runner import make_pipeline, run_once
    from pipelines.trigg import trigg_source
    from pipelines.trigg.settings import TriggSettings

    warehouse = target.warehouse
    settings = TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key)
    run_once(settings, warehouse)
    simulator.change(5)
    crashed = make_pipeline(warehouse)
    crashed.extract(trigg_source(**settings.source_arguments()))
    crashed.normalize()  # ... and the process died before the load step
    simulator.change(7)

    summary = run_once(settings, warehouse)

    assert any("interrupted run" in note for note in summary.notes)
    assert len(simulator.requests) == 3  # the first run, the crashed run, then this run's own
    assert differences(target, simulator) == (0, 0)
