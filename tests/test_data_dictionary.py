"""docs/data-dictionary.md is generated from the same descriptions as the warehouse's comments."""

from __future__ import annotations

from pipelines.trigg.schema import DUCKDB_TYPES, VIEWS, described_tables
from pipelines.warehouse.dictionary import DICTIONARY_PATH, render_data_dictionary


def test_the_committed_data_dictionary_is_generated_from_the_descriptions() -> None:
    committed = DICTIONARY_PATH.read_text(encoding="utf-8")
    assert committed == render_data_dictionary(), "run `python3 tasks.py docs` and commit it"
    for relation in (*described_tables(), *VIEWS):
        assert f"### `{relation.name}`" in committed
        for column in relation.columns:
            assert f"| `{column.name}` | {DUCKDB_TYPES[column.data_type]} |" in committed
