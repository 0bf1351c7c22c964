"""What the dataset holds right now: its tables and views and their columns, in order.

dlt creates a table only when it receives its first row, so the analyst layer, the comments and
the quality checks all ask here first instead of assuming a table exists.
"""

from __future__ import annotations

from dlt.destinations.sql_client import SqlClientBase


def dataset_columns(client: SqlClientBase) -> dict[str, list[str]]:
    """Columns of every table and view in the client's dataset, by name, in column order."""
    rows = client.execute_sql(
        "select table_name, column_name from information_schema.columns"
        " where table_catalog = current_database() and table_schema = %s"
        " order by table_name, ordinal_position",
        client.dataset_name,
    )
    columns: dict[str, list[str]] = {}
    for table, column in rows or ():
        columns.setdefault(table, []).append(column)
    return columns
