"""Big response bodies written straight to a file, one customer at a time, for benchmarks.

A million simulated customers would take gigabytes as Python objects; written as they are made,
they cost only the file. The customers are the ones a `CustomerStore` with the same seed and clock
holds, so a changes feed can update customers that an earlier feed created.

A `variant` changes every body the same way, for the benchmark's unusual bodies: a field or a list
the spec does not list, bad records, type drift, another envelope shape, customers changed without
a new `UpdatedAt`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.simulator.data import CustomerGenerator, CustomerStore

FEED_ZONE = ZoneInfo("Europe/Oslo")

Envelope = dict[str, Any]


def _unknown_field(envelope: Envelope, position: int) -> None:
    envelope["data"]["membershipTier"] = ("bronze", "silver", "gold")[position % 3]


def _new_list(envelope: Envelope, position: int) -> None:
    envelope["data"]["badges"] = [
        {"code": f"badge-{k}", "level": k + position % 4} for k in range(1 + position % 3)
    ]


def _without_id(envelope: Envelope, position: int, every: int) -> None:
    if position % every == every // 2:
        del envelope["data"]["id"]  # a record dlt's rules quarantine


def _type_drift(envelope: Envelope, position: int) -> None:
    data = envelope["data"]
    zip_code = data.get("zip")
    if isinstance(zip_code, str) and zip_code.isdigit() and not zip_code.startswith("0"):
        data["zip"] = int(zip_code)  # the spec's example: zip as a number
    for card in data.get("loyalty", {}).get("loyaltyCards") or []:
        card["id"] = str(card["id"])  # and card ids as strings


def _changed_silently(envelope: Envelope, position: int, every: int) -> None:
    if position % every == 0:  # one point more, the UpdatedAt kept: only `trigg verify` sees it
        loyalty = envelope["data"]["loyalty"]
        for key in ("points", "pointsActive", "pointsTotal"):
            loyalty[key] += 1


VARIANTS: dict[str, Callable[[Envelope, int, int], None]] = {
    "plain": lambda envelope, position, customers: None,
    "unknown_field": lambda envelope, position, customers: _unknown_field(envelope, position),
    "new_list": lambda envelope, position, customers: _new_list(envelope, position),
    "one_bad_record": lambda envelope, position, customers: _without_id(
        envelope, position, customers
    ),
    "bad_records_1pct": lambda envelope, position, customers: _without_id(envelope, position, 100),
    "type_drift": lambda envelope, position, customers: _type_drift(envelope, position),
    "changed_silently_1pct": lambda envelope, position, customers: _changed_silently(
        envelope, position, 100
    ),
    "object": lambda envelope, position, customers: None,
    "single": lambda envelope, position, customers: None,
}
"""Each body variant: how it changes a customer's envelope (the shapes change the wrapping)."""
SHAPES = {"object": ('{"data": [', "]}"), "single": ("", "")}


def write_feed(path: Path, customers: int, seed: int, now: datetime, variant: str = "plain") -> int:
    """Write `customers` customers as the API's array of envelopes (or the `variant`'s body);
    returns the size in bytes."""
    change = VARIANTS[variant]
    if variant == "single" and customers != 1:
        raise ValueError("the single shape holds one customer")
    start, end = SHAPES.get(variant, ("[", "]"))
    generator = CustomerGenerator(seed, FEED_ZONE)
    with path.open("w", encoding="utf-8") as out:
        out.write(start)
        for position in range(customers):
            if position:
                out.write(",")
            envelope = generator.customer(now).envelope()
            change(envelope, position, customers)
            out.write(json.dumps(envelope, ensure_ascii=False))
        out.write(end)
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
