"""HTTP faults: temporary ones are retried within bounds, the rest fail clearly, and a failed run
leaves the warehouse and the cursor as they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipelines.runner import run_once
from pipelines.simulator import Fault, TriggSimulator
from pipelines.trigg.client import RetryPolicy, TriggClient, api_error_message, retry_after_seconds
from pipelines.trigg.errors import ApiError, ConfigError
from pipelines.trigg.settings import TriggSettings
from tests.oracle import warehouse_tables
from tests.test_pipeline import assert_warehouse_equals_source


class RecordedSleep:
    """Records the waits instead of sleeping them: the HTTP is real, only time is skipped."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(
    simulator: TriggSimulator, sleep: RecordedSleep, timeout: float = 10, **policy: float
) -> TriggClient:
    retry = RetryPolicy(**{"max_attempts": 5, "backoff_seconds": 0.2, **policy})
    return TriggClient(simulator.base_url, simulator.api_key, timeout, retry, sleep=sleep)


def fast_settings(simulator: TriggSimulator, **overrides: object) -> TriggSettings:
    values = {"backoff_seconds": 0.01, "request_timeout_seconds": 10.0, **overrides}
    return TriggSettings(base_url=simulator.base_url, api_key=simulator.api_key, **values)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 409])
def test_temporary_statuses_are_retried_until_the_api_answers(
    simulator: TriggSimulator, warehouse: str, status: int
) -> None:
    simulator.inject(Fault(status=status), times=2)
    summary = run_once(fast_settings(simulator), warehouse)
    assert [r.status for r in simulator.requests] == [status, status, 200]
    assert summary.customers_received == 60
    assert_warehouse_equals_source(warehouse, simulator)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(disconnect=True),
        Fault(cut_at_fraction=0.5),
        Fault(cut_at_fraction=0.999),
        Fault(delay_seconds=1.5),
    ],
    ids=["connection-dropped", "body-cut-in-half", "body-cut-at-the-end", "timeout"],
)
def test_lost_connections_timeouts_and_cut_bodies_are_retried(
    simulator: TriggSimulator, warehouse: str, fault: Fault
) -> None:
    simulator.inject(fault)
    summary = run_once(fast_settings(simulator, request_timeout_seconds=0.5), warehouse)
    assert len(simulator.requests) == 2
    assert summary.customers_received == 60
    assert_warehouse_equals_source(warehouse, simulator)


def test_retry_after_in_seconds_is_honoured(simulator: TriggSimulator) -> None:
    sleep = RecordedSleep()
    simulator.inject(Fault(status=429, retry_after="3"))
    with client_for(simulator, sleep).changed_customers("") as body:
        assert body.read(1) == b"["
    assert len(sleep.waits) == 1 and sleep.waits[0] >= 3


def test_retry_after_as_an_http_date_is_honoured(simulator: TriggSimulator) -> None:
    sleep = RecordedSleep()
    when = datetime.now(UTC) + timedelta(seconds=30)
    simulator.inject(Fault(status=503, retry_after=format_datetime(when, usegmt=True)))
    with client_for(simulator, sleep).changed_customers(""):
        pass
    assert 25 <= sleep.waits[0] <= 31


def test_retry_after_zero_does_not_spin(simulator: TriggSimulator) -> None:
    sleep = RecordedSleep()
    simulator.inject(Fault(status=429, retry_after="0"), times=3)
    with client_for(simulator, sleep, backoff_seconds=0.2).changed_customers(""):
        pass
    assert len(sleep.waits) == 3
    assert all(wait >= 0.1 for wait in sleep.waits)  # at least half the backoff step
    assert sleep.waits[2] >= 0.4  # and the step doubles


