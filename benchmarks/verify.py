"""`trigg verify` of the whole base against a full load of the same size (issue 14).

    python benchmarks/verify.py                      # 20,000 customers, three rounds
    python benchmarks/verify.py --customers 100000   # the issue's size

Each round, back to back on the same body, each a whole process under GNU `/usr/bin/time -v`:

- `trigg run`: a full load of N customers into an empty warehouse (the baseline);
- `trigg verify`: the whole base compared with that warehouse (it finds it equal: exit 0);
- `trigg verify --repair`: after 1% of the customers changed at the source without a new
  `UpdatedAt` (it finds them, loads them and compares again: exit 0).

Targets: verify at most 1.5x the time of the full load, peak RSS at most 450 MB. The table shows
the medians of the rounds; bodies are cached in benchmarks/out/feeds/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench as benchmark  # noqa: E402
from benchmarks.bench import (  # noqa: E402
    GNU_TIME,
    SEED,
    Bench,
    Measured,
    compile_bytecode,
    feed,
    measure,
)
from pipelines.simulator import TriggSimulator  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
CHANGED_SILENTLY = "changed_silently_1pct"
"""The repair's body: one customer in 100 changed without a new `UpdatedAt` (`feeds.py`)."""
TIME_TARGET, RSS_TARGET_MB = 1.5, 450


def one_round(bench: Bench, body: Path, changed: Path, name: str) -> dict[str, Measured]:
    bench.simulator.body_file = body
    load = measure([*bench.trigg, "run"], bench.env(name))
    check = measure([*bench.trigg, "verify"], bench.env(name))
    bench.simulator.body_file = changed
    repair = measure([*bench.trigg, "verify", "--repair"], bench.env(name))
    return {"load": load, "verify": check, "repair": repair}


def differences(bench: Bench, name: str) -> dict[str, int]:
    """What `trigg verify --json` finds in warehouse `name` (not timed)."""
    found = subprocess.run(
        [*bench.trigg, "verify", "--json"], env=bench.env(name), capture_output=True, text=True
    )
    report = json.loads(found.stdout)
    return {kind: report[kind] for kind in ("missing", "stale", "differs", "newer")}


def median(rounds: list[dict[str, Measured]], step: str, field: str) -> float:
    return statistics.median(getattr(r[step], field) for r in rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT, help="where bodies and results go")
    args = parser.parse_args()
    if not GNU_TIME.exists():
        print("This benchmark needs GNU time at /usr/bin/time: apt-get install -y time")
        return 2
    benchmark.FEEDS = args.out / "feeds"
    body, changed = feed(args.customers), feed(args.customers, variant=CHANGED_SILENTLY)
    compile_bytecode()
    work = args.out / "verify"
    rounds = []
    with TriggSimulator(customers=0, seed=SEED) as simulator:
        bench = Bench(simulator, work)
        for number in range(args.rounds):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            rounds.append(one_round(bench, body, changed, f"round-{number}"))
            if number == 0:  # the repair found the changed customers, and nothing is left
                left = differences(bench, f"round-{number}")
                assert not any(left.values()), left
            print(
                f"  round {number + 1}: "
                + ", ".join(
                    f"{step} {m.wall_s:.1f} s {m.peak_rss_mb:.0f} MB"
                    for step, m in rounds[-1].items()
                ),
                flush=True,
            )
    shutil.rmtree(work, ignore_errors=True)
    with TriggSimulator(customers=0, seed=SEED) as simulator:  # what the repair had to find
        bench = Bench(simulator, work)
        simulator.body_file = body
        measure([*bench.trigg, "run"], bench.env("found"))
        simulator.body_file = changed
        found = differences(bench, "found")
    shutil.rmtree(work, ignore_errors=True)
    load_s = median(rounds, "load", "wall_s")
    size_mb = body.stat().st_size / 2**20
    print(
        f"\n{args.customers:,} customers ({size_mb:,.0f} MB of JSON), medians of {args.rounds}"
        " rounds; wall s and peak RSS MB per whole process (/usr/bin/time -v).\n"
    )
    print("| step | wall s | peak RSS MB | vs full load | target |")
    print("|---|---:|---:|---:|---|")
    for step, label in (
        ("load", "trigg run (full load, the baseline)"),
        ("verify", "trigg verify (whole base, equal)"),
        ("repair", "trigg verify --repair (1 in 100 differs)"),
    ):
        wall, rss = median(rounds, step, "wall_s"), median(rounds, step, "peak_rss_mb")
        target = f"<= {TIME_TARGET}x, <= {RSS_TARGET_MB} MB" if step == "verify" else ""
        print(f"| {label} | {wall:.1f} | {rss:,.0f} | {wall / load_s:.2f}x | {target} |")
    print(f"\nThe repair's body differs in: {found} (verify --repair left none).")
    results = {
        "customers": args.customers,
        "rounds": [{step: m.__dict__ for step, m in r.items()} for r in rounds],
        "found": found,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "verify-results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
