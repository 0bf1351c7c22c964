"""`trigg verify`: whether the warehouse equals the API, customer by customer; `--repair` makes it.

Runs trust their cursor: a change the API stamps far below it, or a change that keeps its old
`UpdatedAt`, is never asked for again. Verify asks the API itself:

1. It fetches every customer changed since WHEN (default: where the warehouse begins, the first
   run's since), the same request a run makes, spooled to disk.
2. The fast path reads the answer in its scratch DuckDB and fingerprints every customer
   (`trigg/fingerprint.py`, the same SQL that fingerprinted it at load time): (id, `updated_at`,
   fingerprint) go to a parquet file.
3. The warehouse's (id, `updated_at`, fingerprint) stream into a comparison database beside it,
   and one query sorts every customer the API sent: **missing** (the warehouse lacks it),
   **stale** (it holds an older `updated_at`), **differs** (the same `updated_at`, other content),
   **newer** (it holds a later `updated_at` than the API sends, e.g. a stamp in the future since
   corrected).
4. `--repair` loads those customers from the same answer, still open in its scratch database,
   through the normal load path (`runner.replay_locked`: merge, child tables, `customer_versions`,
   quarantine), the cursor left alone, and compares again.

Neither side is ever held in Python: memory stays flat at any size. Verify holds the run lock,
so no run changes the warehouse while it compares (a scheduled run meanwhile exits 75).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final, TypeVar
from zoneinfo import ZoneInfo

import dlt
import duckdb
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from pipelines.destinations import Warehouse
from pipelines.local_state import warehouse_dir
from pipelines.runner import (
    as_warehouse,
    exclusive_run,
    make_pipeline,
    replay_locked,
    stored_first_since,
    stored_pii_mode,
    when_unlocked,
)
from pipelines.summary import RunSummary
from pipelines.trigg import stored_columns
from pipelines.trigg.client import RetryPolicy, TriggClient
from pipelines.trigg.errors import ConfigError, TriggError
from pipelines.trigg.fast_path import MEMORY_LIMIT, FastBody, Unusual, fast_body
from pipelines.trigg.fast_plan import literal
from pipelines.trigg.privacy import Privacy
from pipelines.trigg.replay import Replay
from pipelines.trigg.schema import FINGERPRINT, ROW_KEY, RUN_HISTORY, UPDATED_AT
from pipelines.trigg.settings import FULL_BACKFILL_SINCE, TriggSettings
from pipelines.trigg.timestamps import parse_since, since_instant
from pipelines.warehouse.versions import held_fingerprints

T = TypeVar("T")
KINDS: Final = ("missing", "stale", "differs", "newer")
"""The ways a customer the API sent can differ from the warehouse (all count, all repaired)."""
MEANINGS: Final = {
    "missing": "the API has them, the warehouse does not",
    "stale": "the warehouse holds an older updated_at",
    "differs": "the same updated_at, different content",
    "newer": "the warehouse holds a later updated_at than the API sends",
}
SHOWN_IDS: Final = 20
"""Ids printed in the text report (all of them with --json)."""
VERIFY_LOAD_ID: Final = "verify"
"""Stands in for a load id in the fast path's selects (no column of it is compared)."""
PARKED_MEMORY: Final = "32MB"
"""The answer's scratch database's buffer pool while the warehouse is compared."""
COMPARE_SETTINGS: Final = {
    "memory_limit": "128MB",
    "threads": 2,
    "preserve_insertion_order": False,
}


class VerifyError(TriggError):
    """The answer cannot be compared; nothing was changed."""


