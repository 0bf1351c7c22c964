"""One incremental run: lock, reconcile with the warehouse, load, summarize.

The warehouse, not the local folder, is the truth about what was loaded: dlt commits the cursor
to it together with the data, the local state is kept per warehouse (`local_state.py`: two
warehouses on one machine never share a cursor), and a local cursor the warehouse does not know
(the file was deleted or replaced) is thrown away loudly instead of silently skipping history.

Once the data and the cursor are committed the run has loaded: the steps after it (the views, the
comments, the quality checks, the run's own record) can only warn, and every run does them again.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import dlt
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.common.pipeline import LoadInfo
from dlt.common.runtime.collector import Collector
from dlt.load.exceptions import LoadClientJobRetry
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.pipeline.state_sync import load_pipeline_state_from_destination

from pipelines.destinations import Warehouse, duckdb_file, lock_holder
from pipelines.duckdb_extensions import extension_directory
from pipelines.local_state import (
    LOCK_FILE,
    describe,
    forget_loaded_packages,
    link_for_dlt_cli,
    lock_or_refuse,
    move_old_layout,
    warehouse_dir,
)
from pipelines.summary import QualityCheck, RunSummary
from pipelines.trigg import (
    plan_since,
    read_cursor,
    read_first_since,
    read_pii_mode,
    trigg_source,
)
from pipelines.trigg.arrivals import LateArrivals
from pipelines.trigg.errors import ConfigError, TriggError, redacted
from pipelines.trigg.events import event
from pipelines.trigg.replay import Replay
from pipelines.trigg.schema import REJECTED_TABLE, ROOT_TABLE, described_tables
from pipelines.trigg.settings import DATASET_NAME, PIPELINE_NAME, SOURCE_NAME, TriggSettings
from pipelines.trigg.timestamps import parse_since
from pipelines.warehouse import after_load
from pipelines.warehouse.maintenance import Maintenance, maintain_apart
from pipelines.warehouse.run_history import HISTORY_PIPELINE_SUFFIX, RunRecorder
from pipelines.warehouse.versions import held_versions

T = TypeVar("T")
LOCK_POLL_SECONDS = 0.5
DEFAULT_LOAD_ATTEMPTS = 5
"""dlt's default `load.raise_on_max_retries`."""


class LoadError(TriggError):
    """dlt or the warehouse failed; the cursor stays where it was."""


class WarehouseLocked(TriggError):
    """Another process held the DuckDB file for longer than the run would wait."""


def as_warehouse(warehouse: Warehouse | str) -> Warehouse:
    """A `Warehouse`; a plain string is the path of a DuckDB file."""
    return warehouse if isinstance(warehouse, Warehouse) else duckdb_file(warehouse)


PIPELINE_NAMES = (PIPELINE_NAME, PIPELINE_NAME + HISTORY_PIPELINE_SUFFIX)
"""The run's two dlt pipelines: the customers, and the run history."""


LOAD_WORKERS = "2"
"""dlt's parallel load jobs (default 20): each holds its own insert; 2 keep the speed and save
about 40 MB of peak memory on a big load."""
DUCKDB_LOAD_WORKERS = "1"
"""For a DuckDB file, one job at a time: DuckDB uses both cores for each, and two merges side by
side ran out of the warehouse's 128 MB at 200,000 customers (dlt retried them)."""


def make_pipeline(warehouse: Warehouse | str, progress: Collector | None = None) -> dlt.Pipeline:
    """The `trigg_customers` pipeline loading into `warehouse`; `progress` sees its steps."""
    target = as_warehouse(warehouse)
    if target.is_ducklake:
        extension_directory()  # its links, again: dlt's data dir may be new since it was resolved
    workers = DUCKDB_LOAD_WORKERS if target.is_duckdb_file else LOAD_WORKERS
    os.environ.setdefault("LOAD__WORKERS", workers)
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=warehouse_dir(target),
        destination=target.destination,
        dataset_name=DATASET_NAME,
        **({"progress": progress} if progress is not None else {}),
    )


def _source_state(pipeline: dlt.Pipeline) -> dict[str, Any]:
    return pipeline.state.get("sources", {}).get(SOURCE_NAME, {})


def stored_cursor(pipeline: dlt.Pipeline) -> datetime | None:
    """The cursor in the pipeline's state."""
    return read_cursor(_source_state(pipeline))


def stored_pii_mode(pipeline: dlt.Pipeline) -> str | None:
    """The `pii` mode the warehouse was loaded with, from the pipeline's state."""
    return read_pii_mode(_source_state(pipeline))


