"""A real HTTP server on 127.0.0.1 that answers from a script and records what it was sent.

Shared by the tests of the retry layer and of the notification channels:
each request gets the next scripted ``Reply`` (or ``default`` once the
script runs out), and is recorded as a ``Seen``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status and headers, or no answer at all until the test ends."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: bool = False


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers each request with the next scripted reply; records every request it saw."""

    def __init__(self, default: Reply) -> None:
        self.default = default
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
            return self.replies.popleft() if self.replies else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = server._next(Seen(self.command, self.path, dict(self.headers), body))
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

            do_GET = do_POST = do_PUT = do_PATCH = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@contextmanager
def serving(default: Reply) -> Iterator[ScriptedServer]:
    """A running ``ScriptedServer``, stopped (and any hung request released) on exit."""
    running = ScriptedServer(default)
    # A short poll interval lets shutdown() return at once instead of after half a second.
    thread = threading.Thread(target=running.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.release.set()
        running.httpd.shutdown()
        running.httpd.server_close()
        thread.join(timeout=5)