@dataclass
class Comparison:
    """What one comparison of the API's answer with the warehouse found."""

    api_customers: int
    warehouse_customers: int
    counts: dict[str, int]
    ids: dict[str, list[str]]
    """Per kind, the ids of the differing customers (the first `SHOWN_IDS`, or all)."""
    without_fingerprint: int = 0
    """Customers counted as `differs` because the warehouse keeps no fingerprint for them."""
    only_in_warehouse: int = 0
    """Customers the warehouse holds (changed since WHEN) that the API did not send."""
    unchecked: int = 0
    """Customers whose version matches but whose content cannot be compared: no `UpdatedAt`
    to find the version's fingerprint by, or a record only dlt's normalizer reads."""

    @property
    def differences(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "api_customers": self.api_customers,
            "warehouse_customers": self.warehouse_customers,
            **self.counts,
            "differences": self.differences,
            "without_fingerprint": self.without_fingerprint,
            "only_in_warehouse": self.only_in_warehouse,
            "unchecked": self.unchecked,
            "equal": self.differences == 0,
            "ids": self.ids,
        }

    def render(self, title: str) -> list[str]:
        lines = [
            f"  {title:<13} {self.api_customers:,} customers in the API's answer,"
            f" {self.warehouse_customers:,} in the warehouse"
            + ("" if self.differences else ": every one equal")
        ]
        lines += [
            f"  {kind:<13} {self.counts[kind]:>7,}  {MEANINGS[kind]}"
            + (
                f" ({self.without_fingerprint:,} without a fingerprint)"
                if kind == "differs" and self.without_fingerprint
                else ""
            )
            for kind in KINDS
            if self.differences
        ]
        shown = [(kind, i) for kind in KINDS for i in self.ids[kind]][:SHOWN_IDS]
        for position, (kind, customer_id) in enumerate(shown):
            lines.append(f"  {'differing' if position == 0 else '':<13} {customer_id}  {kind}")
        if self.differences > len(shown):
            lines.append(f"  {'':<13} ... the first {len(shown)}; all of them with --json")
        if self.unchecked:
            lines.append(
                f"  {'unchecked':<13} {self.unchecked:>7,}  customers in the right version whose"
                " content cannot be compared (no UpdatedAt, or only dlt's normalizer reads them)"
            )
        if self.only_in_warehouse:
            lines.append(
                f"  {'not sent':<13} {self.only_in_warehouse:>7,}  customers the warehouse holds"
                " that the API did not send (verify never deletes them)"
            )
        return lines


