"""`customer_versions`: every version of a customer the API ever delivered, one row each.

The `customers` table keeps only the newest version; this keeps them all, so analysts can chart a
customer's points and consents over time. It is a dlt transformer fed by the same batches as the
`customers` resource, so each version is loaded in the same load as the customer itself, and it
merges on (customer id, updated_at): the lookback's re-deliveries replace a version, never double
it. The fast path computes the rows in DuckDB (`FastBody`); the reference path here. A full
refresh keeps the table (`KEEP_ON_REFRESH`): the API cannot give back the versions it replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.extract import DltResource

from pipelines.dlt_patches.refresh_keeps import KEEP_ON_REFRESH
from pipelines.trigg.batches import Declaration, FastBatch, FastFile, Received
from pipelines.trigg.records import Customer
from pipelines.trigg.schema import (
    PRIMARY_KEY,
    UPDATED_AT,
    VERSIONS,
    VERSIONS_KEY,
    versions_column_hints,
)

Version = dict[str, Any]


def customer_versions(changed_customers: DltResource) -> DltResource:
    """The `customer_versions` resource, fed by each batch the source's base resource yields."""

    @dlt.transformer(
        data_from=changed_customers,
        name=VERSIONS.name,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=VERSIONS_KEY,
        columns=versions_column_hints(),
    )
    def versions(received: Received | Declaration | FastBatch | FastFile) -> Iterator[Any]:
        if isinstance(received, FastFile):
            if received.table == VERSIONS.name:
                yield from received.imported()
            return
        if isinstance(received, FastBatch):
            if received.table == VERSIONS.name:
                yield received.batch
            return
        if not isinstance(received, Received):  # hints for the customers tables
            return
        # a version without UpdatedAt has no place in time; the customer itself is still loaded
        rows = [to_version(c) for c in received.customers if c.get(UPDATED_AT)]
        if rows:
            yield rows

    versions.apply_hints(additional_table_hints={KEEP_ON_REFRESH: True})
    return versions


def to_version(customer: Customer) -> Version:
    """One customer record (as `records.to_customer` shapes it) as a row of `customer_versions`.

    Reads the record without changing it: dlt hands the same objects to the `customers` resource.
    """
    loyalty = _object(customer.get("loyalty"))
    consents = _object(customer.get("consents"))
    promotions = customer.get("promotions")
    return {
        "customer_id": customer[PRIMARY_KEY],
        UPDATED_AT: customer[UPDATED_AT],
        "points": loyalty.get("points"),
        "points_active": loyalty.get("pointsActive"),
        "points_pending": loyalty.get("pointsPending"),
        "points_expired": loyalty.get("pointsExpired"),
        "points_total": loyalty.get("pointsTotal"),
        "accepts_terms": consents.get("acceptsTerms"),
        "accepts_email": consents.get("acceptsEmail"),
        "accepts_sms": consents.get("acceptsSms"),
        "promotions": len(promotions) if isinstance(promotions, list) else 0,
    }


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