def stored_first_since(pipeline: dlt.Pipeline) -> str | None:
    """The since of the first run (or of the last full refresh) in the pipeline's state."""
    return read_first_since(_source_state(pipeline))


def _fresh_scratch_dir(warehouse: Warehouse) -> str:
    """The fast path's scratch folder, emptied first: a run killed with -9 leaves its files."""
    folder = os.path.join(warehouse_dir(warehouse), "scratch")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    return folder


@contextmanager
def exclusive_run(warehouse: Warehouse) -> Iterator[None]:
    """One run per warehouse at a time. The OS drops the lock when its process dies (kill -9)."""
    folder = warehouse_dir(warehouse)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LOCK_FILE), "a") as lock:
        lock_or_refuse(lock, warehouse)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def maintain_lake(warehouse: Warehouse, retention_hours: float) -> Maintenance:
    """`trigg maintain`: the lake's maintenance on its own, never beside a run."""
    if not warehouse.is_ducklake:
        raise ConfigError(
            f"{warehouse} is not a DuckLake: `trigg maintain` keeps DuckLakes compact"
            " (a DuckDB file needs no maintenance); use --destination ducklake"
        )
    with exclusive_run(warehouse):
        return maintain_apart(warehouse, retention_hours)


def run_once(
    settings: TriggSettings,
    warehouse: Warehouse | str,
    since: str | None = None,
    strict: bool = False,
    full_refresh: bool = False,
    progress: Collector | None = None,
) -> RunSummary:
    """Fetch what changed and merge it into `warehouse`; `since` overrides the cursor.

    `full_refresh` drops the source's tables and state first, `customer_versions` excepted (the
    history the API cannot give back), and reloads from `initial_since` (unset: everything).
    Every run, failed or not, gets a row in `run_history`; a successful one also refreshes the
    analyst layer and reports the data-quality checks (see `pipelines.warehouse`). `progress`
    (a dlt collector) is shown every step.
    """
    warehouse = as_warehouse(warehouse)
    request_since = parse_since(since, ZoneInfo(settings.timezone)) if since else None
    move_old_layout(warehouse)
    with exclusive_run(warehouse):
        describe(warehouse)
        link_notes = link_for_dlt_cli(warehouse, PIPELINE_NAMES)
        pipeline = make_pipeline(warehouse, progress)
        recorder = RunRecorder(pipeline, pii=settings.pii)
        try:
            summary = _load(
                pipeline, settings, warehouse, request_since, strict, full_refresh, recorder
            )
        except Exception as failure:
            recorder.failed(failure, secrets=[settings.api_key, settings.pii_key or ""])
            raise
        summary.notes.extend(link_notes)
        with pipeline.collector("run history"):
            recorder.succeeded(summary)
    return summary


def replay_locked(
    settings: TriggSettings, warehouse: Warehouse | str, replay: Replay, since: str
) -> RunSummary:
    """Load the customers `replay` names from a response fetched before (for `since`), the
    cursor left where it is: `trigg verify --repair`. The caller holds `exclusive_run`.

    The load is the normal one (merge, child tables, `customer_versions`, quarantine, the
    analyst layer); it is not a run, so `run_history` does not record it."""
    warehouse = as_warehouse(warehouse)
    pipeline = make_pipeline(warehouse)
    recorder = RunRecorder(pipeline, pii=settings.pii)
    return _load(pipeline, settings, warehouse, since, False, False, recorder, replay)


