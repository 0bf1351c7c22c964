"""The Trigg source: customers changed since a cursor, as dlt tables merged by customer id.

Use it like any dlt verified source::

    pipeline = dlt.pipeline("trigg_customers", destination="duckdb", dataset_name="trigg")
    pipeline.run(trigg_source())

Configuration lives under `sources.trigg.*` (see `settings.py`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

import dlt
import pendulum
from dlt.extract import DltResource

from pipelines import dlt_patches
from pipelines.trigg.arrivals import LateArrivals
from pipelines.trigg.batches import Declaration, FastBatch, FastFile, Received, TableHints
from pipelines.trigg.client import RetryPolicy, TriggClient
from pipelines.trigg.errors import QuarantineError
from pipelines.trigg.events import event
from pipelines.trigg.fast_path import FastBody, Unusual, fast_body
from pipelines.trigg.future import not_after_response
from pipelines.trigg.history import customer_versions
from pipelines.trigg.privacy import Privacy
from pipelines.trigg.records import (
    InvalidRecord,
    envelope,
    newest,
    stream_envelopes,
    to_customer,
)
from pipelines.trigg.replay import Replay
from pipelines.trigg.schema import (
    PRIMARY_KEY,
    QUARANTINE_KEY,
    REJECTED_TABLE,
    ROOT_TABLE,
    TABLES,
    VERSIONS,
    Table,
    child_column_hints,
    nested_hints,
    parent_table,
    quarantine_column_hints,
    root_column_hints,
)
from pipelines.trigg.settings import (
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_LOOKBACK_MINUTES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RETRY_WAIT_SECONDS,
    DEFAULT_PII,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DEFAULT_TIMEZONE,
    FULL_BACKFILL_SINCE,
    SOURCE_NAME,
)
from pipelines.trigg.timestamps import parse_since, since_from_cursor
from pipelines.trigg.validation import problem

__all__ = ["plan_since", "read_cursor", "read_first_since", "read_pii_mode", "trigg_source"]


CURSOR_KEY = "cursor"
FIRST_SINCE_KEY = "first_since"
"""The since the first run (or the last full refresh) asked for: where the warehouse begins."""
PII_KEY = "pii"
"""The pii mode the warehouse was loaded with: switching it needs a full refresh."""
BATCH_SIZE = 1000
"""Records handed to dlt per item: lists are much cheaper for dlt than single rows."""
DOWNLOADED = "bytes downloaded"
"""The counter of the response's bytes, in the pipeline's progress collector (`progress=`)."""


@dlt.source(name=SOURCE_NAME)
def trigg_source(
    base_url: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    timezone: str = DEFAULT_TIMEZONE,
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES,
    initial_since: str | None = None,
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
    max_retry_wait_seconds: float = DEFAULT_MAX_RETRY_WAIT_SECONDS,
    allow_insecure_http: bool = False,
    pii: str = DEFAULT_PII,
    pii_key: str | None = dlt.secrets.value,
    fast_path: bool = True,
    fast_path_files: bool = False,
    scratch_dir: str | None = None,
    since: str | None = None,
    strict: bool = False,
    notes: list[str] | None = None,
    warnings: list[str] | None = None,
    replay: Replay | None = None,
    late_arrivals: LateArrivals | None = None,
) -> list[DltResource]:
    """Customers changed since `since`, or since the stored cursor minus the lookback.

    `since` is sent as given; without it, a first run asks from `initial_since` (default: every
    customer, a full backfill) and later runs from the cursor: the newest `metaData.UpdatedAt`
    loaded so far.
    Records that cannot be loaded go to `customers_rejected`; with `strict`, they fail the run.
    Each customer also becomes a row of `customer_versions` (see `history.py`).

    With `fast_path`, DuckDB flattens the body into Arrow tables (`fast_path.py`, scratch files in
    `scratch_dir`), or with `fast_path_files` into parquet files dlt imports as they are (for
    destinations that load parquet themselves, such as DuckDB). Records it cannot load exactly
    as dlt's normalizer would (one to quarantine, a value dlt coerces its own way) take the
    reference path one by one, in the same load; a body whose shape it cannot plan at all goes
    to the normalizer whole, and why is appended to `notes`. The cursor never passes the moment
    the API produced the response; records stamped later are loaded, and named in `warnings`.

    With `replay`, an answer the fast path has read before is loaded instead of asking the API,
    only for the customers it names, and the cursor stays (`trigg verify --repair`).
    `late_arrivals` counts the records stamped before the cursor that the warehouse did not hold
    (`arrivals.py`).
    """
    zone = ZoneInfo(timezone)
    privacy = Privacy(pii, pii_key)
    client = TriggClient(
        base_url,
        api_key,
        request_timeout_seconds,
        RetryPolicy(max_attempts, backoff_seconds, max_retry_wait_seconds),
        allow_insecure_http=allow_insecure_http,
        progress=_count_download,
    )

    @dlt.resource(name="changed_customers", selected=False)
    def changed_customers() -> Iterator[Received | Declaration | FastBatch | FastFile]:
        """Every record the API returned: as Arrow tables or parquet files from the fast path,
        or sorted into loadable customers and rejections by the reference path."""
        state = dlt.current.source_state()
        cursor = read_cursor(state)
        request_since = since or plan_since(cursor, lookback_minutes, initial_since, zone)
        if replay is not None:  # the cursor stays where it is
            replay.fast.keep_only(replay.ids_sql)
            yield from _fast_items(replay.fast, fast_path_files, scratch_dir)
            return
        if cursor is None:
            state.setdefault(FIRST_SINCE_KEY, request_since)
        seen = Newest(cursor)
        download = client.changed_customers(request_since)
        with download as body, ExitStack() as scratch:
            fast = (
                _open_fast_body(scratch, body, timezone, scratch_dir, notes, privacy)
                if fast_path
                else None
            )
            if fast is not None:  # its flagged records first: --strict fails before the rest
                flagged = (envelope(n, json.loads(text)) for n, text in fast.python_records())
                arrivals = late_arrivals if cursor is not None else None
                yield from _reference_batches(flagged, zone, strict, seen, privacy, arrivals)
                seen.add(fast.newest_updated_at())
                if late_arrivals is not None and cursor is not None:
                    late_arrivals.observe(cursor, fast.older_than(cursor))
                yield from _fast_items(fast, fast_path_files, scratch_dir)
            else:
                arrivals = late_arrivals if cursor is not None else None
                yield from _reference_batches(
                    stream_envelopes(body), zone, strict, seen, privacy, arrivals
                )
            seen.moment = not_after_response(seen.moment, download, zone, warnings)
        if seen.moment is not None and seen.moment != cursor:
            state[CURSOR_KEY] = seen.moment.isoformat()
        if state.get(PII_KEY, DEFAULT_PII) != privacy.mode:
            state[PII_KEY] = privacy.mode

    @dlt.transformer(
        data_from=changed_customers,
        name=ROOT_TABLE,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=PRIMARY_KEY,
        columns=root_column_hints(),
        nested_hints=nested_hints(),
    )
    def customers(received: Received | Declaration | FastBatch | FastFile) -> Iterator[Any]:
        if isinstance(received, Declaration):
            yield dlt.mark.with_hints([], received.hints, create_table_variant=True)
        elif isinstance(received, FastFile):
            if received.table != VERSIONS.name:  # the file is the item, for `_table_of`
                yield from received.imported(hints=received)
        elif isinstance(received, FastBatch):
            if received.table != VERSIONS.name:
                yield dlt.mark.with_table_name(received.batch, received.table)
        elif received.customers:
            yield received.customers

    @dlt.transformer(
        data_from=changed_customers,
        name=REJECTED_TABLE,
        write_disposition={"disposition": "merge", "strategy": "insert-only"},
        primary_key=QUARANTINE_KEY,
        columns=quarantine_column_hints(),
    )
    def customers_rejected(
        received: Received | Declaration | FastBatch | FastFile,
    ) -> Iterator[list[dict[str, Any]]]:
        if isinstance(received, Received) and received.rejected:
            yield received.rejected

    dlt_patches.install()
    if fast_path_files:
        # an imported file cannot name a table variant: the table comes from the item instead
        customers.apply_hints(table_name=_table_of)
    else:
        # dlt 1.31 gives the nested tables made from `nested_hints` the columns of a root Arrow
        # table: the fast path's root rows use a variant without them (the normalizer keeps them)
        customers.apply_hints(table_name=ROOT_TABLE, nested_hints={}, create_table_variant=True)
    for table in TABLES[1:]:
        _declare_child_table(customers, table)
    return [customers, customers_rejected, customer_versions(changed_customers)]


def _fast_items(
    fast: FastBody, files: bool, scratch_dir: str | None
) -> Iterator[Declaration | FastBatch | FastFile]:
    """The fast path's tables, as parquet files or as Arrow batches, `customer_versions` last;
    right before a table's first rows, the hints of its columns dlt does not know yet (and of
    the table itself, if new): dlt reads a table's hints when it meets its first rows.

    The files outlive the scratch database: dlt hands them to the transformers after this
    resource has finished. Each is removed once dlt has linked it into the load package."""
    load_id = dlt.current.load_package_state()["load_id"]
    undeclared = {
        table: list(map(Declaration, _table_hints(table, declared)))
        for table, declared in fast.new_hints().items()
    }
    if files:
        for file in fast.export(load_id, tempfile.mkdtemp(prefix="trigg-files-", dir=scratch_dir)):
            yield from undeclared.pop(file.table, [])
            yield file
        return
    for table, arrow_batch in fast.batches(load_id):
        yield from undeclared.pop(table, [])
        yield FastBatch(table, arrow_batch)
    for arrow_batch in fast.versions(load_id):
        yield FastBatch(VERSIONS.name, arrow_batch)


def _table_of(item: Any) -> str:
    """The table an item of `customers` goes to: a fast path file's own, or the root table."""
    return item.table if isinstance(item, FastFile) else ROOT_TABLE