@dataclass
class VerifyReport:
    warehouse: str
    since: str
    found: Comparison
    repair: RunSummary | None = None
    after: Comparison | None = None
    duration_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        """Whether the warehouse equals the API now (after the repair, if there was one)."""
        return (self.after or self.found).differences == 0

    def headline(self) -> str:
        verdict = (
            "the warehouse equals the API"
            if self.equal
            else f"{(self.after or self.found).differences:,} customers differ from the API"
        )
        return f"trigg verify: {verdict} ({self.warehouse}, {self.duration_seconds:.1f} s)"

    def render(self) -> str:
        lines = [self.headline(), f"  since asked   {self.since}"]
        lines += self.found.render("compared")
        if self.repair is not None and self.after is not None:
            loaded = self.repair.customers_received
            rows = sum(self.repair.rows_per_table.values())
            cursor = self.repair.cursor_after.isoformat() if self.repair.cursor_after else "none"
            lines.append(
                f"  {'repaired':<13} {loaded:,} customers loaded from the API's answer"
                f" ({rows:,} rows); the cursor stays at {cursor}"
            )
            lines += self.after.render("after repair")
        elif self.found.differences:
            lines.append(
                f"  {'to repair':<13} `trigg verify --repair` loads them from the API's answer"
            )
        lines.extend(f"  note          {note}" for note in self.notes)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The first comparison's findings at the top level; the repair and what the second
        comparison found beside them."""
        return {
            "warehouse": self.warehouse,
            "since": self.since,
            **self.found.as_dict(),
            "equal": self.equal,
            "duration_seconds": round(self.duration_seconds, 3),
            "repair": None if self.repair is None else _repair_dict(self.repair),
            "after_repair": None if self.after is None else self.after.as_dict(),
            "notes": self.notes,
        }


def verify(
    settings: TriggSettings,
    warehouse: Warehouse | str,
    since: str | None = None,
    repair: bool = False,
    all_ids: bool = False,
) -> VerifyReport:
    """Compare every customer the API sends for `since` with `warehouse`; with `repair`, load
    the differing ones from that answer and compare again. `all_ids`: every differing id."""
    started = time.monotonic()
    warehouse = as_warehouse(warehouse)
    zone = ZoneInfo(settings.timezone)
    asked = parse_since(since, zone) if since else None
    privacy = Privacy(settings.pii, settings.pii_key)

    def waiting(step: Callable[[], T]) -> T:  # each wait for the warehouse gets the timeout
        return when_unlocked(step, warehouse, time.monotonic() + settings.lock_timeout_seconds)

    with exclusive_run(warehouse), _scratch(warehouse) as folder:
        pipeline = make_pipeline(warehouse)
        waiting(pipeline.sync_destination)
        loaded_with = stored_pii_mode(pipeline)
        if loaded_with not in (None, settings.pii):
            raise ConfigError(
                f"{warehouse} was loaded with pii = {loaded_with}, the settings say"
                f" {settings.pii}: verify would find every customer different; set"
                f" sources.trigg.pii = {loaded_with} to verify it"
            )
        asked = asked or _where_the_warehouse_begins(pipeline)
        stored = stored_columns(pipeline.default_schema.tables) if pipeline.schema_names else {}
        comparison = _Comparison(folder, since_instant(asked, zone), all_ids)
        with _client(settings).changed_customers(asked) as body, ExitStack() as answer:
            fast = open_answer(answer, body, settings.timezone, folder, stored, privacy)
            write_fingerprints(fast, comparison.api)
            with _parked(fast):
                found = waiting(lambda: comparison.run(pipeline))
            report = VerifyReport(str(warehouse), asked, found)
            if fast is not None and fast.python_rows:
                report.notes.append(
                    f"{fast.python_rows:,} records of the answer were not compared: a load takes"
                    " them through dlt's normalizer (a record to quarantine, or a value the fast"
                    " path does not load itself), and verify compares what the fast path reads"
                )
            if repair and found.differences and fast is not None:
                replay = Replay(fast, comparison.write_ids())
                report.repair = replay_locked(settings, warehouse, replay, asked)
                report.notes.extend(report.repair.notes)
        if report.repair is not None:  # the answer's scratch database is gone: memory for this
            repaired = make_pipeline(warehouse)
            report.after = waiting(lambda: comparison.run(repaired))
    if report.found.without_fingerprint:
        report.notes.append(
            f"{report.found.without_fingerprint:,} customers have no fingerprint in the warehouse"
            " (loaded through dlt's normalizer, or before trigg kept fingerprints): their content"
            " cannot be compared, so they count as differing; --repair reloads them"
        )
    report.duration_seconds = time.monotonic() - started
    return report


class _Comparison:
    """The comparison database in the verify's scratch folder: the API's side as a parquet
    file, the warehouse's streamed in for each comparison, and the differences."""

    def __init__(self, folder: str, since: datetime, all_ids: bool) -> None:
        self.folder = folder
        self.since = since
        self.all_ids = all_ids
        self.api = os.path.join(folder, "api.parquet")
        self.ids = os.path.join(folder, "repair.parquet")

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        config = {**COMPARE_SETTINGS, "temp_directory": os.path.join(self.folder, "spill")}
        connection = duckdb.connect(os.path.join(self.folder, "compare.duckdb"), config=config)
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute("SET enable_progress_bar = false")
            yield connection
        finally:
            connection.close()

    def run(self, pipeline: dlt.Pipeline) -> Comparison:
        """Stream the warehouse's side in, then sort every customer into its kind."""
        with self._connect() as connection:
            connection.execute(
                "CREATE OR REPLACE TABLE held"
                f" (id VARCHAR, {UPDATED_AT} TIMESTAMPTZ, {FINGERPRINT} VARCHAR)"
            )
            for batch in held_fingerprints(pipeline):
                connection.register("batch", batch)
                connection.execute("INSERT INTO held SELECT * FROM batch")
                connection.unregister("batch")
            connection.execute(_DIFFERENCES_SQL.format(api=literal(self.api)), [self.since])
            return self._read(connection)

    def _read(self, connection: duckdb.DuckDBPyConnection) -> Comparison:
        api, held = connection.execute(
            f"SELECT (SELECT count(*) FROM read_parquet({literal(self.api)})),"
            " (SELECT count(*) FROM held)"
        ).fetchone() or (0, 0)
        counts = dict.fromkeys(KINDS, 0)
        counts.update(
            connection.execute(
                f"SELECT kind, count(*) FROM differences WHERE {_DIFFERING} GROUP BY kind"
            ).fetchall()
        )
        limit = (
            ""
            if self.all_ids
            else f"QUALIFY row_number() OVER (PARTITION BY kind ORDER BY id) <= {SHOWN_IDS}"
        )
        ids: dict[str, list[str]] = {kind: [] for kind in KINDS}
        for kind, customer_id in connection.execute(
            f"SELECT kind, id FROM differences WHERE {_DIFFERING} {limit} ORDER BY kind, id"
        ).fetchall():
            ids[kind].append(customer_id)
        unfingerprinted, not_sent, unchecked = connection.execute(
            "SELECT count(*) FILTER (WHERE kind = 'differs' AND unfingerprinted),"
            " count(*) FILTER (WHERE kind = 'not_sent'),"
            " count(*) FILTER (WHERE kind = 'unchecked') FROM differences"
        ).fetchone() or (0, 0, 0)
        return Comparison(api, held, counts, ids, unfingerprinted, not_sent, unchecked)

    def write_ids(self) -> str:
        """The ids of the customers to repair, as the parquet file `Replay` reads."""
        with self._connect() as connection:
            connection.execute(
                f"COPY (SELECT id FROM differences WHERE {_DIFFERING})"
                f" TO {literal(self.ids)} (FORMAT parquet)"
            )
        return self.ids


