"""The simulated Trigg Integrations API over real HTTP on 127.0.0.1.

It behaves like the real service as far as it is known: `x-api-key` is checked (401 with the API's
error body otherwise), the `since` segment is parsed (400 for a malformed one), an empty segment
means one day back, and the response shape is selectable. Faults for the next requests (status
codes, `Retry-After`, delays, a body cut off mid-way, a non-JSON body) are queued with `inject`;
`schedule` gives every request within a span of the service's time a fault (an outage).

Its time is the real clock unless a `SimulatedClock` is given: then change stamps, the empty
`since` and the `Date` header of every answer all follow simulated time.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import shutil
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pipelines.simulator.clock import RealClock, SimulatedClock, as_instant
from pipelines.simulator.data import CustomerStore, SimulatedCustomer

DEMO_API_KEY = "demo-key"
SINCE_FORMAT = "%Y%m%dT%H%M"
FILE_CHUNK_BYTES = 1 << 20
ROUTE = re.compile(r"^(?:/v4)?/customers/changed/?(?P<since>[^/?]*)$")

Shape = Literal["array", "object", "object-customers", "single"]
SHAPES: tuple[Shape, ...] = ("array", "object", "object-customers", "single")


@dataclass
class Fault:
    """What the next request gets instead of a normal answer."""

    status: int = 200
    retry_after: str | None = None
    delay_seconds: float = 0.0
    cut_at_fraction: float | None = None
    """Send this share of the body, then close the connection."""
    body: bytes | None = None
    content_type: str = "application/json"
    disconnect: bool = False
    """Close the connection without answering."""


@dataclass
class ScheduledFault:
    """`fault` for every request that arrives while the service's time is in [start, end)."""

    fault: Fault
    start: datetime
    end: datetime
    """Instants (UTC)."""


@dataclass
class RequestRecord:
    path: str
    since: str
    status: int
    api_key_sent: bool
    headers: dict[str, str] = field(default_factory=dict)


def error_body(code: int, message: str, detail: str | list[str]) -> bytes:
    """The API's one error shape: `code` as a string, detail as a string or a list."""
    return json.dumps(
        {"code": str(code), "message": message, "detailedErrorMessage": detail}
    ).encode()


