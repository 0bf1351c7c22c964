"""`trigg status`: how current the warehouse is, read from the warehouse alone.

No network, no API key: the cursor comes from dlt's state in the warehouse (`_dlt_pipeline_state`),
the runs from `run_history`, the rest from the tables. A DuckDB file is opened read-only for the
few queries this takes, so a scheduled run is never kept waiting; a DuckLake is attached read-only
(its readers never wait for a run, nor a run for them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
from dlt.common.versioned_state import decompress_state

from pipelines.destinations import Warehouse
from pipelines.trigg import read_cursor
from pipelines.trigg.schema import (
    QUARANTINE_KEY,
    REJECTED_TABLE,
    ROOT_TABLE,
    RUN_HISTORY,
    UPDATED_AT,
)
from pipelines.trigg.settings import DATASET_NAME, PIPELINE_NAME, SOURCE_NAME
from pipelines.warehouse.connection import has_schema, read_only
from pipelines.warehouse.lake import open_lake

RUN_COLUMNS = tuple(c.name for c in RUN_HISTORY.columns if not c.name.startswith("_dlt"))
JSON_COLUMNS = {c.name for c in RUN_HISTORY.columns if c.data_type == "json"}


@dataclass
class WarehouseStatus:
    warehouse: str
    checked_at: datetime
    cursor: datetime | None = None
    """The newest `updated_at` loaded, as dlt's state in the warehouse holds it."""
    newest_updated_at: datetime | None = None
    last_successful_run: dict[str, Any] | None = None
    last_run: dict[str, Any] | None = None
    """The latest run whatever its outcome: differs from the last successful one after a failure."""
    rows_per_table: dict[str, int] = field(default_factory=dict)
    quarantined_records: int = 0
    """Distinct records in `customers_rejected`, where the pipeline quarantines records it
    cannot load: a record delivered again is counted once."""

    @property
    def freshness_lag_seconds(self) -> float | None:
        """Now minus the newest `updated_at`: how far the warehouse trails the API at best."""
        if self.newest_updated_at is None:
            return None
        return (self.checked_at - self.newest_updated_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(
            {
                "warehouse": self.warehouse,
                "checked_at": self.checked_at,
                "cursor": self.cursor,
                "newest_updated_at": self.newest_updated_at,
                "freshness_lag_seconds": self.freshness_lag_seconds,
                "last_successful_run": self.last_successful_run,
                "last_run": self.last_run,
                "rows_per_table": self.rows_per_table,
                "quarantined_records": self.quarantined_records,
            }
        )

    def render(self) -> str:
        lines = [
            f"trigg status: {self.warehouse}",
            f"  cursor         {_iso(self.cursor) or 'none (nothing loaded yet)'}",
            "  freshness lag  "
            + (
                f"{_duration(self.freshness_lag_seconds)}"
                f" (newest updated_at {_iso(self.newest_updated_at)})"
                if self.freshness_lag_seconds is not None
                else "unknown (no customers yet)"
            ),
            *_run_lines("last success", self.last_successful_run),
        ]
        if self.last_run is not None and self.last_run != self.last_successful_run:
            lines.extend(_run_lines("last run", self.last_run))
        width = max((len(table) for table in self.rows_per_table), default=0)
        rows = [f"{table:<{width}}  {count:>9,}" for table, count in self.rows_per_table.items()]
        lines.append("  rows           " + ("\n                 ".join(rows) or "none"))
        lines.append(f"  quarantined    {self.quarantined_records:,} records")
        return "\n".join(lines)


def read_status(warehouse: Warehouse | str, now: datetime | None = None) -> WarehouseStatus:
    """The status of `warehouse` (a DuckDB file's path, or a DuckLake), as of `now`."""
    status = WarehouseStatus(str(warehouse), now or datetime.now(UTC))
    with _reading(warehouse) as connection:
        if not has_schema(connection, DATASET_NAME):
            return status
        tables = _tables(connection)
        status.cursor = _cursor(connection) if "_dlt_pipeline_state" in tables else None
        if ROOT_TABLE in tables:
            status.newest_updated_at = _scalar(
                connection, f"select max({UPDATED_AT}) from {ROOT_TABLE}"
            )
        if RUN_HISTORY.name in tables:
            status.last_run = _run(connection, "true")
            status.last_successful_run = _run(connection, "outcome = 'succeeded'")
        status.rows_per_table = {
            table: _scalar(connection, f'select count(*) from "{table}"')
            for table in tables
            if not table.startswith("_dlt")
        }
        if REJECTED_TABLE in tables:
            status.quarantined_records = _distinct_quarantined(connection)
    return status


def _distinct_quarantined(connection: duckdb.DuckDBPyConnection) -> int:
    """Records quarantined, each once: by `record_hash`, or by the record's text for rows
    quarantined before it existed (which a run may have quarantined again since)."""
    columns = {
        name
        for (name,) in connection.execute(
            "select column_name from duckdb_columns() where database_name = current_database()"
            " and schema_name = ? and table_name = ?",
            [DATASET_NAME, REJECTED_TABLE],
        ).fetchall()
    }
    keys = [QUARANTINE_KEY] if QUARANTINE_KEY in columns else []
    keys += ["md5(CAST(record AS VARCHAR))"] if "record" in columns else []
    counted = f"count(DISTINCT coalesce({', '.join(keys)}))" if keys else "count(*)"
    return int(_scalar(connection, f"select {counted} from {REJECTED_TABLE}") or 0)


@contextmanager
def _reading(warehouse: Warehouse | str) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(warehouse, Warehouse) and warehouse.is_ducklake:
        with open_lake(warehouse) as connection:
            yield connection
        return
    path = warehouse.location if isinstance(warehouse, Warehouse) else warehouse
    with read_only(path) as connection:
        yield connection


def _tables(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        "select table_name from duckdb_tables()"
        " where database_name = current_database() and schema_name = ? order by table_name",
        [DATASET_NAME],
    ).fetchall()
    return [name for (name,) in rows]


def _cursor(connection: duckdb.DuckDBPyConnection) -> datetime | None:
    """The cursor in the newest state dlt committed with a completed load (as dlt reads it)."""
    row = connection.execute(
        """select s.state from _dlt_pipeline_state s
           join _dlt_loads l on l.load_id = s._dlt_load_id
           where s.pipeline_name = ? and l.status = 0
           order by l.load_id desc limit 1""",
        [PIPELINE_NAME],
    ).fetchone()
    if row is None:
        return None
    state = decompress_state(row[0])
    return read_cursor(state.get("sources", {}).get(SOURCE_NAME, {}))


def _run(connection: duckdb.DuckDBPyConnection, condition: str) -> dict[str, Any] | None:
    """The newest run matching `condition`; a column an older version did not write is None."""
    stored = {
        name
        for (name,) in connection.execute(
            "select column_name from duckdb_columns() where database_name = current_database()"
            " and schema_name = ? and table_name = ?",
            [DATASET_NAME, RUN_HISTORY.name],
        ).fetchall()
    }
    columns = [column for column in RUN_COLUMNS if column in stored]
    row = connection.execute(
        f"select {', '.join(columns)} from {RUN_HISTORY.name}"
        f" where {condition} order by started_at desc limit 1"
    ).fetchone()
    if row is None:
        return None
    run = dict.fromkeys(RUN_COLUMNS) | dict(zip(columns, row, strict=True))
    for column in JSON_COLUMNS:
        if isinstance(run[column], str):
            run[column] = json.loads(run[column])
    return run


def _scalar(connection: duckdb.DuckDBPyConnection, query: str) -> Any:
    row = connection.execute(query).fetchone()
    return row[0] if row else None


def _run_lines(title: str, run: dict[str, Any] | None) -> list[str]:
    if run is None:
        return [f"  {title:<13}  none recorded"]
    finished = run["finished_at"].astimezone(UTC).replace(microsecond=0).isoformat()
    lines = [f"  {title:<13}  {finished} ({run['outcome']}, {run['duration_seconds']:.1f} s)"]
    if run["error"]:
        lines.append(f"                 {run['error']}")
        return lines
    lines.append(
        f"                 {run['customers_received']:,} customers received,"
        f" {run['rows_written']:,} rows written, since asked {run['since']}"
    )
    lines.append(
        f"                 cursor {_iso(run['cursor_before']) or 'none'}"
        f" -> {_iso(run['cursor_after']) or 'none'}"
    )
    if run["late_arrivals"] is not None:
        lines.append(
            f"                 late arrivals {run['late_arrivals']:,}"
            + (
                f", the latest {run['max_lateness_minutes']:g} min older than the cursor"
                if run["late_arrivals"]
                else ""
            )
        )
    findings = {name: count for name, count in (run["quality_checks"] or {}).items() if count}
    lines.append(
        "                 quality checks: "
        + (", ".join(f"{name} {count:,}" for name, count in findings.items()) or "no findings")
    )
    lines.extend(f"                 {warning}" for warning in run["warnings"] or [])
    return lines


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{value} {unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0 s"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value
