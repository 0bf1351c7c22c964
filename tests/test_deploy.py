"""The scheduling examples under deploy/ are valid for their schedulers and run `trigg run`."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
CRON_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def valid_cron_field(field: str, low: int, high: int) -> bool:
    """One field of a cron schedule: `*`, numbers, ranges, lists and steps, within bounds."""
    for part in field.split(","):
        match = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        if not match:
            return False
        numbers = [int(n) for n in match.groups()[1:3] if n is not None]
        if any(not low <= n <= high for n in numbers) or match.group(4) == "0":
            return False
    return True


def valid_cron_schedule(schedule: str) -> bool:
    fields = schedule.split()
    return len(fields) == 5 and all(
        valid_cron_field(field, low, high)
        for field, (low, high) in zip(fields, CRON_FIELDS, strict=True)
    )


def test_the_validator_knows_good_and_bad_schedules() -> None:
    assert valid_cron_schedule("*/5 * * * *")
    assert valid_cron_schedule("0,30 6-22 * * 1-5")
    assert not valid_cron_schedule("*/5 * * *")
    assert not valid_cron_schedule("61 * * * *")
    assert not valid_cron_schedule("*/0 * * * *")


def test_the_cron_example_is_a_valid_cron_d_line_running_trigg() -> None:
    lines = [
        line
        for line in (DEPLOY / "cron" / "trigg.cron").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    [entry] = lines
    fields = entry.split(maxsplit=6)
    assert valid_cron_schedule(" ".join(fields[:5]))
    assert fields[5] == "trigg"  # cron.d lines name the user
    assert "/trigg run" in fields[6] and "%" not in fields[6]
    syntax = subprocess.run(["sh", "-n", "-c", fields[6]], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def systemd_unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read(DEPLOY / "systemd" / name)
    return unit


def test_the_systemd_service_runs_trigg_once_and_accepts_exit_75() -> None:
    service = systemd_unit("trigg.service")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"].split()[0].endswith("/trigg")
    assert service["Service"]["ExecStart"].split()[1] == "run"
    assert "75" in service["Service"]["SuccessExitStatus"].split()
    assert service["Unit"]["Description"]


def test_the_systemd_timer_starts_the_service_every_five_minutes() -> None:
    timer = systemd_unit("trigg.timer")
    assert timer["Timer"]["Unit"] == "trigg.service"
    assert timer["Install"]["WantedBy"] == "timers.target"
    calendar = subprocess.run(
        ["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"]],
        capture_output=True,
        text=True,
    )
    assert calendar.returncode == 0, calendar.stderr
    assert "*-*-* *:00/5:00" in calendar.stdout


def test_systemd_verifies_the_units(tmp_path: Path) -> None:
    trigg = shutil.which("true")
    for name in ("trigg.service", "trigg.timer"):
        text = (DEPLOY / "systemd" / name).read_text()
        text = text.replace("/opt/trigg-pipeline/.venv/bin/trigg", str(trigg))
        (tmp_path / name).write_text(text)
    verify = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(tmp_path / "trigg.service"),
            str(tmp_path / "trigg.timer"),
        ],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr


def test_the_github_actions_workflow_is_scheduled_and_uses_secrets() -> None:
    workflow = yaml.safe_load((DEPLOY / "github-actions" / "trigg.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert valid_cron_schedule(triggers["schedule"][0]["cron"])
    assert "workflow_dispatch" in triggers
    [job] = workflow["jobs"].values()
    assert job["env"]["SOURCES__TRIGG__API_KEY"] == "${{ secrets.SOURCES__TRIGG__API_KEY }}"
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert "uv sync --locked" in commands and "trigg run" in commands
    assert "75" in commands
    script = next(step["run"] for step in job["steps"] if "trigg run" in step.get("run", ""))
    syntax = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
