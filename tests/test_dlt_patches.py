"""Guards of the patches of dlt (`pipelines/dlt_patches`): each test runs a real dlt pipeline into a
real DuckDB file and fails if dlt no longer calls the method a patch replaces, so an upgrade of
dlt cannot silently drop a fix. The patched method is wrapped to count its calls, and still runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
from dlt.destinations.impl.ducklake.configuration import DuckLakeCredentials

from pipelines import dlt_patches
from pipelines.destinations import ducklake
from pipelines.dlt_patches import duckdb_catalog, duckdb_merge, ducklake_connections, nested_extract
from pipelines.duckdb_extensions import STARTUP_SETTINGS


@contextmanager
def counting(owner: Any, name: str) -> Iterator[list[tuple[Any, ...]]]:
    """Count the calls of `owner.name` (a patch installed by `dlt_patches.install`)."""
    dlt_patches.install()
    patched: Callable[..., Any] = owner.__dict__[name]
    calls: list[tuple[Any, ...]] = []
    target = patched.__func__ if isinstance(patched, classmethod) else patched

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return target(*args, **kwargs)

    setattr(owner, name, classmethod(spy) if isinstance(patched, classmethod) else spy)
    try:
        yield calls
    finally:
        setattr(owner, name, patched)


def customers_with_children(version: int) -> list[dict[str, Any]]:
    return [
        {"id": str(n), "v": version, "cards": [{"n": k} for k in range(version)]} for n in range(3)
    ]


def merge_pipeline(tmp_path: Path, file_name: str, dataset: str = "shop") -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=f"guard_{file_name.split('.')[0]}",
        pipelines_dir=str(tmp_path / "dlt"),
        destination=dlt.destinations.duckdb(str(tmp_path / file_name)),
        dataset_name=dataset,
    )


def test_merge_of_child_tables_goes_through_the_first_copy_dedup(tmp_path: Path) -> None:
    pipeline = merge_pipeline(tmp_path, "merge.duckdb")
    with counting(duckdb_merge.FirstCopyMergeJob, "gen_select_from_dedup_sql") as calls:
        for version in (1, 2):
            pipeline.run(
                customers_with_children(version),
                table_name="customers",
                write_disposition="merge",
                primary_key="id",
            )
    nested = [args for args in calls if list(args[2]) == [duckdb_merge.NESTED_ROW_KEY]]
    assert nested, "dlt no longer asks the merge job for its dedup SQL of nested tables"
    with duckdb.connect(str(tmp_path / "merge.duckdb"), read_only=True) as connection:
        cards = connection.sql("select count(*) from shop.customers__cards").fetchone()
    assert cards == (6,)  # the second version's two cards per customer, the first's gone


def lake_pipeline(tmp_path: Path) -> dlt.Pipeline:
    credentials = DuckLakeCredentials(
        catalog=f"sqlite:///{tmp_path / 'guard.sqlite'}", storage=str(tmp_path / "guard.files")
    )
    return dlt.pipeline(
        pipeline_name="guard_lake",
        pipelines_dir=str(tmp_path / "dlt"),
        destination=ducklake(credentials).destination,
        dataset_name="shop",
    )


def test_merge_of_child_tables_into_a_lake_goes_through_the_first_copy_dedup(
    tmp_path: Path,
) -> None:
    pipeline = lake_pipeline(tmp_path)
    with counting(duckdb_merge.FirstCopyMergeJob, "gen_select_from_dedup_sql") as calls:
        for version in (1, 2):
            pipeline.run(
                customers_with_children(version),
                table_name="customers",
                write_disposition="merge",
                primary_key="id",
            )
    nested = [
        args
        for args in calls
        if args[0] is duckdb_merge.FirstCopyLakeMergeJob
        and list(args[2]) == [duckdb_merge.NESTED_ROW_KEY]
    ]
    assert nested, "dlt no longer asks the DuckLake merge job for its dedup SQL of nested tables"
    with pipeline.sql_client() as client:
        assert client.execute_sql("select count(*) from customers__cards") == [(6,)]


def test_lake_connections_open_with_the_startup_settings(tmp_path: Path) -> None:
    pipeline = lake_pipeline(tmp_path)
    with counting(ducklake_connections.StartupSettingsPool, "borrow_conn") as calls:
        pipeline.run([{"id": 1}], table_name="things")
        with pipeline.sql_client() as client:
            [(unsigned,)] = client.execute_sql(
                "select current_setting('allow_unsigned_extensions')"
            )
    assert calls, "dlt no longer borrows DuckLake connections from the credentials' pool"
    assert STARTUP_SETTINGS == {"allow_unsigned_extensions": True}
    assert unsigned is True


def test_a_file_named_like_its_dataset_is_loaded_with_fully_qualified_names(
    tmp_path: Path,
) -> None:
    pipeline = merge_pipeline(tmp_path, "shop.duckdb")
    with counting(duckdb_catalog.DuckDbSqlClient, "catalog_name") as calls:
        pipeline.run(customers_with_children(1), table_name="customers", primary_key="id")
    assert calls, "dlt no longer asks its DuckDB SQL client for the catalog name"
    with duckdb.connect(str(tmp_path / "shop.duckdb"), read_only=True) as connection:
        assert connection.sql("select count(*) from shop.shop.customers").fetchone() == (3,)


def test_extract_can_write_rows_of_a_nested_table(tmp_path: Path) -> None:
    import pyarrow as pa

    @dlt.resource(name="customers", primary_key="id", write_disposition="merge")
    def customers() -> Iterator[Any]:
        yield pa.table({"id": ["1"], "_dlt_id": ["r1"], "_dlt_load_id": ["x"]})
        yield dlt.mark.with_table_name(
            pa.table(
                {
                    "n": [1],
                    "_dlt_root_id": ["r1"],
                    "_dlt_parent_id": ["r1"],
                    "_dlt_list_idx": [0],
                    "_dlt_id": ["c1"],
                }
            ),
            "customers__cards",
        )

    customers.apply_hints(
        table_name="customers__cards",
        parent_table_name="customers",
        primary_key=[],
        create_table_variant=True,
    )
    pipeline = merge_pipeline(tmp_path, "nested.duckdb")
    with counting(nested_extract.Extract, "_compute_metrics") as calls:
        pipeline.extract(customers())
    assert calls, "dlt no longer computes extract metrics through Extract._compute_metrics"
    metrics = pipeline.last_trace.last_extract_info.metrics
    tables = next(iter(metrics.values()))[0]["table_metrics"]
    assert tables["customers__cards"].items_count == 1


@pytest.mark.parametrize(
    ("owner", "name", "ours"),
    [
        (duckdb_catalog.DuckDbSqlClient, "catalog_name", duckdb_catalog._catalog_name),
        (
            duckdb_merge.DuckDbClient,
            "_create_merge_followup_jobs",
            duckdb_merge._create_merge_followup_jobs,
        ),
        (
            duckdb_merge.DuckLakeClient,
            "_create_merge_followup_jobs",
            duckdb_merge._create_lake_merge_followup_jobs,
        ),
        (nested_extract.Extract, "_compute_metrics", nested_extract._compute_metrics),
        (
            ducklake_connections.DuckLakeCredentials,
            "on_resolved",
            ducklake_connections._on_resolved,
        ),
    ],
)
def test_install_puts_every_patch_in_place(owner: Any, name: str, ours: Any) -> None:
    dlt_patches.install()
    assert owner.__dict__[name] is ours
