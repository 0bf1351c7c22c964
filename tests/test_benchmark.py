"""The benchmark script runs end to end at a tiny size (it measures; no timing is asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def test_the_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    assert Path("/usr/bin/time").exists(), "GNU time is missing: apt-get install -y time"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--customers", "40", "--out", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| trigg run (initial load) | 40 |" in result.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    measured = [results["initial"]["trigg"], results["initial"]["ceiling"], results["nothing_new"]]
    assert all(m["wall_s"] and m["peak_rss_mb"] for m in measured)


def test_the_memory_tradeoff_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/memory_tradeoff.py",
            "--customers",
            "40",
            "--out",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [
        line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line
    ]
    assert len(rows) == 6, result.stdout  # the header and five measurements
    assert all(row.split("|")[2].strip() not in ("", "-") for row in rows[1:]), result.stdout


def test_the_verify_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/verify.py",
            "--customers",
            "40",
            "--rounds",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| trigg verify (whole base, equal) |" in result.stdout
    results = json.loads((tmp_path / "verify-results.json").read_text())
    assert results["found"]["differs"] == 1  # one customer in 100, the first
    assert all(m["wall_s"] and m["peak_rss_mb"] for m in results["rounds"][0].values())
