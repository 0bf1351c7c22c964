"""The DuckLake benchmark (issue 13): a lake after many runs, beside an analyst, an initial load.

    python benchmarks/lake.py            # small sizes, several minutes
    python benchmarks/lake.py --issue    # the issue's: 500 runs, 100,000 customers (hours)

1. **Many runs**: an initial load, then N incremental runs into a DuckLake (SQLite catalog), each
   after the simulator changed some customers, every run followed by the lake's maintenance as
   `trigg run` does it. Then the same customers loaded fresh into a new lake in one run. Compared:
   the files and bytes of the lake's newest snapshot, the files and bytes on disk, the snapshots,
   and the time of `select * from customer_overview` in an attached session (median of 5).
2. **Beside an analyst**: three incremental `trigg run`s with a separate process attached to the
   lake, querying it without pause, and three without: every exit code, and each run's wall time.
3. **Initial load**: the same body of M customers into a DuckDB file and into a DuckLake, each a
   whole `trigg run` process under GNU time (wall clock, peak RSS).

The many runs call `run_once` in this process (500 interpreter starts would measure Python, not
the lake); the other parts run the `trigg` command. Ratios are against baselines measured in the
same run. Results: benchmarks/out/lake.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench import GNU_TIME, compile_bytecode, feed, measure  # noqa: E402
from pipelines.simulator import TriggSimulator  # noqa: E402

OUT = ROOT / "benchmarks" / "out"


@dataclass
class Sizes:
    customers: int
    """In the simulator, for the many runs and beside the analyst."""
    runs: int
    changes: int
    """Customers changed before each incremental run."""
    initial: int
    """The initial load's body."""


SMALL = Sizes(customers=2_000, runs=40, changes=20, initial=10_000)
ISSUE = Sizes(customers=10_000, runs=500, changes=20, initial=100_000)

ANALYST = """
import sys, time, duckdb
connection = duckdb.connect(config={"extension_directory": sys.argv[2],
                                    "autoinstall_known_extensions": False})
connection.execute("set enable_progress_bar = false")
connection.execute(sys.argv[1])
print("attached", flush=True)
while True:
    connection.execute("select count(*), sum(points) from lake.trigg.customer_overview").fetchall()
"""


def lake_env(work: Path, name: str, simulator: TriggSimulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    env.update(
        SOURCES__TRIGG__BASE_URL=simulator.base_url,
        SOURCES__TRIGG__API_KEY=simulator.api_key,
        DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG=f"sqlite:///{work / name}.sqlite",
        DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE__BUCKET_URL=str(work / f"{name}.files"),
        DESTINATION__DUCKDB__CREDENTIALS=str(work / f"{name}.duckdb"),
        DLT_DATA_DIR=str(work / f"{name}-dlt"),
        RUNTIME__DLTHUB_TELEMETRY="false",
        PYTHONPATH=str(ROOT),
    )
    return env


def in_environment(env: dict[str, str]) -> None:
    """Make this process resolve warehouses as `trigg` would with `env`."""
    for key in [k for k in os.environ if k.startswith(("SOURCES__", "DESTINATION__"))]:
        del os.environ[key]
    os.environ.update(env)


def trigg() -> list[str]:
    installed = Path(sys.executable).parent / "trigg"
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "pipelines.cli"]


@dataclass
class LakeState:
    snapshots: int
    live_files: int
    live_mb: float
    disk_files: int
    disk_mb: float
    query_s: float


def lake_state(work: Path, name: str) -> LakeState:
    from pipelines.destinations import ducklake
    from pipelines.warehouse.lake import open_lake
    from pipelines.warehouse.maintenance import footprint

    lake = ducklake()
    with open_lake(lake) as connection:
        prints = footprint(connection)
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            connection.execute("select * from customer_overview").fetchall()
            timings.append(time.perf_counter() - started)
    files = [path for path in (work / f"{name}.files").rglob("*") if path.is_file()]
    return LakeState(
        snapshots=prints.snapshots,
        live_files=prints.data_files + prints.delete_files,
        live_mb=prints.bytes / 1e6,
        disk_files=len(files),
        disk_mb=sum(path.stat().st_size for path in files) / 1e6,
        query_s=statistics.median(timings),
    )


def many_runs(sizes: Sizes, work: Path) -> dict[str, Any]:
    from pipelines.destinations import ducklake
    from pipelines.runner import run_once
    from pipelines.trigg.settings import load_settings

    with TriggSimulator(customers=sizes.customers, seed=13) as simulator:
        in_environment(lake_env(work, "many", simulator))
        settings, lake = load_settings(), ducklake()
        run_once(settings, lake)
        started = time.monotonic()
        for run in range(sizes.runs):
            simulator.change(sizes.changes)
            run_once(settings, lake)
            if (run + 1) % 50 == 0:
                print(f"  {run + 1} runs, {time.monotonic() - started:.0f} s", flush=True)
        seconds_per_run = (time.monotonic() - started) / max(1, sizes.runs)
        after = lake_state(work, "many")
        in_environment(lake_env(work, "fresh", simulator))
        run_once(load_settings(), ducklake())
        fresh = lake_state(work, "fresh")
    return {"after_runs": asdict(after), "fresh": asdict(fresh), "seconds_per_run": seconds_per_run}


