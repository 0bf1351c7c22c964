"""The performance benchmark (issue 5): `trigg run` against DuckDB's own ceiling and dlt's defaults.

    python benchmarks/bench.py             # small sizes, a few minutes
    python benchmarks/bench.py --issue     # the issue's sizes (about an hour, ~15 GB of disk)

Every measurement is a whole process under GNU `/usr/bin/time -v` (wall clock, peak RSS), on a
body the simulator serves from a pre-rendered file (its own cost stays out of the timings):

- initial load: the DuckDB-native ceiling (`ceiling.py`), dlt with defaults (`dlt_defaults.py`,
  stopped at 10x trigg's time), and `trigg run`, on the same N customers;
- memory flatness: `trigg run`'s peak RSS on a small and a ten times larger initial load;
- incremental scaling: 1,000 changed customers merged into a small and a large warehouse (the
  large one built by the fast path in chunks);
- fixed cost: a run with nothing new, start-up included.

Bodies are cached in benchmarks/out/feeds/; results go to benchmarks/out/results.json as well.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.simulator import TriggSimulator  # noqa: E402
from pipelines.simulator.feeds import write_changes, write_feed  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
FEEDS = OUT / "feeds"
GNU_TIME = Path("/usr/bin/time")
NOW = datetime(2026, 11, 27, 12, 0, 0)
SEED = 20261127
CHUNK = 200_000
"""The large warehouse is built from bodies of at most this many customers."""
RSS_CAP_MB = 12_000
"""dlt's defaults are stopped past this peak (the machine has 24 GB)."""


@dataclass
class Sizes:
    initial: int
    flat_small: int
    flat_large: int
    warehouse_small: int
    warehouse_large: int
    changes: int = 1_000


SMALL = Sizes(
    initial=20_000,
    flat_small=5_000,
    flat_large=50_000,
    warehouse_small=10_000,
    warehouse_large=100_000,
)
ISSUE = Sizes(
    initial=100_000,
    flat_small=20_000,
    flat_large=200_000,
    warehouse_small=10_000,
    warehouse_large=1_000_000,
)


@dataclass
class Measured:
    wall_s: float | None
    peak_rss_mb: float | None
    stopped: str = ""
    """Why the process was stopped before it finished (a cap), or empty."""


