"""Content fingerprints: equal for equal loaded content whatever the response looked like, and
different after any change to a loaded field or child row."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.simulator import TriggSimulator
from pipelines.trigg.fast_path import fast_body
from pipelines.verify import open_answer, write_fingerprints

Envelope = dict[str, Any]


def fingerprints(envelopes: list[Envelope], folder: Path) -> dict[str, str]:
    """Customer id -> fingerprint of a response body, as `trigg verify` computes them."""
    folder.mkdir(exist_ok=True)
    body, answer = folder / "body.json", folder / "answer.parquet"
    body.write_text(json.dumps(envelopes))
    with open(body, "rb") as spooled, ExitStack() as stack:
        write_fingerprints(open_answer(stack, spooled, "Europe/Oslo", str(folder)), str(answer))
    with duckdb.connect() as connection:
        rows = connection.execute(f"select id, fingerprint from '{answer}'").fetchall()
    os.remove(answer)
    return dict(rows)


@pytest.fixture(scope="module")
def envelopes() -> list[Envelope]:
    with TriggSimulator(customers=8, seed=11) as simulator:
        customers = simulator.store.snapshot()
    chosen = [c.envelope() for c in customers]
    assert all(len(e["data"]["promotions"]) >= 2 for e in chosen[:1])
    return chosen


def test_equal_content_has_equal_fingerprints_whatever_else_the_response_holds(
    envelopes: list[Envelope], tmp_path: Path
) -> None:
    """DuckDB types a field by the whole body (zip as text alone, as JSON where other zips are
    numbers), and a field no customer has is no column at all: the loaded values are the same."""
    customer = envelopes[0]["data"]["id"]
    alone = fingerprints([envelopes[0]], tmp_path / "alone")
    others = copy.deepcopy(envelopes[1:])
    others[0]["data"]["zip"] = 1010
    others[1]["data"]["loyalty"]["loyaltyCards"][0]["id"] = "4"
    others[2]["data"]["birthDate"] = None
    among_others = fingerprints([envelopes[0], *others], tmp_path / "among")
    assert alone[customer] == among_others[customer]

    with_null, without = copy.deepcopy(envelopes[0]), copy.deepcopy(envelopes[0])
    with_null["data"]["address"] = None
    without["data"].pop("address")
    assert (
        fingerprints([with_null], tmp_path / "null")[customer]
        == fingerprints([without], tmp_path / "absent")[customer]
    )


def _promotions(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["promotions"]


CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "a field": lambda d: d.update(email="someone.else@example.com"),
    "a nested object's field": lambda d: d["loyalty"].update(points=d["loyalty"]["points"] + 1),
    "a free-form property": lambda d: d["extendedProperties"].update(memberLevel="Platinum"),
    "a child row's field": lambda d: _promotions(d)[0].update(name="Renamed"),
    "a grandchild row's field": lambda d: _promotions(d)[0]["redemptionChannels"][0].update(
        message="Changed"
    ),
    "a child row removed": lambda d: _promotions(d).pop(),
    "a list reordered": lambda d: _promotions(d).reverse(),
    "a grandchild moved to another parent": lambda d: _promotions(d)[1][
        "redemptionChannels"
    ].append(_promotions(d)[0]["redemptionChannels"].pop()),
    "a value list extended": lambda d: d.update(favoriteStores=["S999", *d["favoriteStores"]]),
    "a timestamp in a child row": lambda d: _promotions(d)[0].update(
        validTo="2031-01-01T00:00:00.000Z"
    ),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_any_change_to_a_loaded_field_or_child_row_changes_the_fingerprint(
    envelopes: list[Envelope], tmp_path: Path, change: str
) -> None:
    before = envelopes[0]
    after = copy.deepcopy(before)
    CHANGES[change](after["data"])
    assert after != before
    customer = before["data"]["id"]
    others = envelopes[1:4]
    assert (
        fingerprints([before, *others], tmp_path / "before")[customer]
        != fingerprints([after, *others], tmp_path / "after")[customer]
    )


def test_the_fingerprints_kept_at_load_time_equal_those_of_the_answer(
    envelopes: list[Envelope], tmp_path: Path
) -> None:
    """The load fingerprints the parquet files it hands to dlt, verify the selects: the same."""
    body = tmp_path / "body.json"
    body.write_text(json.dumps(envelopes))
    with open(body, "rb") as spooled, fast_body(spooled, "Europe/Oslo", str(tmp_path)) as fast:
        files = {f.table: f.path for f in fast.export("load", str(tmp_path))}
        versions = fast.connection.execute(
            f"select customer_id, fingerprint from '{files['customer_versions']}'"
        ).fetchall()
    assert dict(versions) == fingerprints(envelopes, tmp_path / "answer")
    assert len(set(dict(versions).values())) == len(envelopes)


def test_a_known_customer_keeps_its_known_fingerprint(tmp_path: Path) -> None:
    """A guard for DuckDB's `hash`: if an upgrade changes it, every stored fingerprint stops
    matching; bump `fingerprint.SCHEME` (and say so: the next verify reports every customer)."""
    envelope = {
        "data": {
            "id": "C-1",
            "email": "a@example.com",
            "zip": "0150",
            "loyalty": {"points": 10, "loyaltyCards": [{"id": 4, "namn": "Kaffe", "count": 2}]},
            "favoriteStores": ["S1", "S2"],
            "promotions": [
                {
                    "id": "P-1",
                    "validFrom": "2024-01-01T00:00:00.000Z",
                    "redemptionChannels": [{"type": "POS", "value": 10}],
                }
            ],
        },
        "metaData": {"CreatedAt": "2024-01-01 10:00:00", "UpdatedAt": "2024-06-01 12:30:00"},
    }
    assert fingerprints([envelope], tmp_path) == {"C-1": KNOWN_FINGERPRINT}


KNOWN_FINGERPRINT = "h1:025f599ae9d239cb"