_DIFFERING = "kind IN (" + ", ".join(f"'{kind}'" for kind in KINDS) + ")"
_DIFFERENCES_SQL = """
CREATE OR REPLACE TABLE differences AS
SELECT * FROM (
    SELECT coalesce(a.id, h.id) AS id,
        CASE
            WHEN h.id IS NULL THEN 'missing'
            WHEN a.id IS NULL THEN
                CASE WHEN h.updated_at IS NULL OR h.updated_at >= ?::TIMESTAMPTZ THEN 'not_sent' END
            WHEN h.updated_at IS DISTINCT FROM a.updated_at THEN
                CASE WHEN h.updated_at IS NULL OR h.updated_at < a.updated_at
                     THEN 'stale' ELSE 'newer' END
            WHEN a.updated_at IS NULL OR a.fingerprint IS NULL THEN 'unchecked'
            WHEN h.fingerprint IS NULL OR h.fingerprint <> a.fingerprint THEN 'differs'
        END AS kind,
        h.id IS NOT NULL AND h.fingerprint IS NULL AS unfingerprinted
    FROM read_parquet({api}) a FULL OUTER JOIN held h ON a.id = h.id
) WHERE kind IS NOT NULL
"""


def open_answer(
    stack: ExitStack,
    body: IO[bytes],
    zone: str,
    folder: str,
    stored: dict[str, dict[str, str]] | None = None,
    privacy: Privacy | None = None,
) -> FastBody | None:
    """The API's answer, read and checked by the fast path in a scratch database in `folder`
    (open until `stack` closes), typed and handled as a run would load it (`stored`: the
    columns the warehouse's schema holds; `privacy`); None when it is empty."""
    try:
        return stack.enter_context(fast_body(body, zone, folder, stored, privacy))
    except Unusual as why:
        if str(why) == "the response is empty":
            return None
        raise VerifyError(
            f"the API's answer cannot be compared: the fast path cannot read it ({why});"
            " nothing was changed"
        ) from None


def write_fingerprints(fast: FastBody | None, path: str) -> None:
    """(id, `updated_at`, fingerprint) of every customer in the answer, as the parquet file
    `path` (no rows for an empty answer)."""
    if fast is None:
        with duckdb.connect() as connection:
            connection.execute(
                f"COPY (SELECT NULL::VARCHAR AS id, NULL::TIMESTAMPTZ AS {UPDATED_AT},"
                f" NULL::VARCHAR AS {FINGERPRINT} WHERE false) TO {literal(path)} (FORMAT parquet)"
            )
        return
    fingerprints = fast.fingerprints(VERIFY_LOAD_ID)
    plan = fast.plan
    fast.connection.execute(
        f"COPY (SELECT {plan.id_sql()} AS id,"
        f" {plan.updated_at_sql(fast.convert)} AS {UPDATED_AT}, f.{FINGERPRINT}"
        f" FROM {fast.body} b LEFT JOIN ({fingerprints.sql()}) f ON f.{ROW_KEY} = b.root_id)"
        f" TO {literal(path)} (FORMAT parquet)"
    )


@contextmanager
def _parked(fast: FastBody | None) -> Iterator[None]:
    """While the warehouse is compared, the answer's scratch database (kept for the repair)
    holds little memory: DuckDB writes its buffers out to disk."""
    if fast is None:
        yield
        return
    with suppress(duckdb.Error):  # when it cannot free that much, it keeps what it needs
        fast.connection.execute(f"SET memory_limit = '{PARKED_MEMORY}'")
    try:
        yield
    finally:
        fast.connection.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")


def _where_the_warehouse_begins(pipeline: dlt.Pipeline) -> str:
    """The since of the first run: kept in dlt's state, else the earliest successful run in
    `run_history`, else a since before any Trigg data."""
    first = stored_first_since(pipeline)
    if first:
        return first
    try:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name(RUN_HISTORY.name)
            rows = client.execute_sql(
                f"SELECT min(since) FROM {table} WHERE outcome = 'succeeded' AND since IS NOT NULL"
            )
    except DatabaseUndefinedRelation:
        rows = None
    earliest = rows[0][0] if rows and rows[0] else None
    return str(earliest) if earliest else FULL_BACKFILL_SINCE


def _client(settings: TriggSettings) -> TriggClient:
    return TriggClient(
        settings.base_url,
        settings.api_key,
        settings.request_timeout_seconds,
        RetryPolicy(
            settings.max_attempts, settings.backoff_seconds, settings.max_retry_wait_seconds
        ),
        allow_insecure_http=settings.allow_insecure_http,
    )


@contextmanager
def _scratch(warehouse: Warehouse) -> Iterator[str]:
    """Verify's own scratch folder beside the run's, emptied first and removed at the end."""
    folder = os.path.join(warehouse_dir(warehouse), "verify")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _repair_dict(summary: RunSummary) -> dict[str, Any]:
    return {
        "customers_loaded": summary.customers_received,
        "rows_per_table": summary.rows_per_table,
        "load_ids": summary.load_ids,
        "cursor": summary.cursor_after.isoformat() if summary.cursor_after else None,
    }