def test_attempts_are_bounded(simulator: TriggSimulator) -> None:
    sleep = RecordedSleep()
    simulator.inject(Fault(status=503), times=10)
    with pytest.raises(ApiError, match="failed 3 time") as failure:
        client_for(simulator, sleep, max_attempts=3).changed_customers("")
    assert len(simulator.requests) == 3
    assert "HTTP 503" in str(failure.value) and "SOURCES__TRIGG__MAX_ATTEMPTS" in str(failure.value)


def test_total_wait_is_bounded_even_when_the_api_asks_for_more(simulator: TriggSimulator) -> None:
    sleep = RecordedSleep()
    simulator.inject(Fault(status=429, retry_after="3600"))
    with pytest.raises(ApiError, match="SOURCES__TRIGG__MAX_RETRY_WAIT_SECONDS"):
        client_for(simulator, sleep, max_wait_seconds=60).changed_customers("")
    assert sleep.waits == []
    assert len(simulator.requests) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "the API key was rejected: check SOURCES__TRIGG__API_KEY"),
        (403, "the API key was rejected: check SOURCES__TRIGG__API_KEY"),
        (400, "the API rejected the since '20240101T2210'"),
        (404, "the API answered HTTP 404"),
        (422, "the API answered HTTP 422"),
    ],
)
def test_client_errors_are_not_retried(
    simulator: TriggSimulator, status: int, message: str
) -> None:
    sleep = RecordedSleep()
    simulator.inject(Fault(status=status))
    with pytest.raises(ApiError, match=message) as failure:
        client_for(simulator, sleep).changed_customers("20240101T2210")
    assert len(simulator.requests) == 1 and sleep.waits == []
    assert "Simulated fault" in str(failure.value)  # the API's own message is quoted


def test_a_persistent_409_fails_with_the_apis_message(simulator: TriggSimulator) -> None:
    simulator.inject(
        Fault(
            status=409,
            body=b'{"code": "409", "message": "Conflict",'
            b' "detailedErrorMessage": "Export already running"}',
        ),
        times=3,
    )
    with pytest.raises(ApiError, match="Conflict; Export already running"):
        client_for(simulator, RecordedSleep(), max_attempts=3).changed_customers("")


def test_the_api_error_body_is_read_with_a_string_or_a_list_of_details() -> None:
    assert (
        api_error_message(b'{"code": "400", "message": "Bad", "detailedErrorMessage": "x"}')
        == "Bad; x"
    )
    assert (
        api_error_message(b'{"code": "400", "message": "Bad", "detailedErrorMessage": ["x", "y"]}')
        == "Bad; x; y"
    )
    assert api_error_message(b"<html>oops</html>") == ""


def test_retry_after_parses_both_forms() -> None:
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 01 Jan 2024 12:01:00 GMT", now) == 60
    assert retry_after_seconds("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_a_run_that_fails_leaves_the_warehouse_and_cursor_as_they_were(
    simulator: TriggSimulator, warehouse: str
) -> None:
    settings = fast_settings(simulator, max_attempts=2)
    first = run_once(settings, warehouse)
    before = warehouse_tables(warehouse)
    simulator.change(10)
    simulator.inject(Fault(status=503), times=2)

    with pytest.raises(ApiError, match="the cursor was not moved"):
        run_once(settings, warehouse)

    assert warehouse_tables(warehouse) == before
    repaired = run_once(settings, warehouse)
    assert repaired.cursor_before == first.cursor_after
    assert_warehouse_equals_source(warehouse, simulator)


def test_the_key_goes_only_over_https_except_to_loopback() -> None:
    with pytest.raises(ConfigError, match="refusing to send the API key in clear text"):
        TriggClient("http://api.oculos.no/v4", "key", 10)
    TriggClient("https://api.oculos.no/v4", "key", 10)
    TriggClient("http://127.0.0.1:8765/v4", "key", 10)
    TriggClient("http://localhost:8765/v4", "key", 10)
    TriggClient("http://[::1]:8765/v4", "key", 10)
    TriggClient("http://trigg.internal/v4", "key", 10, allow_insecure_http=True)
