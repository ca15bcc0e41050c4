"""Which errors are transient, and how long a server's Retry-After asks us to wait."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from handrail import (
    ActionRequest,
    CircuitOpen,
    EscalationRequired,
    PermissionDenied,
    Policy,
    Principal,
    WriteNotRetried,
)
from handrail.resilience import is_transient
from handrail.resilience._classify import TRANSIENT_STATUS_CODES, retry_after

REQUEST = httpx.Request("GET", "https://crm.example.com/contacts/1")
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    response = httpx.Response(status, headers=headers, request=REQUEST)
    return httpx.HTTPStatusError(f"{status}", request=REQUEST, response=response)


def validation_error() -> ValidationError:
    class Contact(BaseModel):
        id: int

    try:
        Contact.model_validate({"id": "not a number"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def denial() -> PermissionDenied:
    request = ActionRequest(principal=Principal(agent="bot"), action="crm.contact.delete")
    return PermissionDenied(Policy([]).evaluate(request))


class TestIsTransient:
    @pytest.mark.parametrize(
        "error",
        [
            httpx.ConnectError("refused", request=REQUEST),
            httpx.ConnectTimeout("slow", request=REQUEST),
            httpx.ReadTimeout("slow", request=REQUEST),
            httpx.WriteTimeout("slow", request=REQUEST),
            httpx.PoolTimeout("busy", request=REQUEST),
            httpx.ReadError("reset", request=REQUEST),
            httpx.RemoteProtocolError("peer closed", request=REQUEST),
            TimeoutError("slow"),
            ConnectionResetError("reset"),
        ],
        ids=lambda e: type(e).__name__,
    )
    def test_network_failures_are_transient(self, error: BaseException) -> None:
        """Dropped connections and timeouts may succeed next time."""
        assert is_transient(error)

    @pytest.mark.parametrize("status", sorted(TRANSIENT_STATUS_CODES))
    def test_overload_and_server_errors_are_transient(self, status: int) -> None:
        """408, 425, 429, 500, 502, 503 and 504 mean "not now", so they are transient."""
        assert is_transient(status_error(status))

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 422, 501, 505])
    def test_client_errors_and_other_statuses_are_not(self, status: int) -> None:
        """A 4xx the caller caused, or a server that cannot do this at all, fails the same again."""
        assert not is_transient(status_error(status))

    @pytest.mark.parametrize(
        "error",
        [
            httpx.UnsupportedProtocol("ftp://", request=REQUEST),
            httpx.LocalProtocolError("bad header"),
            ValueError("bad input"),
            KeyError("missing"),
            CircuitOpen("crm"),
            WriteNotRetried("erp.order.create", TimeoutError()),
            KeyboardInterrupt(),
            asyncio.CancelledError(),
        ],
        ids=lambda e: type(e).__name__,
    )
    def test_bugs_refusals_and_interrupts_are_not(self, error: BaseException) -> None:
        """Bugs in the request, handrail's refusals and cancellations are never transient."""
        assert not is_transient(error)

    def test_permission_errors_and_validation_errors_are_not(self) -> None:
        """PermissionDenied, EscalationRequired and ValidationError are never transient."""
        decision = denial().decision
        assert not is_transient(denial())
        assert not is_transient(EscalationRequired(decision))
        assert not is_transient(validation_error())

    def test_classifying_does_not_import_httpx(self) -> None:
        """Without httpx imported nothing can be an httpx error, so it is never loaded."""
        code = (
            "import sys; from handrail.resilience import is_transient as t; "
            "print(t(ValueError()), t(TimeoutError()), 'httpx' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.split() == ["False", "True", "False"]


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("header", "wait"),
        [
            ("120", timedelta(seconds=120)),
            (" 7 ", timedelta(seconds=7)),
            ("0", timedelta(0)),
            ("1.5", timedelta(seconds=1.5)),
            ("Wed, 01 Jan 2025 12:00:30 GMT", timedelta(seconds=30)),
            ("Wed, 01 Jan 2025 12:02:00 -0000", timedelta(minutes=2)),
            ("Wed, 01 Jan 2025 11:00:00 GMT", timedelta(0)),
        ],
    )
    def test_seconds_and_http_dates(self, header: str, wait: timedelta) -> None:
        """Retry-After in seconds or as an HTTP-date becomes a wait; a past date means none."""
        assert retry_after(status_error(503, {"Retry-After": header}), now=NOW) == wait

    @pytest.mark.parametrize("header", ["soon", "-5", "nan", "inf", ""])
    def test_malformed_values_are_ignored(self, header: str) -> None:
        """A Retry-After that is not seconds or a date is treated as absent."""
        assert retry_after(status_error(429, {"Retry-After": header}), now=NOW) is None

    def test_absurd_values_are_clamped(self) -> None:
        """A Retry-After of centuries is clamped rather than overflowing."""
        wait = retry_after(status_error(429, {"Retry-After": "1" + "0" * 30}))
        assert wait == timedelta(days=365)

    def test_absent_when_there_is_no_response(self) -> None:
        """Errors without an HTTP response have no Retry-After."""
        assert retry_after(status_error(503)) is None
        assert retry_after(httpx.ConnectError("refused", request=REQUEST)) is None
        assert retry_after(TimeoutError()) is None

    def test_read_from_any_error_carrying_an_httpx_response(self) -> None:
        """SDK errors built on httpx (with a .response) have their Retry-After honoured too."""

        class RateLimitError(Exception):
            def __init__(self, response: httpx.Response) -> None:
                self.response = response

        error = RateLimitError(httpx.Response(429, headers={"retry-after": "4"}, request=REQUEST))
        assert retry_after(error) == timedelta(seconds=4)

    def test_the_current_time_is_used_by_default(self) -> None:
        """Without now=, an HTTP-date is counted from the current time."""
        later = datetime.now(UTC) + timedelta(hours=1)
        header = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
        wait = retry_after(status_error(503, {"Retry-After": header}))
        assert wait is not None
        assert timedelta(minutes=59) < wait <= timedelta(hours=1)
