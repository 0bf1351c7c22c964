"""Which version of each customer the warehouse holds: for late arrivals and `trigg verify`.

Both ask through dlt's SQL client, so they work on any warehouse dlt loads. `trigg verify` reads
the whole base: (id, `updated_at`, fingerprint) streamed in Arrow batches, never all of it in
Python at once (DuckDB streams its results; PostgreSQL through a server-side cursor).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import dlt
from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

from pipelines.trigg.arrivals import HeldVersions
from pipelines.trigg.schema import FINGERPRINT, PRIMARY_KEY, ROOT_TABLE, UPDATED_AT, VERSIONS

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS: Final = 50_000
"""Rows per Arrow batch of the whole base (about 5 MB)."""


def held_versions(pipeline: dlt.Pipeline) -> HeldVersions:
    """The warehouse's `updated_at` of some customer ids (see `trigg/arrivals.py`)."""

    def held(customer_ids: Sequence[str]) -> dict[str, datetime | None]:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name(ROOT_TABLE)
            marks = ", ".join(["%s"] * len(customer_ids))
            rows = client.execute_sql(
                f"SELECT {PRIMARY_KEY}, {UPDATED_AT} FROM {table} WHERE {PRIMARY_KEY} IN ({marks})",
                *customer_ids,
            )
        return {str(customer_id): updated_at for customer_id, updated_at in rows or []}

    return held


def arrow_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field(UPDATED_AT, pa.timestamp("us", tz="UTC")),
            pa.field(FINGERPRINT, pa.string()),
        ]
    )


def held_fingerprints(pipeline: dlt.Pipeline) -> Iterator[pa.RecordBatch]:
    """(id, `updated_at`, fingerprint) of every customer in the warehouse, in Arrow batches.

    The fingerprint is the one `customer_versions` keeps for the version `customers` holds; NULL
    where there is none (loaded by dlt's normalizer, or before fingerprints existed)."""
    schema = arrow_schema()
    with pipeline.destination_client() as job_client:
        stored = dict(job_client.get_storage_tables([ROOT_TABLE, VERSIONS.name]))  # type: ignore[attr-defined]
    if not stored.get(ROOT_TABLE):
        return
    with pipeline.sql_client() as client:
        customers = client.make_qualified_table_name(ROOT_TABLE)
        if FINGERPRINT in stored.get(VERSIONS.name, {}):
            versions = client.make_qualified_table_name(VERSIONS.name)
            fingerprint = f"v.{FINGERPRINT}"
            join = (
                f" LEFT JOIN {versions} v"
                f" ON v.customer_id = c.{PRIMARY_KEY} AND v.{UPDATED_AT} = c.{UPDATED_AT}"
            )
        else:
            fingerprint, join = "CAST(NULL AS VARCHAR(64))", ""
        sql = (
            f"SELECT c.{PRIMARY_KEY} AS id, c.{UPDATED_AT} AS {UPDATED_AT},"
            f" {fingerprint} AS {FINGERPRINT} FROM {customers} c{join}"
        )
        yield from _stream(client, sql, schema)


def _stream(client: Any, sql: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:

    if isinstance(client, DuckDbSqlClient):  # DuckDB, MotherDuck, DuckLake: results stream
        with client.execute_query(sql) as cursor:
            for table in cursor.iter_arrow(BATCH_ROWS):
                yield from table.cast(schema).to_batches()
        return
    native = getattr(client, "native_connection", None)
    if type(native).__module__.startswith("psycopg2"):  # a server-side cursor: flat memory
        with client.begin_transaction(), native.cursor(name="trigg_verify") as cursor:
            cursor.itersize = BATCH_ROWS
            cursor.execute(sql)
            while rows := cursor.fetchmany(BATCH_ROWS):
                yield _batch(rows, schema)
        return
    with client.execute_query(sql) as cursor:
        for rows in cursor.iter_fetch(BATCH_ROWS):
            yield _batch(rows, schema)


def _batch(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.RecordBatch.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)],
        schema=schema,
    )
