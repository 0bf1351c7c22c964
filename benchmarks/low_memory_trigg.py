"""`trigg` with DuckDB held to one thread and small buffer pools: the memory end of the trade-off
that `memory_tradeoff.py` measures. An experiment, not a setting the product offers.

    python benchmarks/low_memory_trigg.py run

The glibc allocator settings the experiment also uses (`MALLOC_ARENA_MAX`,
`MALLOC_MMAP_THRESHOLD_`) are read when the process starts, so `memory_tradeoff.py` passes them in
the environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines import destinations
from pipelines.cli import main
from pipelines.trigg import fast_path

SETTINGS = {
    "THREADS": 1,
    "MEMORY_LIMIT": "128MB",
    # one reader: the halves only feed a second thread
    "_halves": lambda body, folder, items=None: [],
}
for name, value in SETTINGS.items():
    if not hasattr(fast_path, name):  # renamed: the experiment would silently measure nothing
        raise SystemExit(f"fast_path.{name} is gone: update this experiment")
    setattr(fast_path, name, value)
destinations.DUCKDB_SETTINGS.update(memory_limit="64MB", threads=1)

if __name__ == "__main__":
    sys.exit(main())
