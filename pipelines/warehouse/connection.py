"""Reading the warehouse from outside a run: read-only, and only for as long as the queries take.

DuckDB lets one process write a file or any number read it, never both: a reader that lingers
would make the next scheduled run fail. DuckDB also names a file's catalog after the file, so
`trigg.duckdb` holds catalog `trigg` and schema `trigg`; `use "<catalog>"."trigg"` avoids the
ambiguity whatever the file is called.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from pipelines.trigg.settings import DATASET_NAME
from pipelines.warehouse.errors import WarehouseError


@contextmanager
def read_only(warehouse: str, dataset: str = DATASET_NAME) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection whose default schema is the dataset (if the file has it yet)."""
    if not os.path.isfile(warehouse):
        raise WarehouseError(f"there is no warehouse at {warehouse}: run `trigg run` first")
    try:
        connection = duckdb.connect(warehouse, read_only=True)
    except duckdb.IOException as failure:
        if "lock" in str(failure).lower():
            raise WarehouseError(
                f"the warehouse {warehouse} is being written by another process (a run?);"
                " try again in a moment"
            ) from None
        raise WarehouseError(f"cannot open {warehouse}: {_first_line(failure)}") from None
    except duckdb.Error as failure:
        raise WarehouseError(
            f"{warehouse} is not a DuckDB warehouse ({_first_line(failure)})"
        ) from None
    try:
        catalog = connection.execute("select current_database()").fetchone()[0]
        if has_schema(connection, dataset):
            connection.execute(f'use "{catalog}"."{dataset}"')
        yield connection
    finally:
        connection.close()


def has_schema(connection: duckdb.DuckDBPyConnection, schema: str) -> bool:
    """Whether the file's own catalog holds `schema`."""
    found = connection.execute(
        "select count(*) from duckdb_schemas()"
        " where database_name = current_database() and schema_name = ?",
        [schema],
    ).fetchone()
    return bool(found and found[0])


def _first_line(failure: BaseException) -> str:
    text = str(failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__
