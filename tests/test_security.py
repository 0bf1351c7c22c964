"""The API key never leaves the `x-api-key` header: not in output, logs, dlt's files or the
warehouse; and it is sent over plain http only to loopback hosts."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from pipelines.simulator import Fault, TriggSimulator
from tests.conftest import run_trigg, trigg_env

SECRET = "tr1gg-Secret-Key-0f-The-Club"


def files_containing(folder: Path, needle: bytes) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_the_key_appears_nowhere_the_runs_wrote(tmp_path: Path, isolated_dlt: Path) -> None:
    with TriggSimulator(customers=30, seed=9, api_key=SECRET) as simulator:
        warehouse = tmp_path / "w.duckdb"
        env = trigg_env(simulator, str(warehouse), RUNTIME__LOG_LEVEL="INFO")
        outputs: list[str] = []
        runs = [
            ("run",),
            ("run", "--verbose"),  # with quarantine and a retried fault
            ("run", "--verbose", "--since", "not-a-time"),  # a usage failure
            ("run", "--verbose"),  # a failed run: the API is down
        ]
        simulator.inject(Fault(status=503, retry_after="0"))
        for number, args in enumerate(runs):
            if number == 1:
                simulator.change(5)
                simulator.extra_envelopes = [{"data": {"firstName": "no id"}, "metaData": {}}]
            if number == 3:
                simulator.inject(Fault(status=500), times=10)
            result = run_trigg(
                *args,
                env={
                    **env,
                    "SOURCES__TRIGG__MAX_ATTEMPTS": "2",
                    "SOURCES__TRIGG__BACKOFF_SECONDS": "0.01",
                },
                cwd=tmp_path,
            )
            outputs += [result.stdout, result.stderr]
        assert all(r.api_key_sent for r in simulator.requests)
        assert simulator.requests[0].headers["x-api-key"] == SECRET  # it was really used

    assert SECRET not in "".join(outputs)
    assert "WARNING" in "".join(outputs)  # the verbose runs did log
    assert files_containing(isolated_dlt, SECRET.encode()) == []  # state, trace, packages
    assert files_containing(tmp_path, SECRET.encode()) == []  # the warehouse file and all else
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for table in ("_dlt_pipeline_state", "_dlt_loads", "customers_rejected"):
            rows = connection.sql(f"select * from trigg.{table}").fetchall()
            assert rows and SECRET not in json.dumps(rows, default=str)


def test_a_plain_http_url_for_another_host_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    env = trigg_env(
        None,
        str(tmp_path / "w.duckdb"),
        SOURCES__TRIGG__BASE_URL="http://api.oculos.no/v4",
        SOURCES__TRIGG__API_KEY=SECRET,
    )
    result = run_trigg("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "refusing to send the API key in clear text to api.oculos.no" in result.stderr
    assert "SOURCES__TRIGG__ALLOW_INSECURE_HTTP" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