def measure(command: list[str], env: dict[str, str], timeout: float | None = None) -> Measured:
    """Run `command` under /usr/bin/time -v; stop it (and say so) past `timeout` or the RSS cap."""
    started = time.monotonic()
    process = subprocess.Popen(
        [str(GNU_TIME), "-v", *command],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    peak = 0.0
    stopped = ""
    while process.poll() is None:
        peak = max(peak, _tree_rss_mb(process.pid))
        elapsed = time.monotonic() - started
        if timeout is not None and elapsed > timeout:
            stopped = f"stopped after {elapsed:.0f} s"
        elif peak > RSS_CAP_MB:
            stopped = f"stopped at {peak:.0f} MB"
        if stopped:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return Measured(None, peak, stopped)
        time.sleep(0.2)
    _, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{err[-3000:]}")
    wall = _field(err, "Elapsed (wall clock) time")
    rss = _field(err, "Maximum resident set size (kbytes)")
    return Measured(_seconds(wall), int(rss) / 1024)


def _field(report: str, name: str) -> str:
    line = next(line for line in report.splitlines() if line.strip().startswith(name))
    return line.rsplit(": ", 1)[1].strip()


def _seconds(clock: str) -> float:
    parts = [float(part) for part in clock.split(":")]
    return sum(part * 60**power for power, part in enumerate(reversed(parts)))


def _tree_rss_mb(pid: int) -> float:
    """The largest current RSS in the process tree under `pid` (for the caps only)."""
    largest, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        rss = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")), 0)
        largest = max(largest, int(rss) / 1024)
        pending.extend(int(child) for child in children)
    return largest


def compile_bytecode() -> None:
    """Measure the command as installed (uv compiles bytecode, see pyproject.toml), not Python
    compiling dlt's sources at every start, as it does where it may not write its cache
    (PYTHONDONTWRITEBYTECODE): that costs every process about 1.3 s."""
    paths = sysconfig.get_paths()
    for folder in sorted({paths["purelib"], paths["platlib"], str(ROOT / "pipelines")}):
        compileall.compile_dir(folder, quiet=1, workers=0)


def feed(customers: int, seed: int = SEED) -> Path:
    """A cached body of `customers` simulated customers."""
    FEEDS.mkdir(parents=True, exist_ok=True)
    path = FEEDS / f"feed-{customers}-{seed}.json"
    if not path.exists():
        print(f"  writing a body of {customers:,} customers ...", flush=True)
        partial = path.with_suffix(".partial")
        write_feed(partial, customers, seed, NOW)
        partial.rename(path)
    return path


def changes_feed(changes: int) -> Path:
    FEEDS.mkdir(parents=True, exist_ok=True)
    path = FEEDS / f"changes-{changes}-{SEED}.json"
    if not path.exists():
        write_changes(path, changes, SEED, NOW)
    return path


class Bench:
    def __init__(self, simulator: TriggSimulator, work: Path) -> None:
        self.simulator = simulator
        self.work = work
        self.trigg = [str(Path(sys.executable).parent / "trigg")]
        if not Path(self.trigg[0]).exists():
            self.trigg = [sys.executable, "-m", "pipelines.cli"]

    def env(self, name: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))
        }
        env.update(
            SOURCES__TRIGG__BASE_URL=self.simulator.base_url,
            SOURCES__TRIGG__API_KEY=self.simulator.api_key,
            DESTINATION__DUCKDB__CREDENTIALS=str(self.work / f"{name}.duckdb"),
            DLT_DATA_DIR=str(self.work / f"{name}-dlt"),
            RUNTIME__DLTHUB_TELEMETRY="false",
            PYTHONPATH=str(ROOT),
        )
        return env

    def trigg_run(self, name: str, body: Path) -> Measured:
        self.simulator.body_file = body
        return measure([*self.trigg, "run"], self.env(name))

    def ceiling(self, name: str, body: Path) -> Measured:
        target = self.work / f"{name}.duckdb"
        target.unlink(missing_ok=True)
        script = str(ROOT / "benchmarks" / "ceiling.py")
        return measure([sys.executable, script, str(body), str(target)], self.env(name))

    def dlt_defaults(self, name: str, body: Path, timeout: float) -> Measured:
        self.simulator.body_file = body
        env = self.env(name)
        script = str(ROOT / "benchmarks" / "dlt_defaults.py")
        target = str(self.work / f"{name}.duckdb")
        return measure(
            [sys.executable, script, self.simulator.base_url, self.simulator.api_key, target],
            env,
            timeout=timeout,
        )

    def build(self, name: str, customers: int) -> None:
        """A warehouse of `customers` customers, loaded by the fast path in chunks."""
        done, seed = 0, SEED
        while done < customers:
            size = min(CHUNK, customers - done)
            measured = self.trigg_run(name, feed(size, seed))
            print(f"  built {name}: +{size:,} customers in {measured.wall_s:.1f} s", flush=True)
            done, seed = done + size, seed + 1


def ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base == 0:
        return "-"
    return f"{value / base:.2f}x"


def run(sizes: Sizes, keep: bool, out: Path) -> dict[str, object]:
    global FEEDS
    FEEDS = out / "feeds"
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: dict[str, object] = {"sizes": asdict(sizes)}
    with TriggSimulator(customers=0, seed=SEED) as simulator:
        bench = Bench(simulator, work)
        body = feed(sizes.initial)
        size_mb = body.stat().st_size / 2**20
        print(f"initial load: {sizes.initial:,} customers, {size_mb:,.0f} MB", flush=True)
        ceiling = bench.ceiling("ceiling", body)
        trigg = bench.trigg_run("initial", body)
        cap = 10 * (trigg.wall_s or 1)
        defaults = bench.dlt_defaults("defaults", body, timeout=cap)

        print("memory flatness", flush=True)
        flat_small = bench.trigg_run("flat-small", feed(sizes.flat_small))
        flat_large = bench.trigg_run("flat-large", feed(sizes.flat_large))

        print("incremental scaling", flush=True)
        bench.build("small", sizes.warehouse_small)
        bench.build("large", sizes.warehouse_large)
        changes = changes_feed(sizes.changes)
        into_small = bench.trigg_run("small", changes)
        into_large = bench.trigg_run("large", changes)
        empty = work / "empty.json"
        empty.write_text("[]")
        nothing_new = bench.trigg_run("small", empty)

    results.update(
        initial={
            "ceiling": asdict(ceiling),
            "dlt_defaults": asdict(defaults),
            "trigg": asdict(trigg),
        },
        flatness={"small": asdict(flat_small), "large": asdict(flat_large)},
        incremental={"small": asdict(into_small), "large": asdict(into_large)},
        nothing_new=asdict(nothing_new),
        body_mb=size_mb,
    )
    print_table(
        sizes,
        size_mb,
        ceiling,
        defaults,
        trigg,
        flat_small,
        flat_large,
        into_small,
        into_large,
        nothing_new,
    )
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return results


