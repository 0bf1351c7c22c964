"""Progress on a terminal, like `uv` and `pip`: only for a person at a terminal, never under cron
or in JSON logs. The terminal is a real pseudo-terminal around the real `trigg run`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from pipelines.progress import size
from pipelines.simulator import TriggSimulator
from tests.conftest import TRIGG, run_trigg, trigg_env

SIZE = r"[\d.]+ (?:B|KiB|MiB|GiB)"
STEP_TIME = r"\s+\d+\.\d s"
STEPS = ("extract", "normalize", "load", "views, comments and checks", "run history")


def run_on_a_terminal(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run `trigg` with stderr on a pseudo-terminal, as in a person's shell; stdout is piped.
    Returns the exit code, stdout, and what the terminal showed."""
    terminal, child_side = os.openpty()
    with subprocess.Popen(
        [*TRIGG, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=child_side
    ) as process:
        os.close(child_side)
        shown = bytearray()
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the last process holding the terminal has exited
                break
            if not chunk:
                break
            shown.extend(chunk)
        stdout = process.stdout.read().decode() if process.stdout else ""
        code = process.wait(timeout=120)
    os.close(terminal)
    return code, stdout, shown.decode(errors="replace")


def test_a_run_on_a_terminal_shows_the_download_and_each_step_with_its_time(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"))

    code, stdout, shown = run_on_a_terminal("run", env=env, cwd=tmp_path)

    assert code == 0, shown
    lines = [line.rstrip("\r").split("\r")[-1].replace("\x1b[2K", "") for line in shown.split("\n")]
    download = [line for line in lines if line.strip().startswith("download ")]
    assert download and re.search(rf"download{STEP_TIME}\s+{SIZE} \({SIZE}/s\)", download[0])
    for step in STEPS:
        assert any(re.fullmatch(rf"\s+{step}{STEP_TIME}", line) for line in lines), (step, lines)
    assert "60 customers received" in stdout  # the summary is where it always was


def test_under_cron_and_with_json_logs_no_progress_is_printed(
    simulator: TriggSimulator, tmp_path: Path
) -> None:
    env = trigg_env(simulator, str(tmp_path / "w.duckdb"))

    cron = run_trigg("run", env=env, cwd=tmp_path)  # stderr is a pipe, not a terminal
    simulator.change(5)
    code, stdout, shown = run_on_a_terminal("run", "--log-format", "json", env=env, cwd=tmp_path)

    assert cron.returncode == 0 and cron.stderr == ""
    assert code == 0 and shown == ""
    events = [json.loads(line)["event"] for line in stdout.splitlines()]
    assert events[0] == "run_start" and events[-1] == "summary"


def test_sizes_are_written_the_way_uv_writes_them() -> None:
    assert [size(812), size(12.4 * 1024), size(3.1 * 1024**2), size(1.2 * 1024**3)] == [
        "812 B",
        "12.4 KiB",
        "3.1 MiB",
        "1.2 GiB",
    ]
