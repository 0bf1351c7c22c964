"""Let extract write rows of nested tables: the fast path's Arrow batches of child tables.

dlt 1.31 sums extracted rows per resource by reading each extracted table's `resource`, which
nested tables never have (its normalizer makes them after extract, and it refuses the hint on a
nested table). With this, a nested table counts under its root table's resource while the metrics
are computed, and nothing of it stays in the schema.
"""

from __future__ import annotations

from typing import Any

from dlt.common.schema.utils import get_root_table, is_nested_table
from dlt.extract.extract import Extract

_dlt_compute_metrics = Extract._compute_metrics


def _compute_metrics(self: Extract, load_id: str, source: Any) -> Any:
    tables = source.schema.tables
    borrowed = [
        table
        for table in tables.values()
        if is_nested_table(table) and "resource" not in table and table["name"] in tables
    ]
    for table in borrowed:
        table["resource"] = get_root_table(tables, table["name"]).get("resource")
    try:
        return _dlt_compute_metrics(self, load_id, source)
    finally:
        for table in borrowed:
            table.pop("resource", None)


def count_nested_tables_under_their_root() -> None:
    """Install the patch (of dlt's `Extract._compute_metrics`); idempotent."""
    Extract._compute_metrics = _compute_metrics  # type: ignore[method-assign]
