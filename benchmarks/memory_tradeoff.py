"""Issue 5's two targets against each other: time within 2x the ceiling, peak RSS under 300 MB.

    python benchmarks/memory_tradeoff.py            # 20,000 customers, about two minutes
    python benchmarks/memory_tradeoff.py --issue    # 100,000 customers, about five minutes

In one run, on one body, each a whole process under GNU `/usr/bin/time -v`:

- the DuckDB-native ceiling (`ceiling.py`);
- `trigg run` as shipped: DuckDB on both cores;
- `trigg run` with DuckDB on one thread, small buffer pools and glibc's allocator held to two
  arenas (`low_memory_trigg.py`): the cheapest memory this design reaches;
- the fast path's structure detection alone (`detect_only.py`) with one and with two threads: the
  memory a DuckDB JSON reader takes per thread, before any data is kept.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench as benchmark  # noqa: E402
from benchmarks.bench import GNU_TIME, Bench, Measured, feed, measure, ratio  # noqa: E402
from pipelines.simulator import TriggSimulator  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
LEAN_ALLOCATOR = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}
"""glibc: two arenas instead of one per thread, and big blocks from mmap, so that freed memory
goes back to the system instead of staying with the thread that freed it."""


def run(customers: int, out: Path) -> list[tuple[str, Measured, str]]:
    benchmark.FEEDS = out / "feeds"
    body = feed(customers)
    work = out / "tradeoff"
    work.mkdir(parents=True, exist_ok=True)
    with TriggSimulator(customers=0, seed=1) as simulator:
        bench = Bench(simulator, work)
        ceiling = bench.ceiling("ceiling", body)
        shipped = fresh_run(bench, "shipped", body, [*bench.trigg, "run"], {})
        lean = [sys.executable, str(ROOT / "benchmarks" / "low_memory_trigg.py"), "run"]
        one_thread = fresh_run(bench, "one-thread", body, lean, LEAN_ALLOCATOR)
        detect = [sys.executable, str(ROOT / "benchmarks" / "detect_only.py"), str(body)]
        detect_one = measure([*detect, "1"], bench.env("detect"))
        detect_two = measure([*detect, "2"], bench.env("detect"))

    def versus(measured: Measured) -> str:
        share = ratio(measured.wall_s, ceiling.wall_s)
        return f"{share:.2f}x ceiling" if share is not None else "-"

    return [
        ("DuckDB-native ceiling", ceiling, "1.00x ceiling"),
        ("trigg run as shipped (DuckDB on 2 threads)", shipped, versus(shipped)),
        ("trigg run, DuckDB on 1 thread, small pools, 2 arenas", one_thread, versus(one_thread)),
        ("structure detection alone, 1 thread", detect_one, ""),
        ("structure detection alone, 2 threads", detect_two, ""),
    ]


def fresh_run(
    bench: Bench, name: str, body: Path, command: list[str], extra: dict[str, str]
) -> Measured:
    """An initial load into an empty warehouse of its own."""
    for leftover in bench.work.glob(f"{name}*"):  # the warehouse and dlt's working folder
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    bench.simulator.body_file = body
    return measure(command, {**bench.env(name), **extra})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issue", action="store_true", help="100,000 customers (the issue's)")
    parser.add_argument("--customers", type=int, help="any other number of customers")
    parser.add_argument("--out", type=Path, default=OUT, help="where bodies and warehouses go")
    args = parser.parse_args()
    if not GNU_TIME.exists():
        print("This benchmark needs GNU time at /usr/bin/time", file=sys.stderr)
        return 2
    customers = args.customers or (100_000 if args.issue else 20_000)
    benchmark.compile_bytecode()
    rows = run(customers, args.out)
    print(f"\n{customers:,} customers; wall s and peak RSS MB per whole process.\n")
    print("| measurement | wall s | peak RSS MB | ratio |")
    print("|---|---:|---:|---|")
    for name, measured, note in rows:
        wall = f"{measured.wall_s:.1f}" if measured.wall_s is not None else "-"
        rss = f"{measured.peak_rss_mb:,.0f}" if measured.peak_rss_mb is not None else "-"
        print(f"| {name} | {wall} | {rss} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
