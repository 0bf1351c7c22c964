"""What the base resource hands its transformers: one batch of a response, either sorted by the
reference path (customers to load, records to quarantine) or one table's rows from the fast path,
as Arrow rows or as a parquet file DuckDB wrote."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dlt

from pipelines.trigg.records import Customer

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class Received:
    """A batch of what the API returned: customers to load and records to quarantine."""

    customers: list[Customer] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.customers) + len(self.rejected)


@dataclass(frozen=True)
class TableHints:
    """Columns dlt's schema does not have yet: dlt's normalizer would infer them from the values,
    rows that skip it need them as hints. With `parent`, the table itself is new: a child table,
    which the normalizer would make from the nested list."""

    columns: dict[str, Any]
    parent: str | None = None


@dataclass(frozen=True)
class Declaration:
    """Hints for one table of the `customers` resource, handed over before any rows: each is an
    item of its own, so dlt applies it before it computes any table from the rows."""

    hints: dict[str, Any]


@dataclass
class FastBatch:
    """Rows of one table, flattened by the fast path: they skip dlt's row normalizer."""

    table: str
    batch: pa.RecordBatch


@dataclass
class FastFile:
    """All rows of one table, flattened by the fast path into a parquet file dlt imports as is."""

    table: str
    path: str
    rows: int

    def imported(self, hints: Any = None) -> Iterator[Any]:
        """The file as dlt imports it: linked into the load package (never read by dlt), then
        removed here, with its folder after the last file. `hints` as `with_file_import`'s."""
        yield dlt.mark.with_file_import(self.path, "parquet", self.rows, hints=hints)
        os.remove(self.path)
        with suppress(OSError):
            os.rmdir(os.path.dirname(self.path))