def _load(
    pipeline: dlt.Pipeline,
    settings: TriggSettings,
    warehouse: Warehouse,
    request_since: str | None,
    strict: bool,
    full_refresh: bool,
    recorder: RunRecorder,
    replay: Replay | None = None,
) -> RunSummary:
    started = time.monotonic()
    zone = ZoneInfo(settings.timezone)
    wait = settings.lock_timeout_seconds
    notes: list[str] = []
    warnings: list[str] = []
    with _failures_explained(warehouse):
        if _abandon_failed_load(pipeline, notes) or _forget_unknown_cursor(
            pipeline, warehouse, notes, wait
        ):
            pipeline = make_pipeline(warehouse, pipeline.collector)
        _when_unlocked(pipeline.sync_destination, warehouse, wait)
        if pipeline.has_pending_data:  # a crashed run's packages are loaded first
            notes.append("finished loading the packages of an interrupted run first")
            _when_unlocked(pipeline.run, warehouse, wait)
        loaded_with = read_pii_mode(_source_state(pipeline))
        if loaded_with not in (None, settings.pii) and not full_refresh:
            raise ConfigError(
                f"{warehouse} was loaded with pii = {loaded_with}; switching to {settings.pii}"
                " would mix both in one warehouse: run `trigg run --full-refresh` to drop and"
                " reload its tables"
            )
        cursor_before = None if full_refresh else stored_cursor(pipeline)
        full_backfill = request_since is None and cursor_before is None
        full_backfill = full_backfill and not settings.initial_since
        request_since = request_since or plan_since(
            cursor_before, settings.lookback_minutes, settings.initial_since, zone
        )
        recorder.planned(request_since, cursor_before, full_backfill)
        event(
            "run_start",
            f"asking for changes since {request_since}"
            + (" (a full backfill: every customer)" if full_backfill else ""),
            warehouse=str(warehouse),
            since=request_since,
            cursor=cursor_before.isoformat() if cursor_before else None,
            full_backfill=full_backfill,
        )
        late_arrivals = None if replay else LateArrivals(held_versions(pipeline))
        source = trigg_source(
            **settings.source_arguments(),
            scratch_dir=_fresh_scratch_dir(warehouse),
            fast_path_files=warehouse.loads_parquet_files,
            since=request_since,
            strict=strict,
            notes=notes,
            warnings=warnings,
            replay=replay,
            late_arrivals=late_arrivals,
        )
        refresh = "drop_sources" if full_refresh else None
        load_info = _when_unlocked(lambda: pipeline.run(source, refresh=refresh), warehouse, wait)
    loaded = list(load_info.loads_ids) if load_info else []
    quality_checks = _after_commit(pipeline, loaded, warehouse, wait, warnings)
    maintenance = _maintain_lake(warehouse, settings, warnings) if warehouse.is_ducklake else None
    rows = _rows_written(pipeline)
    quarantined = (
        _newly_quarantined(pipeline, loaded, warehouse, wait) if rows.get(REJECTED_TABLE) else 0
    )
    event(
        "load",
        f"loaded {sum(rows.values()):,} rows into {warehouse}",
        load_ids=list(load_info.loads_ids) if load_info else [],
        rows_per_table=rows,
    )
    late = late_arrivals.warning(settings.lookback_minutes) if late_arrivals else None
    for note in [
        *_quarantine_notes(rows, quarantined),
        *_new_field_notes(load_info),
        *filter(None, [late]),
    ]:
        event("warning", note, logging.WARNING)
        notes.append(note)
    return RunSummary(
        warehouse=str(warehouse),
        since=request_since,
        cursor_before=cursor_before,
        cursor_after=stored_cursor(pipeline),
        customers_received=rows.get(ROOT_TABLE, 0) + rows.get(REJECTED_TABLE, 0),
        rows_per_table=rows,
        duration_seconds=time.monotonic() - started,
        load_ids=list(load_info.loads_ids) if load_info else [],
        notes=notes,
        warnings=warnings,
        quality_checks=quality_checks,
        pii=settings.pii,
        full_backfill=full_backfill,
        maintenance=maintenance,
        late_arrivals=late_arrivals.count if late_arrivals else None,
        max_lateness_minutes=late_arrivals.max_minutes if late_arrivals else None,
    )


def _maintain_lake(
    warehouse: Warehouse, settings: TriggSettings, warnings: list[str]
) -> str | None:
    """Keep a DuckLake compact after its load; a failure is a warning: the data is loaded."""
    try:
        done = maintain_apart(warehouse, settings.lake_retention_hours)
    except Exception as failure:
        message = (
            f"the lake's maintenance failed ({redacted(_first_line(failure))});"
            " the data and the cursor are committed, and the next run retries it"
        )
        event("warning", message, logging.WARNING)
        warnings.append(message)
        return None
    event("maintenance", done.render(), seconds=round(done.seconds, 3))
    return done.render().removeprefix("lake maintenance: ")


def _after_commit(
    pipeline: dlt.Pipeline,
    load_ids: list[str],
    warehouse: Warehouse,
    wait: float,
    warnings: list[str],
) -> list[QualityCheck]:
    """The steps after the data and the cursor are committed: forget the loaded packages,
    recreate the views and comments, run the quality checks. A failure is a warning, not a failed
    run (what the run loaded is visible, and the cursor has moved); the next run does them again.
    """
    try:
        forget_loaded_packages(pipeline)
        with pipeline.collector("views, comments and checks"):
            return _when_unlocked(lambda: after_load(pipeline, load_ids), warehouse, wait)
    except Exception as failure:
        message = (
            f"the views, comments and quality checks of {warehouse} were not refreshed"
            f" ({_first_line(failure)}); the data and the cursor are committed, and the next run"
            " refreshes them"
        )
        event("warning", message, logging.WARNING)
        warnings.append(message)
        return []


