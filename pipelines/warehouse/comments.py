"""Every table, view and column described in the warehouse itself (`COMMENT ON`), so the
descriptions show in `duckdb_columns()`, `duckdb_tables()`, `duckdb_views()` and SQL tools.

The descriptions come from `pipelines/trigg/schema.py`, the single source the data dictionary is
generated from too. Only what exists is commented: a table dlt has not created yet gets its comment
with the load that creates it. DuckLake (1.5.5) keeps comments on tables, their columns and views,
but refuses them on a view's columns: there, a view's columns are described in the data dictionary
only.
"""

from __future__ import annotations

from dlt.destinations.impl.ducklake.sql_client import DuckLakeSqlClient
from dlt.destinations.sql_client import SqlClientBase

from pipelines.trigg.schema import VIEWS, described_tables


def describes_view_columns(client: SqlClientBase) -> bool:
    """Whether the warehouse keeps comments on a view's columns (all but DuckLake)."""
    return not isinstance(client, DuckLakeSqlClient)


def comment_statements(client: SqlClientBase, dataset_columns: dict[str, list[str]]) -> list[str]:
    """`COMMENT ON` statements for every described table and view present, and their columns."""
    literal = client.capabilities.escape_literal
    relations = [("table", relation) for relation in described_tables()]
    relations += [("view", view) for view in VIEWS]
    view_columns = describes_view_columns(client)
    statements: list[str] = []
    for kind, relation in relations:
        present = dataset_columns.get(relation.name)
        if present is None:
            continue
        qualified = client.make_qualified_table_name(relation.name)
        statements.append(f"comment on {kind} {qualified} is {literal(relation.description)}")
        statements.extend(
            f"comment on column {qualified}.{client.escape_column_name(column.name)}"
            f" is {literal(column.description)}"
            for column in relation.columns
            if column.name in present and (kind == "table" or view_columns)
        )
    return statements
