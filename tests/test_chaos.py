"""The chaos suite: the real `trigg run`, killed with SIGKILL at seeded random moments while the
simulator changes customers and misbehaves; a plain rerun always converges to the source.

The simulator runs on simulated time that moves on between rounds by more than the lookback, and
some changes are published late (stamped a few minutes before the newest one already served): a
cursor that skips ahead, or a lookback too short, loses rows the oracle sees. The two tests after
the suite prove it by breaking the cursor on purpose. `CHAOS_ROUNDS` and `CHAOS_SEED` scale and
vary it (defaults keep CI to about a minute per warehouse).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipelines.runner import as_warehouse
from pipelines.simulator import Fault, SimulatedClock, TriggSimulator
from pipelines.trigg.settings import DEFAULT_LOOKBACK_MINUTES
from tests.conftest import TRIGG, run_trigg, trigg_env
from tests.oracle import differences
from tests.targets import Target, duckdb_target

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "8"))
SEED = int(os.environ.get("CHAOS_SEED", "20261127"))
START = datetime(2026, 3, 2, 8, 0)
"""Simulated time starts here (Oslo wall-clock time), far from the machine's own clock."""
INITIAL_SINCE = "2026-03-01"
"""Before every generated customer's last change (at most 20 hours before the start)."""
MINUTES_PER_ROUND = (7, 60)
"""Simulated minutes between rounds: mostly more than the lookback (10)."""

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