def _first_line(failure: BaseException) -> str:
    text = str(failure).strip()
    return f"{type(failure).__name__}: {text.splitlines()[0]}" if text else type(failure).__name__


def _forget_unknown_cursor(
    pipeline: dlt.Pipeline, warehouse: Warehouse, notes: list[str], wait: float
) -> bool:
    """Drop local state the warehouse has no record of, so the run rebuilds instead of skipping.

    With packages pending (a crash mid-load) local state is legitimately ahead; they load first.
    """
    local_cursor = stored_cursor(pipeline)
    if local_cursor is None or pipeline.has_pending_data:
        return False
    remote = _when_unlocked(lambda: _warehouse_state(pipeline), warehouse, wait)
    local = pipeline.state
    if remote is not None and remote.get("_version_hash") == local.get("_version_hash"):
        return False
    if remote is not None and remote.get("_state_version", 0) > local.get("_state_version", 0):
        return False  # the warehouse is ahead: dlt's sync takes its state
    kept = read_cursor(remote.get("sources", {}).get(SOURCE_NAME, {})) if remote else None
    message = (
        f"WARNING: the warehouse {warehouse} does not hold the cursor {local_cursor.isoformat()}"
        " this machine remembers (was the file deleted or replaced?); "
        + (
            f"continuing from the warehouse's own cursor {kept.isoformat()}"
            if kept
            else "rebuilding from initial_since (unset: a full backfill)"
        )
    )
    event("warehouse_mismatch", message, logging.WARNING, warehouse=str(warehouse))
    notes.append(message)
    pipeline.drop()
    return True


def max_load_attempts() -> int:
    """How often dlt tries a load job in a run before it gives up (`load.raise_on_max_retries`)."""
    configured = dlt.config.get("load.raise_on_max_retries")
    return int(configured) if configured else DEFAULT_LOAD_ATTEMPTS


def _abandon_failed_load(pipeline: dlt.Pipeline, notes: list[str]) -> bool:
    """Drop a pending load whose job failed `max_load_attempts()` times, with the local state.

    dlt keeps such a package pending, so every later run would retry the same job and never
    get past it. Its cursor was advanced at extract and is never loaded: the state is rebuilt
    from the warehouse (`sync_destination`), which holds the cursor of the last committed load,
    and the run asks the API again from there."""
    attempts = max_load_attempts()
    failed = [
        job
        for load_id in pipeline.list_normalized_load_packages()
        for job in pipeline.get_load_package_info(load_id).jobs.get("new_jobs", [])
        if job.job_file_info.retry_count >= attempts
    ]
    if not failed:
        return False
    job, name = failed[0], failed[0].job_file_info
    message = (
        f"WARNING: abandoned the load of {name.table_name} after {name.retry_count} failed"
        f" attempts ({_last_line(job.failed_message)}); asking the API again from the"
        " warehouse's cursor"
    )
    event("load_abandoned", message, logging.WARNING, table=name.table_name)
    notes.append(message)
    pipeline.drop()
    return True


def _last_line(text: str | None) -> str:
    """The last line of dlt's failure message: the error itself, after the traceback."""
    lines = (text or "").strip().splitlines()
    return lines[-1].strip() if lines else "no message"


def _warehouse_state(pipeline: dlt.Pipeline) -> dict[str, Any] | None:
    try:
        with pipeline.destination_client() as client:
            return load_pipeline_state_from_destination(pipeline.pipeline_name, client)  # type: ignore[arg-type]
    except DestinationUndefinedEntity:
        return None


def _when_unlocked(step: Callable[[], T], warehouse: Warehouse, wait: float) -> T:
    """Run `step`, retrying while another process holds the DuckDB file, for up to `wait`
    seconds from the first conflict: each wait of a run gets the whole timeout, so a slow
    download never leaves the load none.

    dlt's steps are resumable: a load that could not open the file stays pending and the retry
    loads it; nothing is half-loaded in between."""
    deadline: float | None = None
    while True:
        try:
            return step()
        except Exception as failure:
            holder = next(filter(None, map(lock_holder, _chain(failure))), None)
            if holder is None:
                raise
            deadline = deadline or time.monotonic() + wait
            if time.monotonic() >= deadline:
                raise WarehouseLocked(
                    f"the warehouse {warehouse} is held open by another process ({holder});"
                    " gave up waiting (sources.trigg.lock_timeout_seconds): close it and run again"
                ) from None
            time.sleep(LOCK_POLL_SECONDS)


