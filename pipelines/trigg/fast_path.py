"""The fast path: DuckDB turns the spooled response body into Arrow tables, skipping dlt's row
normalizer (about 20,000 rows/s) and never holding the body in Python.

DuckDB is used here as a processing engine only, in a scratch database of its own; dlt still does
state, schema, merge and loading, so the destination can be any dlt destination. The steps:

1. DuckDB detects the structure of the whole body (every key, one merged type per leaf) and
   `fast_plan` matches it against the pinned schema; anything it cannot load exactly as dlt's
   normalizer would raises `Unusual` and the caller takes the reference path instead.
2. DuckDB reads the body into the scratch database with that explicit structure, then checks in
   one pass every value that could be quarantined or coerced differently (`Unusual` again).
   DuckDB reads one JSON array with one thread, so the body is first cut in two at a record
   boundary (found by pattern, proven by both halves parsing) and the halves read side by side.
3. A customer sent twice keeps its newest `updated_at` (the later one on a tie); every table is
   selected with dlt's join columns (`_dlt_id`, `_dlt_parent_id`, `_dlt_root_id`, `_dlt_list_idx`)
   and either written by DuckDB as a parquet file per table (for destinations that load parquet
   themselves, such as DuckDB) or streamed as Arrow record batches (for the others). Nothing is
   handed over before all checks passed.

The scratch database keeps small row groups, so that DuckDB's two threads share every step after
the read (DuckDB scans a table in parallel by row group).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import IO, TYPE_CHECKING

import duckdb

from pipelines.dlt_patches.duckdb_file_merge import DEDUPLICATED_METADATA
from pipelines.dlt_patches.parquet_import import BY_NAME_METADATA
from pipelines.trigg.batches import FastFile
from pipelines.trigg.events import event
from pipelines.trigg.fast_plan import (
    Plan,
    TablePlan,
    Unusual,
    literal,
    make_plan,
    quote,
    timestamp_sql,
)
from pipelines.trigg.fingerprint import Fingerprints
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
RECORD_START = re.compile(rb'\}\s*,\s*(\{\s*"(?:data|metaData)"\s*:)')
"""Where one record ends and the next begins, as it looks in the body's text. Never inside a
string (a quote there is escaped), but maybe deeper in a record, in an object with a `data` key:
then a half does not parse, and the whole body is read as one."""
SEARCH_BYTES = 1 << 20
"""How far past the middle of the body a record boundary is looked for."""


def _progress(step: str, started: float) -> None:
    seconds = round(time.monotonic() - started, 3)
    event("fast_path", f"fast path: {step} after {seconds:.1f} s", step=step, seconds=seconds)


class FastBody:
    """A response body DuckDB has read and checked, ready to be handed to dlt table by table."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, plan: Plan, zone: str) -> None:
        self.connection = connection
        self.plan = plan
        self.zone = zone
        self.convert = timestamp_sql(zone, [])
        self.body = "body"
        self.customers = 0

    def prepare(self) -> None:
        """Check every value (step 2), then settle timestamps and duplicates (step 3)."""
        bounds: list[str] = []
        for check in self.plan.checks():
            row = self.connection.sql(check.sql()).fetchone()
            assert row is not None
            for (what, _), bad in zip(check.counts, row, strict=False):
                if bad:  # NULL: no rows at all
                    raise Unusual(f"{bad} value(s) at {what} need dlt's own handling")
            bounds.extend(value for value in row[len(check.counts) :] if value)
        if bounds:
            self._settle_time_zone(date.fromisoformat(min(bounds)), date.fromisoformat(max(bounds)))
        row = self.connection.sql(
            f"SELECT count(*), count(DISTINCT {self.plan.id_sql()}) FROM body b"
        ).fetchone()
        assert row is not None
        self.customers, distinct = row
        if distinct < self.customers:
            self._drop_older_copies()
            self.customers = distinct

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

    def _drop_older_copies(self) -> None:
        """Keep one version per customer: the newest `updated_at`, the later position on a tie."""
        self.connection.execute(
            f"""CREATE TABLE older_copies AS SELECT position FROM (
                    SELECT b.rowid AS position, row_number() OVER (
                        PARTITION BY {self.plan.id_sql()}
                        ORDER BY {self.plan.updated_at_sql(self.convert)} DESC NULLS LAST,
                                 b.rowid DESC) AS newest
                    FROM body b)
                WHERE newest > 1"""
        )
        self.body = "(SELECT * FROM body WHERE rowid NOT IN (SELECT position FROM older_copies))"

    def keep_only(self, customer_ids: str) -> None:
        """Load only the customers whose id is in `customer_ids` (a subquery of ids)."""
        self.body = f"(SELECT * FROM {self.body} b WHERE {self.plan.id_sql()} IN {customer_ids})"

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
        """The cursor candidate: the newest `updated_at` of the customers loaded."""
        sql = self.plan.updated_at_sql(self.convert)
        row = self.connection.sql(f"SELECT max({sql}) FROM {self.body} b").fetchone()
        return row[0] if row else None

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
        present = {leaf.column.name for leaf in root.leaves}

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
            rows = self.plan.select_sql(promotions, self.convert, load_id, self.body)
            join = (
                f"LEFT JOIN (SELECT {ROOT_KEY} AS root, count(*) AS n FROM ({rows}) GROUP BY 1) p"
                f" ON p.root = c.{ROW_KEY}"
            )
            count = "coalesce(p.n, 0)"
        customers = self.plan.select_sql(root, self.convert, load_id, self.body)
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
def fast_body(body: IO[bytes], zone: str, scratch_dir: str | None = None) -> Iterator[FastBody]:
    """Read and check the spooled `body` in a scratch DuckDB database; raises `Unusual` (before
    anything is yielded) when the reference path must take it. The scratch files go on exit."""
    path = body_path(body)
    if _is_empty_array(body):
        raise Unusual("the response is empty")
    folder = tempfile.mkdtemp(prefix="trigg-fast-", dir=scratch_dir)
    try:
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
            started = time.monotonic()
            plan, parts = _detect(connection, path, _halves(body, folder))
            _progress("structure detected", started)
            _read(connection, parts, plan)
            _progress("body read", started)
            fast = FastBody(connection, plan, zone)
            fast.prepare()
            _progress("values checked", started)
            yield fast
            _progress("tables flattened", started)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _detect(
    connection: duckdb.DuckDBPyConnection, path: str, halves: list[str]
) -> tuple[Plan, list[str]]:
    """The plan for the structure of every record, and the files to read: the halves if both
    parse, else the whole body."""
    for parts in [halves, [path]] if halves else [[path]]:
        files = "[" + ", ".join(map(literal, parts)) + "]"
        try:
            detected = connection.sql(f"SELECT * FROM read_json({files}, {DETECT})")
            envelope = list(zip(detected.columns, detected.types, strict=True))
        except duckdb.Error as failure:
            reason = failure
            continue
        return make_plan(envelope), parts
    raise Unusual(f"DuckDB could not read it ({_first_line(reason)})")


def _halves(body: IO[bytes], folder: str) -> list[str]:
    """The body as two JSON arrays of its records, cut at the first record boundary past its
    middle; none when no boundary is found near it."""
    size = os.fstat(body.fileno()).st_size
    body.seek(size // 2)
    found = RECORD_START.search(body.read(SEARCH_BYTES))
    body.seek(0)
    if found is None:
        return []
    end, start = size // 2 + found.start() + 1, size // 2 + found.start(1)
    halves = [os.path.join(folder, "first.json"), os.path.join(folder, "second.json")]
    for half, (first, last, before, after) in zip(
        halves, [(0, end, b"", b"]"), (start, size, b"[", b"")], strict=True
    ):
        with open(half, "wb") as out:
            out.write(before)
            out.flush()
            _copy(body, out, first, last - first)
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
