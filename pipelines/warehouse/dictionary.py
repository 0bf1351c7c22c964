"""`docs/data-dictionary.md`, generated from the descriptions in `pipelines/trigg/schema.py`.

The warehouse's comments come from the same place, so the two cannot disagree; a test keeps the
committed file equal to what this renders. Regenerate it with `python3 tasks.py docs`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.trigg.schema import (
    DLT_TABLES,
    DUCKDB_TYPES,
    QUARANTINE,
    RUN_HISTORY,
    TABLES,
    VERSIONS,
    VIEWS,
    Relation,
    as_relation,
)
from pipelines.trigg.settings import DATASET_NAME

DICTIONARY_PATH = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"

SECTIONS: tuple[tuple[str, str, tuple[Relation, ...]], ...] = (
    (
        "Analyst views",
        "Start here. Every row carries `customer_id` (and `promotion_id` where it applies);"
        " no dlt join columns needed. Recreated by every run.",
        VIEWS,
    ),
    (
        "Customer tables",
        "What dlt loads from the API, one table per nested list; child rows reach their customer"
        " through `_dlt_root_id` = `customers._dlt_id`.",
        tuple(as_relation(table) for table in TABLES),
    ),
    (
        "Quarantine",
        "Records the API sent that could not be loaded, with the reason (see the README's"
        " 'Failure behaviour').",
        (QUARANTINE,),
    ),
    (
        "History",
        "Every customer version ever received, and every run.",
        (VERSIONS, RUN_HISTORY),
    ),
    (
        "dlt's bookkeeping",
        "Written by dlt itself; the cursor lives in `_dlt_pipeline_state`.",
        DLT_TABLES,
    ),
)


def render_data_dictionary() -> str:
    """The whole data dictionary as Markdown."""
    lines = [
        "# Data dictionary",
        "",
        "<!-- Generated from pipelines/trigg/schema.py by `python3 tasks.py docs`:"
        " edit the descriptions there, not here. -->",
        "",
        f"Every table and view of the dataset (DuckDB schema) `{DATASET_NAME}`. The same"
        " descriptions are stored in the warehouse as comments: `select table_name, column_name,"
        " comment from duckdb_columns() where schema_name = 'trigg'`. On a DuckLake the views'"
        " columns carry no comment (DuckLake refuses comments on a view's columns): they are"
        " described here only.",
        "",
    ]
    lines += [f"- [{title}](#{_anchor(title)})" for title, _, _ in SECTIONS]
    for title, introduction, relations in SECTIONS:
        lines += ["", f"## {title}", "", introduction]
        for relation in relations:
            lines += ["", f"### `{relation.name}`", "", _cell(relation.description), ""]
            lines += ["| column | type | description |", "|---|---|---|"]
            lines += [
                f"| `{c.name}` | {DUCKDB_TYPES[c.data_type]} | {_cell(c.description)} |"
                for c in relation.columns
            ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _anchor(title: str) -> str:
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -")
    return kept.replace(" ", "-")


def main(argv: list[str]) -> int:
    """Write the dictionary to the given path, or to docs/data-dictionary.md."""
    path = Path(argv[0]) if argv else DICTIONARY_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_data_dictionary(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
