"""`trigg demo`: the whole product in one command, against the bundled simulator.

It loads into its own DuckDB file, or with `--destination ducklake` its own DuckLake (never the
production warehouse), and starts from scratch on each run, so what it prints is reproducible.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb
from dlt.destinations.impl.ducklake.configuration import DuckLakeCredentials

from pipelines.destinations import Warehouse, ducklake
from pipelines.runner import make_pipeline, run_once
from pipelines.simulator import DEMO_API_KEY, TriggSimulator
from pipelines.summary import RunSummary
from pipelines.trigg.settings import DATASET_NAME, TriggSettings
from pipelines.warehouse.lake import analyst_attach_sql, lake_credentials, open_lake
from pipelines.warehouse.status import read_status

DEMO_WAREHOUSE = "trigg_demo.duckdb"
DEMO_LAKE_CATALOG, DEMO_LAKE_FILES = "trigg_demo.sqlite", "trigg_demo.files"
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


def demo_lake() -> Warehouse:
    """The demo's own DuckLake: `trigg_demo.sqlite` and `trigg_demo.files/` here."""
    return ducklake(
        DuckLakeCredentials(catalog=f"sqlite:///{DEMO_LAKE_CATALOG}", storage=DEMO_LAKE_FILES)
    )


def run_demo(
    customers: int = 300,
    changes: int = 40,
    warehouse: str | Warehouse = DEMO_WAREHOUSE,
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
    with _reading(warehouse) as connection:
        for title, sql in EXAMPLE_QUERIES:
            echo(f"-- {title}\n{connection.sql(sql)}")
    echo(read_status(warehouse).render() + "\n")
    for line in _explore(warehouse):
        echo(line)
    return [initial, incremental]


@contextmanager
def _reading(warehouse: str | Warehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(warehouse, Warehouse):
        with open_lake(warehouse) as connection:
            yield connection
        return
    with duckdb.connect(warehouse, read_only=True) as connection:
        connection.execute(f"set schema '{DATASET_NAME}'")
        yield connection


def _explore(warehouse: str | Warehouse) -> list[str]:
    if isinstance(warehouse, Warehouse):
        catalog = lake_credentials(warehouse).catalog.database
        lake = (
            f"DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG=sqlite:///{catalog}"
            f" DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE__BUCKET_URL={DEMO_LAKE_FILES}"
        )
        return [
            f"Explore it yourself: {lake} trigg sql --destination ducklake",
            f'  duckdb -c "{analyst_attach_sql(warehouse)}; use lake.{DATASET_NAME};'
            ' select * from customer_overview"',
        ]
    return [
        f"Explore it yourself: trigg status --warehouse {warehouse}",
        f'  duckdb {warehouse} -c "select * from {DATASET_NAME}.customer_overview"',
        "  uv run --group notebook jupyter lab notebooks/explore_customers.ipynb",
    ]


def _start_fresh(warehouse: str | Warehouse) -> None:
    make_pipeline(warehouse).drop()
    if isinstance(warehouse, Warehouse):
        credentials = lake_credentials(warehouse)
        catalog = credentials.catalog.database
        paths = [catalog, catalog + "-wal", catalog + "-shm"]
        shutil.rmtree(credentials.storage.make_local_path(credentials.storage.bucket_url), True)
    else:
        paths = [warehouse, warehouse + ".wal"]
    for path in paths:
        if os.path.exists(path):
            os.remove(path)
