"""Import the fast path's parquet files into the load package as they are.

dlt 1.31's normalize step rewrites an imported parquet file whose Arrow schema differs from the
table's in any way. DuckDB writes every column as optional (nullable), while dlt declares its
join columns NOT NULL, and the fast path's `customers` file leaves out `birth_year` (only the
personal-data modes fill it): so every file was read and written once more, about 2.4 s for
100,000 customers. A file that says it is loaded by column name (`BY_NAME_METADATA`, which the
fast path writes for DuckDB warehouses) is imported unchanged when those are the only
differences: the warehouse still enforces NOT NULL, and loading by name fills an absent nullable
column with NULL. Any other difference (a name to normalize, a type to cast, a column the table
does not have) still gets dlt's rewrite.
"""

from __future__ import annotations

from typing import Any

from dlt.common.schema.utils import is_nullable_column
from dlt.normalize.items_normalizers.arrow import ArrowItemsNormalizer

BY_NAME_METADATA = {"dlt.loaded_by_name": "true"}
"""Parquet key-value metadata of a file whose every loader matches its columns by name."""

_dlt_call = ArrowItemsNormalizer.__call__


def _loaded_by_name(schema: Any) -> bool:
    metadata = schema.metadata or {}
    return all(metadata.get(k.encode()) == v.encode() for k, v in BY_NAME_METADATA.items())


def differs_only_by_nullability_or_absent_columns(
    schema: Any, columns: dict[str, Any], naming: Any, caps: Any = None, tz: str | None = None
) -> bool:
    """Whether `schema` has the table's names and types, maybe fewer columns (nullable ones)."""
    from dlt.common.libs import pyarrow as dlt_arrow

    _, has_null_columns = dlt_arrow.remove_null_columns_from_schema(schema)
    if has_null_columns:
        return False
    names = dlt_arrow.get_normalized_arrow_fields_mapping(schema, naming)
    if any(source != target for source, target in names.items()):
        return False
    for field in schema:
        column = columns.get(field.name)
        if column is None or dlt_arrow.should_normalize_py_arrow_item_column(
            column, field.type, tz, caps
        ):
            return False
    absent = set(columns) - set(schema.names)
    return all(is_nullable_column(columns[name]) for name in absent)


def _should_normalize_arrow_schema(
    schema: Any, columns: Any, naming: Any, caps: Any = None, tz: str | None = None
) -> Any:
    result = _dlt_should_normalize[0](schema, columns, naming, caps, tz)
    if (
        result[0]
        and _loaded_by_name(schema)
        and differs_only_by_nullability_or_absent_columns(schema, columns, naming, caps, tz)
    ):
        return result._replace(should_normalize=False)
    return result


_dlt_should_normalize: list[Any] = []
"""dlt's own check, kept when the patch goes in (pyarrow is imported only then: see `_call`)."""


def _call(self: ArrowItemsNormalizer, extracted_items_file: str, root_table_name: str) -> Any:
    """dlt's normalizer of an Arrow or parquet file, with the check patched. The patch goes in
    here, not at start-up: importing dlt's pyarrow helpers costs every run, even one with
    nothing new, about half a second."""
    from dlt.common.libs import pyarrow as dlt_arrow

    if dlt_arrow.should_normalize_arrow_schema is not _should_normalize_arrow_schema:
        _dlt_should_normalize[:] = [dlt_arrow.should_normalize_arrow_schema]
        dlt_arrow.should_normalize_arrow_schema = _should_normalize_arrow_schema
    return _dlt_call(self, extracted_items_file, root_table_name)


def import_parquet_files_loaded_by_name() -> None:
    """Install it (a patch of dlt's Arrow normalizer, which patches dlt's Arrow schema check
    when it first runs); idempotent."""
    ArrowItemsNormalizer.__call__ = _call  # type: ignore[method-assign]
