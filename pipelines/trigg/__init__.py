"""The Trigg source: customers changed since a cursor, as dlt tables merged by customer id.

Use it like any dlt verified source::

    pipeline = dlt.pipeline("trigg_customers", destination="duckdb", dataset_name="trigg")
    pipeline.run(trigg_source())

Configuration lives under `sources.trigg.*` (see `settings.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import pendulum
from dlt.extract import DltResource

from pipelines.trigg.client import TriggClient
from pipelines.trigg.errors import ResponseShapeError
from pipelines.trigg.history import customer_versions
from pipelines.trigg.records import Customer, iter_envelopes, newest, to_customer
from pipelines.trigg.schema import PRIMARY_KEY, ROOT_TABLE, nested_hints, root_column_hints
from pipelines.trigg.settings import (
    DEFAULT_INITIAL_SINCE_DAYS,
    DEFAULT_LOOKBACK_MINUTES,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DEFAULT_TIMEZONE,
    SOURCE_NAME,
)
from pipelines.trigg.timestamps import default_initial_since, parse_since, since_from_cursor

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
    since: str | None = None,
) -> list[DltResource]:
    """Customers changed since `since`, or since the stored cursor minus the lookback.

    `since` is sent as given; without it, a first run asks from `initial_since` (default: one
    day ago) and later runs from the cursor: the newest `metaData.UpdatedAt` loaded so far.
    Each customer also becomes a row of `customer_versions` (see `history.py`).
    """
    zone = ZoneInfo(timezone)
    client = TriggClient(base_url, api_key, request_timeout_seconds)

    @dlt.resource(
        name=ROOT_TABLE,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=PRIMARY_KEY,
        columns=root_column_hints(),
        nested_hints=nested_hints(),
    )
    def customers() -> Iterator[list[Customer]]:
        state = dlt.current.source_state()
        cursor = read_cursor(state)
        request_since = since or plan_since(cursor, lookback_minutes, initial_since, zone)
        newest_seen = cursor
        batch: list[Customer] = []
        for data, meta in iter_envelopes(client.changed_customers(request_since)):
            customer = to_customer(data, meta, zone)
            if not customer.get(PRIMARY_KEY):
                raise ResponseShapeError(
                    "the API sent a customer without an id; nothing was loaded"
                )
            newest_seen = newest(newest_seen, customer["updated_at"])
            batch.append(customer)
            if len(batch) >= BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch
        if newest_seen is not None and newest_seen != cursor:
            state[CURSOR_KEY] = newest_seen.isoformat()

    return [customers, customer_versions(customers)]


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
