"""What the base resource hands its transformers: one batch of a response, either sorted by the
reference path (customers to load, records to quarantine) or one table's Arrow rows from the fast
path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipelines.trigg.records import Customer


@dataclass
class Received:
    """A batch of what the API returned: customers to load and records to quarantine."""

    customers: list[Customer] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.customers) + len(self.rejected)


@dataclass
class FastBatch:
    """Rows of one table, flattened by the fast path: they skip dlt's row normalizer."""

    table: str
    batch: pa.RecordBatch
