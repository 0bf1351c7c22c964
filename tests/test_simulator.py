"""The simulator's clock and schedule: simulated time that tests set and advance drives change
stamps, the empty `since`, the `Date` header and scheduled outages; without a clock it is real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import requests

from pipelines.simulator import DEMO_API_KEY, Fault, SimulatedClock, TriggSimulator

START = datetime(2026, 3, 2, 8, 0)
"""A Monday morning in Oslo (CET, UTC+1), far from the machine's own clock."""


def ask(simulator: TriggSimulator, since: str = "") -> requests.Response:
    return requests.get(
        f"{simulator.base_url}/customers/changed/{since}",
        headers={"x-api-key": DEMO_API_KEY},
        timeout=10,
    )


def test_changes_are_stamped_with_simulated_time_and_the_date_header_follows_it() -> None:
    clock = SimulatedClock(START)
    with TriggSimulator(customers=20, seed=3, clock=clock) as simulator:
        clock.advance(minutes=45)
        changed = simulator.change(3)

        answer = ask(simulator, "20260302T0840")

        assert answer.status_code == 200
        assert parsedate_to_datetime(answer.headers["Date"]) == datetime(
            2026, 3, 2, 7, 45, tzinfo=UTC
        )
        served = {e["data"]["id"]: e["metaData"]["UpdatedAt"] for e in answer.json()}
        assert served == dict.fromkeys(changed, "2026-03-02 08:45:00")


def test_the_empty_since_means_one_simulated_day_back() -> None:
    clock = SimulatedClock(START)
    with TriggSimulator(customers=40, seed=3, clock=clock) as simulator:
        clock.advance(minutes=60 * 30)  # every generated customer is now older than a day
        changed = simulator.change(2)

        answer = ask(simulator)

        assert {e["data"]["id"] for e in answer.json()} == set(changed)


def test_the_simulated_clock_crosses_the_repeated_autumn_hour_twice() -> None:
    # 25 Oct 2026: Oslo's clocks go from 03:00 CEST back to 02:00 CET
    clock = SimulatedClock(datetime(2026, 10, 25, 1, 50))
    walls = [clock.advance(minutes=20) for _ in range(6)]
    assert [w.strftime("%H:%M") for w in walls] == [
        "02:10", "02:30", "02:50", "02:10", "02:30", "02:50"
    ]  # fmt: skip
    assert clock.utc() == datetime(2026, 10, 25, 1, 50, tzinfo=UTC)


def test_a_scheduled_outage_answers_every_request_in_its_span_of_simulated_time() -> None:
    clock = SimulatedClock(START)
    with TriggSimulator(customers=5, seed=3, clock=clock) as simulator:
        simulator.schedule(
            Fault(status=503), START + timedelta(hours=1), START + timedelta(hours=2)
        )
        statuses = []
        for _ in range(5):
            statuses.append(ask(simulator).status_code)
            clock.advance(minutes=30)

    assert statuses == [200, 200, 503, 503, 200]


def test_stamped_records_are_served_to_every_since_at_or_before_their_stamp() -> None:
    clock = SimulatedClock(START)
    with TriggSimulator(customers=5, seed=3, clock=clock) as simulator:
        broken = {"data": {"id": "BROKEN"}, "metaData": {"UpdatedAt": "never"}}
        simulator.stamped_envelopes = [(START, broken)]

        ids = [
            [e["data"]["id"] for e in ask(simulator, s).json()]
            for s in ("20260302T0800", "20260302T0801")
        ]

    assert "BROKEN" in ids[0] and "BROKEN" not in ids[1]


def test_a_field_the_vendor_adds_is_carried_by_every_customer_served() -> None:
    with TriggSimulator(customers=10, seed=3, clock=SimulatedClock(START)) as simulator:
        simulator.added_fields = {
            "preferredStore": lambda customer: customer.data["favoriteStores"][0]
        }

        customers = [e["data"] for e in ask(simulator, "20000101T0000").json()]

    assert len(customers) == 10
    assert all(c["preferredStore"] == c["favoriteStores"][0] for c in customers)


def test_without_a_clock_the_simulator_keeps_the_machines_time() -> None:
    with TriggSimulator(customers=5, seed=3) as simulator:
        before = datetime.now(UTC).replace(microsecond=0)
        simulator.change(1)
        answer = ask(simulator)

    said = parsedate_to_datetime(answer.headers["Date"])
    assert before - timedelta(seconds=1) <= said <= datetime.now(UTC) + timedelta(seconds=1)
    newest = max(e["metaData"]["UpdatedAt"] for e in answer.json())
    stamped = datetime.fromisoformat(newest).replace(tzinfo=simulator.zone)
    assert abs(stamped - before) < timedelta(seconds=5)