def _declare_child_table(customers: DltResource, table: Table) -> None:
    """Let `customers` take the fast path's rows of a pinned child table (see `_child_hints`)."""
    declared = TableHints(child_column_hints(table), parent_table(table).name)
    for hints in _table_hints(table.name, declared):
        customers.merge_hints(hints, create_table_variant=True)


def _table_hints(table: str, declared: TableHints) -> list[Any]:
    """The hints for `table`'s columns; with a parent, first those that make it a child table of
    `customers`. dlt's normalizer makes child tables from nested lists itself; Arrow tables and
    parquet files skip it, so each child table is declared as nested in `customers`, with dlt's
    join columns: that is what lets merge replace a changed customer's old child rows. A table
    variant starts as a copy of the root's hints: keys and columns go first."""
    columns = dlt.mark.make_hints(table_name=table, columns=declared.columns)
    if declared.parent is None:
        return [columns]
    reset = dlt.mark.make_hints(
        table_name=table,
        parent_table_name=declared.parent,
        columns={},
        primary_key=[],
        nested_hints={},
    )
    return [reset, columns]


@dataclass
class Newest:
    """The cursor candidate: the newest `updated_at` among the customers loaded."""

    moment: datetime | None

    def add(self, other: datetime | None) -> None:
        self.moment = newest(self.moment, other)