def beside_an_analyst(sizes: Sizes, work: Path) -> dict[str, Any]:
    from pipelines.destinations import ducklake
    from pipelines.duckdb_extensions import extension_directory
    from pipelines.warehouse.lake import LAKE_ALIAS, attach_sql, lake_credentials

    with TriggSimulator(customers=sizes.customers, seed=14) as simulator:
        env = lake_env(work, "analyst", simulator)
        in_environment(env)
        subprocess.run([*trigg(), "run", "--destination", "ducklake"], env=env, check=True)
        attach = attach_sql(lake_credentials(ducklake()), LAKE_ALIAS, read_only=True)
        results: dict[str, list[dict[str, float]]] = {"alone": [], "with_analyst": []}
        for round_ in range(3):
            for mode in ("alone", "with_analyst"):  # alternating, so drift hits both alike
                analyst = None
                if mode == "with_analyst":
                    analyst = subprocess.Popen(
                        [sys.executable, "-c", ANALYST, attach, extension_directory()],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    assert analyst.stdout is not None and analyst.stdout.readline()
                simulator.change(sizes.changes)
                started = time.monotonic()
                run = subprocess.run(
                    [*trigg(), "run", "--destination", "ducklake"], env=env, capture_output=True
                )
                wall = time.monotonic() - started
                if analyst is not None:
                    analyst.kill()
                    analyst.wait()
                results[mode].append({"exit": run.returncode, "wall_s": wall})
                print(f"  round {round_ + 1} {mode}: exit {run.returncode}, {wall:.1f} s")
    return results


def initial_load(sizes: Sizes, work: Path) -> dict[str, Any]:
    body = feed(sizes.initial)
    with TriggSimulator(customers=1, seed=1) as simulator:
        simulator.body_file = body
        measured = {}
        for name, args in (("duckdb", []), ("ducklake", ["--destination", "ducklake"])):
            env = lake_env(work, f"initial-{name}", simulator)
            measured[name] = asdict(measure([*trigg(), "run", *args], env))
            print(f"  initial load into {name}: {measured[name]}", flush=True)
    return measured


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def report(sizes: Sizes, results: dict[str, Any]) -> None:
    many = results["many_runs"]
    after, fresh = many["after_runs"], many["fresh"]
    print(
        f"\n### A lake after {sizes.runs} runs"
        f" ({sizes.customers:,} customers, {sizes.changes} changed before each)\n"
    )
    print("| | after the runs | fresh load | ratio |\n|---|---|---|---|")
    for key, label in (
        ("live_files", "files of the newest snapshot"),
        ("live_mb", "MB of the newest snapshot"),
        ("query_s", "select * from customer_overview (s)"),
        ("disk_files", "files on disk"),
        ("disk_mb", "MB on disk"),
        ("snapshots", "snapshots"),
    ):
        print(
            f"| {label} | {after[key]:.3f} | {fresh[key]:.3f} | {ratio(after[key], fresh[key])} |"
        )
    print(f"\nseconds per incremental run (load and maintenance): {many['seconds_per_run']:.2f}")
    beside = results["beside_an_analyst"]
    alone = [r["wall_s"] for r in beside["alone"]]
    shared = [r["wall_s"] for r in beside["with_analyst"]]
    exits = [r["exit"] for mode in beside.values() for r in mode]
    print("\n### Runs beside an analyst attached to the lake\n")
    print(
        f"exit codes {exits}; median wall {statistics.median(alone):.1f} s alone,"
        f" {statistics.median(shared):.1f} s with the analyst"
        f" ({ratio(statistics.median(shared), statistics.median(alone))})"
    )
    initial = results["initial_load"]
    lake, file = initial["ducklake"]["wall_s"], initial["duckdb"]["wall_s"]
    print(f"\n### Initial load of {sizes.initial:,} customers\n")
    print(
        f"DuckDB file {file:.1f} s, DuckLake {lake:.1f} s ({ratio(lake, file)});"
        f" peak RSS {initial['duckdb']['peak_rss_mb']:.0f} MB and"
        f" {initial['ducklake']['peak_rss_mb']:.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issue", action="store_true", help="the issue's sizes (hours)")
    parser.add_argument("--runs", type=int, help="override the number of incremental runs")
    parser.add_argument("--customers", type=int, help="override the simulator's customers")
    parser.add_argument("--initial", type=int, help="override the initial load's customers")
    parser.add_argument("--out", type=Path, default=OUT, help="where results go")
    args = parser.parse_args()
    if not GNU_TIME.exists():
        print("This benchmark needs GNU time: apt-get install -y time", file=sys.stderr)
        return 2
    sizes = ISSUE if args.issue else SMALL
    sizes = Sizes(
        args.customers or sizes.customers,
        args.runs if args.runs is not None else sizes.runs,
        min(sizes.changes, args.customers or sizes.changes),
        args.initial or sizes.initial,
    )
    compile_bytecode()
    work = args.out / "lake-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = {
        "sizes": asdict(sizes),
        "many_runs": many_runs(sizes, work),
        "beside_an_analyst": beside_an_analyst(sizes, work),
        "initial_load": initial_load(sizes, work),
    }
    report(sizes, results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lake.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
