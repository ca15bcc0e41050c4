"""A real HTTP server on 127.0.0.1 that answers from a script, and telemetry that records."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from structlog.testing import CapturingLogger

from handrail.telemetry import Telemetry
from handrail.testing._resilience import no_waits


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    """Retries in these tests never wait: the waits they choose are checked, not slept."""
    with no_waits():
        yield


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status and headers, or no answer at all until the test ends."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class Server:
    """Answers each request with the next scripted reply; records every request it saw."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        host, port = self.httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            # 418 is permanent, so a test that runs past its script fails loudly, unretried.
            return self.replies.popleft() if self.replies else Reply(418, body=b"no reply left")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                reply = server._next(Seen(self.command, self.path, dict(self.headers)))
                if reply.hang:
                    server.release.wait(timeout=10)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a hung request, as the test intended

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    """A scripted HTTP server on 127.0.0.1, stopped after the test."""
    running = Server()
    # A short poll interval lets shutdown() return at once instead of after half a second.
    thread = threading.Thread(target=running.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield running
    running.release.set()
    running.httpd.shutdown()
    running.httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    """One HTTP client for the session: building one (and its TLS context) costs ~50 ms."""
    with httpx.Client() as shared:
        yield shared


@dataclass
class Recorded:
    telemetry: Telemetry
    logger: CapturingLogger
    reader: InMemoryMetricReader

    def events(self, name: str) -> list[dict[str, Any]]:
        """The keyword arguments of every log event called ``name``."""
        return [call.kwargs for call in self.logger.calls if call.args == (name,)]

    def counter(self, name: str) -> list[tuple[dict[str, Any], int]]:
        """(attributes, value) for every data point of the counter ``name``."""
        data = self.reader.get_metrics_data()
        points: list[tuple[dict[str, Any], int]] = []
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            points.append(
                                (dict(point.attributes or {}), getattr(point, "value", 0))
                            )
        return points


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """A Telemetry whose log events and metrics the test can read."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    logger = CapturingLogger()
    yield Recorded(Telemetry(meter_provider=meter_provider, logger=logger), logger, reader)
    meter_provider.shutdown()