@dataclass
class Chaos:
    """One warehouse under chaos: the simulator on simulated time, and the runs of `trigg run`."""

    simulator: TriggSimulator
    clock: SimulatedClock
    target: Target
    cwd: Path
    rng: random.Random
    env: dict[str, str]
    newest_stamp: datetime
    """The newest change stamp so far: late changes are stamped a little before it."""
    tally: Counter[str] = field(default_factory=Counter)
    announced: Counter[str] = field(default_factory=Counter)
    """The warehouses the killed runs announced in their `run_start` event."""

    @property
    def command(self) -> tuple[str, ...]:
        """`trigg run` into the round's warehouse (`--destination postgres` for PostgreSQL)."""
        return ("run", *self.target.cli_args)

    def next_round(
        self, minutes: int | None = None, late: bool | None = None, misbehave: bool = True
    ) -> None:
        """Maybe a late change (`late` decides, or chance), then simulated time moves on and
        customers change; with `misbehave`, maybe a fault for the next request and a bad record
        in every answer."""
        rng = self.rng
        if rng.random() < 0.5 if late is None else late:
            minutes_late = rng.randint(1, DEFAULT_LOOKBACK_MINUTES - 1)
            self.simulator.change(
                rng.randint(1, 3), at=self.newest_stamp - timedelta(minutes=minutes_late)
            )
            self.tally["late-stamped"] += 1
        self.clock.advance(minutes=minutes or rng.randint(*MINUTES_PER_ROUND))
        self.simulator.change(rng.randint(5, 40))
        self.newest_stamp = self.clock()
        self.simulator.faults.clear()  # a fault the last round's run died before meeting
        fault = rng.choice([None, None, *FAULTS]) if misbehave else None
        if fault:
            self.simulator.inject(FAULTS[fault](rng))
            self.tally[f"fault:{fault}"] += 1
        bad = rng.choice([None, None, *BAD_RECORDS]) if misbehave else None
        self.simulator.extra_envelopes = [BAD_RECORDS[bad]] if bad else []
        self.tally["bad-input"] += bool(bad)

    def killed_run(self) -> None:
        """`trigg run`, killed with SIGKILL at a random moment of its work (after it announced
        its start), if it has not finished by then. The warehouse it announced is kept."""
        with subprocess.Popen(
            [*TRIGG, "--log-format", "json", *self.command],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as run:
            assert run.stdout is not None
            for line in run.stdout:  # start-up takes ~1.3 s: the kill waits for the work
                logged = json.loads(line) if line.startswith("{") else {}
                if logged.get("event") == "run_start":
                    self.announced[logged["warehouse"]] += 1
                    break
            time.sleep(self.rng.uniform(0.0, 1.5))  # the work takes 1-2 s more
            if run.poll() is None:
                run.send_signal(signal.SIGKILL)
                self.tally["killed"] += 1
            else:
                self.tally["finished" if run.returncode == 0 else "failed"] += 1
            run.communicate()

    def converges(self) -> tuple[int, int]:
        """The suite's check: a plain rerun succeeds; then (rows lost, rows doubled)."""
        self.simulator.extra_envelopes = []
        rerun = run_trigg(*self.command, env=self.env, cwd=self.cwd)
        assert rerun.returncode == 0, rerun.stderr
        return differences(self.target, self.simulator)


@pytest.fixture
def chaos_clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def chaos_simulator(chaos_clock: SimulatedClock) -> TriggSimulator:
    with TriggSimulator(customers=400, seed=SEED, clock=chaos_clock) as running:
        yield running


def chaos_for(
    simulator: TriggSimulator, clock: SimulatedClock, target: Target, cwd: Path, **env: str
) -> Chaos:
    settings = {
        "SOURCES__TRIGG__INITIAL_SINCE": INITIAL_SINCE,
        "SOURCES__TRIGG__BACKOFF_SECONDS": "0.05",
        "SOURCES__TRIGG__REQUEST_TIMEOUT_SECONDS": "5",
        **env,
    }
    environment = trigg_env(simulator, target, **settings)
    newest = max(customer.updated_at for customer in simulator.store.snapshot())
    return Chaos(simulator, clock, target, cwd, random.Random(SEED), environment, newest)


def test_kill_minus_9_at_random_moments_never_loses_or_doubles_a_row(
    chaos_simulator: TriggSimulator, chaos_clock: SimulatedClock, tmp_path: Path, target: Target
) -> None:
    chaos = chaos_for(chaos_simulator, chaos_clock, target, tmp_path)
    for round_number in range(ROUNDS):
        chaos.next_round()
        chaos.killed_run()
        if round_number % 4 == 3:  # a plain rerun converges, whatever happened before
            assert chaos.converges() == (0, 0), f"after round {round_number}"
    lost, doubled = chaos.converges()
    tried = dict(sorted(chaos.tally.items()))
    hours = (chaos_clock.utc() - SimulatedClock(START).utc()) / timedelta(hours=1)
    print(f"\nchaos ({target.kind}): {ROUNDS} rounds over {hours:.1f} simulated hours, {tried};")
    print(f"lost {lost}, doubled {doubled}")
    assert (lost, doubled) == (0, 0)
    assert chaos.tally["killed"] >= ROUNDS // 4, "the kills must actually interrupt runs"
    assert chaos.tally["late-stamped"] >= ROUNDS // 4, "late changes must make the lookback matter"
    # every killed run loaded into the round's warehouse, and no other warehouse appeared
    assert chaos.announced == {str(as_warehouse(target.warehouse)): ROUNDS}
    expected_files = {Path(target.warehouse)} if target.kind == "duckdb" else set()
    assert set(tmp_path.glob("*.duckdb")) == expected_files


def test_the_chaos_check_catches_a_cursor_that_skips_ahead(
    chaos_simulator: TriggSimulator, chaos_clock: SimulatedClock, tmp_path: Path
) -> None:
    """Breaking the cursor on purpose: one run asks from later than changes it never loaded
    (`--since`), so the cursor skips past them by more than the lookback; the check must fail."""
    chaos = chaos_for(
        chaos_simulator, chaos_clock, duckdb_target(str(tmp_path / "w.duckdb")), tmp_path
    )
    assert chaos.converges() == (0, 0)
    chaos.next_round(minutes=30, misbehave=False)  # changes no run loads (a run killed early)
    chaos.next_round(minutes=30, misbehave=False)
    skipping = (chaos_clock() - timedelta(minutes=1)).strftime("%Y%m%dT%H%M")
    ahead = run_trigg(*chaos.command, "--since", skipping, env=chaos.env, cwd=tmp_path)
    assert ahead.returncode == 0, ahead.stderr

    lost, _ = chaos.converges()

    assert lost > 0, "a cursor that skipped changes must fail the chaos suite's check"


def test_the_chaos_check_catches_a_lookback_too_short_for_late_changes(
    chaos_simulator: TriggSimulator, chaos_clock: SimulatedClock, tmp_path: Path
) -> None:
    """Breaking the lookback on purpose: with none, a change published late (stamped before the
    cursor) is never asked for; the check must fail."""
    warehouse = duckdb_target(str(tmp_path / "w.duckdb"))
    chaos = chaos_for(
        chaos_simulator, chaos_clock, warehouse, tmp_path, SOURCES__TRIGG__LOOKBACK_MINUTES="0"
    )
    assert chaos.converges() == (0, 0)
    chaos.next_round(late=True, misbehave=False)

    lost, _ = chaos.converges()

    assert lost > 0, "a lookback too short for late changes must fail the chaos suite's check"


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
