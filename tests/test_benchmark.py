"""The benchmark script runs end to end at a tiny size (it measures; no timing is asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.benchmark  # `python3 tasks.py test-benchmarks`, outside the default suite


def test_the_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    assert Path("/usr/bin/time").exists(), "GNU time is missing: apt-get install -y time"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench.py",
            *("--customers", "40", "--out", str(tmp_path)),
            *("--variants", "unknown_field,pii_drop"),  # the rest as in a real run: no need here
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    measurements = [line.split(" | ")[0].strip("| ") for line in table[1:]]
    assert measurements[:3] == [
        "ceiling (shared SQL)",
        "trigg run, initial load",
        "trigg run, memory",
    ]
    assert {f"trigg run, {v}" for v in ("unknown field", "pii drop", "single")} <= set(measurements)
    assert measurements[-3:] == ["10 changes into 20", "10 changes into 40", "nothing new"]
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert all(row["measured"]["wall_s"] and row["measured"]["peak_rss_mb"] for row in rows)
    ratios = [row for row in rows if row["target"]]
    assert ratios and all(row["ratio"] for row in ratios if row["measurement"] != "nothing new")


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


def test_the_soak_runs_at_a_tiny_size_and_loses_or_doubles_nothing(tmp_path: Path) -> None:
    # eight runs an hour apart still meet every event: the new field, bad records, the future
    # stamp, the night the clocks go back, an outage run and a run killed mid-load
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/soak.py",
            *("--runs", "8", "--tick-minutes", "60", "--customers", "100"),
            *("--out", str(tmp_path)),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| what | measured | target | met |", result.stdout
    assert len(rows) == 10, result.stdout  # the header and nine figures
    results = json.loads((tmp_path / "soak.json").read_text())
    assert results["killed_mid_load"] == 1 and results["exit_codes"]["1"] == 1
    assert results["unexpected_failures"] == [], result.stdout  # every other run exits 0
    assert (results["worst_lost"], results["worst_doubled"]) == (0, 0), result.stdout


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
