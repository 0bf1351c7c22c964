"""The API's notion of time: naive wall-clock values in one zone, and the `since` path segment.

The path segment is `YYYYMMDDTHHmm` (minute resolution) in the API's zone; `metaData` timestamps
are naive in that same zone. Everything the pipeline stores is timezone-aware.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

SINCE_FORMAT: Final = "%Y%m%dT%H%M"
SINCE_PATTERN: Final = re.compile(r"^\d{8}T\d{4}$")
_EXCESS_FRACTION = re.compile(r"(\.\d{6})\d+")


def localize(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a naive wall-clock time in `zone`, in UTC.

    In the autumn hour that happens twice, the earlier instant is chosen (fold=0): a cursor that
    errs early only re-asks for a few records, one that errs late could skip some. UTC, because
    Python never finds two ambiguous local times equal, even to themselves in another zone.
    """
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def parse_api_timestamp(value: object, zone: ZoneInfo) -> datetime | None:
    """Parse a timestamp the API sent, to UTC: naive values are read in the API's zone."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"timestamp {value!r} is not a string")
    text = _EXCESS_FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else localize(parsed, zone)


def format_since(moment: datetime, zone: ZoneInfo) -> str:
    """Write an instant as the API's path segment: in `zone`, floored to the minute.

    A wall-clock time inside the repeated autumn hour is ambiguous on the wire, so it is moved
    back before that hour; asking for a little more is harmless, asking for less is not.
    """
    wall = moment.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None, fold=0)
    while True:
        earlier = wall.replace(tzinfo=zone, fold=0).utcoffset()
        later = wall.replace(tzinfo=zone, fold=1).utcoffset()
        if earlier == later or earlier is None or later is None:
            return wall.strftime(SINCE_FORMAT)
        wall -= abs(earlier - later)


def since_instant(since: str, zone: ZoneInfo) -> datetime:
    """The instant a `since` segment (`YYYYMMDDTHHmm`, wall time in `zone`) stands for."""
    return localize(datetime.strptime(since, SINCE_FORMAT), zone)


def since_from_cursor(cursor: datetime, lookback_minutes: int, zone: ZoneInfo) -> str:
    """The segment to ask for after a cursor: the cursor minus the lookback."""
    return format_since(cursor - timedelta(minutes=lookback_minutes), zone)


def not_after(moment: datetime | None, limit: datetime) -> datetime | None:
    """`moment`, but never later than `limit`: a cursor never passes the moment the response it
    came from was produced, so one record stamped years ahead cannot make later runs ask for a
    future that delivers nothing."""
    return moment if moment is None or moment <= limit else limit


def parse_since(text: str, zone: ZoneInfo) -> str:
    """Read a user's `since`: `20240101T2210`, `2024-01-01` or an ISO datetime.

    Naive values are read in the API's zone; the result is the segment sent as given.
    """
    text = text.strip()
    try:
        if SINCE_PATTERN.match(text):
            datetime.strptime(text, SINCE_FORMAT)  # rejects month 13, minute 61, ...
            return text
        if len(text) == 10:
            return date.fromisoformat(text).strftime(SINCE_FORMAT)
        moment = datetime.fromisoformat(_EXCESS_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use 20240101T2210, 2024-01-01 or 2024-01-01T22:10"
        ) from None
    if moment.tzinfo is None:
        return moment.strftime(SINCE_FORMAT)
    return format_since(moment, zone)


SQL_TIMESTAMP_PATTERN: Final = (
    r"\d{4}-\d{2}-\d{2}[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?"
)
"""The timestamp texts the fast path converts in SQL: ISO 8601 with seconds, at most
microseconds, naive or with `Z` or `+hh:mm`. Other texts that `parse_api_timestamp` reads go the
reference way."""
SQL_DATE_PATTERN: Final = r"\d{4}-\d{2}-\d{2}(T00:00:00)?"
"""The date texts the fast path reads itself (dlt keeps the date part of such a text)."""


@dataclass(frozen=True)
class Fold:
    """A span of wall-clock time that happens twice (autumn): `localize` (fold=0) takes the
    earlier instant, `earlier_by` before the later one that other readers (ICU) take."""

    start: datetime
    end: datetime
    earlier_by: timedelta


def folds(first: date, last: date, zone: ZoneInfo) -> list[Fold]:
    """The repeated wall-clock spans of `zone` between two dates, to the minute."""
    found: list[Fold] = []
    day = max(date.min + timedelta(days=1), first - timedelta(days=1))
    end = min(date.max - timedelta(days=2), last + timedelta(days=1))
    while day <= end:
        if _offset(_midnight(day), zone) != _offset(_midnight(day + timedelta(days=1)), zone):
            found.extend(_folds_near(_midnight(day - timedelta(days=1)), zone))
        day += timedelta(days=1)
    unique = {(fold.start, fold.end): fold for fold in found}
    return sorted(unique.values(), key=lambda fold: fold.start)


def offset_probes(first: date, last: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """(wall time, instant by `localize`) at every midnight and around every change of offset
    between two dates: a converter that agrees on all of them outside `folds` agrees everywhere."""
    probes: list[datetime] = []
    day = max(date.min + timedelta(days=1), first - timedelta(days=1))
    end = min(date.max - timedelta(days=2), last + timedelta(days=1))
    while day <= end:
        probes.append(_midnight(day))
        if _offset(_midnight(day), zone) != _offset(_midnight(day + timedelta(days=1)), zone):
            probes.extend(_midnight(day) + timedelta(minutes=15 * step) for step in range(1, 96))
        day += timedelta(days=1)
    return [(wall, localize(wall, zone)) for wall in probes]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _offset(wall: datetime, zone: ZoneInfo, fold: int = 0) -> timedelta | None:
    return wall.replace(tzinfo=zone, fold=fold).utcoffset()


def _folds_near(start: datetime, zone: ZoneInfo) -> list[Fold]:
    """Repeated spans in the three days from `start`: hours first, then their minutes."""
    spans: list[Fold] = []
    current: datetime | None = None
    earlier_by = timedelta(0)
    for hour in range(72):
        base = start + timedelta(hours=hour)
        for minute in range(60):
            wall = base + timedelta(minutes=minute)
            first, second = _offset(wall, zone, 0), _offset(wall, zone, 1)
            repeated = first is not None and second is not None and first > second
            if repeated and current is None:
                current, earlier_by = wall, first - second  # type: ignore[operator]
            elif not repeated and current is not None:
                spans.append(Fold(current, wall, earlier_by))
                current = None
            if minute == 0 and not repeated and current is None and not _changes_within(base, zone):
                break  # nothing happens in this hour: skip its other minutes
    return spans


def _changes_within(hour: datetime, zone: ZoneInfo) -> bool:
    last = hour + timedelta(minutes=59)
    return _offset(hour, zone) != _offset(last, zone) or _offset(last, zone, 0) != _offset(
        last, zone, 1
    )