def _count_download(size: int) -> None:
    dlt.current.pipeline().collector.update(DOWNLOADED, inc=size)


def _reference_batches(
    envelopes: Iterable[tuple[Any, Any]],
    zone: ZoneInfo,
    strict: bool,
    seen: Newest,
    privacy: Privacy,
    late_arrivals: LateArrivals | None = None,
) -> Iterator[Received]:
    """The reference path: each record checked in Python, customers left to dlt's normalizer.

    A bad record sent twice in one response is quarantined once (see `rejection`);
    `late_arrivals` sees the customers stamped before the cursor (`seen` starts at it)."""
    batch = Received()
    rejected = 0
    first_reason = ""
    quarantined: set[str] = set()
    cursor = seen.moment
    older: list[tuple[str, datetime]] = []
    for raw, meta in envelopes:
        data = privacy.apply(raw)
        try:
            customer = to_customer(data, meta, zone)
            reason = problem(customer)
        except InvalidRecord as invalid:
            reason = str(invalid)
        if reason is None:
            seen.add(customer["updated_at"])
            batch.customers.append(customer)
            updated_at = customer["updated_at"]
            if late_arrivals is not None and cursor and updated_at and updated_at < cursor:
                older.append((str(customer[PRIMARY_KEY]), updated_at))
        else:
            rejected += 1
            first_reason = first_reason or reason
            row = rejection(data, meta, reason)
            if row[QUARANTINE_KEY] not in quarantined:
                quarantined.add(row[QUARANTINE_KEY])
                batch.rejected.append(row)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = Received()
        if late_arrivals is not None and cursor and len(older) >= BATCH_SIZE:
            late_arrivals.observe(cursor, older)
            older = []
    if strict and rejected:
        raise QuarantineError(
            f"{rejected} record(s) could not be loaded (first: {first_reason});"
            " --strict makes that a failure, so nothing was loaded"
        )
    if len(batch):
        yield batch
    if late_arrivals is not None and cursor:
        late_arrivals.observe(cursor, older)


