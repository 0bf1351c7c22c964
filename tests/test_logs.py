"""`--log-format json`: one JSON object per event for log shippers; text stays the default."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.simulator import Fault, TriggSimulator
from tests.conftest import run_trigg, trigg_env


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_json_logs_have_one_object_per_event(simulator: TriggSimulator, tmp_path: Path) -> None:
    simulator.inject(Fault(status=503, retry_after="0"))
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"), SOURCES__TRIGG__BACKOFF_SECONDS="0.01")

    result = run_trigg("run", "--log-format", "json", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    logged = events(result.stdout)  # every line is a JSON object
    kinds = [line["event"] for line in logged if line["event"] != "fast_path"]
    assert kinds == ["run_start", "retry", "request", "load", "summary"]
    assert "fast_path" in {line["event"] for line in logged}  # its steps, with their timings
    assert all({"time", "level", "message"} <= line.keys() for line in logged)
    retry, request, summary = logged[1], logged[2], logged[-1]
    assert retry["attempt"] == 1 and "HTTP 503" in retry["reason"]
    assert request["status"] == 200 and request["bytes"] > 0
    assert summary["customers_received"] == 60
    assert summary["rows_per_table"]["customers"] == 60
    assert simulator.api_key not in result.stdout + result.stderr


def test_a_failure_is_a_json_event_and_still_one_sentence_on_stderr(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    simulator.inject(Fault(status=401))
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"))
    result = run_trigg("run", "--log-format", "json", env=env, cwd=tmp_path)
    assert result.returncode == 1
    [failure] = [line for line in events(result.stdout) if line["event"] == "failure"]
    assert failure["level"] == "error" and failure["exit_code"] == 1
    assert "the API key was rejected" in failure["message"]
    assert result.stderr.strip().startswith("trigg: the API key was rejected")


def test_text_is_the_default(simulator: TriggSimulator, tmp_path: Path) -> None:
    result = run_trigg("run", env=trigg_env(simulator, str(tmp_path / "w.duckdb")), cwd=tmp_path)
    assert result.stdout.startswith("trigg run: 60 customers received")
    assert result.stderr == ""
