"""Guards of the patches of dlt (`pipelines/dlt_patches`): each test runs a real dlt pipeline into a
real DuckDB file and fails if dlt no longer calls the method a patch replaces, so an upgrade of
dlt cannot silently drop a fix. The patched method is wrapped to count its calls, and still runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from pipelines import dlt_patches
from pipelines.dlt_patches import (
    duckdb_catalog,
    duckdb_file_merge,
    duckdb_merge,
    nested_extract,
    parquet_import,
)


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
        (nested_extract.Extract, "_compute_metrics", nested_extract._compute_metrics),
        (
            duckdb_file_merge.DuckDbClient,
            "create_load_job",
            duckdb_file_merge._create_load_job,
        ),
        (
            duckdb_file_merge.DuckDbClient,
            "create_table_chain_completed_followup_jobs",
            duckdb_file_merge._create_table_chain_completed_followup_jobs,
        ),
        (parquet_import.ArrowItemsNormalizer, "__call__", parquet_import._call),
    ],
)
def test_install_puts_every_patch_in_place(owner: Any, name: str, ours: Any) -> None:
    dlt_patches.install()
    assert owner.__dict__[name] is ours


@dataclass
class TableFile:
    """A parquet file for one table, routed to it by the resource's `table_name` function."""

    table: str
    path: str
    rows: int


def write_parquet(path: Path, sql: str) -> int:
    """`sql`'s rows as a parquet file, written by DuckDB as the fast path writes them."""
    metadata = ", ".join(f"'{k}': '{v}'" for k, v in parquet_import.BY_NAME_METADATA.items())
    with duckdb.connect() as connection:
        connection.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet, KV_METADATA {{{metadata}}})")
        return int(connection.sql(f"select count(*) from '{path}'").fetchone()[0])  # type: ignore[index]


ROW_KEY = {"data_type": "text", "nullable": False, "unique": True, "row_key": True}
PEOPLE_COLUMNS = {
    "id": {"data_type": "text", "nullable": False},
    "updated": {"data_type": "bigint", "dedup_sort": "desc"},
    "_dlt_load_id": {"data_type": "text", "nullable": False},
    "_dlt_id": ROW_KEY,
}
PET_COLUMNS = {
    "name": {"data_type": "text"},
    "_dlt_root_id": {"data_type": "text", "nullable": False, "root_key": True},
    "_dlt_parent_id": {"data_type": "text", "nullable": False, "parent_key": True},
    "_dlt_list_idx": {"data_type": "bigint", "nullable": False},
    "_dlt_id": ROW_KEY,
}


def people_resource(files: list[TableFile]) -> Any:
    @dlt.resource(
        name="people",
        primary_key="id",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns=PEOPLE_COLUMNS,
        table_name=lambda item: item.table,
    )
    def people() -> Iterator[Any]:
        for file in files:
            yield dlt.mark.with_file_import(file.path, "parquet", file.rows, hints=file)

    people.apply_hints(
        table_name="people__pets",
        parent_table_name="people",
        columns={},
        primary_key=[],
        create_table_variant=True,
    )
    people.apply_hints(table_name="people__pets", columns=PET_COLUMNS, create_table_variant=True)
    return people


def load_people(tmp_path: Path, pipeline: dlt.Pipeline, people: str, pets: str) -> None:
    folder = tmp_path / f"files-{len(list(tmp_path.glob('files-*')))}"
    folder.mkdir()
    files = [
        TableFile("people", str(folder / "people.parquet"), 0),
        TableFile("people__pets", str(folder / "pets.parquet"), 0),
    ]
    for file, sql in zip(files, [people, pets], strict=True):
        file.rows = write_parquet(Path(file.path), sql)
    pipeline.run(people_resource(files))


