"""The `trigg` command: `run` for schedulers, `status` for people and monitors, `verify` to prove
the warehouse equals the API (and repair it), `sql` for analysts, `maintain` for a DuckLake's
upkeep, `demo` for a first look, `simulator` for notebooks.

Failures print one sentence on stderr and exit non-zero; `--verbose` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.trigg.events import event

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DIFFERENCES = 3  # trigg verify found customers where the warehouse differs from the API
EXIT_RUN_IN_PROGRESS = 75  # see pipelines.trigg.errors.RunInProgress

ARROW_POOL_VARIABLE, ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL", "system"
"""pyarrow's own allocator (mimalloc) keeps the memory dlt's normalizer frees while it rewrites
parquet files, and the load that follows needs it again: the system allocator hands it back.
About 55 MB less peak for 100,000 customers at the same speed. pyarrow reads the variable when it
first allocates, so it is set before anything imports pyarrow; a value already set wins."""


def _common_flags(default: Any) -> argparse.ArgumentParser:
    """`-v` and `--log-format`, accepted before and after the command name. The command's copy
    has no defaults (`SUPPRESS`), so it never undoes a flag given before the command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="show tracebacks and dlt's log",
    )
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default("text"),
        help="json: one JSON object per event on stdout (run start, request, retries, load,"
        " summary), for log shippers; default: human-readable",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_flags(default=lambda _: argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="trigg",
        parents=[_common_flags(default=lambda value: value)],
        description="Load Trigg loyalty customers incrementally into DuckDB with dlt.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", parents=[common], help="one incremental run (what a scheduler calls)"
    )
    run.add_argument(
        "--since",
        metavar="WHEN",
        help="ask for changes since WHEN (20240101T2210, 2024-01-01 or an ISO datetime, in the"
        " API's time zone), sent as given; default: the stored cursor minus the lookback, or for"
        " a first run initial_since, else every customer (a full backfill)",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="fail the run (and load nothing) if any record would be quarantined",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="drop the loaded tables and the cursor, then reload from initial_since (unset:"
        " everything); customer_versions, the history, is kept (needed to switch"
        " sources.trigg.pii on an existing warehouse)",
    )
    _destination_flag(run)
    run.set_defaults(handler=_run)

    verify = commands.add_parser(
        "verify",
        parents=[common],
        help="compare every customer the API sends with the warehouse; exit 3 if any differs",
    )
    verify.add_argument(
        "--since",
        metavar="WHEN",
        help="compare the customers changed since WHEN (as for run); default: where the"
        " warehouse begins (the first run's since), i.e. the whole base",
    )
    verify.add_argument(
        "--repair",
        action="store_true",
        help="load the differing customers from the API's answer (the cursor stays), then"
        " compare again",
    )
    verify.add_argument(
        "--json", action="store_true", help="print JSON, with every differing customer's id"
    )
    _destination_flag(verify)
    verify.set_defaults(handler=_verify)

    sql = commands.add_parser(
        "sql",
        parents=[common],
        help="query the warehouse (read-only; the dataset is the default schema); without SQL,"
        " a session reading ;-terminated statements from stdin",
    )
    sql.add_argument("query", nargs="?", metavar="SQL", help="the query; omit for a session")
    sql.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table (default), csv (a header line, then one line per row) or json (one JSON"
        " array of row objects per statement, on one line)",
    )
    _destination_flag(sql)
    sql.set_defaults(handler=_sql)

    maintain = commands.add_parser(
        "maintain",
        parents=[common],
        help="a DuckLake's maintenance now (every run into a DuckLake does it after its load)",
    )
    _destination_flag(maintain, default="ducklake")
    maintain.set_defaults(handler=_maintain)

    demo = commands.add_parser(
        "demo", parents=[common], help="simulator, initial and incremental load, example queries"
    )
    demo.add_argument("--customers", type=int, default=300, metavar="N")
    demo.add_argument("--changes", type=int, default=40, metavar="N")
    demo.add_argument("--warehouse", default=None, metavar="PATH", help="default trigg_demo.duckdb")
    demo.add_argument(
        "--destination",
        choices=("duckdb", "ducklake"),
        default="duckdb",
        help="ducklake: a DuckLake (trigg_demo.sqlite and trigg_demo.files/) instead of a file",
    )
    demo.set_defaults(handler=_demo)

    status = commands.add_parser(
        "status",
        parents=[common],
        help="cursor, last run, freshness lag, rows per table (reads the warehouse only)",
    )
    status.add_argument("--json", action="store_true", help="print JSON, for machines")
    status.add_argument(
        "--warehouse",
        default=None,
        metavar="PATH",
        help="the DuckDB file; default DESTINATION__DUCKDB__CREDENTIALS or trigg_customers.duckdb",
    )
    status.add_argument(
        "--destination",
        choices=("duckdb", "ducklake"),
        default=None,
        help="ducklake: the DuckLake configured by DESTINATION__DUCKLAKE__CREDENTIALS__*",
    )
    status.set_defaults(handler=_status)

    simulator = commands.add_parser(
        "simulator", parents=[common], help="serve the simulated Trigg API until Ctrl-C"
    )
    simulator.add_argument("--port", type=int, default=8765, metavar="P")
    simulator.add_argument("--customers", type=int, default=1000, metavar="N")
    simulator.add_argument("--seed", type=int, default=42, metavar="S")
    simulator.set_defaults(handler=_simulator)
    return parser


