"""Big response bodies written straight to a file, one customer at a time, for benchmarks.

A million simulated customers would take gigabytes as Python objects; written as they are made,
they cost only the file. The customers are the ones a `CustomerStore` with the same seed and clock
holds, so a changes feed can update customers that an earlier feed created.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pipelines.simulator.data import CustomerGenerator, CustomerStore

FEED_ZONE = ZoneInfo("Europe/Oslo")


def write_feed(path: Path, customers: int, seed: int, now: datetime) -> int:
    """Write `customers` customers as the API's array of envelopes; returns the size in bytes."""
    generator = CustomerGenerator(seed, FEED_ZONE)
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for position in range(customers):
            if position:
                out.write(",")
            out.write(json.dumps(generator.customer(now).envelope(), ensure_ascii=False))
        out.write("]")
    return path.stat().st_size


def write_changes(path: Path, changes: int, seed: int, now: datetime) -> int:
    """Write the first `changes` customers of `write_feed(seed, now)`, each changed once an hour
    later (points, promotions added and removed, redemptions, ...); returns the size in bytes."""
    clock = [now]
    store = CustomerStore(changes, seed, lambda: clock[0], FEED_ZONE)
    clock[0] = now + timedelta(hours=1)
    store.change_every()
    envelopes = [customer.envelope() for customer in store.selected(datetime.min)]
    path.write_text(json.dumps(envelopes, ensure_ascii=False), encoding="utf-8")
    return path.stat().st_size
