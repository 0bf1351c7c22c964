"""`refresh` keeps the tables marked to survive it: history the API cannot give back.

dlt 1.31's `refresh="drop_sources"` (`trigg run --full-refresh`) drops every table of the source
in the same load that reloads it. A table whose resource carries the table hint
`x-keep-on-refresh` is taken off the list of tables to drop (or truncate): it stays in the
warehouse as it was, and the reload merges into it. Its state and schema are rebuilt as dlt's.
"""

from __future__ import annotations

import importlib
from typing import Any

from dlt.extract import DltSource
from dlt.pipeline import helpers

KEEP_ON_REFRESH = "x-keep-on-refresh"
"""The table hint (`resource.apply_hints(additional_table_hints=...)`) of a table to keep."""
PIPELINE_MODULE = importlib.import_module("dlt.pipeline.pipeline")
"""Where dlt's `Pipeline` calls `prepare_refresh_source` (it imports the function by name)."""

_dlt_prepare_refresh_source = helpers.prepare_refresh_source


def kept_tables(source: DltSource) -> set[str]:
    """The tables of `source` that refresh keeps: resources with a fixed table name and the hint."""
    return {
        resource.table_name
        for resource in source.resources.values()
        if isinstance(resource.table_name, str)
        and resource.compute_table_schema().get(KEEP_ON_REFRESH)  # type: ignore[call-overload]
    }


def _prepare_refresh_source(pipeline: Any, source: DltSource, refresh: Any) -> Any:
    kept = kept_tables(source)
    package_state = _dlt_prepare_refresh_source(pipeline, source, refresh)
    for key in ("dropped_tables", "truncated_tables"):
        if package_state.get(key):
            package_state[key] = [t for t in package_state[key] if t["name"] not in kept]
    return package_state


def keep_marked_tables_on_refresh() -> None:
    """Install the patch (of dlt's `prepare_refresh_source`, as `Pipeline` calls it); idempotent."""
    PIPELINE_MODULE.prepare_refresh_source = _prepare_refresh_source  # type: ignore[attr-defined]
