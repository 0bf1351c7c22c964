"""Every place trigg bends dlt 1.31, in one room. Each patch replaces one method of dlt, keeps a
handle on dlt's own, is idempotent, and has a guard test in `tests/test_dlt_patches.py` that fails
if dlt stops calling the patched method (so an upgrade of dlt cannot silently drop a fix):

- `duckdb_catalog`: fully qualified names for DuckDB files named like their dataset
  (`trigg.duckdb` holds catalog `trigg` and schema `trigg`);
- `duckdb_merge`: merge deduplicates staging rows by `rowid`, in bounded memory;
- `duckdb_file_merge`: merge reads parquet files itself instead of copying them to staging;
- `parquet_import`: the fast path's parquet files are imported as they are, not rewritten;
- `nested_extract`: extract may write rows of nested tables (the fast path's child tables).

`install()` installs them all; the runner calls it once before dlt runs.
"""

from __future__ import annotations

from pipelines.dlt_patches.duckdb_catalog import qualify_colliding_catalogs
from pipelines.dlt_patches.duckdb_file_merge import merge_parquet_files_in_place
from pipelines.dlt_patches.duckdb_merge import deduplicate_by_rowid
from pipelines.dlt_patches.nested_extract import count_nested_tables_under_their_root
from pipelines.dlt_patches.parquet_import import import_parquet_files_loaded_by_name

__all__ = ["install"]


def install() -> None:
    """Install every patch of dlt (idempotent)."""
    qualify_colliding_catalogs()
    deduplicate_by_rowid()
    merge_parquet_files_in_place()
    count_nested_tables_under_their_root()
    import_parquet_files_loaded_by_name()
