"""How DuckDB spells the types pinned in `pipelines/trigg/schema.py` (dlt's type names)."""

from __future__ import annotations

from typing import Final

from dlt.common.schema.typing import TDataType

DUCKDB_TYPES: Final[dict[TDataType, str]] = {
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "json": "JSON",
}
