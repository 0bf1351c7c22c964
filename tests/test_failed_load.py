"""A load job that keeps failing does not hold the pipeline forever, and never moves the cursor.

dlt keeps a package whose job failed pending, so every later run would retry the same job. After
`load.raise_on_max_retries` failed attempts the next run abandons it, takes its state from the
warehouse and asks the API again from the warehouse's cursor: nothing is lost or doubled.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pipelines.runner import LoadError, run_once
from pipelines.simulator import DEMO_API_KEY, TriggSimulator
from pipelines.trigg.settings import TriggSettings

ATTEMPTS = 2
ZONE = ZoneInfo("Europe/Oslo")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now().replace(microsecond=0) - timedelta(hours=5))


@pytest.fixture
def simulated(clock: Clock) -> Iterator[TriggSimulator]:
    with TriggSimulator(customers=40, seed=11, clock=clock) as running:
        yield running


def refuse_interests(warehouse: str, refuse: bool) -> None:
    """Damage by hand, outside the pipeline: `customers__interests` becomes a table that refuses
    every row (its rows kept aside), or is restored."""
    columns = """value varchar {check}, _dlt_root_id varchar not null,
        _dlt_parent_id varchar not null, _dlt_list_idx bigint not null, _dlt_id varchar not null"""
    with duckdb.connect(warehouse) as connection:
        if refuse:
            connection.execute(
                "create table trigg.kept as select * from trigg.customers__interests"
            )
        connection.execute("drop table trigg.customers__interests")
        check = "check (value is null)" if refuse else ""
        connection.execute(
            f"create table trigg.customers__interests ({columns.format(check=check)})"
        )
        if not refuse:
            connection.execute("insert into trigg.customers__interests select * from trigg.kept")
            connection.execute("drop table trigg.kept")


def test_a_load_that_failed_its_attempts_is_abandoned_and_loaded_again_from_the_warehouse(
    simulated: TriggSimulator,
    clock: Clock,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", str(ATTEMPTS))
    warehouse = str(tmp_path_factory.mktemp("failed") / "warehouse.duckdb")
    settings = TriggSettings(
        base_url=simulated.base_url, api_key=DEMO_API_KEY, initial_since="20000101T0000"
    )
    first = run_once(settings, warehouse)
    refuse_interests(warehouse, refuse=True)
    clock.now += timedelta(minutes=30)
    early = simulated.change(5)  # older than the failed load's cursor by more than the lookback
    clock.now += timedelta(hours=2)
    late = simulated.change(5)

    failures = []
    for _ in range(ATTEMPTS):
        with pytest.raises(LoadError) as failure:
            run_once(settings, warehouse)
        failures.append(str(failure.value))
    refuse_interests(warehouse, refuse=False)  # the operator fixed the cause
    recovered = run_once(settings, warehouse)

    assert any("the next run" in message for message in failures)
    assert any("abandoned the load" in note for note in recovered.notes)
    assert recovered.cursor_before == first.cursor_after  # the warehouse's cursor, not the lost one
    with duckdb.connect(warehouse, read_only=True) as connection:
        loaded = dict(connection.sql("select id, updated_at from trigg.customers").fetchall())
        interests = connection.sql(
            """select count(*) from trigg.customers__interests i
               join trigg.customers c on c._dlt_id = i._dlt_root_id"""
        ).fetchone()
    truth = {c.data["id"]: c for c in simulated.store.snapshot()}
    assert set(loaded) == set(truth)
    for customer_id in [*early, *late]:  # every change is in, the early ones too
        assert loaded[customer_id] == truth[customer_id].updated_at.replace(tzinfo=ZONE)
    assert interests == (sum(len(c.data.get("interests") or []) for c in truth.values()),)
