"""`trigg sql`: queries on the configured warehouse, read-only, with the dataset as the default
schema (`select * from customer_overview` just works).

One query, or a session: `;`-terminated statements read from stdin, each answered as it ends. A
session never keeps a scheduled run waiting: on a DuckDB file (one writer or many readers, never
both) it opens the file read-only for each statement and closes it right after, waiting for a run
that is writing to finish; a DuckLake is attached read-only for the whole session (each statement
reads the newest snapshot, a run commits beside it); PostgreSQL and other dlt destinations go
through dlt's SQL client in a read-only transaction. Every statement sees whole loads: DuckDB and
DuckLake commit a load at once, and a statement runs on one snapshot.

Formats: `table` (aligned columns, for people), `csv` (a header line, then one line per row) and
`json` (one JSON array of row objects per statement, on one line).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import IO, Any, Protocol
from uuid import UUID

import duckdb

from pipelines.destinations import Warehouse
from pipelines.trigg.errors import TriggError
from pipelines.trigg.settings import DATASET_NAME
from pipelines.warehouse.connection import read_only
from pipelines.warehouse.errors import WarehouseError
from pipelines.warehouse.lake import open_lake

FORMATS = ("table", "csv", "json")
WAIT_FOR_RUN_SECONDS = 300.0
"""How long a statement on a DuckDB file waits for a run that is writing it."""
POLL_SECONDS = 0.2
PROMPT, CONTINUATION = "trigg> ", "  ...> "


class QueryError(TriggError):
    """The warehouse refused a statement: one sentence naming the problem."""


@dataclass
class Answer:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class Reader(Protocol):
    def ask(self, statement: str) -> Answer | None:
        """The statement's result (None for a statement without one, such as `set`)."""
        ...


def reader_for(warehouse: Warehouse) -> AbstractContextManager[Reader]:
    """How `trigg sql` reads `warehouse`."""
    if warehouse.is_duckdb_file:
        return _nothing_held(DuckDbFileReader(warehouse.location))
    if warehouse.is_ducklake:
        return _lake_reader(warehouse)
    return _dlt_reader(warehouse)


@contextmanager
def _nothing_held(reader: Reader) -> Iterator[Reader]:
    yield reader


class DuckDbFileReader:
    """Opens the file read-only for each statement and closes it right after."""

    def __init__(self, path: str, wait_seconds: float = WAIT_FOR_RUN_SECONDS) -> None:
        self.path = path
        self.wait_seconds = wait_seconds

    def ask(self, statement: str) -> Answer | None:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                with read_only(self.path) as connection:
                    return _ask_duckdb(connection, statement)
            except WarehouseError as busy:
                if "being written" not in str(busy) or time.monotonic() >= deadline:
                    raise
                time.sleep(POLL_SECONDS)


class ConnectionReader:
    """Asks one DuckDB connection (a DuckLake attached read-only) every statement."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection

    def ask(self, statement: str) -> Answer | None:
        return _ask_duckdb(self.connection, statement)


@contextmanager
def _lake_reader(warehouse: Warehouse) -> Iterator[Reader]:
    with open_lake(warehouse, read_only=True) as connection:
        yield ConnectionReader(connection)


def _ask_duckdb(connection: duckdb.DuckDBPyConnection, statement: str) -> Answer | None:
    try:
        cursor = connection.execute(statement)
        if cursor.description is None:
            return None
        return Answer([column[0] for column in cursor.description], cursor.fetchall())
    except duckdb.Error as failure:
        raise QueryError(_first_line(failure)) from None


class DltReader:
    """Any other dlt destination, through dlt's SQL client, in a read-only transaction."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def ask(self, statement: str) -> Answer | None:
        try:
            with self.client.execute_query(statement) as cursor:
                if cursor.description is None:
                    return None
                columns = [column[0] for column in cursor.description]
                return Answer(columns, [tuple(row) for row in cursor.fetchall()])
        except Exception as failure:
            cause = failure.__cause__ or failure
            raise QueryError(_first_line(cause)) from None


@contextmanager
def _dlt_reader(warehouse: Warehouse) -> Iterator[Reader]:
    from pipelines.runner import make_pipeline

    with make_pipeline(warehouse).sql_client() as client:
        if warehouse.kind in ("postgres", "redshift"):
            client.execute_sql(f'set search_path to "{DATASET_NAME}"')
            client.execute_sql("set session characteristics as transaction read only")
        yield DltReader(client)


