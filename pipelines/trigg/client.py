"""The HTTP client of the Trigg Integrations API: one endpoint, one key, retries, clear errors.

The body is streamed from the socket into a temporary file (gzip decoded on the way), so a
response of gigabytes costs disk, not memory, and a body cut off mid-way is noticed (its length
falls short) and downloaded again instead of being parsed. It comes with the moment the API
produced it (its `Date` header), the latest moment the cursor may take from it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import IO
from urllib.parse import urlsplit

import requests

from pipelines.trigg.errors import ApiError, ConfigError, TemporaryApiError
from pipelines.trigg.events import event
from pipelines.trigg.settings import API_KEY_HEADER, CHANGED_CUSTOMERS_PATH, env_var

RETRIED_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
"""Temporary answers. 409 is undocumented for this GET; a conflict on a read is taken to be a
passing one (a concurrent export or sync at the vendor), so it is retried like 429."""
MAX_BACKOFF_SECONDS = 60.0
CHUNK_BYTES = 1 << 20
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 300.0

    def backoff(self, attempt: int, jitter: Callable[[], float] = random.random) -> float:
        """Exponential backoff with equal jitter: never below half the step, so `Retry-After: 0`
        or a burst of connection errors cannot make the client spin."""
        step = min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2 ** (attempt - 1))
        return step / 2 + jitter() * step / 2


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` in either form: delta-seconds or an HTTP date."""
    if header is None or not header.strip():
        return None
    value = header.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def response_date(header: str | None) -> datetime | None:
    """The `Date` header (when the server produced the response) as a UTC instant, or None."""
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass
class Download:
    """A complete response body (a temporary file at offset 0) and the moment the API produced
    it: its `Date` header, or the local clock when the response had none. `with` yields the
    body and closes it."""

    body: IO[bytes]
    produced_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __enter__(self) -> IO[bytes]:
        return self.body

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.body.close()


def is_loopback(host: str) -> bool:
    """Loopback hosts (the simulator) may be reached over plain http."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TriggClient:
    """Fetches changed customers. The key travels only in the `x-api-key` header, and only over
    HTTPS unless the host is loopback or plain http is explicitly allowed."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_seconds: float,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """`progress` is told the size of each chunk of the body as it arrives."""
        url = urlsplit(base_url)
        if url.scheme == "http" and not is_loopback(url.hostname or "") and not allow_insecure_http:
            raise ConfigError(
                f"refusing to send the API key in clear text to {url.hostname}: use an https://"
                f" base URL, or set {env_var('allow_insecure_http')}=true if you really mean it"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.progress = progress
        self.session = requests.Session()
        self.session.headers.update({API_KEY_HEADER: api_key, "Accept": "application/json"})

    def changed_customers_url(self, since: str) -> str:
        return self.base_url + CHANGED_CUSTOMERS_PATH.format(since=since)

    def changed_customers(self, since: str) -> Download:
        """GET `/customers/changed/{since}`: the complete body in a temporary file, at offset 0.

        Temporary failures are retried within the policy's attempts and total wait."""
        waited = 0.0
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return self._download(since)
            except TemporaryApiError as failure:
                delay = max(failure.retry_after or 0.0, self.retry.backoff(attempt))
                if attempt == self.retry.max_attempts:
                    raise self._gave_up(failure, attempt, waited) from None
                if waited + delay > self.retry.max_wait_seconds:
                    raise self._gave_up(failure, attempt, waited, next_delay=delay) from None
                event(
                    "retry",
                    f"attempt {attempt} failed ({failure}); retrying in {delay:.1f} s",
                    logging.WARNING,
                    attempt=attempt,
                    reason=str(failure),
                    delay_seconds=round(delay, 3),
                )
                self.sleep(delay)
                waited += delay
        raise AssertionError("unreachable")  # pragma: no cover

    def _download(self, since: str) -> Download:
        started = time.monotonic()
        try:
            response = self.session.get(
                self.changed_customers_url(since), timeout=self.timeout_seconds, stream=True
            )
        except requests.Timeout:
            raise TemporaryApiError(f"no answer within {self.timeout_seconds:g} s") from None
        except requests.ConnectionError as failure:
            raise TemporaryApiError(f"could not connect ({_reason(failure)})") from None
        with response:
            if response.status_code in RETRIED_STATUSES:
                raise TemporaryApiError(
                    describe_failure(response.status_code, response.content, since),
                    retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                )
            if response.status_code != 200:
                raise ApiError(describe_failure(response.status_code, response.content, since))
            produced_at = response_date(response.headers.get("Date")) or datetime.now(UTC)
            body = self._spool(response)
        size = body.seek(0, 2)
        body.seek(0)
        event(
            "request",
            f"GET {CHANGED_CUSTOMERS_PATH.format(since=since)}: {size:,} bytes",
            since=since,
            status=200,
            bytes=size,
            seconds=round(time.monotonic() - started, 3),
        )
        return Download(body, produced_at)

    def _spool(self, response: requests.Response) -> IO[bytes]:
        body = tempfile.TemporaryFile(prefix="trigg-body-")  # noqa: SIM115 (the caller closes it)
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                body.write(chunk)
                if self.progress is not None:
                    self.progress(len(chunk))
        except requests.exceptions.Timeout:
            body.close()
            raise TemporaryApiError(
                f"the body stalled for more than {self.timeout_seconds:g} s"
            ) from None
        except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as failure:
            body.close()
            raise TemporaryApiError(f"the body was cut off ({_reason(failure)})") from None
        except BaseException:
            body.close()
            raise
        body.seek(0)
        return body

    def _gave_up(
        self,
        failure: TemporaryApiError,
        attempts: int,
        waited: float,
        next_delay: float | None = None,
    ) -> ApiError:
        budget = (
            f"; the next wait ({next_delay:.0f} s) would pass the limit of"
            f" {self.retry.max_wait_seconds:g} s ({env_var('max_retry_wait_seconds')})"
            if next_delay is not None
            else f" ({env_var('max_attempts')}={self.retry.max_attempts})"
        )
        return ApiError(
            f"the API failed {attempts} time(s) over {waited:.0f} s of waiting, last: {failure}"
            f"{budget}; the cursor was not moved, the next run tries again"
        )


def describe_failure(status: int, body: bytes, since: str) -> str:
    """One sentence for a non-200 answer, quoting the API's own error body where it has one."""
    detail = api_error_message(body)
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        return f"the API key was rejected: check {env_var('api_key')} (HTTP {status}{suffix})"
    if status == 400:
        return f"the API rejected the since {since!r} (HTTP 400{suffix})"
    return f"the API answered HTTP {status}{suffix}"


def api_error_message(body: bytes) -> str:
    """Read the API's error body `{code, message, detailedErrorMessage}` into one line."""
    try:
        error = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(error, dict):
        return ""
    parts = [str(error["message"])] if error.get("message") else []
    detail = error.get("detailedErrorMessage")
    if isinstance(detail, list):
        parts.extend(str(item) for item in detail if item)
    elif detail:
        parts.append(str(detail))
    return "; ".join(parts)


def _reason(failure: BaseException) -> str:
    """The innermost reason of a requests failure, without URLs or headers."""
    while failure.args and isinstance(failure.args[0], BaseException):
        failure = failure.args[0]
    reason = getattr(failure, "reason", None)
    return type(reason or failure).__name__