def _open_fast_body(
    scratch: ExitStack,
    body: IO[bytes],
    zone: str,
    folder: str | None,
    notes: list[str] | None,
    privacy: Privacy,
) -> FastBody | None:
    """The body, read and checked by DuckDB; None when the reference path must take it."""
    try:
        return scratch.enter_context(fast_body(body, zone, folder, _stored_columns(), privacy))
    except Unusual as why:
        event(
            "reference_path", f"the response goes through dlt's normalizer: {why}", reason=str(why)
        )
        if notes is not None and str(why) != "the response is empty":
            notes.append(f"the response was loaded through dlt's normalizer (slower): {why}")
        body.seek(0)
        return None


def _stored_columns() -> dict[str, dict[str, str]]:
    """The typed columns dlt's schema holds for the customers tables (earlier loads' new fields
    included): the fast path types values the way dlt would coerce them into these."""
    return stored_columns(dlt.current.source_schema().tables)


def stored_columns(tables: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Of a dlt schema's `tables`: the typed columns of the customers tables (see above)."""
    return {
        name: {
            column: str(hints["data_type"])
            for column, hints in table.get("columns", {}).items()
            if hints.get("data_type")
        }
        for name, table in tables.items()
        if name == ROOT_TABLE or name.startswith(f"{ROOT_TABLE}__")
    }


def rejection(data: Any, meta: Any, reason: str) -> dict[str, Any]:
    """A `customers_rejected` row: the raw record as received, and why it was not loaded.

    `record_hash` names the record by its content: a bad record the API delivers again (the
    lookback does) merges into its first row instead of adding one."""
    customer_id = data.get(PRIMARY_KEY) if isinstance(data, dict) else None
    record = {"data": data, "metaData": meta}
    content = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return {
        "customer_id": None if customer_id is None else str(customer_id),
        "reason": reason,
        "record": record,
        QUARANTINE_KEY: hashlib.sha256(content.encode()).hexdigest(),
        "load_id": dlt.current.load_package_state()["load_id"],
        "rejected_at": pendulum.now("UTC"),
    }


def read_pii_mode(source_state: Mapping[str, Any]) -> str | None:
    """The pii mode the warehouse was loaded with; None before the first load."""
    if PII_KEY in source_state:
        return str(source_state[PII_KEY])
    return DEFAULT_PII if CURSOR_KEY in source_state else None


def read_first_since(source_state: Mapping[str, Any]) -> str | None:
    """The since of the first run (or of the last full refresh), if the state recorded it."""
    first = source_state.get(FIRST_SINCE_KEY)
    return str(first) if first else None


def read_cursor(source_state: Mapping[str, Any]) -> datetime | None:
    """The cursor kept in the source's dlt state, if a run has stored one."""
    stored = source_state.get(CURSOR_KEY)
    return datetime.fromisoformat(stored) if stored else None


def plan_since(
    cursor: datetime | None, lookback_minutes: int, initial_since: str | None, zone: ZoneInfo
) -> str:
    """The `since` segment for a run without an explicit one: after the cursor, or for a first
    run `initial_since`, else a full backfill (`FULL_BACKFILL_SINCE`, before any Trigg data)."""
    if cursor is not None:
        return since_from_cursor(cursor, lookback_minutes, zone)
    if initial_since:
        return parse_since(initial_since, zone)
    return FULL_BACKFILL_SINCE
