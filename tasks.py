#!/usr/bin/env python3
"""The two commands of the quick start, on a machine that has nothing but Python 3.11+.

    python3 tasks.py demo     # install what is needed, run the demo
    python3 tasks.py test     # install what is needed, run the whole test suite
    python3 tasks.py docs     # regenerate docs/data-dictionary.md from pipelines/trigg/schema.py

Both install the locked dependencies (uv.lock) into .venv with uv, installing uv first if needed.
Extra arguments go to the command: `python3 tasks.py test -k cursor`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

UV_VERSION = "0.13.9"
ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
COMMANDS = {
    "demo": ["trigg", "demo"],
    "test": ["pytest"],
    "test-benchmarks": ["pytest", "-m", "benchmark"],
    "trigg": ["trigg"],
    "docs": ["python", "-m", "pipelines.warehouse.dictionary"],
}


def uv_command() -> list[str]:
    """uv from PATH, from this Python, or installed into .tools/ (never into the system)."""
    if shutil.which("uv"):
        return ["uv"]
    private = TOOLS / "bin" / "uv"
    if private.exists():
        return [str(private)]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    print(f"Installing uv {UV_VERSION} into {TOOLS} ...", flush=True)
    venv.create(TOOLS, with_pip=True, clear=True)
    subprocess.run(
        [str(TOOLS / "bin" / "python"), "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"],
        check=True,
    )
    return [str(private)]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    os.chdir(ROOT)
    command = [*uv_command(), "run", "--locked", *COMMANDS[argv[0]], *argv[1:]]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
