"""`run_history`: one row per run, successful or failed, so freshness and volume can be charted.

Rows are appended through dlt, not with DuckDB SQL, so the table follows the warehouse to other dlt
destinations. They are written by a pipeline of their own (`trigg_customers_runs`, same dataset,
same local folder per warehouse): recording a run never touches the customer pipeline's state or
its pending packages, and a failed run can be recorded even when its own load is left half-done.
Recording is best effort: a warehouse that cannot be written cannot record the failure either.

`outcome` is `succeeded` once the run's data and cursor are committed; what went wrong after that
(the views not refreshed, records stamped in the future) is in `warnings`, a JSON list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dlt

from pipelines.local_state import forget_loaded_packages
from pipelines.summary import RunSummary
from pipelines.trigg.errors import redacted
from pipelines.trigg.schema import RUN_HISTORY, relation_hints

SUCCEEDED = "succeeded"
FAILED = "failed"
HISTORY_PIPELINE_SUFFIX = "_runs"

log = logging.getLogger(__name__)


class RunRecorder:
    """Follows one run from its start and appends its row to `run_history` at the end."""

    def __init__(self, pipeline: dlt.Pipeline, pii: str = "keep") -> None:
        self.pipeline = pipeline
        self.pii = pii
        self.started_at = datetime.now(UTC)
        self.since: str | None = None
        self.cursor_before: datetime | None = None
        self.full_backfill = False

    def planned(self, since: str, cursor_before: datetime | None, full_backfill: bool) -> None:
        """What the run is about to ask for: kept so that a failure can be recorded with it."""
        self.since, self.cursor_before, self.full_backfill = since, cursor_before, full_backfill

    def succeeded(self, summary: RunSummary) -> None:
        """Record a successful run; a recording failure becomes a note on the summary."""
        row = self._row(SUCCEEDED, error=None)
        row.update(
            since=summary.since,
            cursor_before=summary.cursor_before,
            cursor_after=summary.cursor_after,
            customers_received=summary.customers_received,
            rows_written=sum(summary.rows_per_table.values()),
            rows_per_table=summary.rows_per_table,
            quality_checks={check.name: check.count for check in summary.quality_checks},
            load_ids=summary.load_ids,
            warnings=summary.warnings,
            late_arrivals=summary.late_arrivals,
            max_lateness_minutes=summary.max_lateness_minutes,
        )
        try:
            self._append(row)
        except Exception as failure:
            summary.notes.append(f"the run could not be recorded in {RUN_HISTORY.name}: {failure}")

    def failed(self, failure: BaseException, secrets: Sequence[str] = ()) -> None:
        """Record a failed run with its one-sentence reason; never raises."""
        reason = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
        reason = reason or type(failure).__name__
        for secret in secrets:
            if secret:
                reason = reason.replace(secret, "***")
        reason = redacted(reason)
        try:
            self._append(self._row(FAILED, error=reason))
        except Exception:  # the warehouse is what failed, most likely: nothing more to do
            log.debug("could not record the failed run", exc_info=True)

    def _row(self, outcome: str, error: str | None) -> dict[str, Any]:
        finished_at = datetime.now(UTC)
        return {
            "started_at": self.started_at,
            "finished_at": finished_at,
            "duration_seconds": (finished_at - self.started_at).total_seconds(),
            "outcome": outcome,
            "error": error,
            "since": self.since,
            "cursor_before": self.cursor_before,
            "cursor_after": self.cursor_before,
            "customers_received": 0,
            "rows_written": 0,
            "rows_per_table": {},
            "quality_checks": {},
            "load_ids": [],
            "pii": self.pii,
            "full_backfill": self.full_backfill,
            "warnings": [],
            "late_arrivals": None,
            "max_lateness_minutes": None,
        }

    def _append(self, row: dict[str, Any]) -> None:
        history = history_pipeline(self.pipeline)
        if history.has_pending_data:  # an earlier record that did not make it: load it first
            history.run()
        history.run(
            dlt.resource(
                [row],
                name=RUN_HISTORY.name,
                write_disposition="append",
                columns=relation_hints(RUN_HISTORY),
            )
        )
        forget_loaded_packages(history)


def history_pipeline(pipeline: dlt.Pipeline) -> dlt.Pipeline:
    """The pipeline that writes `run_history` next to `pipeline`'s data."""
    return dlt.pipeline(
        pipeline_name=pipeline.pipeline_name + HISTORY_PIPELINE_SUFFIX,
        pipelines_dir=pipeline.pipelines_dir,
        destination=pipeline.destination,
        dataset_name=pipeline.dataset_name,
    )