def print_table(
    sizes: Sizes,
    size_mb: float,
    ceiling: Measured,
    defaults: Measured,
    trigg: Measured,
    flat_small: Measured,
    flat_large: Measured,
    into_small: Measured,
    into_large: Measured,
    nothing_new: Measured,
) -> None:
    def wall(m: Measured) -> str:
        return f"{m.wall_s:.1f}" if m.wall_s is not None else f"> {10 * (trigg.wall_s or 0):.0f}"

    def rss(m: Measured) -> str:
        return f"{m.peak_rss_mb:,.0f}" if m.peak_rss_mb is not None else "-"

    defaults_vs = ">10x" if defaults.wall_s is None else ratio(defaults.wall_s, trigg.wall_s)
    rows = [
        (
            "DuckDB-native ceiling (read_json + UNNEST)",
            f"{sizes.initial:,}",
            wall(ceiling),
            rss(ceiling),
            "1.00x ceiling",
        ),
        (
            "dlt with defaults",
            f"{sizes.initial:,}",
            wall(defaults),
            rss(defaults),
            f"trigg is {defaults_vs} faster"
            + (f" ({defaults.stopped})" if defaults.stopped else ""),
        ),
        (
            "trigg run (initial load)",
            f"{sizes.initial:,}",
            wall(trigg),
            rss(trigg),
            f"{ratio(trigg.wall_s, ceiling.wall_s)} ceiling (target <= 2x)",
        ),
        (
            "trigg run, memory: small body",
            f"{sizes.flat_small:,}",
            wall(flat_small),
            rss(flat_small),
            "",
        ),
        (
            "trigg run, memory: 10x body",
            f"{sizes.flat_large:,}",
            wall(flat_large),
            rss(flat_large),
            f"{ratio(flat_large.peak_rss_mb, flat_small.peak_rss_mb)} peak RSS"
            " (target <= 1.2x, < 300 MB)",
        ),
        (
            f"trigg run, {sizes.changes:,} changes into {sizes.warehouse_small:,}",
            f"{sizes.changes:,}",
            wall(into_small),
            rss(into_small),
            "",
        ),
        (
            f"trigg run, {sizes.changes:,} changes into {sizes.warehouse_large:,}",
            f"{sizes.changes:,}",
            wall(into_large),
            rss(into_large),
            f"{ratio(into_large.wall_s, into_small.wall_s)} time (target <= 2x)",
        ),
        ("trigg run, nothing new", "0", wall(nothing_new), rss(nothing_new), "target < 3 s wall"),
    ]
    print(
        f"\nBody of the initial load: {size_mb:,.0f} MB of JSON. Wall s and peak RSS MB per"
        " whole process (/usr/bin/time -v).\n"
    )
    print("| measurement | customers | wall s | peak RSS MB | ratio |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issue", action="store_true", help="the issue's sizes (slow)")
    parser.add_argument("--customers", type=int, help="override the initial load's size")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses in out/work")
    parser.add_argument("--out", type=Path, default=OUT, help="where bodies and results go")
    args = parser.parse_args()
    if not GNU_TIME.exists():
        print(
            "This benchmark needs GNU time at /usr/bin/time: apt-get install -y time",
            file=sys.stderr,
        )
        return 2
    sizes = ISSUE if args.issue else SMALL
    if args.customers:
        sizes = Sizes(
            args.customers,
            max(1, args.customers // 4),
            args.customers,
            max(1, args.customers // 2),
            args.customers,
            max(1, args.customers // 10),
        )
    compile_bytecode()
    results = run(sizes, args.keep, args.out)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
