"""The Trigg source: customers changed since a cursor, as dlt tables merged by customer id.

Use it like any dlt verified source::

    pipeline = dlt.pipeline("trigg_customers", destination="duckdb", dataset_name="trigg")
    pipeline.run(trigg_source())

Configuration lives under `sources.trigg.*` (see `settings.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import pendulum
from dlt.extract import DltResource

from pipelines.trigg.client import RetryPolicy, TriggClient
from pipelines.trigg.errors import QuarantineError
from pipelines.trigg.records import (
    Customer,
    InvalidRecord,
    newest,
    stream_envelopes,
    to_customer,
)
from pipelines.trigg.schema import (
    PRIMARY_KEY,
    REJECTED_TABLE,
    ROOT_TABLE,
    nested_hints,
    quarantine_column_hints,
    root_column_hints,
)
from pipelines.trigg.settings import (
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_INITIAL_SINCE_DAYS,
    DEFAULT_LOOKBACK_MINUTES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RETRY_WAIT_SECONDS,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DEFAULT_TIMEZONE,
    SOURCE_NAME,
)
from pipelines.trigg.timestamps import default_initial_since, parse_since, since_from_cursor
from pipelines.trigg.validation import problem

__all__ = ["plan_since", "read_cursor", "trigg_source"]

CURSOR_KEY = "cursor"
BATCH_SIZE = 1000
"""Records handed to dlt per item: lists are much cheaper for dlt than single rows."""


@dlt.source(name=SOURCE_NAME)
def trigg_source(
    base_url: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    timezone: str = DEFAULT_TIMEZONE,
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES,
    initial_since: str | None = None,
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
    max_retry_wait_seconds: float = DEFAULT_MAX_RETRY_WAIT_SECONDS,
    allow_insecure_http: bool = False,
    since: str | None = None,
    strict: bool = False,
) -> tuple[DltResource, DltResource]:
    """Customers changed since `since`, or since the stored cursor minus the lookback.

    `since` is sent as given; without it, a first run asks from `initial_since` (default: one
    day ago) and later runs from the cursor: the newest `metaData.UpdatedAt` loaded so far.
    Records that cannot be loaded go to `customers_rejected`; with `strict`, they fail the run.
    """
    zone = ZoneInfo(timezone)
    client = TriggClient(
        base_url,
        api_key,
        request_timeout_seconds,
        RetryPolicy(max_attempts, backoff_seconds, max_retry_wait_seconds),
        allow_insecure_http=allow_insecure_http,
    )

    @dlt.resource(name="changed_customers", selected=False)
    def changed_customers() -> Iterator[Received]:
        """Every record the API returned, sorted into loadable customers and rejections."""
        state = dlt.current.source_state()
        cursor = read_cursor(state)
        request_since = since or plan_since(cursor, lookback_minutes, initial_since, zone)
        newest_seen = cursor
        batch = Received()
        rejected = 0
        first_reason = ""
        with client.changed_customers(request_since) as body:
            for data, meta in stream_envelopes(body):
                try:
                    customer = to_customer(data, meta, zone)
                    reason = problem(customer)
                except InvalidRecord as invalid:
                    reason = str(invalid)
                if reason is None:
                    newest_seen = newest(newest_seen, customer["updated_at"])
                    batch.customers.append(customer)
                else:
                    rejected += 1
                    first_reason = first_reason or reason
                    batch.rejected.append(rejection(data, meta, reason))
                if len(batch) >= BATCH_SIZE:
                    yield batch
                    batch = Received()
        if strict and rejected:
            raise QuarantineError(
                f"{rejected} record(s) could not be loaded (first: {first_reason});"
                " --strict makes that a failure, so nothing was loaded"
            )
        if len(batch):
            yield batch
        if newest_seen is not None and newest_seen != cursor:
            state[CURSOR_KEY] = newest_seen.isoformat()

    @dlt.transformer(
        data_from=changed_customers,
        name=ROOT_TABLE,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=PRIMARY_KEY,
        columns=root_column_hints(),
        nested_hints=nested_hints(),
    )
    def customers(received: Received) -> Iterator[list[Customer]]:
        if received.customers:
            yield received.customers

    @dlt.transformer(
        data_from=changed_customers,
        name=REJECTED_TABLE,
        write_disposition="append",
        columns=quarantine_column_hints(),
    )
    def customers_rejected(received: Received) -> Iterator[list[dict[str, Any]]]:
        if received.rejected:
            yield received.rejected

    return customers, customers_rejected


@dataclass
class Received:
    """A batch of what the API returned: customers to load and records to quarantine."""

    customers: list[Customer] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.customers) + len(self.rejected)


def rejection(data: Any, meta: Any, reason: str) -> dict[str, Any]:
    """A `customers_rejected` row: the raw record as received, and why it was not loaded."""
    customer_id = data.get(PRIMARY_KEY) if isinstance(data, dict) else None
    return {
        "customer_id": None if customer_id is None else str(customer_id),
        "reason": reason,
        "record": {"data": data, "metaData": meta},
        "load_id": dlt.current.load_package_state()["load_id"],
        "rejected_at": pendulum.now("UTC"),
    }


def read_cursor(source_state: Mapping[str, Any]) -> datetime | None:
    """The cursor kept in the source's dlt state, if a run has stored one."""
    stored = source_state.get(CURSOR_KEY)
    return datetime.fromisoformat(stored) if stored else None


def plan_since(
    cursor: datetime | None, lookback_minutes: int, initial_since: str | None, zone: ZoneInfo
) -> str:
    """The `since` segment for a run without an explicit one."""
    if cursor is not None:
        return since_from_cursor(cursor, lookback_minutes, zone)
    if initial_since:
        return parse_since(initial_since, zone)
    return default_initial_since(pendulum.now("UTC"), DEFAULT_INITIAL_SINCE_DAYS, zone)
