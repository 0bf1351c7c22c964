"""The performance benchmark (issue 12): `trigg run` against DuckDB's ceiling, in one table.

    python benchmarks/bench.py                   # 20,000 and 50,000 customers, a few minutes
    python benchmarks/bench.py --issue           # the issue's sizes (about an hour, ~25 GB disk)
    python benchmarks/bench.py --issue --million # and 1,000,000 customers (a 4.8 GB body)

Every measurement is a whole process under GNU `/usr/bin/time -v` (wall clock, peak RSS), on a
body the simulator serves from a pre-rendered file (its own cost stays out of the timings), and
every ratio is against a baseline measured in the same run:

- throughput: the shared DuckDB-native ceiling (`ceiling.py` + `ceiling.sql`, copied from the
  project's shared folder) and `trigg run` on the same body, back to back, at each size;
- memory: `trigg run`'s peak RSS at each size, and against the smallest size's;
- unusual bodies (a field or a list the spec does not list, one bad record, 1% bad records,
  type drift, the object and single envelope shapes, `pii = pseudonymize` and `drop`) against
  the plain body of the same size;
- incremental cost: the same changed customers into a small and a large warehouse (the large
  one is the largest initial load's);
- fixed cost: a run with nothing new, start-up included.

Bodies are cached in benchmarks/out/feeds/; results go to benchmarks/out/results.json as well.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field
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
RSS_CAP_MB = 12_000
"""A measured process is stopped past this peak (the machine has 24 GB)."""
PII_KEY = "benchmark-pseudonym-key"

THROUGHPUT_TARGET = 2.0
RSS_TARGET_MB = 450
FLAT_TARGET = 1.2
VARIANT_TARGET = 1.3
INCREMENTAL_TARGET = 1.3
NOTHING_NEW_TARGET_S = 3.0

VARIANTS = (
    "unknown_field",
    "new_list",
    "one_bad_record",
    "bad_records_1pct",
    "type_drift",
    "object",
    "pii_pseudonymize",
    "pii_drop",
)
"""The unusual bodies measured at each variant size (`single` is measured at one customer)."""
PII_MODES = {"pii_pseudonymize": "pseudonymize", "pii_drop": "drop"}


@dataclass
class Sizes:
    initial: tuple[int, ...]
    """Initial loads: the ceiling and `trigg run` at each; the first is the memory baseline (a
    small body is held whole by DuckDB: below about 20,000 customers memory is not yet flat)."""
    variants: tuple[int, ...]
    changes: int
    warehouse_small: int
    warehouse_large: int
    """Built by the initial load of this size when it is one of `initial`."""


SMALL = Sizes((20_000, 50_000), (2_000,), 200, 2_000, 50_000)
ISSUE = Sizes((20_000, 100_000, 200_000), (20_000, 100_000), 1_000, 10_000, 200_000)
MILLION = 1_000_000


@dataclass
class Measured:
    wall_s: float | None
    peak_rss_mb: float | None
    stopped: str = ""
    """Why the process was stopped before it finished (a cap), or empty."""
    cpu_s: float | None = None


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
    wall = _seconds(_field(err, "Elapsed (wall clock) time"))
    cpu = float(_field(err, "User time (seconds)")) + float(_field(err, "System time (seconds)"))
    rss = int(_field(err, "Maximum resident set size (kbytes)")) / 1024
    return Measured(wall, rss, cpu_s=cpu)


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


def simulator_version() -> str:
    """A short hash of the simulator's data and feed code: a cached body written by another
    version of it is written again (a changes feed must change customers a body created)."""
    sources = [ROOT / "pipelines" / "simulator" / name for name in ("data.py", "feeds.py")]
    return hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:8]


def feed(customers: int, seed: int = SEED, variant: str = "plain") -> Path:
    """A cached body of `customers` simulated customers (the same first customers at any size)."""
    FEEDS.mkdir(parents=True, exist_ok=True)
    suffix = "" if variant == "plain" else f"-{variant}"
    path = FEEDS / f"feed-{customers}-{seed}-{simulator_version()}{suffix}.json"
    if not path.exists():
        print(f"  writing a body of {customers:,} customers ({variant}) ...", flush=True)
        partial = path.with_suffix(".partial")
        write_feed(partial, customers, seed, NOW, variant)
        partial.rename(path)
    return path


def changes_feed(changes: int) -> Path:
    FEEDS.mkdir(parents=True, exist_ok=True)
    path = FEEDS / f"changes-{changes}-{SEED}-{simulator_version()}.json"
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

    def env(self, name: str, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))
        }
        env.update(
            SOURCES__TRIGG__BASE_URL=self.simulator.base_url,
            SOURCES__TRIGG__API_KEY=self.simulator.api_key,
            SOURCES__TRIGG__INITIAL_SINCE="20000101T0000",
            DESTINATION__DUCKDB__CREDENTIALS=str(self.work / f"{name}.duckdb"),
            DLT_DATA_DIR=str(self.work / f"{name}-dlt"),
            RUNTIME__DLTHUB_TELEMETRY="false",
            PYTHONPATH=str(ROOT),
            **extra,
        )
        return env

    def trigg_run(self, name: str, body: Path, **extra: str) -> Measured:
        self.simulator.body_file = body
        return measure([*self.trigg, "run"], self.env(name, **extra))

    def ceiling(self, name: str, body: Path) -> Measured:
        target = self.work / f"{name}.duckdb"
        script = str(ROOT / "benchmarks" / "ceiling.py")
        measured = measure([sys.executable, script, str(body), str(target)], self.env(name))
        self.forget(name)
        return measured

    def forget(self, name: str) -> None:
        """Delete a warehouse and its dlt folder (disk is the limit at the big sizes)."""
        for path in (self.work / f"{name}.duckdb", self.work / f"{name}.duckdb.wal"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.work / f"{name}-dlt", ignore_errors=True)


@dataclass
class Row:
    measurement: str
    customers: int
    body_mb: float
    measured: Measured
    ratio: float | None = None
    against: str = ""
    target: str = ""
    met: bool | None = None
    extra: dict[str, object] = field(default_factory=dict)


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return value / base


def mb(path: Path) -> float:
    return path.stat().st_size / 2**20


def run(sizes: Sizes, keep: bool, out: Path, variants: tuple[str, ...] = VARIANTS) -> list[Row]:
    global FEEDS
    FEEDS = out / "feeds"
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows: list[Row] = []
    with TriggSimulator(customers=0, seed=SEED) as simulator:
        bench = Bench(simulator, work)
        plain: dict[int, Measured] = {}
        for customers in sizes.initial:
            body = feed(customers)
            print(f"initial load: {customers:,} customers, {mb(body):,.0f} MB", flush=True)
            ceiling = bench.ceiling(f"ceiling-{customers}", body)
            trigg = plain[customers] = bench.trigg_run(f"initial-{customers}", body)
            throughput = ratio(trigg.wall_s, ceiling.wall_s)
            rows.append(Row("ceiling (shared SQL)", customers, mb(body), ceiling, 1.0))
            rows.append(
                Row(
                    "trigg run, initial load",
                    customers,
                    mb(body),
                    trigg,
                    throughput,
                    "ceiling",
                    f"<= {THROUGHPUT_TARGET:g}x",
                    throughput is not None and throughput <= THROUGHPUT_TARGET,
                )
            )
            if customers not in (sizes.warehouse_small, sizes.warehouse_large):
                bench.forget(f"initial-{customers}")
        baseline = plain[sizes.initial[0]]
        for customers in sizes.initial:
            flat = ratio(plain[customers].peak_rss_mb, baseline.peak_rss_mb)
            rows.append(
                Row(
                    "trigg run, memory",
                    customers,
                    mb(feed(customers)),
                    plain[customers],
                    flat,
                    f"peak of {sizes.initial[0]:,}",
                    f"<= {RSS_TARGET_MB} MB, <= {FLAT_TARGET:g}x",
                    (plain[customers].peak_rss_mb or 0) <= RSS_TARGET_MB
                    and (flat is None or flat <= FLAT_TARGET),
                )
            )

        print("unusual bodies", flush=True)
        one = bench.trigg_run("single-plain", feed(1))
        for customers in sizes.variants:
            base = plain.get(customers) or bench.trigg_run(f"plain-{customers}", feed(customers))
            bench.forget(f"plain-{customers}")
            for variant in variants:
                pii = PII_MODES.get(variant)
                body = feed(customers) if pii else feed(customers, variant=variant)
                extra = (
                    {"SOURCES__TRIGG__PII": pii, "SOURCES__TRIGG__PII_KEY": PII_KEY} if pii else {}
                )
                measured = bench.trigg_run(f"{variant}-{customers}", body, **extra)
                bench.forget(f"{variant}-{customers}")
                rows.append(variant_row(variant, customers, mb(body), measured, base))
        single = bench.trigg_run("single", feed(1, variant="single"))
        rows.append(variant_row("single", 1, mb(feed(1, variant="single")), single, one))

        print("incremental cost", flush=True)
        for size in (sizes.warehouse_small, sizes.warehouse_large):
            if size not in sizes.initial:
                bench.trigg_run(f"initial-{size}", feed(size))
        changes = changes_feed(sizes.changes)
        into_small = bench.trigg_run(f"initial-{sizes.warehouse_small}", changes)
        into_large = bench.trigg_run(f"initial-{sizes.warehouse_large}", changes)
        incremental = ratio(into_large.wall_s, into_small.wall_s)
        rows.append(
            Row(
                f"{sizes.changes:,} changes into {sizes.warehouse_small:,}",
                sizes.changes,
                mb(changes),
                into_small,
            )
        )
        rows.append(
            Row(
                f"{sizes.changes:,} changes into {sizes.warehouse_large:,}",
                sizes.changes,
                mb(changes),
                into_large,
                incremental,
                f"into {sizes.warehouse_small:,}",
                f"<= {INCREMENTAL_TARGET:g}x",
                incremental is not None and incremental <= INCREMENTAL_TARGET,
            )
        )
        empty = work / "empty.json"
        empty.write_text("[]")
        nothing = bench.trigg_run(f"initial-{sizes.warehouse_small}", empty)
        rows.append(
            Row(
                "nothing new",
                0,
                0.0,
                nothing,
                target=f"< {NOTHING_NEW_TARGET_S:g} s",
                met=(nothing.wall_s or 0) < NOTHING_NEW_TARGET_S,
            )
        )
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def variant_row(
    variant: str, customers: int, body_mb: float, measured: Measured, plain: Measured
) -> Row:
    against = ratio(measured.wall_s, plain.wall_s)
    return Row(
        f"trigg run, {variant.replace('_', ' ')}",
        customers,
        body_mb,
        measured,
        against,
        "plain body",
        f"<= {VARIANT_TARGET:g}x, <= {RSS_TARGET_MB} MB",
        against is not None
        and against <= VARIANT_TARGET
        and (measured.peak_rss_mb or 0) <= RSS_TARGET_MB,
    )


def print_table(rows: list[Row]) -> None:
    print(
        "\nWall s, CPU s (user + system) and peak RSS MB per whole process (/usr/bin/time -v),"
        " every ratio against a baseline measured in this run.\n"
    )
    columns = ["measurement", "customers", "body MB", "wall s", "CPU s", "peak RSS MB"]
    print("| " + " | ".join([*columns, "ratio", "target", "met"]) + " |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|")
    for row in rows:
        m = row.measured
        wall = f"{m.wall_s:.1f}" if m.wall_s is not None else m.stopped or "-"
        cpu = f"{m.cpu_s:.1f}" if m.cpu_s is not None else "-"
        rss = f"{m.peak_rss_mb:,.0f}" if m.peak_rss_mb is not None else "-"
        against = f"{row.ratio:.2f}x {row.against}".strip() if row.ratio is not None else "-"
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        cells = [
            row.measurement,
            f"{row.customers:,}",
            f"{row.body_mb:,.0f}" if row.body_mb >= 1 else f"{row.body_mb:.2f}",
            wall,
            cpu,
            rss,
            against,
            row.target,
            met,
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issue", action="store_true", help="the issue's sizes (slow)")
    parser.add_argument("--million", action="store_true", help="add 1,000,000 customers (~5 GB)")
    parser.add_argument("--customers", type=int, help="one size for everything (a smoke test)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses in out/work")
    parser.add_argument("--out", type=Path, default=OUT, help="where bodies and results go")
    parser.add_argument(
        "--variants",
        type=lambda text: tuple(text.split(",")),
        default=VARIANTS,
        help=f"the unusual bodies to measure, comma-separated (default: all, {','.join(VARIANTS)})",
    )
    args = parser.parse_args()
    if unknown := set(args.variants) - set(VARIANTS):
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    if not GNU_TIME.exists():
        print(
            "This benchmark needs GNU time at /usr/bin/time: apt-get install -y time",
            file=sys.stderr,
        )
        return 2
    sizes = ISSUE if args.issue else SMALL
    if args.million:
        sizes = Sizes((*sizes.initial, MILLION), sizes.variants, 1_000, 10_000, MILLION)
    if args.customers:
        n = args.customers
        sizes = Sizes((n,), (n,), max(1, n // 4), max(2, n // 2), n)
    compile_bytecode()
    rows = run(sizes, args.keep, args.out, args.variants)
    print_table(rows)
    results = {"sizes": asdict(sizes), "rows": [asdict(row) for row in rows]}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
