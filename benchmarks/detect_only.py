"""The fast path's first step alone: DuckDB detects the structure of every record of a body.

    python benchmarks/detect_only.py BODY.json THREADS

With two threads the body is read as the fast path reads it, in two halves side by side; with one,
whole. `memory_tradeoff.py` runs it to show what each DuckDB thread costs before any data is kept.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.trigg.fast_path import MEMORY_LIMIT, _detect, _halves, body_path


def main(body_file: str, threads: int) -> None:
    config = {"memory_limit": MEMORY_LIMIT, "threads": threads}
    with open(body_file, "rb") as body, tempfile.TemporaryDirectory() as folder:
        connection = duckdb.connect(config=config)
        halves = _halves(body, folder) if threads > 1 else []
        _, parts = _detect(connection, body_path(body), halves)
        print(f"detected over {len(parts)} part(s) with {threads} thread(s)")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