def test_merge_reads_parquet_files_without_copying_them_to_staging(tmp_path: Path) -> None:
    pipeline = merge_pipeline(tmp_path, "files.duckdb")
    with (
        counting(duckdb_file_merge.FileMergeJob, "from_files") as merges,
        counting(duckdb_file_merge.FileReadByMergeJob, "run") as skipped_copies,
    ):
        load_people(
            tmp_path,
            pipeline,
            """select * from (values ('1', 1, 'a'), ('1', 2, 'b'), ('2', NULL, 'c'),
                                     ('2', NULL, 'd'), ('3', 5, 'e'), ('3', 5, 'e'))
                 t(id, updated, _dlt_id), (select 'x' as _dlt_load_id)""",
            """select * from (values ('a', 'a', 'a.0', 'old copy of 1'), ('b', 'b', 'b.0', 'rex'),
                                     ('e', 'e', 'e.0', 'tom'), ('e', 'e', 'e.0', 'tom'))
                 t(_dlt_root_id, _dlt_parent_id, _dlt_id, name), (select 0 as _dlt_list_idx)""",
        )
        load_people(  # 3 changes: its pets are replaced
            tmp_path,
            pipeline,
            "select '3' as id, 6 as updated, 'f' as _dlt_id, 'y' as _dlt_load_id",
            """select 'f' as _dlt_root_id, 'f' as _dlt_parent_id, 'f.0' as _dlt_id,
                      'kit' as name, 0 as _dlt_list_idx""",
        )
    assert merges and skipped_copies, "dlt no longer asks the DuckDB client for these jobs"
    with duckdb.connect(str(tmp_path / "files.duckdb"), read_only=True) as connection:
        people = connection.sql("select id, _dlt_id from shop.people order by id").fetchall()
        pets = connection.sql("select name from shop.people__pets order by name").fetchall()
        staged = connection.sql("select count(*) from shop_staging.people").fetchone()
    assert people[0] == ("1", "b") and people[2] == ("3", "f")  # the newest copy of a key wins
    assert len(people) == 3  # one row per key, also when the sort value is NULL or equal
    assert pets == [("kit",), ("rex",)]  # no pets of losing copies, none of the old version
    assert staged == (0,)  # nothing was copied to staging


def test_a_merge_from_files_run_twice_leaves_the_same_rows(tmp_path: Path) -> None:
    pipeline = merge_pipeline(tmp_path, "twice.duckdb")
    load_people(
        tmp_path,
        pipeline,
        "select '1' as id, 1 as updated, 'a' as _dlt_id, 'x' as _dlt_load_id",
        """select 'a' as _dlt_root_id, 'a' as _dlt_parent_id, 'a.0' as _dlt_id, 'rex' as name,
                  0 as _dlt_list_idx""",
    )
    folder = next(tmp_path.glob("files-*"))
    schema = pipeline.default_schema
    chain = [schema.tables["people"], schema.tables["people__pets"]]
    files = {
        "people": [str(folder / "people.parquet")],
        "people__pets": [str(folder / "pets.parquet")],
    }
    for _ in range(2):  # a merge retried after it committed (killed before dlt noted it)
        with pipeline.sql_client() as client, client.begin_transaction():
            for statement in duckdb_file_merge.merge_sql(chain, client, files, set()):
                client.execute_sql(statement)
    with pipeline.sql_client() as client:
        counts = client.execute_sql(
            "select (select count(*) from shop.people), (select count(*) from shop.people__pets)"
        )
    assert counts == [(1, 1)]


def test_parquet_files_loaded_by_name_are_imported_without_a_rewrite(tmp_path: Path) -> None:
    pipeline = merge_pipeline(tmp_path, "import.duckdb")
    with counting(parquet_import.ArrowItemsNormalizer, "__call__") as calls:
        load_people(
            tmp_path,
            pipeline,
            "select '1' as id, 1 as updated, 'a' as _dlt_id, 'x' as _dlt_load_id",
            """select 'a' as _dlt_root_id, 'a' as _dlt_parent_id, 'a.0' as _dlt_id,
                      'rex' as name, 0 as _dlt_list_idx""",
        )
    assert calls, "dlt's normalizer of parquet files is no longer ArrowItemsNormalizer"
    package = pipeline.get_load_package_info(pipeline.list_completed_load_packages()[-1])
    imported = [
        job.file_path for job in package.jobs["completed_jobs"] if ".parquet" in job.file_path
    ]
    assert imported and all(
        pq_metadata(path).get(b"dlt.loaded_by_name") == b"true" for path in imported
    ), "the files were rewritten by dlt's normalizer (the rewrite drops their metadata)"


def pq_metadata(path: str) -> dict[bytes, bytes]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).metadata or {}
