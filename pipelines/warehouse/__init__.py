"""What the warehouse offers people beyond the raw tables, kept current by every run.

- `views.py`: the analyst layer (views with `customer_id`, `customer_overview`)
- `comments.py`: descriptions of every table, view and column, as DuckDB comments
- `quality.py`: data-quality checks reported in the run summary
- `run_history.py`: the `run_history` table, one row per run
- `status.py`: `trigg status`, read from the warehouse alone
- `session.py`: `trigg sql`, read-only queries and sessions that never keep a run waiting
- `lake.py`: opening a DuckLake from outside dlt (read-only for analysts)
- `maintenance.py`: a DuckLake's `CHECKPOINT` after every run, and `trigg maintain`
- `dictionary.py`: `docs/data-dictionary.md`, from the same descriptions as the comments
"""

from __future__ import annotations

import dlt

from pipelines.summary import QualityCheck
from pipelines.warehouse.catalog import dataset_columns
from pipelines.warehouse.comments import comment_statements
from pipelines.warehouse.quality import check_quality
from pipelines.warehouse.views import view_statements


def after_load(pipeline: dlt.Pipeline) -> list[QualityCheck]:
    """Recreate the views and comments in one transaction, then check the data's quality."""
    with pipeline.sql_client() as client:
        with client.begin_transaction():
            for _, statement in view_statements(client, dataset_columns(client)):
                client.execute_sql(statement)
            for statement in comment_statements(client, dataset_columns(client)):
                client.execute_sql(statement)
        return check_quality(client, dataset_columns(client))
