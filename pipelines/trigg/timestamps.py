"""The API's notion of time: naive wall-clock values in one zone, and the `since` path segment.

The path segment is `YYYYMMDDTHHmm` (minute resolution) in the API's zone; `metaData` timestamps
are naive in that same zone. Everything the pipeline stores is timezone-aware.
"""

from __future__ import annotations

import re
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


def since_from_cursor(cursor: datetime, lookback_minutes: int, zone: ZoneInfo) -> str:
    """The segment to ask for after a cursor: the cursor minus the lookback."""
    return format_since(cursor - timedelta(minutes=lookback_minutes), zone)


def default_initial_since(now: datetime, days: int, zone: ZoneInfo) -> str:
    """The segment for a first run without `initial_since`: `days` before now."""
    return format_since(now - timedelta(days=days), zone)


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
