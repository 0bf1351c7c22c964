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
from pipelines.warehouse.status import read_status

DEMO_WAREHOUSE = "trigg_demo.duckdb"
DEMO_SEED = 2024

EXAMPLE_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Members by city (top 5)",
        """select city, count(*) as members, round(avg(points)) as avg_points
           from customer_overview group by city order by members desc, city limit 5""",
    ),
    (
        "Members by age band",
        """select age_band, count(*) as members, round(avg(points)) as avg_points,
                  sum(active_promotions) as active_promotions
           from customer_overview group by age_band order by min(age) nulls last""",
    ),
    (
        "Promotions per channel, and how often they were redeemed",
        """select ch.channel, count(*) as promotions, sum(p.redemption_count) as redemptions
           from promotion_channels ch join customer_promotions p using (customer_id, promotion_id)
           group by ch.channel order by ch.channel""",
    ),
    (
        "Stamp cards: completion",
        """select name as stamp_card, count(*) as cards,
                  round(avg(completion), 2) as avg_completion,
                  round(avg(is_completed::int), 2) as completed
           from stamp_cards group by name order by name""",
    ),
    (
        "Consent rates",
        """select round(avg(accepts_email::int), 2) as email,
                  round(avg(accepts_sms::int), 2) as sms,
                  count(*) as members
           from customer_overview""",
    ),
)


def run_demo(
    customers: int = 300,
    changes: int = 40,
    warehouse: str = DEMO_WAREHOUSE,
    echo: Callable[[str], None] = print,
) -> list[RunSummary]:
    """Initial load, simulated changes, incremental load, a few analyst queries, the status."""
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
    echo(read_status(warehouse).render() + "\n")
    echo(f"Explore it yourself: trigg status --warehouse {warehouse}")
    echo(f'  duckdb {warehouse} -c "select * from {DATASET_NAME}.customer_overview"')
    echo("  uv run --group notebook jupyter lab notebooks/explore_customers.ipynb")
    return [initial, incremental]


def _start_fresh(warehouse: str) -> None:
    make_pipeline(warehouse).drop()
    for path in (warehouse, warehouse + ".wal"):
        if os.path.exists(path):
            os.remove(path)
