"""How the run's events (`pipelines.trigg.events`) are shown: human lines by default, or one JSON
object per event (`--log-format json`) for log shippers."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final, TextIO

from pipelines.trigg.events import log

FORMATS: Final = ("text", "json")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info and record.levelno >= logging.ERROR:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(
    log_format: str = "text", verbose: bool = False, stream: TextIO | None = None
) -> None:
    """Text: warnings (all events with --verbose) on stderr, or `stream` (the terminal's progress
    makes way for them). JSON: every event on stdout."""
    handler = logging.StreamHandler(sys.stdout if log_format == "json" else stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("trigg: %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO if log_format == "json" or verbose else logging.WARNING)
