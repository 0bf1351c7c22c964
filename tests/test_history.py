"""`customer_versions`: every version of every customer ever received, once."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from pipelines.runner import run_once
from pipelines.simulator import Fault, SimulatedCustomer, TriggSimulator
from pipelines.trigg.errors import ApiError
from pipelines.trigg.settings import TriggSettings
from tests.oracle import expected_versions, warehouse_tables, warehouse_versions
from tests.test_pipeline import assert_warehouse_equals_source


def touch(simulator: TriggSimulator, customer: SimulatedCustomer) -> None:
    """The customer changed just now, as the service would stamp it."""
    now = simulator.clock().replace(microsecond=0)
    customer.updated_at = max(now, customer.updated_at + timedelta(seconds=1))


def test_every_version_received_is_kept_once(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    snapshots = []
    for changes in (0, 20, 20, 0):
        simulator.change(changes)
        snapshots.append(simulator.store.snapshot())
        run_once(settings, warehouse)

    versions = warehouse_versions(warehouse)
    assert versions == expected_versions(snapshots)
    assert len(versions) > 60  # the changed customers have more than one version


def test_versions_delivered_again_are_merged_not_doubled(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    run_once(settings, warehouse)
    again = run_once(settings, warehouse, since="2020-01-01")  # every customer, once more

    assert again.customers_received == 60
    assert warehouse_versions(warehouse) == expected_versions([simulator.store.snapshot()])


def test_a_customers_points_and_consents_can_be_followed_over_time(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    customer = simulator.store.customers[sorted(simulator.store.customers)[0]]
    loyalty, consents = customer.data["loyalty"], customer.data["consents"]
    balances = [loyalty["points"]]
    run_once(settings, warehouse)
    for earned in (120, 35):
        loyalty.update(
            points=loyalty["points"] + earned, pointsActive=loyalty["pointsActive"] + earned
        )
        consents["acceptsSms"] = not consents["acceptsSms"]
        balances.append(loyalty["points"])
        touch(simulator, customer)
        run_once(settings, warehouse)

    with duckdb.connect(warehouse, read_only=True) as connection:
        history = connection.execute(
            """select points, accepts_sms from trigg.customer_versions
               where customer_id = ? order by updated_at""",
            [customer.data["id"]],
        ).fetchall()
    assert [points for points, _ in history] == balances
    sms = [accepts for _, accepts in history]
    assert sms[0] != sms[1] != sms[2]


def test_a_full_refresh_keeps_the_versions_received_before_it_once(
    simulator: TriggSimulator, settings: TriggSettings, warehouse: str
) -> None:
    snapshots = []
    for changes in (0, 20, 15):
        simulator.change(changes)
        snapshots.append(simulator.store.snapshot())
        if changes != 15:
            run_once(settings, warehouse)

    refreshed = run_once(settings, warehouse, full_refresh=True)  # tables dropped, reloaded

    assert refreshed.customers_received == len(simulator.store.customers)
    assert refreshed.full_backfill and refreshed.cursor_before is None
    versions = warehouse_versions(warehouse)
    assert versions == expected_versions(snapshots)  # the history before it, and nothing twice
    assert len(versions) > len(simulator.store.customers)
    assert_warehouse_equals_source(warehouse, simulator)


def test_a_full_refresh_whose_download_fails_drops_nothing(
    simulator: TriggSimulator, warehouse: str
) -> None:
    settings = TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key, max_attempts=1)
    run_once(settings, warehouse)
    simulator.change(10)
    run_once(settings, warehouse)
    before = warehouse_tables(warehouse), warehouse_versions(warehouse)
    simulator.inject(Fault(status=503))

    with pytest.raises(ApiError):
        run_once(settings, warehouse, full_refresh=True)

    # the drop belongs to the load that never came
    assert (warehouse_tables(warehouse), warehouse_versions(warehouse)) == before
