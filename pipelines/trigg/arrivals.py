"""Late arrivals: records the API stamps earlier than the cursor a run started from.

A run asks for changes since the cursor minus `lookback_minutes`, so a change the API publishes
with an `UpdatedAt` older than that is never asked for: it is lost without a trace. How late the
changes that did arrive were tells how close that comes. A record counts when its `UpdatedAt` is
older than the cursor and the warehouse did not already hold that version: the lookback delivers
every recent customer again, and those re-deliveries are not late. When the latest reaches
`WARN_SHARE` of the lookback, the summary says so and suggests a larger one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pipelines.trigg.events import event

WARN_SHARE: Final = 0.8
"""The share of `lookback_minutes` a lateness may reach before the summary warns."""
LOOKUP_BATCH: Final = 1000
"""Customer ids per question to the warehouse."""

HeldVersions = Callable[[Sequence[str]], dict[str, datetime | None]]
"""The `updated_at` the warehouse holds for each of these customer ids (absent: not held)."""

log = logging.getLogger(__name__)


@dataclass
class LateArrivals:
    """Counts, while a run reads its response, the records that arrived late."""

    held: HeldVersions
    count: int | None = None
    """Late records; None when not measured (no cursor yet, or the lookup failed)."""
    latest: timedelta | None = None
    """How much older than the cursor the latest of them was."""
    failed: bool = False

    @property
    def max_minutes(self) -> float | None:
        """`latest` in minutes, to a tenth."""
        return None if self.latest is None else round(self.latest.total_seconds() / 60, 1)

    def observe(self, cursor: datetime, older: Iterable[tuple[str, datetime]]) -> None:
        """Count the records of `older` (customer id, `UpdatedAt` older than `cursor`) the
        warehouse does not hold in that version. Best effort: a failed lookup leaves None."""
        if self.failed:
            return
        count, latest = 0, timedelta(0)
        try:
            for batch in _batches(older, LOOKUP_BATCH):
                held = self.held([customer_id for customer_id, _ in batch])
                for customer_id, updated_at in batch:
                    known = held.get(customer_id)
                    if known is None or known < updated_at:
                        count += 1
                        latest = max(latest, cursor - updated_at)
        except Exception as failure:  # telemetry never fails a load
            log.debug("late arrivals not measured", exc_info=True)
            event("late_arrivals", f"late arrivals not measured: {failure}", logging.WARNING)
            self.failed, self.count, self.latest = True, None, None
            return
        self.count = (self.count or 0) + count
        if count:
            self.latest = max(self.latest or timedelta(0), latest)

    def warning(self, lookback_minutes: int) -> str | None:
        """The summary's warning when the latest record came close to the lookback's edge."""
        if not self.count or self.latest is None or self.max_minutes is None:
            return None
        if self.latest < timedelta(minutes=WARN_SHARE * lookback_minutes):
            return None
        share = f"{self.max_minutes / lookback_minutes:.0%} of" if lookback_minutes else "beyond"
        return (
            f"WARNING: {self.count} record(s) arrived late, the latest {self.max_minutes:g} min"
            f" older than the cursor: {share} lookback_minutes ({lookback_minutes}); a later one"
            " would be missed: raise sources.trigg.lookback_minutes"
            f" (SOURCES__TRIGG__LOOKBACK_MINUTES) to {suggested_lookback(self.max_minutes)}"
        )


def suggested_lookback(max_minutes: float) -> int:
    """Twice the largest lateness seen, in whole multiples of five minutes."""
    return max(5, 5 * math.ceil(2 * max_minutes / 5))


def _batches(
    items: Iterable[tuple[str, datetime]], size: int
) -> Iterable[list[tuple[str, datetime]]]:
    batch: list[tuple[str, datetime]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
