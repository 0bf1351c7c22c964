"""notebooks/explore_customers.ipynb runs top to bottom against the demo warehouse, never holding
it between queries, and is committed without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT, run_trigg, trigg_env

NOTEBOOK = PROJECT_ROOT / "notebooks" / "explore_customers.ipynb"
README_CHART = PROJECT_ROOT / "docs" / "members-by-city-and-age-band.png"


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `trigg demo` leaves behind, in a folder of its own."""
    folder = tmp_path_factory.mktemp("demo")
    env = trigg_env(None, None, DLT_DATA_DIR=str(folder / "dlt-data"))
    result = run_trigg("demo", "--customers", "150", env=env, cwd=folder, timeout=300)
    assert result.returncode == 0, result.stderr
    return folder / "trigg_demo.duckdb"


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert code_cells(notebook)
    for cell in code_cells(notebook):
        assert cell.outputs == [], cell.source[:60]
        assert cell.execution_count is None, cell.source[:60]


def test_the_notebook_runs_top_to_bottom_and_never_keeps_the_warehouse_locked(
    demo_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("TRIGG_WAREHOUSE", str(demo_warehouse))  # the kernel inherits it
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )

    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)  # raises on the first cell that fails
        # the kernel is still running, after every query: a scheduled run must be able to write
        with duckdb.connect(str(demo_warehouse)) as writer:
            writer.execute("create table trigg.written_while_the_notebook_is_open (x int)")

    outputs = [output for cell in code_cells(notebook) for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    charts = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(charts) >= 6  # members, points, redemptions, stamp cards, consents, history
    text = "".join(str(output.get("data", {}).get("text/plain", "")) for output in outputs)
    assert "customer_overview" in text  # the tables are explained from the warehouse itself
    tagged = [cell for cell in notebook.cells if "readme-chart" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and any("image/png" in o.get("data", {}) for o in tagged[0].outputs)


def test_the_readme_shows_one_of_the_notebooks_charts() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"]({README_CHART.relative_to(PROJECT_ROOT).as_posix()})" in readme
    assert README_CHART.read_bytes().startswith(b"\x89PNG")
    assert "jupyter lab notebooks/explore_customers.ipynb" in readme
    assert os.path.basename(NOTEBOOK) in readme
