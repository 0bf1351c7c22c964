"""A response read before, loaded again for some of its customers: `trigg verify --repair`.

The source takes the answer `trigg verify` has read with the fast path (still open in its scratch
database, so the body is not read twice) instead of asking the API, loads only the customers
named in `customer_ids` (through the same path as any run: merge, child tables,
`customer_versions`, quarantine) and leaves the cursor where it is: what a repair loads says
nothing about what the next run should ask for.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipelines.trigg.fast_path import FastBody
from pipelines.trigg.fast_plan import literal


@dataclass(frozen=True)
class Replay:
    fast: FastBody
    """The answer, read and checked by the fast path."""
    customer_ids: str
    """A parquet file with one `id` column: the customers to load; the rest is skipped."""

    @property
    def ids_sql(self) -> str:
        """The ids as a DuckDB subquery (the fast path filters with it)."""
        return f"(SELECT id FROM read_parquet({literal(self.customer_ids)}))"

    def ids(self) -> set[str]:
        """The ids as a set (the reference path filters with it)."""
        with duckdb.connect() as connection:
            return {
                row[0] for row in connection.execute(f"SELECT id FROM {self.ids_sql}").fetchall()
            }
