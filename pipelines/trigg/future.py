"""Records stamped in the future: loaded like any other, named, and kept out of the cursor.

The cursor is the newest `UpdatedAt` loaded. One record the vendor stamps years ahead (a clock or
data bug) would move it there, and every later run would ask for changes since that future and
get nothing, silently. So the cursor never passes the moment the API produced the response (its
`Date` header, or the local clock), and records stamped later than that, beyond a few minutes of
clock skew, are named in a warning.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import IO
from zoneinfo import ZoneInfo

from pipelines.trigg.client import Download
from pipelines.trigg.events import event
from pipelines.trigg.records import stream_envelopes
from pipelines.trigg.settings import FUTURE_SKEW_MINUTES
from pipelines.trigg.timestamps import not_after, parse_api_timestamp

NAMED = 10
"""How many records from the future a warning names; the rest are counted."""


def not_after_response(
    moment: datetime | None, download: Download, zone: ZoneInfo, warnings: list[str] | None
) -> datetime | None:
    """The cursor candidate `moment`, never later than the moment `download` was produced; if it
    was later by more than the skew, the records that made it so are named in a warning."""
    produced_at = download.produced_at
    skew = produced_at + timedelta(minutes=FUTURE_SKEW_MINUTES)
    if moment is not None and moment > skew:
        future = stamped_after(download.body, zone, skew)
        message = _warning(future, moment, produced_at)
        records = [{"customer_id": id_, "updated_at": at.isoformat()} for id_, at in future]
        event("warning", message, logging.WARNING, future_records=records)
        if warnings is not None:
            warnings.append(message)
    return not_after(moment, produced_at)


def stamped_after(body: IO[bytes], zone: ZoneInfo, moment: datetime) -> list[tuple[str, datetime]]:
    """(customer id, UpdatedAt) of every record of the body stamped later than `moment`. Reads the
    whole body again: only asked when there is such a record."""
    body.seek(0)
    found: list[tuple[str, datetime]] = []
    for data, meta in stream_envelopes(body):
        try:
            updated_at = parse_api_timestamp(meta.get("UpdatedAt"), zone)
        except ValueError:
            continue  # quarantined: never a cursor candidate
        if updated_at is not None and updated_at > moment:
            found.append((str(data.get("id")), updated_at))
    body.seek(0)
    return found


def _warning(future: list[tuple[str, datetime]], moment: datetime, produced_at: datetime) -> str:
    clock = f"the API's clock ({produced_at.isoformat()})"
    if future:
        named = ", ".join(f"customer {i} (UpdatedAt {at.isoformat()})" for i, at in future[:NAMED])
        more = f" and {len(future) - NAMED} more" if len(future) > NAMED else ""
        what = f"{len(future)} record(s) stamped later than {clock} were loaded: {named}{more}"
    else:  # a cursor stored before this check existed
        what = f"the cursor {moment.isoformat()} was later than {clock}"
    return f"{what}; the cursor stops at the API's clock, so later runs miss nothing"
