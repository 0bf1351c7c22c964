"""`trigg demo`: the whole product in one command, against the bundled simulator.

It loads into its own DuckDB file (never the production warehouse) and starts from scratch on each
run, so what it prints is reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import duckdb

from pipelines.runner import make_pipeline, run_once
from pipelines.simulator import DEMO_API_KEY, TriggSimulator
from pipelines.summary import RunSummary
from pipelines.trigg.settings import DATASET_NAME, TriggSettings

DEMO_WAREHOUSE = "trigg_demo.duckdb"
DEMO_SEED = 2024

EXAMPLE_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Members by city (top 5)",
        """select city, count(*) as members, round(avg(loyalty__points)) as avg_points
           from customers group by city order by members desc, city limit 5""",
    ),
    (
        "Promotions per channel, and how often they were redeemed",
        """select ch.type as channel, count(distinct p._dlt_id) as promotions,
                  sum(p.redemption_count) as redemptions
           from customers__promotions p
           join customers__promotions__redemption_channels ch on ch._dlt_parent_id = p._dlt_id
           group by channel order by channel""",
    ),
    (
        "Stamp cards: share completed",
        """select namn as stamp_card, count(*) as cards,
                  round(avg(case when count >= total then 1 else 0 end), 2) as completed
           from customers__loyalty__loyalty_cards group by namn order by namn""",
    ),
    (
        "Consent rates",
        """select round(avg(consents__accepts_email::int), 2) as email,
                  round(avg(consents__accepts_sms::int), 2) as sms,
                  count(*) as members
           from customers""",
    ),
)


def run_demo(
    customers: int = 300,
    changes: int = 40,
    warehouse: str = DEMO_WAREHOUSE,
    echo: Callable[[str], None] = print,
) -> list[RunSummary]:
    """Initial load, simulated changes, incremental load, then a few analyst queries."""
    _start_fresh(warehouse)
    with TriggSimulator(customers=customers, seed=DEMO_SEED) as simulator:
        settings = TriggSettings(base_url=simulator.base_url, api_key=DEMO_API_KEY)
        echo(f"Simulated Trigg API at {simulator.base_url} with {customers} customers.\n")
        initial = run_once(settings, warehouse)
        echo("Initial load\n" + initial.render() + "\n")
        simulator.change(changes)
        echo(
            f"The simulator changed {changes} customers (points, promotions added and removed,"
            " redemptions, consents, stamps, new members).\n"
        )
        incremental = run_once(settings, warehouse)
        echo("Incremental load\n" + incremental.render() + "\n")
    with duckdb.connect(warehouse, read_only=True) as connection:
        connection.execute(f"set schema '{DATASET_NAME}'")
        for title, sql in EXAMPLE_QUERIES:
            echo(f"-- {title}\n{connection.sql(sql)}")
    echo(f'Explore it yourself: duckdb {warehouse} -c "select * from {DATASET_NAME}.customers"')
    return [initial, incremental]


def _start_fresh(warehouse: str) -> None:
    make_pipeline(warehouse).drop()
    for path in (warehouse, warehouse + ".wal"):
        if os.path.exists(path):
            os.remove(path)
