"""The `since` segment and the API's naive timestamps, including the daylight-saving edges."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pipelines.trigg.timestamps import (
    format_since,
    parse_api_timestamp,
    parse_since,
    since_from_cursor,
)

OSLO = ZoneInfo("Europe/Oslo")


def test_since_is_written_in_the_api_zone_and_floored_to_the_minute() -> None:
    cursor = datetime(2024, 7, 1, 10, 34, 56, tzinfo=UTC)  # 12:34:56 in Oslo (summer, +2)
    assert format_since(cursor, OSLO) == "20240701T1234"
    assert format_since(cursor, ZoneInfo("UTC")) == "20240701T1034"


def test_since_from_cursor_subtracts_the_lookback() -> None:
    cursor = datetime(2024, 1, 15, 9, 5, 30, tzinfo=UTC)  # 10:05:30 in Oslo (winter, +1)
    assert since_from_cursor(cursor, 10, OSLO) == "20240115T0955"
    assert since_from_cursor(cursor, 0, OSLO) == "20240115T1005"
    assert since_from_cursor(cursor, 90, OSLO) == "20240115T0835"


def test_since_inside_the_repeated_autumn_hour_steps_back_before_it() -> None:
    # 27 Oct 2024: Oslo's clocks go from 03:00 CEST back to 02:00 CET; 02:xx happens twice.
    first_pass = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second_pass = datetime(2024, 10, 27, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert format_since(first_pass, OSLO) == "20241027T0130"
    assert format_since(second_pass, OSLO) == "20241027T0130"
    assert format_since(datetime(2024, 10, 27, 2, 0, tzinfo=UTC), OSLO) == "20241027T0300"


def test_since_across_the_spring_gap_is_plain() -> None:
    # 31 Mar 2024: 02:00 CET jumps to 03:00 CEST.
    assert format_since(datetime(2024, 3, 31, 1, 0, tzinfo=UTC), OSLO) == "20240331T0300"
    assert format_since(datetime(2024, 3, 31, 0, 59, tzinfo=UTC), OSLO) == "20240331T0159"


def test_naive_api_timestamps_are_read_in_the_api_zone() -> None:
    parsed = parse_api_timestamp("2023-01-05 15:15:00", OSLO)
    assert parsed == datetime(2023, 1, 5, 14, 15, tzinfo=UTC)
    assert parsed.tzinfo is not None
    assert parse_api_timestamp("2024-04-03T07:38:32.495Z", OSLO) == datetime(
        2024, 4, 3, 7, 38, 32, 495000, tzinfo=UTC
    )
    assert parse_api_timestamp("2024-04-03T07:38:32.4951234", OSLO) == datetime(
        2024, 4, 3, 5, 38, 32, 495123, tzinfo=UTC
    )
    assert parse_api_timestamp(None, OSLO) is None


def test_an_ambiguous_updated_at_is_read_as_the_earlier_instant() -> None:
    parsed = parse_api_timestamp("2024-10-27 02:30:00", OSLO)
    assert parsed == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("20240101T2210", "20240101T2210"),
        ("2024-01-01", "20240101T0000"),
        ("2024-01-01T22:10", "20240101T2210"),
        ("2024-01-01T22:10:59.999", "20240101T2210"),
        ("2024-01-01 22:10:05", "20240101T2210"),
        ("2024-01-01T21:10:00Z", "20240101T2210"),
        ("2024-07-01T10:10:00+00:00", "20240701T1210"),
    ],
)
def test_user_since_accepts_the_api_form_iso_dates_and_datetimes(given: str, sent: str) -> None:
    assert parse_since(given, OSLO) == sent


@pytest.mark.parametrize("given", ["yesterday", "20241301T0000", "20240101T2260", "2024-13-01", ""])
def test_user_since_rejects_what_is_not_a_time(given: str) -> None:
    with pytest.raises(ValueError, match="is not a time"):
        parse_since(given, OSLO)