def when_unlocked(step: Callable[[], T], warehouse: Warehouse, deadline: float) -> T:
    """`step` retried while another process holds the DuckDB file (see `_when_unlocked`), for the
    commands beside a run that read or load the warehouse (`trigg verify`)."""
    return _when_unlocked(step, warehouse, deadline)


def _chain(failure: BaseException) -> Iterator[BaseException]:
    """`failure` and everything dlt wrapped inside it (step failures, job errors, causes)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [failure]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(
            [getattr(current, "exception", None), current.__cause__, current.__context__]
        )


def _rows_written(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows per table of the last load, as normalized; files dlt imports without reading them
    (the fast path's parquet files) are counted as extracted."""
    trace = pipeline.last_trace
    counts = (
        dict(trace.last_normalize_info.row_counts) if trace and trace.last_normalize_info else {}
    )
    extract_info = trace.last_extract_info if trace else None
    for metrics in extract_info.metrics.values() if extract_info else []:
        for table, table_metrics in metrics[0]["table_metrics"].items():
            counts[table] = max(counts.get(table, 0), table_metrics.items_count)
    return {table: count for table, count in counts.items() if not table.startswith("_dlt")}


def _newly_quarantined(
    pipeline: dlt.Pipeline, load_ids: list[str], warehouse: Warehouse, wait: float
) -> int:
    """Rows this run added to the quarantine: a record quarantined before keeps its first row.

    Counted after the commit, so a failure to count is not a failed run: every row is then
    reported as new."""
    if not load_ids:
        return 0

    def count() -> int:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name(REJECTED_TABLE)
            loads = ", ".join(f"'{load_id}'" for load_id in load_ids)  # dlt's numeric load ids
            rows = client.execute_sql(
                f"select count(*) from {table} where _dlt_load_id in ({loads})"
            )
        return int(rows[0][0]) if rows else 0

    try:
        return _when_unlocked(count, warehouse, wait)
    except Exception:
        return _rows_written(pipeline).get(REJECTED_TABLE, 0)


def _quarantine_notes(rows: dict[str, int], new: int) -> list[str]:
    rejected = rows.get(REJECTED_TABLE, 0)
    if not rejected:
        return []
    already = f", {rejected - new} already there from an earlier run" if rejected > new else ""
    return [
        f"WARNING: {rejected} record(s) could not be loaded and were quarantined in"
        f" {DATASET_NAME}.{REJECTED_TABLE} ({new} new{already}; see its reason column);"
        " the rest loaded"
    ]


KNOWN_COLUMNS = {
    relation.name: {column.name for column in relation.columns} for relation in described_tables()
}


def _new_field_notes(load_info: LoadInfo | None) -> list[str]:
    """Fields the spec does not list: kept (dlt evolves the schema), and named."""
    new: list[str] = []
    for package in load_info.load_packages if load_info else []:
        for table, update in package.schema_update.items():
            if table.startswith("_dlt"):
                continue
            known = KNOWN_COLUMNS.get(table)
            columns = [c for c in update.get("columns", {}) if not c.startswith("_dlt")]
            if known is None:
                new.append(f"table {table} ({', '.join(columns)})")
            else:
                new.extend(f"{table}.{column}" for column in columns if column not in known)
    if not new:
        return []
    return ["new fields the spec does not list were kept: " + ", ".join(sorted(new))]


@contextmanager
def _failures_explained(warehouse: Warehouse) -> Iterator[None]:
    """Turn dlt's wrapped failures into the one sentence the operator needs."""
    try:
        yield
    except PipelineStepFailed as failure:
        ours = next((c for c in _chain(failure) if isinstance(c, TriggError)), None)
        if ours is not None:
            raise ours from failure
        exhausted = next((c for c in _chain(failure) if isinstance(c, LoadClientJobRetry)), None)
        if exhausted is not None:
            raise LoadError(
                f"loading {exhausted.job_id} into {warehouse} failed {exhausted.retry_count}"
                f" times ({_last_line(exhausted.failed_message)}); nothing of it is visible,"
                " and the next run abandons it and asks the API again from the warehouse's"
                " cursor: if that fails the same way, run `trigg run --verbose` and report it"
            ) from failure
        cause = failure.exception
        detail = redacted(str(cause).strip().splitlines()[0]) if str(cause).strip() else ""
        raise LoadError(
            f"the {failure.step} step failed for {warehouse}"
            f" ({type(cause).__name__}: {detail}); the next run retries it"
        ) from failure
