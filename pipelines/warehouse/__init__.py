"""What the warehouse offers people beyond the raw tables, kept current by every run.

- `views.py`: the analyst layer (views with `customer_id`, `customer_overview`)
- `comments.py`: descriptions of every table, view and column, as DuckDB comments
- `quality.py`: data-quality checks reported in the run summary
- `run_history.py`: the `run_history` table, one row per run
- `status.py`: `trigg status`, read from the warehouse alone
- `dictionary.py`: `docs/data-dictionary.md`, from the same descriptions as the comments
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import dlt
from dlt.destinations.sql_client import SqlClientBase

from pipelines.summary import QualityCheck
from pipelines.trigg.schema import VIEWS, described_tables
from pipelines.warehouse.catalog import dataset_columns
from pipelines.warehouse.comments import comment_statements
from pipelines.warehouse.quality import check_quality
from pipelines.warehouse.views import view_statements

LAYER_FINGERPRINT = "analyst_layer.sha256"
"""In dlt's working folder of the warehouse: the hash of the view and comment statements last
applied, so an upgrade of trigg that changes them rewrites them."""


def after_load(pipeline: dlt.Pipeline, load_ids: Sequence[str] = ()) -> list[QualityCheck]:
    """Bring the views and comments up to date in one transaction, then check the quality of
    the customers loaded by `load_ids`.

    The cost does not grow with the warehouse: views and comments are rewritten only when they
    would change (the first load, a new table or column, another version of trigg), a view is
    missing or a description is (an earlier attempt failed); the checks look at this load's
    customers, and count child rows without a customer over the whole warehouse only when the
    views and comments were rewritten, since a new table is when merge can miss one."""
    marker = os.path.join(pipeline.working_dir, LAYER_FINGERPRINT)
    with pipeline.sql_client() as client:
        columns = dataset_columns(client)
        current = _fingerprint(client, columns) == _read(marker) and _analyst_layer_current(client)
        if not current:
            with client.begin_transaction():
                for _, statement in view_statements(client, columns):
                    client.execute_sql(statement)
                columns = dataset_columns(client)
                for statement in comment_statements(client, columns):
                    client.execute_sql(statement)
            with open(marker, "w") as out:
                out.write(_fingerprint(client, columns))
        return check_quality(client, columns, load_ids, whole_warehouse=not current)


def _fingerprint(client: SqlClientBase, columns: dict[str, list[str]]) -> str:
    statements = [s for _, s in view_statements(client, columns)]
    statements += comment_statements(client, columns)
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()


def _read(path: str) -> str | None:
    try:
        with open(path) as marker:
            return marker.read().strip()
    except OSError:
        return None


def _analyst_layer_current(client: SqlClientBase) -> bool:
    """Whether every view exists and every described table, view and column present has its
    comment, as DuckDB's catalog says (other destinations always get them rewritten)."""
    if client.capabilities.sqlglot_dialect not in (None, "duckdb"):
        return False
    scope = "database_name = current_database() and schema_name = %s"
    views = client.execute_sql(
        f"select view_name from duckdb_views() where {scope}", client.dataset_name
    )
    if not {view.name for view in VIEWS} <= {row[0] for row in views or ()}:
        return False
    uncommented = client.execute_sql(
        f"""select table_name, null from duckdb_tables() where {scope} and comment is null
            union all select view_name, null from duckdb_views() where {scope} and comment is null
            union all select table_name, column_name from duckdb_columns() where {scope}
                and comment is null""",
        client.dataset_name,
        client.dataset_name,
        client.dataset_name,
    )
    described = {(relation.name, None) for relation in (*described_tables(), *VIEWS)}
    described |= {
        (relation.name, column.name)
        for relation in (*described_tables(), *VIEWS)
        for column in relation.columns
    }
    return not any((table, column) in described for table, column in uncommented or ())