def split_statements(text: str) -> tuple[list[str], str]:
    """The complete (`;`-terminated) statements in `text`, and the rest. A `;` inside a string,
    a quoted name or a comment does not end a statement."""
    statements: list[str] = []
    start, position, quote = 0, 0, ""
    while position < len(text):
        char = text[position]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif text.startswith("--", position):
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
        elif text.startswith("/*", position):
            end = text.find("*/", position + 2)
            position = len(text) if end < 0 else end + 1
        elif char == ";":
            statement = text[start:position].strip()
            if statement:
                statements.append(statement)
            start = position + 1
        position += 1
    return statements, text[start:]


def answer_all(
    reader: Reader,
    statements: Iterable[str],
    out: IO[str],
    output_format: str,
    on_error: Callable[[QueryError], None],
) -> int:
    """Answer each statement in `output_format`; returns how many failed."""
    failed = 0
    for statement in statements:
        try:
            answer = reader.ask(statement)
        except QueryError as problem:
            failed += 1
            on_error(problem)
            continue
        rendered = render(answer, output_format)
        if rendered:
            out.write(rendered)
        out.flush()
    return failed


def run_session(
    reader: Reader,
    read_line: Callable[[bool], str | None],
    out: IO[str],
    output_format: str,
    on_error: Callable[[QueryError], None],
) -> int:
    """Read lines with `read_line(inside_a_statement)` (None: the end of input) and answer each
    statement as soon as its `;` arrives; a last statement without one is answered at the end.
    Returns how many failed."""
    failed, pending = 0, ""
    while (line := read_line(bool(pending.strip()))) is not None:
        statements, pending = split_statements(pending + line)
        failed += answer_all(reader, statements, out, output_format, on_error)
    if pending.strip() and not _only_comments(pending):
        failed += answer_all(reader, [pending.strip()], out, output_format, on_error)
    return failed


def piped_line(_: bool) -> str | None:
    """The next line of stdin (a script or a pipe: no prompt)."""
    return sys.stdin.readline() or None


def typed_line(inside_statement: bool) -> str | None:
    """The next line typed at a terminal, after a prompt (another inside a statement)."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for `input`)
    try:
        return input(CONTINUATION if inside_statement else PROMPT) + "\n"
    except EOFError:
        sys.stdout.write("\n")
        return None


def _only_comments(text: str) -> bool:
    statements, _ = split_statements(text + ";")
    return not statements


def render(answer: Answer | None, output_format: str) -> str:
    if output_format == "csv":
        return _csv(answer)
    if output_format == "json":
        return _json(answer)
    return _table(answer)


def _csv(answer: Answer | None) -> str:
    if answer is None:
        return ""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(answer.columns)
    writer.writerows([[_text(value, "") for value in row] for row in answer.rows])
    return buffer.getvalue()


def _json(answer: Answer | None) -> str:
    rows = (
        []
        if answer is None
        else [dict(zip(answer.columns, row, strict=True)) for row in answer.rows]
    )
    return json.dumps(rows, default=_jsonable, ensure_ascii=False) + "\n"


def _table(answer: Answer | None) -> str:
    if answer is None:
        return "OK\n"
    cells = [[_text(value, "NULL") for value in row] for row in answer.rows]
    widths = [
        max([len(name), *(len(row[index]) for row in cells)])
        for index, name in enumerate(answer.columns)
    ]
    numeric = [
        all(
            isinstance(row[index], int | float | Decimal) or row[index] is None
            for row in answer.rows
        )
        and any(row[index] is not None for row in answer.rows)
        for index in range(len(answer.columns))
    ]

    def line(values: list[str]) -> str:
        return " | ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    count = len(answer.rows)
    lines = [line(answer.columns), "-+-".join("-" * width for width in widths)]
    lines += [line(row) for row in cells]
    lines.append(f"({count} row{'' if count == 1 else 's'})")
    return "\n".join(lines) + "\n"


def _is_numeric(values: list[Any]) -> bool:
    """Whether a column holds numbers (aligned right), NULLs aside."""
    present = [value for value in values if value is not None]
    return bool(present) and all(
        isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        for value in present
    )


def _text(value: Any, null: str) -> str:
    if value is None:
        return null
    if isinstance(value, datetime | date | clock_time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and not math.isinf(value):
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=_jsonable, ensure_ascii=False)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | clock_time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _first_line(failure: BaseException) -> str:
    text = str(failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__
