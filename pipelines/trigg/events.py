"""What the source reports while it works, as `logging` events of the `trigg` logger.

Only the fields given are written, so the API key, which nobody passes here, never reaches a log.
How the events are shown (text or one JSON object per event) is the command line's business.
"""

from __future__ import annotations

import logging
from typing import Any, Final

LOGGER: Final = "trigg"
log = logging.getLogger(LOGGER)


def event(name: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event: `name` is its kind (run_start, request, retry, load, summary, ...)."""
    log.log(level, message, extra={"event": name, "fields": fields})
