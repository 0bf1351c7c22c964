"""The soak (issue 11): `trigg run` every five minutes, for hours or days of simulated time.

    uv run python benchmarks/soak.py               # 60 runs (5 simulated hours), a few minutes
    uv run python benchmarks/soak.py --runs 1000   # the full soak: 3.5 simulated days, ~1 hour

The real, installed `trigg run` (a separate process each time, as cron starts it) loads a DuckDB
file from the simulator, whose clock moves one tick between runs while a few customers change.
Along the way the soak injects what a year unattended brings: the vendor adds a field (every
customer carries it from then on), a few bad records, a record stamped in the future, an hour of
503s (every request in that simulated hour; those runs fail with exit 1), the night in October
when Europe/Oslo's clocks go back (02:00-03:00 happens twice), and a run killed mid-load (SIGKILL).

It prints one table, each figure beside its target: exit codes; rows lost and doubled against the
simulator's truth (the test oracle, `tests/oracle.py`), after every run that follows a failure and
at the end; the share of runs on the fast path; dlt's local data (`DLT_DATA_DIR`) after the first
run, after the first tenth and at the end; the warehouse file against a fresh reload of the same
data; and the time per run of the first tenth against the last. Results also go to soak.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.simulator import Fault, SimulatedClock, TriggSimulator  # noqa: E402
from pipelines.trigg.schema import REJECTED_TABLE  # noqa: E402
from pipelines.trigg.settings import PIPELINE_NAME  # noqa: E402
from tests.oracle import differences  # noqa: E402
from tests.targets import duckdb_target  # noqa: E402

ZONE = "Europe/Oslo"
FALL_BACK = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
"""02:00 CEST on the last Sunday of October 2026: from here Oslo's 02:00-03:00 happens twice
(until 02:00 UTC). Simulated time is placed so that the soak crosses it."""
FOLD_MINUTES = 120
OUTAGE_MINUTES = 60
FUTURE = datetime(2036, 1, 1, 12, 0)
"""The stamp of the record from the future (a client's clock gone wrong)."""
INITIAL_SINCE = "2026-10-01"
"""Before any simulated customer's last change (the first run loads them all)."""
ADDED_FIELD = "preferredLanguage"
BAD_RECORDS = (
    {"data": {"firstName": "Nobody"}, "metaData": {}},
    {"data": {"id": "SOAK-BAD-POINTS", "loyalty": {"points": "many"}}, "metaData": {}},
    {"data": {"id": "SOAK-BAD-BIRTH", "birthDate": "the 31st of February"}, "metaData": {}},
)
SIGKILL_EXIT = -signal.SIGKILL
MB = 1024 * 1024


@dataclass
class Plan:
    """At which runs the events happen: at fixed shares of the soak when there is room (so the
    full soak spreads them out), packed one after another when there is not."""

    runs: int
    tick_minutes: int
    new_field: int = 0
    bad_records: int = 0
    future_record: int = 0
    fold_first: int = 0
    """The first run at 02:00 CEST or later on the night the clocks go back."""
    fold_runs: int = 0
    outage_first: int = 0
    outage_runs: int = 0
    kill: int = 0

    @classmethod
    def make(cls, runs: int, tick_minutes: int) -> Plan:
        plan = cls(runs, tick_minutes)
        plan.fold_runs = math.ceil(FOLD_MINUTES / tick_minutes)
        plan.outage_runs = math.ceil(OUTAGE_MINUTES / tick_minutes)
        latest_kill = runs - 2  # a run after the kill repairs it
        latest_outage = latest_kill - plan.outage_runs - 1  # ... and one after the outage
        latest_fold = latest_outage - plan.fold_runs
        latest_future = latest_fold - 1

        def at(share: float, earliest: int, latest: int) -> int:
            if earliest > latest:
                raise SystemExit(
                    f"soak: {runs} runs of {tick_minutes} minutes are too few for its events;"
                    " give more --runs or a longer --tick-minutes"
                )
            return min(latest, max(earliest, round(share * runs)))

        plan.new_field = at(0.12, 1, latest_future)
        plan.bad_records = at(0.15, plan.new_field, latest_future)
        plan.future_record = at(0.18, plan.bad_records, latest_future)
        plan.fold_first = at(0.22, plan.future_record + 1, latest_fold)
        plan.outage_first = at(0.65, plan.fold_first + plan.fold_runs, latest_outage)
        plan.kill = at(0.87, plan.outage_first + plan.outage_runs + 1, latest_kill)
        return plan

    def outage(self, run: int) -> bool:
        return self.outage_first <= run < self.outage_first + self.outage_runs

    def events(self) -> set[int]:
        """The runs that meet an event (the first run after the night's repeated hour too)."""
        return {self.new_field, self.bad_records, self.future_record, self.fold_end()}

    def fold_end(self) -> int:
        return self.fold_first + self.fold_runs

    def tenth(self) -> int:
        return max(1, self.runs // 10)


@dataclass
class Run:
    number: int
    exit_code: int
    seconds: float
    fast_path: bool | None
    """None: not a successful run; False: the reference path took its response."""
    reference_reasons: list[str] = field(default_factory=list)
    cursor_after: str | None = None
    killed_mid_load: bool = False
    error: str = ""
    """The failure's one sentence on stderr."""


@dataclass
class Check:
    after_run: int
    why: str
    lost: int
    doubled: int


@dataclass
class Soak:
    plan: Plan
    work: Path
    customers: int
    seed: int
    trigg: list[str]
    clock: SimulatedClock = field(init=False)
    simulator: TriggSimulator = field(init=False)
    rng: random.Random = field(init=False)
    runs: list[Run] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    dlt_sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        start = FALL_BACK - timedelta(minutes=self.plan.fold_first * self.plan.tick_minutes)
        self.clock = SimulatedClock(start, ZONE)
        self.simulator = TriggSimulator(self.customers, self.seed, timezone=ZONE, clock=self.clock)
        self.rng = random.Random(self.seed)

    @property
    def warehouse(self) -> Path:
        return self.work / "soak.duckdb"

    @property
    def dlt_data(self) -> Path:
        return self.work / "dlt-data"

    def env(self, warehouse: Path, dlt_data: Path) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))
        }
        env.update(
            SOURCES__TRIGG__BASE_URL=self.simulator.base_url,
            SOURCES__TRIGG__API_KEY=self.simulator.api_key,
            SOURCES__TRIGG__INITIAL_SINCE=INITIAL_SINCE,
            SOURCES__TRIGG__BACKOFF_SECONDS="0.05",  # the outage's retries, in accelerated time
            DESTINATION__DUCKDB__CREDENTIALS=str(warehouse),
            DLT_DATA_DIR=str(dlt_data),
            RUNTIME__DLTHUB_TELEMETRY="false",
            PYTHONPATH=str(ROOT),
        )
        return env

    # -- the simulated world between runs -----------------------------------------------------

    def before(self, number: int) -> None:
        """Simulated time moves one tick, a few customers change, and the plan's events happen."""
        plan = self.plan
        if number > 0:
            self.clock.advance(minutes=plan.tick_minutes)
            ticks_of_five = max(1, plan.tick_minutes // 5)
            self.simulator.change(sum(self.rng.randint(1, 8) for _ in range(ticks_of_five)))
        if number == plan.new_field:
            self.simulator.added_fields[ADDED_FIELD] = _preferred_language
        if number == plan.bad_records:
            stamp = self.clock()
            for record in BAD_RECORDS:
                meta = {"UpdatedAt": stamp.strftime("%Y-%m-%d %H:%M:%S")}
                self.simulator.stamped_envelopes.append((stamp, {**record, "metaData": meta}))
        if number == plan.future_record:
            self.simulator.change(1, at=FUTURE)
        if number == plan.outage_first:
            end = self.clock.utc() + timedelta(minutes=OUTAGE_MINUTES)
            self.simulator.schedule(Fault(status=503), self.clock.utc(), end)

    # -- one run ------------------------------------------------------------------------------

    def run(self, number: int, kill_mid_load: bool) -> Run:
        started = time.monotonic()
        process = subprocess.Popen(
            [*self.trigg, "--log-format", "json", "run"],
            env=self.env(self.warehouse, self.dlt_data),
            cwd=self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed = kill_mid_load and _kill_when_loading(process, self.dlt_data)
        out, err = process.communicate()
        seconds = time.monotonic() - started
        run = Run(number, process.returncode, seconds, None, killed_mid_load=killed)
        run.error = next((line for line in reversed(err.splitlines()) if line.strip()), "")
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if process.returncode == 0:
            reasons = [
                e.get("reason", "")
                for e in events
                if e.get("event") == "reference_path" and e.get("reason") != "the response is empty"
            ]
            run.fast_path, run.reference_reasons = not reasons, reasons
            summary = next((e for e in events if e.get("event") == "summary"), {})
            run.cursor_after = summary.get("cursor_after")
        return run

    def check(self, after_run: int, why: str) -> None:
        lost, doubled = differences(str(self.warehouse), self.simulator)
        self.checks.append(Check(after_run, why, lost, doubled))

    # -- the soak -----------------------------------------------------------------------------

    def play(self) -> None:
        plan = self.plan
        kill_pending = False
        for number in range(plan.runs):
            self.before(number)
            kill_pending = kill_pending or number == plan.kill
            run = self.run(number, kill_mid_load=kill_pending)
            kill_pending = kill_pending and not run.killed_mid_load
            self.runs.append(run)
            after_failure = number > 0 and self.runs[-2].exit_code != 0
            if run.exit_code != 0:
                pass  # the warehouse may lag behind until the next run: not yet a loss
            elif after_failure:
                self.check(number, "the run after a failure")
            elif number in plan.events():
                self.check(number, "an event")
            elif number in (0, plan.runs - 1) or (number + 1) % plan.tenth() == 0:
                self.check(number, "every tenth")
            if number == 0:
                self.dlt_sizes["after the first run"] = folder_size(self.dlt_data)
            if number == plan.tenth():
                self.dlt_sizes["after the first tenth"] = folder_size(self.dlt_data)
            _progress(run, plan.runs)
        self.dlt_sizes["at the end"] = folder_size(self.dlt_data)

    def fresh_reload(self) -> tuple[int, tuple[int, int]]:
        """The same data loaded into a new warehouse by one run: its file size, and its own
        (lost, doubled) against the simulator, to show it holds the same data."""
        fresh, fresh_dlt = self.work / "fresh.duckdb", self.work / "fresh-dlt-data"
        completed = subprocess.run(
            [*self.trigg, "run"],
            env=self.env(fresh, fresh_dlt),
            cwd=self.work,
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            raise SystemExit(f"soak: the fresh reload failed: {completed.stderr[-2000:]}")
        return database_size(fresh), differences(str(fresh), self.simulator)


def _preferred_language(customer: Any) -> str:
    """The vendor's new field, the same for a customer every time it is served."""
    return ("nb", "nn", "en")[int(customer.data["id"][-2:], 16) % 3]


def _kill_when_loading(process: subprocess.Popen[str], dlt_data: Path) -> bool:
    """SIGKILL `process` once dlt's load step has started a job of the customers' package (in
    the pipeline's `load/normalized/<load_id>/`); False if it finished before that."""
    packages = [*dlt_data.glob(f"**/{PIPELINE_NAME}/load/normalized")]
    while process.poll() is None:
        for folder in packages:
            if any(folder.glob("*/started_jobs/*")) or any(folder.glob("*/completed_jobs/*")):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
        time.sleep(0.005)
    return False


def quarantined_rows(warehouse: Path) -> int:
    """Rows of `customers_rejected` in the warehouse."""
    return duckdb_target(str(warehouse)).query(f"select count(*) from {REJECTED_TABLE}")[0][0]


def folder_size(folder: Path) -> int:
    """Bytes of the files in `folder`; links are not followed (`duckdb_extensions/` links to the
    installed extension packages, about 107 MB that are not dlt's data)."""
    files = (path for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    return sum(path.lstat().st_size for path in files)


def database_size(path: Path) -> int:
    """A DuckDB file with its write-ahead log, if any."""
    wal = path.with_name(path.name + ".wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _progress(run: Run, runs: int) -> None:
    if run.number % 10 == 0 or run.exit_code != 0:
        note = (
            " (killed mid-load)" if run.killed_mid_load else f": {run.error}" if run.error else ""
        )
        print(
            f"  run {run.number + 1}/{runs}: exit {run.exit_code}{note} in {run.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )


# -- the table -----------------------------------------------------------------------------------


def report(soak: Soak, warehouse_bytes: int, fresh_bytes: int, fresh_diff: tuple[int, int]) -> dict:
    plan, runs = soak.plan, soak.runs
    codes = Counter(run.exit_code for run in runs)
    expected_failures = {r.number for r in runs if plan.outage(r.number) or r.killed_mid_load}
    unexpected = [r.number for r in runs if r.exit_code != 0 and r.number not in expected_failures]
    outage_codes = {r.exit_code for r in runs if plan.outage(r.number)}
    repairs = [c for c in soak.checks if c.why == "the run after a failure"]
    failures_followed = sum(
        1
        for previous, run in itertools.pairwise(runs)
        if previous.exit_code != 0 and run.exit_code == 0
    )
    repaired = sum(1 for c in repairs if (c.lost, c.doubled) == (0, 0))
    end = soak.checks[-1]
    worst_lost = max(c.lost for c in soak.checks)
    worst_doubled = max(c.doubled for c in soak.checks)
    succeeded = [r for r in runs[1:] if r.exit_code == 0]
    fast = sum(1 for r in succeeded if r.fast_path)
    reasons = Counter(reason for r in succeeded for reason in r.reference_reasons)
    sizes = soak.dlt_sizes
    tenth = plan.tenth()
    first = [r.seconds for r in runs[1 : 1 + tenth]]
    last = [r.seconds for r in runs[-tenth:]]
    first_mean, last_mean = sum(first) / len(first), sum(last) / len(last)
    quarantined = quarantined_rows(soak.warehouse)
    kills = sum(r.killed_mid_load for r in runs)

    def code_name(code: int) -> str:
        return {0: "0", 1: "1", SIGKILL_EXIT: "SIGKILL"}.get(code, str(code))

    rows = [
        (
            "runs and exit codes",
            f"{len(runs)}: "
            + ", ".join(f"{code_name(c)} x{n}" for c, n in sorted(codes.items(), reverse=True))
            + f"; unexpected failures {len(unexpected)}",
            "0, except the outage hour (1) and the run killed mid-load",
            not unexpected and outage_codes <= {1} and kills == 1,
        ),
        (
            "runs after a failure that repaired everything",
            f"{repaired} of {failures_followed}",
            "all",
            repaired == failures_followed,
        ),
        (
            "rows lost: at the end (worst at any check)",
            f"{end.lost:,} ({worst_lost:,}, {len(soak.checks)} checks)",
            "0",
            worst_lost == 0,
        ),
        (
            "rows doubled: at the end (worst at any check)",
            f"{end.doubled:,} ({worst_doubled:,})",
            "0",
            worst_doubled == 0,
        ),
        (
            "successful runs on the fast path",
            f"{fast} of {len(succeeded)} ({fast / max(1, len(succeeded)):.0%})"
            + (f"; else: {_top_reason(reasons)}" if reasons else ""),
            "(measured)",
            None,
        ),
        (
            "dlt's local data: after the first run, the first tenth, at the end",
            " / ".join(_mb(sizes[k]) for k in sizes)
            + f" (end {sizes['at the end'] / sizes['after the first tenth']:.2f}x the first tenth)",
            "end <= 50 MB and <= first tenth +10%",
            sizes["at the end"] <= 50 * MB
            and sizes["at the end"] <= 1.1 * sizes["after the first tenth"],
        ),
        (
            "warehouse file against a fresh reload",
            f"{_mb(warehouse_bytes)} vs {_mb(fresh_bytes)} ({warehouse_bytes / fresh_bytes:.2f}x)",
            "<= 1.5x",
            warehouse_bytes <= 1.5 * fresh_bytes,
        ),
        (
            "time per run: first tenth, last tenth",
            f"{first_mean:.2f} s vs {last_mean:.2f} s ({last_mean / first_mean:.2f}x)",
            "<= 1.2x",
            last_mean <= 1.2 * first_mean,
        ),
        (
            "rows in customers_rejected (distinct bad records served)",
            f"{quarantined} ({len(BAD_RECORDS)})",
            "one row per distinct bad record",
            quarantined == len(BAD_RECORDS),
        ),
    ]
    span = soak.clock.utc() - (FALL_BACK - timedelta(minutes=plan.fold_first * plan.tick_minutes))
    print(
        f"\nsoak: {len(runs)} runs of `trigg run`, {soak.customers:,} customers (seed {soak.seed}),"
        f" a run every {plan.tick_minutes} simulated minutes ({span / timedelta(hours=1):.1f} h);"
        f" events at run: new field {plan.new_field + 1}, bad records {plan.bad_records + 1},"
        f" future stamp {plan.future_record + 1}, clocks back {plan.fold_first + 1}"
        f"-{plan.fold_first + plan.fold_runs}, outage {plan.outage_first + 1}"
        f"-{plan.outage_first + plan.outage_runs}, kill mid-load {plan.kill + 1}"
        f" (killed: {kills}); the fresh reload itself: lost {fresh_diff[0]}, doubled"
        f" {fresh_diff[1]}\n"
    )
    sys.stderr.flush()
    print("| what | measured | target | met |")
    print("|---|---|---|---|")
    for what, measured, target, met in rows:
        print(
            f"| {what} | {measured} | {target} | {'-' if met is None else 'yes' if met else 'NO'} |"
        )
    return {
        "plan": asdict(plan),
        "customers": soak.customers,
        "seed": soak.seed,
        "exit_codes": {code_name(c): n for c, n in codes.items()},
        "unexpected_failures": unexpected,
        "repaired": repaired,
        "failures_followed": failures_followed,
        "rows_lost": end.lost,
        "rows_doubled": end.doubled,
        "worst_lost": worst_lost,
        "worst_doubled": worst_doubled,
        "fast_path_runs": fast,
        "successful_runs": len(succeeded),
        "reference_reasons": dict(reasons),
        "dlt_data_bytes": sizes,
        "warehouse_bytes": warehouse_bytes,
        "fresh_reload_bytes": fresh_bytes,
        "first_tenth_seconds": first_mean,
        "last_tenth_seconds": last_mean,
        "quarantined_rows": quarantined,
        "killed_mid_load": kills,
        "met": {what: met for what, _, _, met in rows},
        "runs": [asdict(run) for run in runs],
        "checks": [asdict(check) for check in soak.checks],
    }


def _top_reason(reasons: Counter[str]) -> str:
    reason, count = reasons.most_common(1)[0]
    others = sum(reasons.values()) - count
    return f"{reason} ({count}x)" + (f" and {others} other(s)" if others else "")


def _mb(size: int) -> str:
    return f"{size / MB:.{1 if size >= MB else 2}f} MB"


def trigg_command() -> list[str]:
    """The installed `trigg` (the project's .venv), as cron would start it."""
    beside = Path(sys.executable).parent / "trigg"
    return [str(beside if beside.exists() else ROOT / ".venv" / "bin" / "trigg")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="runs of `trigg run` (default 60)")
    parser.add_argument("--customers", type=int, default=2000, help="the club's size at start")
    parser.add_argument("--tick-minutes", type=int, default=5, help="simulated minutes per run")
    parser.add_argument("--seed", type=int, default=20261025)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "soak")
    args = parser.parse_args(argv)
    plan = Plan.make(args.runs, args.tick_minutes)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    soak = Soak(plan, args.out, args.customers, args.seed, trigg_command())
    with soak.simulator:
        soak.play()
        warehouse_bytes = database_size(soak.warehouse)
        fresh_bytes, fresh_diff = soak.fresh_reload()
        results = report(soak, warehouse_bytes, fresh_bytes, fresh_diff)
    (args.out / "soak.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