class TriggSimulator:
    """A seeded Trigg service: start it, point the pipeline at `base_url`, change customers."""

    def __init__(
        self,
        customers: int = 200,
        seed: int = 42,
        api_key: str = DEMO_API_KEY,
        timezone: str = "Europe/Oslo",
        shape: Shape = "array",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.zone = ZoneInfo(timezone)
        if isinstance(clock, SimulatedClock) and clock.zone != self.zone:
            raise ValueError(f"the clock runs in {clock.zone}, the service in {self.zone}")
        self.clock: Callable[[], datetime] = clock or RealClock(self.zone)
        """The service's now as naive wall-clock time in its zone (what it stamps changes with)."""
        self.store = CustomerStore(customers, seed, self.clock, self.zone)
        self.api_key = api_key
        self.shape: Shape = shape
        self.gzip = False
        self.faults: deque[Fault] = deque()
        self.requests: list[RequestRecord] = []
        self.fixed_body: bytes | None = None
        self.body_file: Path | None = None
        """Serve this file's bytes instead of rendering (benchmarks: gigabytes, held on disk)."""
        self.extra_envelopes: list[Any] = []
        """Served after the real customers on every answer: broken records, for quarantine tests."""
        self.stamped_envelopes: list[tuple[datetime, Any]] = []
        """(UpdatedAt as naive wall-clock time, envelope): served after the real customers like a
        change, to every `since` at or before the stamp (a bad record the lookback re-sends)."""
        self.added_fields: dict[str, Callable[[SimulatedCustomer], Any]] = {}
        """Fields the vendor added: every customer served carries them, valued by the function."""
        self.scheduled: list[ScheduledFault] = []
        self._server: ThreadingHTTPServer | None = None

    # -- the service's behaviour ------------------------------------------------------------

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Queue `fault` for the next `times` requests."""
        self.faults.extend(fault for _ in range(times))

    def schedule(self, fault: Fault, start: datetime, end: datetime) -> None:
        """Answer every request in [start, end) of the service's time with `fault`, a status
        fault such as `Fault(status=503)` (naive times are wall-clock times in its zone)."""
        if fault.status == 200 and fault.body is None:
            raise ValueError("only a status fault (or a body) can be scheduled")
        self.scheduled.append(
            ScheduledFault(fault, as_instant(start, self.zone), as_instant(end, self.zone))
        )

    def now(self) -> datetime:
        """The service's present instant (UTC): the `Date` header of its answers."""
        utc = getattr(self.clock, "utc", None)
        return utc() if callable(utc) else as_instant(self.clock(), self.zone)

    def scheduled_fault(self) -> Fault | None:
        now = self.now()
        return next((s.fault for s in self.scheduled if s.start <= now < s.end), None)

    def change(self, count: int, at: datetime | None = None) -> list[str]:
        """Let `count` customers change now; returns their ids. `at` stamps them earlier (or
        later) than now: a change the service publishes late, or a clock gone wrong."""
        return self.store.change(count, at)

    def served(self, since: datetime) -> list[SimulatedCustomer]:
        return self.store.changed_since(since)

    def render_since(self, since: datetime) -> bytes:
        """The body for `since`, dumped straight from the live store (no copies)."""
        stamped = [envelope for at, envelope in self.stamped_envelopes if at >= since]
        return self.store.render_since(since, lambda customers: self.render(customers, stamped))

    def render(self, customers: list[SimulatedCustomer], stamped: list[Any] | None = None) -> bytes:
        envelopes = [self.envelope(customer) for customer in customers]
        envelopes += [*(stamped or []), *self.extra_envelopes]
        body: Any
        if self.shape == "array":
            body = envelopes
        elif self.shape == "object":
            body = {"data": envelopes}
        elif self.shape == "object-customers":
            body = {"data": [{**e["data"], "metaData": e["metaData"]} for e in envelopes]}
        elif len(envelopes) == 1:
            body = envelopes[0]
        elif not envelopes:
            body = []
        else:
            raise ValueError("the 'single' shape serves one customer at a time")
        return json.dumps(body, ensure_ascii=False).encode()

    def envelope(self, customer: SimulatedCustomer) -> dict[str, Any]:
        envelope = customer.envelope()
        if self.added_fields:
            added = {name: value(customer) for name, value in self.added_fields.items()}
            envelope["data"] = {**envelope["data"], **added}
        return envelope

    def parse_since(self, segment: str) -> datetime | None:
        if segment == "":
            return self.clock() - timedelta(days=1)
        if not re.fullmatch(r"\d{8}T\d{4}", segment):
            return None
        try:
            return datetime.strptime(segment, SINCE_FORMAT)
        except ValueError:
            return None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, port: int = 0) -> TriggSimulator:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.simulator = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the simulator first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v4"

    def __enter__(self) -> TriggSimulator:
        return self.start() if self._server is None else self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _failed(fault: Fault, detail: str) -> tuple[int, bytes, dict[str, str]]:
    """The answer of a status fault: its body, or the API's error body."""
    headers = {"Content-Type": fault.content_type}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    body = fault.body or error_body(fault.status, "Simulated fault", detail)
    return fault.status, body, headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TriggSimulator/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `requests`
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header: the service's time, simulated or real."""
        if timestamp is None:
            simulator: TriggSimulator = self.server.simulator  # type: ignore[attr-defined]
            timestamp = simulator.now().timestamp()
        return super().date_time_string(timestamp)

    def do_GET(self) -> None:
        simulator: TriggSimulator = self.server.simulator  # type: ignore[attr-defined]
        if simulator.faults and simulator.faults[0].disconnect:
            simulator.faults.popleft()
            simulator.requests.append(RequestRecord(self.path, "", 0, "x-api-key" in self.headers))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        route = ROUTE.match(self.path)
        since_segment = route.group("since") if route else ""
        record = RequestRecord(
            self.path, since_segment, 0, "x-api-key" in self.headers, dict(self.headers.items())
        )
        simulator.requests.append(record)  # on arrival: a slow answer still counts as asked
        status, body, headers = self._answer(simulator, route, since_segment)
        record.status = status
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(status, body, headers)  # unless the client gave up waiting

    def _answer(
        self, simulator: TriggSimulator, route: re.Match[str] | None, since_segment: str
    ) -> tuple[int, bytes | Path, dict[str, str]]:
        if route is None:
            return 404, error_body(404, "Not Found", f"No route for {self.path}"), {}
        outage = simulator.scheduled_fault()
        if outage is not None:  # a gateway in trouble answers before the key is checked
            return _failed(outage, "Scheduled by the test")
        if self.headers.get("x-api-key") != simulator.api_key:
            return 401, error_body(401, "Unauthorized", "Missing or invalid API key"), {}
        fault = simulator.faults.popleft() if simulator.faults else None
        if fault is not None:
            time.sleep(fault.delay_seconds)
            if fault.status != 200 or fault.body is not None:
                return _failed(fault, "Injected by the test")
        since = simulator.parse_since(since_segment)
        if since is None:
            detail = [f"Invalid timestamp '{since_segment}'", "Expected format yyyyMMddTHHmm"]
            return 400, error_body(400, "Bad Request", detail), {}
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if simulator.body_file is not None and fault is None and not simulator.gzip:
            return 200, simulator.body_file, headers
        if simulator.body_file is not None:
            body = simulator.body_file.read_bytes()
        else:
            body = simulator.fixed_body or simulator.render_since(since)
        if simulator.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        if fault is not None and fault.cut_at_fraction is not None:
            headers["X-Cut-At"] = str(int(len(body) * fault.cut_at_fraction))
        return 200, body, headers

    def _send(self, status: int, body: bytes | Path, headers: dict[str, str]) -> None:
        cut_at = headers.pop("X-Cut-At", None)
        self.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if isinstance(body, Path):
            with body.open("rb") as source:
                shutil.copyfileobj(source, self.wfile, FILE_CHUNK_BYTES)
            return
        if cut_at is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[: int(cut_at)])
        self.wfile.flush()
        self.close_connection = True
