"""The fast path: DuckDB turns the spooled response body into Arrow tables or parquet files,
skipping dlt's row normalizer (about 20,000 rows/s) and never holding the body in Python.

DuckDB is used here as a processing engine only, in a scratch database of its own; dlt still does
state, schema, merge and loading, so the destination can be any dlt destination. The steps:

1. The body's array of items is found (the body itself, the array under an object's `data`, or one
   envelope), and DuckDB detects the structure of all of it (every key, one merged type per leaf).
   `fast_plan` matches it against the pinned schema and dlt's, and plans new columns and child
   tables for keys neither knows; a shape it cannot plan raises `Unusual` and the caller takes
   the reference path instead. DuckDB reads one JSON array with one thread, so the array is first
   cut in two at a record boundary (found by pattern, proven by both halves parsing) and the
   halves read side by side.
2. DuckDB reads the body into the scratch database with that explicit structure, then checks in
   one pass every value SQL cannot load exactly as dlt would: the records holding one are flagged
   (one row per record, `flagged`). New columns are typed from the first value dlt would meet.
3. Flagged records, and every other copy of their customers, take the Python way: their raw text
   (`read_json_objects`, numbered like the body's rows) goes to `records`, `validation` and dlt's
   normalizer, in the same load. For the rest, a customer sent twice keeps its newest
   `updated_at` (the later one on a tie); every table is selected with dlt's join columns
   (`_dlt_id`, `_dlt_parent_id`, `_dlt_root_id`, `_dlt_list_idx`) and either written by DuckDB as
   a parquet file per table (for destinations that load parquet themselves, such as DuckDB) or
   streamed as Arrow record batches (for the others). Nothing is handed over before all checks
   passed.

The scratch database keeps small row groups, so that DuckDB's two threads share every step after
the read (DuckDB scans a table in parallel by row group).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, TYPE_CHECKING

import duckdb
import ijson

from pipelines.dlt_patches.duckdb_file_merge import DEDUPLICATED_METADATA
from pipelines.dlt_patches.parquet_import import BY_NAME_METADATA
from pipelines.trigg.batches import FastFile, TableHints
from pipelines.trigg.errors import ResponseShapeError
from pipelines.trigg.events import event
from pipelines.trigg.fast_plan import (
    DATA,
    Plan,
    TablePlan,
    Unusual,
    infer_type,
    literal,
    make_plan,
    parse_first,
    quote,
    timestamp_sql,
)
from pipelines.trigg.fingerprint import Fingerprints
from pipelines.trigg.privacy import IPAD_VARIABLE, OPAD_VARIABLE, Privacy, hmac_pads
from pipelines.trigg.records import sniff_shape
from pipelines.trigg.schema import (
    FINGERPRINT,
    LOAD_ID,
    PRIMARY_KEY,
    ROOT_KEY,
    ROW_KEY,
    UPDATED_AT,
    VERSION_SOURCES,
    VERSIONS,
    Table,
)
from pipelines.trigg.timestamps import folds, offset_probes

if TYPE_CHECKING:
    import pyarrow as pa

MEMORY_LIMIT = "256MB"
"""DuckDB's buffer pool for the scratch database; it spills to the scratch folder beyond that
(reading both halves of the body side by side needs about that much: 192 MB fails)."""
THREADS = 2
ROW_GROUP_ROWS = 16_384
"""Rows per row group, in the scratch database and in the parquet files: small enough that both
threads work on every table (DuckDB's default, 122,880, is one row group for 100,000 customers)
and that writing parquet stays within `MEMORY_LIMIT`."""
BATCH_ROWS = 32_000
"""Rows per Arrow record batch handed to dlt: fewer batches cost dlt less time, bigger ones
more memory (64,000 rows: 60 MB more peak RSS than 16,000)."""
DETECT = (
    "format = 'array', sample_size = -1, maximum_depth = -1, map_inference_threshold = -1,"
    " field_appearance_threshold = 0, dateformat = '%d.%m.%Y', timestampformat = '%d.%m.%Y'"
)
"""Look at every record (`sample_size = -1`): a key only one customer has must not be missed;
objects always as STRUCTs (their keys are the point); fewer date formats to try."""
RECORD_STARTS = (
    re.compile(rb'(\})\s*,\s*(\{\s*"(?:data|metaData)"\s*:)'),
    re.compile(rb'"metaData"\s*:\s*\{[^{}]*\}\s*(\})\s*,\s*(\{)'),
)
"""Where one record ends (group 1) and the next begins (group 2), as it looks in the body's text:
an envelope's key, or a bare customer's `metaData` (a flat object) closing it. Never inside a
string (a quote there is escaped), but maybe deeper in a record, in an object with a `data` key:
then a half does not parse, and the whole body is read as one."""
BODY_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*([\[{])")
OBJECT_DATA = re.compile(rb'(?:\xef\xbb\xbf)?\s*\{\s*"data"\s*:\s*\[')
"""An object whose first key is `data`, holding an array."""
OBJECT_END = re.compile(rb"\]\s*\}\s*\Z")
"""... and whose array is its last value."""
HEAD_BYTES = 1 << 16
MAX_EARLIER_VALUES = 1000
"""Flagged records' values of a new column before the first clean one, checked to agree."""
PYTHON_BATCH_ROWS = 1000
"""Raw records fetched at a time for the Python way."""
SEARCH_BYTES = 1 << 20
"""How far past the middle of the body a record boundary is looked for."""


def _progress(step: str, started: float) -> None:
    seconds = round(time.monotonic() - started, 3)
    event("fast_path", f"fast path: {step} after {seconds:.1f} s", step=step, seconds=seconds)


class FastBody:
    """A response body DuckDB has read and checked, ready to be handed to dlt table by table.

    Records SQL cannot load exactly as dlt would are flagged while it checks; they, and every
    other copy of their customers, take the Python way (`python_records`), the rest the fast
    path (`body`: the body table without them, and without older copies of a customer)."""

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, plan: Plan, zone: str, parts: list[str]
    ) -> None:
        self.connection = connection
        self.plan = plan
        self.zone = zone
        self.parts = parts
        self.convert = timestamp_sql(zone, [])
        self.body = "body"
        """The records on the fast path: one copy of each customer, its newest."""
        self.versions_body = "body"
        """The records of `customer_versions`: one copy of each version."""
        self.customers = 0
        self.python_rows = 0
        """Records that take the Python way: flagged ones and the other copies of their ids."""

    def prepare(self) -> None:
        """Check every value (step 2), then settle new columns, timestamps and duplicates."""
        bounds: list[date] = []
        flags: list[str] = []
        for check in self.plan.checks():
            row = self.connection.sql(check.sql()).fetchone()
            assert row is not None
            flags.extend(flag for flag, bad in zip(check.flags, row, strict=False) if bad)
            bounds.extend(value for value in row[len(check.counts) :] if value)
        self._flag(flags, create=True)
        self._settle_new_columns()
        if bounds:
            self._settle_time_zone(min(bounds), max(bounds))
        if self.python_rows:
            self._route_to_python()
        fast = self.body if self.python_rows else "body"
        row = self.connection.sql(
            f"SELECT count(*), count(DISTINCT {self.plan.id_sql()}) FROM {fast} b"
        ).fetchone()
        assert row is not None
        self.customers, distinct = row
        if distinct < self.customers:
            self._drop_older_copies(fast)
            self.customers = distinct

    def _flag(self, flags: list[str], create: bool = False) -> None:
        """Add the records matching any of `flags` (conditions on a body row `b`) to `flagged`."""
        if create:
            self.connection.execute("CREATE TABLE flagged (position BIGINT)")
        if flags:
            condition = " OR ".join(f"({flag})" for flag in flags)
            self.connection.execute(
                f"INSERT INTO flagged SELECT b.rowid FROM body b WHERE {condition}"
            )
            row = self.connection.sql("SELECT count(DISTINCT position) FROM flagged").fetchone()
            self.python_rows = row[0] if row else 0

    def _settle_new_columns(self) -> None:
        """Type each new column the way dlt's normalizer would: from the first value it meets,
        in the order of the body (a record, then its lists in order). Flagged records may be
        quarantined and never met: their values before the first clean one must agree."""
        pending = list(self.plan.pending())
        if not pending:
            return
        firsts = [self.plan.first_value_sql(table, leaf) for table, leaf in pending]
        columns = ", ".join(f"{first} AS f{n}" for n, first in enumerate(firsts))
        source = (
            f"(SELECT b.rowid AS position, b.rowid NOT IN (SELECT position FROM flagged) AS clean,"
            f" {columns} FROM body b)"
        )
        found = ", ".join(
            f"arg_min(f{n}, position) FILTER (WHERE f{n} IS NOT NULL AND clean),"
            f" min(position) FILTER (WHERE f{n} IS NOT NULL AND clean),"
            f" min(position) FILTER (WHERE f{n} IS NOT NULL)"
            for n in range(len(firsts))
        )
        row = self.connection.sql(f"SELECT {found} FROM {source}").fetchone()
        assert row is not None
        new_flags: list[str] = []
        for n, (table, leaf) in enumerate(pending):
            first, at, earliest = row[3 * n : 3 * n + 3]
            value = parse_first(first)
            if value is not None and earliest < at:  # flagged records come first
                earlier = self.connection.execute(
                    f"SELECT f{n} FROM {source} WHERE f{n} IS NOT NULL AND position < ?"
                    f" ORDER BY position LIMIT {MAX_EARLIER_VALUES + 1}",
                    [at],
                ).fetchall()
                kinds = {infer_type(parse_first(text)) for (text,) in earlier}
                if len(earlier) > MAX_EARLIER_VALUES or kinds - {infer_type(value)}:
                    raise Unusual(f"{table.table.name}.{leaf.column.name} arrives typed unevenly")
            self.plan.decide(leaf, value)
            flag = self.plan.leaf_flag(table, leaf)
            if flag is not None and not leaf.dropped:
                new_flags.append(flag)
        self._flag(new_flags)

    def _route_to_python(self) -> None:
        """Every record of a flagged customer goes the Python way (its copies are compared by
        dlt's merge there), and so does every record without an id."""
        ids = f"({self.plan.id_sql()})"
        self.connection.execute(
            f"""CREATE TABLE python_rows AS SELECT b.rowid AS position FROM body b
                WHERE b.rowid IN (SELECT position FROM flagged)
                   OR {ids} IN (SELECT DISTINCT {ids} FROM body b
                                WHERE b.rowid IN (SELECT position FROM flagged))"""
        )
        row = self.connection.sql("SELECT count(*) FROM python_rows").fetchone()
        self.python_rows = row[0] if row else 0
        self.body = "(SELECT * FROM body WHERE rowid NOT IN (SELECT position FROM python_rows))"
        self.versions_body = self.body

    def python_records(self) -> Iterator[tuple[int, str]]:
        """(position, JSON text as sent) of each record for the Python way, in the body's order.

        DuckDB numbers the items it reads in order, as it numbered the body table's rows; each
        record's id is compared with the body table's, so a misnumbering fails the run."""
        if not self.python_rows:
            return
        files = "[" + ", ".join(map(literal, self.parts)) + "]"
        expected = f"(SELECT rowid AS position, {self.plan.id_sql()} AS id FROM body b)"
        reader = self.connection.execute(
            f"""SELECT o.ordinality - 1, o.json, e.id
                FROM read_json_objects({files}, format = 'array') WITH ORDINALITY o
                JOIN {expected} e ON e.position = o.ordinality - 1
                WHERE o.ordinality - 1 IN (SELECT position FROM python_rows)
                ORDER BY 1"""
        )
        while rows := reader.fetchmany(PYTHON_BATCH_ROWS):
            for position, text, id_text in rows:
                self._check_alignment(position, text, id_text)
                yield position, text

    def _check_alignment(self, position: int, text: str, id_text: str | None) -> None:
        item = json.loads(text)
        data = item.get(DATA) if self.plan.envelopes and isinstance(item, dict) else item
        own = data.get(PRIMARY_KEY) if isinstance(data, dict) else None
        if isinstance(own, str | int) and not isinstance(own, bool) and str(own) != id_text:
            raise RuntimeError(
                f"the fast path misnumbered record {position} of the response ({own!r} read as"
                f" {id_text!r}); nothing was loaded: run with fast_path = false and report it"
            )

    def _settle_time_zone(self, first: date, last: date) -> None:
        """Use DuckDB's ICU for naive timestamps, after proving it agrees with `localize` on this
        range (outside the repeated autumn hours, which the converter corrects)."""
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.zone)
        repeated = folds(first, last, zone)
        probes = offset_probes(first, last, zone)
        rows = self.connection.execute(  # as text: DuckDB converts Python datetimes slowly
            "SELECT w, timezone(?, CAST(w AS TIMESTAMP)) FROM unnest(?::VARCHAR[]) t(w)",
            [self.zone, [wall.isoformat() for wall, _ in probes]],
        ).fetchall()
        for (wall, expected), (_, icu) in zip(probes, rows, strict=True):
            inside = any(fold.start <= wall < fold.end for fold in repeated)
            if not inside and icu != expected:
                raise Unusual(f"DuckDB reads {wall} in {self.zone} as {icu}, Python as {expected}")
        self.convert = timestamp_sql(self.zone, repeated)

    def _drop_older_copies(self, fast: str) -> None:
        """Keep one version per customer: the newest `updated_at`, the later position on a tie.
        `customer_versions` keeps every version (one copy of each: the later)."""
        updated = self.plan.updated_at_sql(self.convert)
        self.connection.execute(
            f"""CREATE TABLE copies AS SELECT position, same_version FROM (
                    SELECT b.rowid AS position,
                        row_number() OVER (PARTITION BY {self.plan.id_sql()}
                            ORDER BY {updated} DESC NULLS LAST, b.rowid DESC) AS newest,
                        row_number() OVER (PARTITION BY {self.plan.id_sql()}, {updated}
                            ORDER BY b.rowid DESC) AS same_version
                    FROM {fast} b)
                WHERE newest > 1"""
        )
        if self.python_rows:
            self.connection.execute("INSERT INTO copies SELECT position, 2 FROM python_rows")
        self.body = "(SELECT * FROM body WHERE rowid NOT IN (SELECT position FROM copies))"
        self.versions_body = (
            "(SELECT * FROM body WHERE rowid NOT IN"
            " (SELECT position FROM copies WHERE same_version > 1))"
        )

    def keep_only(self, customer_ids: str) -> None:
        """Load only the customers whose id is in `customer_ids` (a subquery of ids)."""
        self.body = f"(SELECT * FROM {self.body} b WHERE {self.plan.id_sql()} IN {customer_ids})"
        self.versions_body = (
            f"(SELECT * FROM {self.versions_body} b WHERE {self.plan.id_sql()} IN {customer_ids})"
        )

    def older_than(self, moment: datetime) -> Iterator[tuple[str, datetime]]:
        """(id, `updated_at`) of the customers stamped before `moment` (late arrivals)."""
        updated_at = self.plan.updated_at_sql(self.convert)
        reader = self.connection.execute(
            f"SELECT {self.plan.id_sql()}, {updated_at} FROM {self.body} b WHERE {updated_at} < ?",
            [moment],
        )
        while rows := reader.fetchmany(BATCH_ROWS):
            yield from rows

    def newest_updated_at(self) -> datetime | None:
        """The cursor candidate: the newest `updated_at` of the customers on the fast path."""
        sql = self.plan.updated_at_sql(self.convert)
        row = self.connection.sql(f"SELECT max({sql}) FROM {self.body} b").fetchone()
        return row[0] if row else None

    def new_hints(self) -> dict[str, TableHints]:
        """Per table, the hints of the columns (and child tables) dlt does not know yet."""
        found: dict[str, TableHints] = {}
        for table in self.plan.tables:
            if table.only_empty:
                continue
            if table.declared and table.parent is not None:
                found[table.table.name] = TableHints(table.hints(), table.parent.table.name)
            elif columns := table.new_hints():
                found[table.table.name] = TableHints(columns)
        return found

    def batches(self, load_id: str) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Every table's rows as Arrow record batches, `customers` first."""
        for table in self.plan.tables:
            if table.only_empty:
                continue
            yield from self._table_batches(table, load_id)

    def versions(self, load_id: str) -> Iterator[pa.RecordBatch]:
        """`customer_versions` rows (see `history.py`) of the customers in this body."""
        versions = self._versions_sql(load_id, self.fingerprints(load_id))
        for batch in self.connection.execute(versions).to_arrow_reader(BATCH_ROWS):
            if batch.num_rows:
                yield batch

    def fingerprints(self, load_id: str) -> Fingerprints:
        """The content fingerprint of every customer in this body (see `fingerprint.py`)."""
        fingerprints = Fingerprints(self.connection)
        for table in self.plan.tables:
            if not table.only_empty:
                select = self.plan.select_sql(table, self.convert, load_id, self.body)
                fingerprints.add(table.table, f"({select})")
        return fingerprints

    def export(self, load_id: str, folder: str) -> Iterator[FastFile]:
        """Every table's rows (`customers` first, `customer_versions` last) as a parquet file
        DuckDB writes in `folder`; a table without rows has no file."""
        fingerprints = Fingerprints(self.connection)  # from each file as it is written
        selects = [
            (table.table, self.plan.select_sql(table, self.convert, load_id, self.body))
            for table in self.plan.tables
            if not table.only_empty
        ]
        selects.append((VERSIONS, self._versions_sql(load_id, fingerprints)))
        # loaded by name and without repeated keys: dlt imports and merges them as they are
        vouched = {**BY_NAME_METADATA, **DEDUPLICATED_METADATA}
        metadata = ", ".join(f"{literal(k)}: {literal(v)}" for k, v in vouched.items())
        for table, sql in selects:
            path = os.path.join(folder, f"{table.name}.parquet")
            row = self.connection.execute(
                f"COPY ({sql}) TO {literal(path)} (FORMAT parquet, COMPRESSION snappy,"
                f" ROW_GROUP_SIZE {ROW_GROUP_ROWS}, KV_METADATA {{{metadata}}})"
            ).fetchone()
            rows = row[0] if row else 0
            if rows and isinstance(table, Table):
                fingerprints.add(table, f"read_parquet({literal(path)})")
            if rows:
                yield FastFile(table.name, path, rows)
            else:
                os.remove(path)

    def _versions_sql(self, load_id: str, fingerprints: Fingerprints) -> str:
        root = self.plan.root
        present = {leaf.column.name for leaf in root.selected}

        def pick(source: str, name: str) -> str:
            return (
                f"c.{quote(source)} AS {quote(name)}"
                if source in present
                else f"NULL AS {quote(name)}"
            )

        columns = [
            pick(PRIMARY_KEY, "customer_id"),
            pick(UPDATED_AT, UPDATED_AT),
            *(pick(source, name) for name, source in VERSION_SOURCES.items()),
        ]
        promotions = next(
            (t for t in self.plan.tables if t.table.path == ("promotions",) and not t.only_empty),
            None,
        )
        count, join = "0", ""
        if promotions is not None:
            rows = self.plan.select_sql(promotions, self.convert, load_id, self.versions_body)
            join = (
                f"LEFT JOIN (SELECT {ROOT_KEY} AS root, count(*) AS n FROM ({rows}) GROUP BY 1) p"
                f" ON p.root = c.{ROW_KEY}"
            )
            count = "coalesce(p.n, 0)"
        customers = self.plan.select_sql(root, self.convert, load_id, self.versions_body)
        version_key = f"c.{quote(PRIMARY_KEY)} || '|' || CAST(c.{quote(UPDATED_AT)} AS VARCHAR)"
        return (
            f"SELECT {', '.join(columns)}, CAST({count} AS BIGINT) AS promotions,"
            f" f.{FINGERPRINT},"
            f" {literal(load_id)} AS {LOAD_ID}, md5({version_key}) AS {ROW_KEY}"
            f" FROM ({customers}) c {join}"
            f" LEFT JOIN ({fingerprints.sql()}) f ON f.{ROW_KEY} = c.{ROW_KEY}"
            f" WHERE c.{quote(UPDATED_AT)} IS NOT NULL"
        )

    def _table_batches(
        self, table: TablePlan, load_id: str
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        sql = self.plan.select_sql(table, self.convert, load_id, self.body)
        schema = self.plan.arrow_schema(table)
        reader = self.connection.execute(sql).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            if batch.num_rows:
                yield table.table.name, batch.cast(schema)


@contextmanager
def fast_body(
    body: IO[bytes],
    zone: str,
    scratch_dir: str | None = None,
    stored: Mapping[str, Mapping[str, str]] | None = None,
    privacy: Privacy | None = None,
) -> Iterator[FastBody]:
    """Read and check the spooled `body` in a scratch DuckDB database; raises `Unusual` (before
    anything is yielded) when the reference path must take it. The scratch files go on exit.

    `stored`: the columns dlt's schema already holds beyond the spec (table -> column -> type);
    `privacy`: how personal data is handled (`Privacy.apply` in SQL)."""
    if _is_empty_array(body):
        raise Unusual("the response is empty")
    folder = tempfile.mkdtemp(prefix="trigg-fast-", dir=scratch_dir)
    try:
        items = _items_of(body, folder)
        connection = duckdb.connect(
            config={
                "memory_limit": MEMORY_LIMIT,
                "threads": THREADS,
                "preserve_insertion_order": False,
                "temp_directory": os.path.join(folder, "spill"),
            },
        )
        with connection:
            scratch = literal(os.path.join(folder, "scratch.duckdb"))
            connection.execute(f"ATTACH {scratch} AS scratch (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
            connection.execute("USE scratch")
            connection.execute("SET TimeZone = 'UTC'")  # Arrow timestamps in UTC, as dlt's
            connection.execute("PRAGMA disable_checkpoint_on_shutdown")  # scratch: saves 2 s/100k
            if privacy is not None and privacy.mode == "pseudonymize" and privacy.key:
                _set_pii_key(connection, privacy.key)
            started = time.monotonic()
            plan, parts = _detect(
                connection, items, _halves(body, folder, items), stored or {}, privacy
            )
            _progress("structure detected", started)
            _read(connection, parts, plan)
            _progress("body read", started)
            fast = FastBody(connection, plan, zone, parts)
            fast.prepare()
            _progress("values checked", started)
            yield fast
            _progress("tables flattened", started)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _set_pii_key(connection: duckdb.DuckDBPyConnection, key: str) -> None:
    """The HMAC key's pads as session variables (parameters: the key is in no SQL text)."""
    inner, outer = hmac_pads(key)
    connection.execute(f"SET VARIABLE {IPAD_VARIABLE} = ?::BLOB", [inner])
    connection.execute(f"SET VARIABLE {OPAD_VARIABLE} = ?::BLOB", [outer])


@dataclass(frozen=True)
class Items:
    """Where a body's array of items is: a file (the body itself, or a copy of the part of it
    that is the array), and the array's byte range in the body."""

    path: str
    start: int
    end: int


def _items_of(body: IO[bytes], folder: str) -> Items:
    """The array of items in any accepted shape: the body itself (an array), the array under
    the only key `data` of an object, or one `{data, metaData}` object, made an array of one."""
    size = os.fstat(body.fileno()).st_size
    body.seek(0)
    head = body.read(HEAD_BYTES)
    opening = BODY_START.match(head)
    body.seek(0)
    if opening is None:
        raise Unusual("the response is not JSON")
    if opening.group(1) == b"[":
        return Items(body_path(body), opening.start(1), size)  # the body itself
    try:
        shape = sniff_shape(body)
    except (ResponseShapeError, ijson.JSONError):
        raise Unusual("the response is not a customers feed") from None
    finally:
        body.seek(0)
    path = os.path.join(folder, "items.json")
    if shape == "single":  # one customer: small
        with open(path, "wb") as out:
            out.write(b"[")
            out.flush()
            _copy(body, out, 0, size)
            out.write(b"]")
        return Items(path, 0, size + 2)
    array = OBJECT_DATA.match(head)
    body.seek(max(0, size - HEAD_BYTES))
    tail = OBJECT_END.search(body.read(HEAD_BYTES))
    body.seek(0)
    if shape != "object" or array is None or tail is None:
        raise Unusual("the response is an object with more than its data")
    start, end = array.end() - 1, max(0, size - HEAD_BYTES) + tail.start() + 1
    with open(path, "wb") as out:
        _copy(body, out, start, end - start)
    return Items(path, 0, end - start)


def _detect(
    connection: duckdb.DuckDBPyConnection,
    items: Items | str,
    halves: list[str],
    stored: Mapping[str, Mapping[str, str]] | None = None,
    privacy: Privacy | None = None,
) -> tuple[Plan, list[str]]:
    """The plan for the structure of every record, and the files to read: the halves if both
    parse, else the whole array."""
    path = items.path if isinstance(items, Items) else items
    for parts in [halves, [path]] if halves else [[path]]:
        files = "[" + ", ".join(map(literal, parts)) + "]"
        try:
            detected = connection.sql(f"SELECT * FROM read_json({files}, {DETECT})")
            envelope = list(zip(detected.columns, detected.types, strict=True))
        except duckdb.Error as failure:
            reason = failure
            continue
        return make_plan(envelope, stored, privacy), parts
    raise Unusual(f"DuckDB could not read it ({_first_line(reason)})")


def _halves(body: IO[bytes], folder: str, items: Items | None = None) -> list[str]:
    """The array of items as two JSON arrays, cut at the first record boundary past its
    middle; none when no boundary is found near it."""
    if items is None:
        items = Items(body_path(body), 0, os.fstat(body.fileno()).st_size)
    with open(items.path, "rb") as source:  # the body itself, or a copy of its array
        middle = (items.start + items.end) // 2
        source.seek(middle)
        window = source.read(SEARCH_BYTES)
        found = [match for pattern in RECORD_STARTS if (match := pattern.search(window))]
        if not found:
            return []
        cut = min(found, key=lambda match: match.start(1))
        end, start = middle + cut.start(1) + 1, middle + cut.start(2)
        halves = [os.path.join(folder, "first.json"), os.path.join(folder, "second.json")]
        bounds = [(items.start, end, b"", b"]"), (start, items.end, b"[", b"")]
        for half, (first, last, before, after) in zip(halves, bounds, strict=True):
            with open(half, "wb") as out:
                out.write(before)
                out.flush()
                _copy(source, out, first, last - first)
                out.write(after)
    return halves


def _copy(source: IO[bytes], target: IO[bytes], offset: int, count: int) -> None:
    """Copy `count` bytes from `offset` of `source` to the end of `target`, in the kernel."""
    while count > 0:
        sent = os.sendfile(target.fileno(), source.fileno(), offset, count)
        if sent == 0:
            raise Unusual("the body changed while it was being read")
        offset, count = offset + sent, count - sent


def _read(connection: duckdb.DuckDBPyConnection, parts: list[str], plan: Plan) -> None:
    """Read the body with the plan's explicit types, in the order it was sent (`rowid` is the
    position: on a tie between two copies of a customer the later one wins)."""
    files = "[" + ", ".join(map(literal, parts)) + "]"
    columns = ", ".join(f"{literal(key)}: {literal(sql)}" for key, sql in plan.read_columns.items())
    connection.execute("SET preserve_insertion_order = true")
    try:
        connection.execute(
            f"""CREATE TABLE body AS SELECT *, {plan.root_id_sql()} AS root_id
                FROM read_json({files}, format = 'array', columns = {{{columns}}}) b"""
        )
    except duckdb.ConversionException as failure:
        raise Unusual(f"a value does not fit its type ({_first_line(failure)})") from None
    finally:
        connection.execute("SET preserve_insertion_order = false")


def body_path(body: IO[bytes]) -> str:
    """A path DuckDB can open for the spooled (already unlinked) body file."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        candidate = os.path.join(folder, str(body.fileno()))
        if os.path.exists(candidate):
            return candidate
    raise Unusual("this system gives no path to an open file")


def _is_empty_array(body: IO[bytes]) -> bool:
    """Whether the body is `[]` (the usual answer when nothing changed): not worth a database."""
    body.seek(0)
    head = body.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    body.seek(0)
    return head[:1] == b"[" and head[1:].lstrip(b" \t\r\n")[:1] == b"]"


def _first_line(failure: BaseException) -> str:
    text = str(failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__


__all__ = ["FastBody", "Unusual", "body_path", "fast_body"]
