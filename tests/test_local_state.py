"""dlt's local state: bounded over months of runs, one folder per warehouse, found by dlt's CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dlt

from pipelines.destinations import duckdb_file
from pipelines.local_state import warehouse_dir
from pipelines.runner import make_pipeline, run_once
from pipelines.simulator import TriggSimulator
from pipelines.trigg import trigg_source
from pipelines.trigg.settings import DATASET_NAME, PIPELINE_NAME, TriggSettings
from tests.conftest import run_trigg, trigg_env
from tests.test_pipeline import assert_warehouse_equals_source

DLT = Path(sys.executable).parent / "dlt"
"""dlt's own command, from the project's environment."""
MB = 1 << 20


def folder_size(folder: Path) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
        if not os.path.islink(os.path.join(root, name))
    )


def dlt_command(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DLT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_local_state_stays_bounded_over_full_reloads(isolated_dlt: Path, tmp_path: Path) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    with TriggSimulator(customers=300, seed=5) as simulator:
        settings = TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key)
        sizes = []
        for _ in range(12):
            simulator.change(30)
            run_once(settings, warehouse, since="20000101T0000")  # every customer, again
            sizes.append(folder_size(isolated_dlt))
    pipeline = make_pipeline(warehouse)
    trace = Path(pipeline.working_dir) / "trace.pickle"
    assert sizes[11] <= 1.25 * sizes[2] + MB, [round(size / MB, 2) for size in sizes]
    assert pipeline.list_completed_load_packages() == []  # loaded packages are removed
    assert trace.stat().st_size < MB  # the trace of the last run only, and small
    assert_warehouse_equals_source(warehouse, simulator)


def test_dlt_cli_finds_the_pipeline_of_the_warehouse_last_run(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    first, second = str(tmp_path / "first.duckdb"), str(tmp_path / "second.duckdb")
    for warehouse in (first, second, first):
        env = trigg_env(simulator, warehouse)
        assert run_trigg("run", env=env, cwd=tmp_path).returncode == 0

        info = dlt_command("pipeline", PIPELINE_NAME, "info", env=env, cwd=tmp_path)
        trace = dlt_command("pipeline", PIPELINE_NAME, "trace", env=env, cwd=tmp_path)
        runs = dlt_command("pipeline", f"{PIPELINE_NAME}_runs", "info", env=env, cwd=tmp_path)

        assert info.returncode == 0, info.stdout + info.stderr
        assert f"Found pipeline {PIPELINE_NAME}" in info.stdout, info.stdout
        assert "dataset_name: trigg" in info.stdout
        assert trace.returncode == 0, trace.stdout + trace.stderr
        assert f"duckdb:///{warehouse} location" in trace.stdout, trace.stdout
        assert runs.returncode == 0 and f"Found pipeline {PIPELINE_NAME}_runs" in runs.stdout
    listed = dlt_command("pipeline", "--list-pipelines", env=env, cwd=tmp_path)
    assert listed.stdout.count("(last run:") == 2, listed.stdout  # no other folder posing as one
    other = warehouse_dir(duckdb_file(second))  # any warehouse, by its own folder
    named = dlt_command(
        "pipeline", "--pipelines-dir", other, PIPELINE_NAME, "trace", env=env, cwd=tmp_path
    )
    assert f"duckdb:///{second} location" in named.stdout, named.stdout


def test_two_warehouses_keep_separate_folders_behind_the_link(
    simulator: TriggSimulator, settings: TriggSettings, tmp_path: Path, isolated_dlt: Path
) -> None:
    first, second = duckdb_file(str(tmp_path / "a.duckdb")), duckdb_file(str(tmp_path / "b.duckdb"))
    run_once(settings, first)
    run_once(settings, second)
    link = isolated_dlt / "pipelines" / PIPELINE_NAME
    assert link.is_symlink()
    assert link.resolve() == Path(warehouse_dir(second), PIPELINE_NAME).resolve()
    assert warehouse_dir(first) != warehouse_dir(second)
    for warehouse in (first, second):
        label = Path(warehouse_dir(warehouse), "warehouse").read_text()
        assert label.strip() == str(warehouse)


def test_a_folder_of_the_earlier_layout_is_moved_with_its_pending_packages(
    simulator: TriggSimulator, settings: TriggSettings, tmp_path: Path, isolated_dlt: Path
) -> None:
    warehouse = duckdb_file(str(tmp_path / "w.duckdb"))
    old = isolated_dlt / "pipelines" / "trigg" / warehouse.key  # where earlier versions kept it
    earlier = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=str(old),
        destination=warehouse.destination,
        dataset_name=DATASET_NAME,
    )
    earlier.run(trigg_source(**settings.source_arguments()))
    simulator.change(6)
    earlier.extract(trigg_source(**settings.source_arguments()))
    earlier.normalize()  # ... and the upgrade happened before the load step
    assert earlier.has_pending_data
    simulator.change(4)

    summary = run_once(settings, warehouse)

    assert not old.exists() and not old.parent.exists()
    assert Path(warehouse_dir(warehouse), PIPELINE_NAME, "state.json").exists()
    assert any("interrupted run" in note for note in summary.notes)
    assert summary.cursor_before is not None  # the cursor moved with it
    assert_warehouse_equals_source(warehouse.location, simulator)


def test_a_folder_that_is_not_trigg_s_link_is_left_alone_and_named(
    simulator: TriggSimulator, settings: TriggSettings, tmp_path: Path, isolated_dlt: Path
) -> None:
    foreign = isolated_dlt / "pipelines" / PIPELINE_NAME
    foreign.mkdir(parents=True)
    (foreign / "state.json").write_text("{}")

    summary = run_once(settings, str(tmp_path / "w.duckdb"))

    assert not foreign.is_symlink() and (foreign / "state.json").read_text() == "{}"
    assert any("does not manage" in note for note in summary.notes), summary.notes
    assert summary.customers_received == 60