def _destination_flag(command: argparse.ArgumentParser, default: str | None = None) -> None:
    command.add_argument(
        "--destination",
        metavar="NAME",
        default=default,
        help="ducklake, or any dlt destination (duckdb, postgres, motherduck, bigquery, ...),"
        " configured the dlt way (DESTINATION__<NAME>__CREDENTIALS...); default "
        + (default or "duckdb"),
    )


def use_project_settings_from_anywhere() -> None:
    """Cron does not `cd`: without a `.dlt/` here, read the checkout's own `.dlt/` settings."""
    if "DLT_PROJECT_DIR" in os.environ or Path(".dlt").is_dir():
        return
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / ".dlt").is_dir():
        os.environ["DLT_PROJECT_DIR"] = str(checkout)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    use_project_settings_from_anywhere()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault(ARROW_POOL_VARIABLE, ARROW_POOL)
    if not args.verbose:
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    from pipelines.logs import configure
    from pipelines.trigg.errors import TriggError

    progress = _terminal_progress(args)
    configure(args.log_format, args.verbose, stream=progress.writer() if progress else None)
    args.progress = progress
    try:
        return args.handler(args)
    except TriggError as failure:
        return _fail(str(failure), failure.exit_code, args)
    except KeyboardInterrupt:
        return _fail("interrupted; the cursor only moves with a completed load", 130, args)
    except Exception as failure:  # the last line of defence: still one sentence
        return _fail(
            f"unexpected {type(failure).__name__}: {_first_line(failure)}"
            " (run with --verbose for the traceback)",
            EXIT_FAILED,
            args,
        )
    finally:
        if progress is not None:
            progress.close()


