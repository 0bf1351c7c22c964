"""The simulated service's sense of time: the real clock, or simulated time that tests move.

A clock is called for the API's own notion of now, a naive wall-clock time in its zone (what
`UpdatedAt` stamps and the empty `since` use), and asked for `utc()`, the instant (what the
`Date` header says). Simulated time keeps the instant, not the wall-clock time, so the autumn
hour that happens twice is crossed twice, as on a real night.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def wall_clock_time(instant: datetime, zone: ZoneInfo) -> datetime:
    """`instant` as the API writes it: naive, in `zone`. `fold` is cleared, as text loses it."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def as_instant(moment: datetime, zone: ZoneInfo) -> datetime:
    """An aware `moment` in UTC; a naive one is wall-clock time in `zone` (the earlier instant in
    the repeated autumn hour, as the pipeline reads it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone, fold=0)
    return moment.astimezone(UTC)


class RealClock:
    """The machine's clock: the default."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def __call__(self) -> datetime:
        return datetime.now(self.zone).replace(tzinfo=None)

    def utc(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """Simulated time: stands still at `start` until `advance` or `set` moves it.

    `start` is an aware datetime, or a naive wall-clock time in `zone`. Reading it from the
    simulator's HTTP threads while a test moves it is safe: the instant is one attribute.
    """

    def __init__(self, start: datetime, zone: ZoneInfo | str = "Europe/Oslo") -> None:
        self.zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        self.instant = as_instant(start, self.zone)

    def __call__(self) -> datetime:
        return wall_clock_time(self.instant, self.zone)

    def utc(self) -> datetime:
        return self.instant

    def advance(self, minutes: float = 0, seconds: float = 0) -> datetime:
        """Move time forward; returns the new wall-clock time."""
        step = timedelta(minutes=minutes, seconds=seconds)
        if step < timedelta(0):
            raise ValueError("simulated time only moves forward")
        self.instant += step
        return self()

    def set(self, moment: datetime) -> datetime:
        """Jump to `moment` (aware, or naive wall-clock time in the zone); returns wall time."""
        self.instant = as_instant(moment, self.zone)
        return self()
