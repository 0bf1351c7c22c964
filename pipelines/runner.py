"""One incremental run: pipeline, cursor, load, summary.

The local dlt working directory (state, pending packages) is kept per warehouse, so two warehouses
on one machine never share a cursor, and the cursor is synced from the warehouse before each run:
the warehouse, not the local folder, is the truth about what was loaded.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.duckdb_catalog import qualify_colliding_catalogs
from pipelines.summary import RunSummary
from pipelines.trigg import plan_since, read_cursor, trigg_source
from pipelines.trigg.errors import TriggError
from pipelines.trigg.schema import ROOT_TABLE
from pipelines.trigg.settings import DATASET_NAME, PIPELINE_NAME, SOURCE_NAME, TriggSettings
from pipelines.trigg.timestamps import parse_since
from pipelines.warehouse import after_load
from pipelines.warehouse.run_history import RunRecorder


class LoadError(TriggError):
    """dlt or the warehouse failed; the cursor stays where it was."""


def make_pipeline(warehouse: str) -> dlt.Pipeline:
    """The `trigg_customers` pipeline loading into the DuckDB file `warehouse`."""
    location = os.path.abspath(warehouse)
    qualify_colliding_catalogs()
    key = hashlib.sha256(location.encode()).hexdigest()[:16]
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=os.path.join(get_dlt_pipelines_dir(), "trigg", key),
        destination=dlt.destinations.duckdb(location),
        dataset_name=DATASET_NAME,
    )


def stored_cursor(pipeline: dlt.Pipeline) -> datetime | None:
    """The cursor in the pipeline's state (after syncing it from the warehouse)."""
    return read_cursor(pipeline.state.get("sources", {}).get(SOURCE_NAME, {}))


def run_once(settings: TriggSettings, warehouse: str, since: str | None = None) -> RunSummary:
    """Fetch what changed and merge it into `warehouse`; `since` overrides the cursor.

    Every run, failed or not, gets a row in `run_history`; a successful one also refreshes the
    analyst layer and reports the data-quality checks (see `pipelines.warehouse`).
    """
    zone = ZoneInfo(settings.timezone)
    request_since = parse_since(since, zone) if since else None
    pipeline = make_pipeline(warehouse)
    recorder = RunRecorder(pipeline)
    try:
        summary = _load(pipeline, settings, warehouse, request_since, recorder)
    except Exception as failure:
        recorder.failed(failure, secrets=[settings.api_key])
        raise
    recorder.succeeded(summary)
    return summary


def _load(
    pipeline: dlt.Pipeline,
    settings: TriggSettings,
    warehouse: str,
    request_since: str | None,
    recorder: RunRecorder,
) -> RunSummary:
    started = time.monotonic()
    zone = ZoneInfo(settings.timezone)
    with _failures_explained(warehouse):
        pipeline.sync_destination()
        if pipeline.has_pending_data:  # a crashed run's packages are loaded first
            pipeline.run()
        cursor_before = stored_cursor(pipeline)
        request_since = request_since or plan_since(
            cursor_before, settings.lookback_minutes, settings.initial_since, zone
        )
        recorder.planned(request_since, cursor_before)
        source = trigg_source(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timezone=settings.timezone,
            lookback_minutes=settings.lookback_minutes,
            initial_since=settings.initial_since,
            request_timeout_seconds=settings.request_timeout_seconds,
            since=request_since,
        )
        load_info = pipeline.run(source)
    rows = _rows_written(pipeline)
    quality_checks = after_load(pipeline)
    return RunSummary(
        warehouse=warehouse,
        since=request_since,
        cursor_before=cursor_before,
        cursor_after=stored_cursor(pipeline),
        customers_received=rows.get(ROOT_TABLE, 0),
        rows_per_table=rows,
        duration_seconds=time.monotonic() - started,
        load_ids=list(load_info.loads_ids) if load_info else [],
        quality_checks=quality_checks,
    )


def _rows_written(pipeline: dlt.Pipeline) -> dict[str, int]:
    trace = pipeline.last_trace
    normalize_info = trace.last_normalize_info if trace else None
    counts = normalize_info.row_counts if normalize_info else {}
    return {table: count for table, count in counts.items() if not table.startswith("_dlt")}


@contextmanager
def _failures_explained(warehouse: str) -> Iterator[None]:
    """Turn dlt's wrapped failures into the one sentence the operator needs."""
    try:
        yield
    except PipelineStepFailed as failure:
        cause = failure.exception
        reason = _trigg_error_within(failure)
        if reason is not None:
            raise reason from failure
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise LoadError(
            f"the {failure.step} step failed for {warehouse}"
            f" ({type(cause).__name__}: {detail}); run again to retry"
        ) from failure


def _trigg_error_within(failure: BaseException) -> TriggError | None:
    """Our own error, wherever dlt wrapped it (step failure, resource extraction error, ...)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [failure]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, TriggError):
            return current
        seen.add(id(current))
        pending.extend(
            [getattr(current, "exception", None), current.__cause__, current.__context__]
        )
    return None
