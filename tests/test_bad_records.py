"""A record that cannot be loaded goes to quarantine, once; the others load; new fields are kept."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import Fault, TriggSimulator
from pipelines.trigg.settings import TriggSettings
from pipelines.warehouse.status import read_status
from tests.conftest import run_trigg, trigg_env
from tests.contents import setting
from tests.oracle import expected_tables, warehouse_tables
from tests.targets import Target


def served_with(simulator: TriggSimulator, broken: dict[str, Any]) -> tuple[bytes, list]:
    """The simulator's current feed plus one broken envelope, and the good customers."""
    good = simulator.store.snapshot()
    envelopes = [customer.envelope() for customer in good]
    envelopes.insert(len(envelopes) // 2, broken)
    return json.dumps(envelopes).encode(), good


def broken_copy(simulator: TriggSimulator, change: Any) -> dict[str, Any]:
    envelope = copy.deepcopy(simulator.store.snapshot()[0].envelope())
    envelope["data"]["id"] = "BROKEN-CUSTOMER"
    change(envelope)
    return envelope


BAD_RECORDS = {
    "no-id": (setting("data.id", KeyError), "has no id"),
    "empty-id": (setting("data.id", ""), "has no id"),
    "unparsable-updated-at": (setting("metaData.UpdatedAt", "yesterday-ish"), "metaData.UpdatedAt"),
    "points-not-a-number": (setting("data.loyalty.points", "lots"), "loyalty__points"),
    "card-id-not-an-integer": (
        setting("data.loyalty.loyaltyCards.0.id", "four"),
        "customers__loyalty__loyalty_cards[0].id",
    ),
    "birth-date-not-a-date": (setting("data.birthDate", "once upon a time"), "birth_date"),
    "available-not-a-boolean": (setting("data.promotions.0.available", "maybe"), "available"),
    "zip-an-object": (setting("data.zip", {"code": 150}), "zip"),
    "redeemed-at-not-a-time": (
        setting("data.promotions.0.redemptionHistory", [{"storeId": "S1", "redeemDateTime": "?"}]),
        "redeemDateTime",
    ),
}


@pytest.mark.parametrize("case", BAD_RECORDS, ids=list(BAD_RECORDS))
def test_a_bad_record_is_quarantined_and_the_rest_loads(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str, case: str
) -> None:
    change, reason = BAD_RECORDS[case]
    broken = broken_copy(simulator, change)
    body, good = served_with(simulator, broken)
    simulator.inject(Fault(body=body))

    summary = run_once(settings, warehouse)

    assert warehouse_tables(warehouse) == expected_tables(good)
    assert summary.rows_per_table["customers_rejected"] == 1
    assert summary.customers_received == len(good) + 1
    assert any("quarantined" in note for note in summary.notes)
    with duckdb.connect(warehouse, read_only=True) as connection:
        [(record, why, load_id, rejected_at)] = connection.sql(
            "select record, reason, load_id, rejected_at from trigg.customers_rejected"
        ).fetchall()
    assert reason in why
    assert json.loads(record) == broken
    assert load_id == summary.load_ids[0]
    assert rejected_at is not None


def test_quarantined_records_do_not_move_the_cursor(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    broken = broken_copy(simulator, setting("data.loyalty.points", "lots"))
    broken["metaData"]["UpdatedAt"] = "2099-01-01 00:00:00"
    body, good = served_with(simulator, broken)
    simulator.inject(Fault(body=body))

    summary = run_once(settings, warehouse)

    newest_good = max(summary.cursor_after for _ in good)
    assert summary.cursor_after.year < 2099 and newest_good == summary.cursor_after


def test_strict_turns_a_quarantined_record_into_a_failure_that_loads_nothing(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    env = trigg_env(simulator, warehouse)
    assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0
    before = warehouse_tables(warehouse)
    simulator.change(5)
    body, _ = served_with(simulator, broken_copy(simulator, setting("data.id", KeyError)))
    simulator.inject(Fault(body=body))

    result = run_trigg("run", "--strict", env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert "--strict" in result.stderr and "no id" in result.stderr
    assert "Traceback" not in result.stderr
    assert warehouse_tables(warehouse) == before
    again = run_trigg("run", "--strict", env=env, cwd=tmp_path)  # the cursor did not move
    assert again.returncode == 0, again.stderr
    assert simulator.requests[-1].since == simulator.requests[-2].since


def test_without_strict_the_cli_succeeds_and_warns(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    body, _ = served_with(simulator, broken_copy(simulator, setting("data.id", KeyError)))
    simulator.inject(Fault(body=body))
    result = run_trigg("run", env=trigg_env(simulator, str(tmp_path / "w.duckdb")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "WARNING: 1 record(s) could not be loaded" in result.stdout


def test_new_fields_are_kept_and_named_in_the_summary(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)
    customer = simulator.store.snapshot()[0].envelope()
    customer["data"]["loyaltyTier"] = "Gold"
    customer["data"]["badges"] = [{"code": "EARLY", "level": 2}]
    customer["data"]["loyalty"]["pointsBonus"] = 15
    simulator.inject(Fault(body=json.dumps([customer]).encode()))

    summary = run_once(settings, warehouse)

    [note] = [note for note in summary.notes if "new fields" in note]
    assert "customers.loyalty_tier" in note
    assert "customers.loyalty__points_bonus" in note
    assert "table customers__badges" in note
    with duckdb.connect(warehouse, read_only=True) as connection:
        tier = connection.execute(
            "select loyalty_tier from trigg.customers where id = ?", [customer["data"]["id"]]
        ).fetchone()[0]
        badges = connection.sql("select code, level from trigg.customers__badges").fetchall()
    assert tier == "Gold"
    assert badges == [("EARLY", 2)]


def test_a_bad_record_delivered_again_is_not_quarantined_again(
    simulator: TriggSimulator, settings: TriggSettings, target: Target
) -> None:
    """The lookback delivers a bad record on every run: `customers_rejected` keeps one row per
    distinct record (the first run's), the summary says how many were new, `trigg status`
    counts each once; a record that changed is a new one."""
    broken = broken_copy(simulator, setting("data.loyalty.points", "lots"))
    simulator.extra_envelopes = [broken, {"data": {"email": "no.id@example.no"}, "metaData": {}}]
    notes, load_ids = [], []
    for _ in range(3):
        simulator.change(3)
        summary = run_once(settings, target.warehouse)
        [note] = [note for note in summary.notes if "could not be loaded" in note]
        notes.append(note)
        load_ids.extend(summary.load_ids)

    assert "trigg.customers_rejected (2 new; see its reason column)" in notes[0]
    for note in notes[1:]:
        assert "(0 new, 2 already there from an earlier run;" in note
    rows = target.query("select customer_id, load_id, _dlt_load_id from customers_rejected")
    assert sorted(rows, key=repr) == [
        ("BROKEN-CUSTOMER", load_ids[0], load_ids[0]),
        (None, load_ids[0], load_ids[0]),
    ]
    if target.kind == "duckdb":
        assert read_status(str(target.warehouse)).quarantined_records == 2

    broken["data"]["loyalty"]["points"] = "even more"
    summary = run_once(settings, target.warehouse)
    assert any("(1 new, 1 already there from an earlier run;" in n for n in summary.notes)
    assert target.query("select count(*) from customers_rejected") == [(3,)]
