"""Refresh the README's chart, docs/members-by-city-and-age-band.png, from the notebook itself.

    python3 tasks.py demo                           # writes trigg_demo.duckdb in the checkout
    uv run python notebooks/export_readme_chart.py  # runs the notebook, saves its tagged chart

The notebook is executed in memory and never written back: it stays committed without outputs.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "explore_customers.ipynb"
CHART = HERE.parent / "docs" / "members-by-city-and-age-band.png"
TAG = "readme-chart"


def main() -> int:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    )
    client.execute()
    for cell in notebook.cells:
        if TAG not in cell.metadata.get("tags", []):
            continue
        for output in cell.outputs:
            png = output.get("data", {}).get("image/png")
            if png:
                CHART.write_bytes(base64.b64decode(png))
                print(f"wrote {CHART}")
                return 0
    print(f"no chart in the cell tagged {TAG!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