def _terminal_progress(args: argparse.Namespace) -> Any:
    """Progress for `trigg run` on a terminal (stderr a TTY, text logs); None under cron."""
    if args.command != "run" or args.log_format != "text" or not sys.stderr.isatty():
        return None
    from pipelines.progress import TerminalProgress

    return TerminalProgress(sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from pipelines.destinations import resolve_warehouse
    from pipelines.runner import run_once
    from pipelines.trigg.errors import ConfigError
    from pipelines.trigg.settings import load_settings

    settings = load_settings()
    warehouse = resolve_warehouse(args.destination)
    if warehouse.is_duckdb_file:
        sys.meta_path.insert(0, _HidePandas())
    try:
        summary = run_once(
            settings,
            warehouse,
            since=args.since,
            strict=args.strict,
            full_refresh=args.full_refresh,
            progress=args.progress,
        )
    except ValueError as bad_since:
        if args.since is None:
            raise
        raise ConfigError(f"--since {bad_since}") from None
    if args.log_format == "json":
        event("summary", summary.headline(), **summary.as_dict())
    else:
        print(summary.render())
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from pipelines.destinations import resolve_warehouse
    from pipelines.trigg.errors import ConfigError
    from pipelines.trigg.settings import load_settings
    from pipelines.verify import verify

    settings = load_settings()
    warehouse = resolve_warehouse(args.destination)
    if warehouse.is_duckdb_file:
        sys.meta_path.insert(0, _HidePandas())
    try:
        report = verify(settings, warehouse, args.since, repair=args.repair, all_ids=args.json)
    except ValueError as bad_since:
        if args.since is None:
            raise
        raise ConfigError(f"--since {bad_since}") from None
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    elif args.log_format == "json":
        event("verify", report.headline(), **report.as_dict())
    else:
        print(report.render())
    return EXIT_OK if report.equal else EXIT_DIFFERENCES


class _HidePandas(importlib.abc.MetaPathFinder):
    """Makes pandas look not installed. DuckDB imports it, when it is installed, at the first
    query that takes parameters (dlt's do), and pyarrow with it: about 1 s and 80 MB that a run
    into a DuckDB file never uses (other destinations may want it)."""

    def find_spec(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _demo(args: argparse.Namespace) -> int:
    from pipelines.demo import DEMO_WAREHOUSE, demo_lake, run_demo

    if args.destination == "ducklake":
        if args.warehouse:
            from pipelines.trigg.errors import ConfigError

            raise ConfigError("--warehouse names a DuckDB file: leave it out with --destination")
        warehouse = demo_lake()
    else:
        warehouse = args.warehouse or DEMO_WAREHOUSE
    run_demo(customers=args.customers, changes=args.changes, warehouse=warehouse)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from pipelines.destinations import resolve_warehouse
    from pipelines.warehouse.status import read_status

    warehouse = args.warehouse or resolve_warehouse(args.destination)
    status = read_status(warehouse)
    print(json.dumps(status.as_dict(), indent=2) if args.json else status.render())
    return EXIT_OK


def _sql(args: argparse.Namespace) -> int:
    from pipelines.destinations import resolve_warehouse
    from pipelines.warehouse.session import (
        answer_all,
        piped_line,
        reader_for,
        run_session,
        split_statements,
        typed_line,
    )

    warehouse = resolve_warehouse(args.destination)

    def report(problem: Exception) -> None:
        print(f"trigg: the statement failed: {problem}", file=sys.stderr, flush=True)

    with reader_for(warehouse) as reader:
        if args.query is not None:
            statements, rest = split_statements(args.query)
            statements += [rest.strip()] if rest.strip() else []
            if not statements:
                from pipelines.trigg.errors import ConfigError

                raise ConfigError("the query is empty: give a SQL statement, or none for a session")
            failed = answer_all(reader, statements, sys.stdout, args.format, report)
            return EXIT_FAILED if failed else EXIT_OK
        read_line = typed_line if sys.stdin.isatty() else piped_line
        run_session(reader, read_line, sys.stdout, args.format, report)
    return EXIT_OK


def _maintain(args: argparse.Namespace) -> int:
    from pipelines.destinations import resolve_warehouse
    from pipelines.runner import maintain_lake
    from pipelines.trigg.settings import lake_retention_hours

    done = maintain_lake(resolve_warehouse(args.destination), lake_retention_hours())
    print(done.render())
    return EXIT_OK


def _simulator(args: argparse.Namespace) -> int:
    from pipelines.simulator import TriggSimulator

    simulator = TriggSimulator(customers=args.customers, seed=args.seed)
    try:
        simulator.start(args.port)
    except OSError as busy:
        from pipelines.trigg.errors import TriggError

        raise TriggError(
            f"cannot listen on 127.0.0.1:{args.port} ({busy.strerror}); try --port"
        ) from None
    print(
        f"Simulated Trigg API: {simulator.base_url}  ({args.customers} customers, seed {args.seed})"
    )
    print(f"Demo API key:        {simulator.api_key}")
    print("Point the pipeline at it:")
    print(f"  export SOURCES__TRIGG__BASE_URL={simulator.base_url}")
    print(f"  export SOURCES__TRIGG__API_KEY={simulator.api_key}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        simulator.stop()
    return EXIT_OK


def _fail(message: str, code: int, args: argparse.Namespace) -> int:
    """One sentence on stderr (and a `failure` event for JSON logs); the traceback if verbose."""
    from pipelines.trigg.errors import redacted

    message = redacted(message)
    if args.verbose:
        print(redacted(traceback.format_exc()), file=sys.stderr, end="")
    print(f"trigg: {message}", file=sys.stderr)
    if args.log_format == "json":
        event("failure", message, logging.ERROR, exit_code=code)
    return code


def _first_line(failure: BaseException) -> str:
    text = str(failure).strip()
    return text.splitlines()[0] if text else "no details"


if __name__ == "__main__":
    sys.exit(main())
