"""RetryPolicy and @retry against a real HTTP server: what is retried, how often, and how long."""

from __future__ import annotations

import asyncio
import functools
import inspect
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import structlog
from pydantic import BaseModel, SecretStr, ValidationError

from handrail import CircuitOpen, ConfigurationError, Policy, Principal, WriteNotRetried, acting_as
from handrail.audit import AuditLog
from handrail.guard import Guard
from handrail.resilience import (
    AttemptDetails,
    RetryPolicy,
    current_idempotency_key,
    retry,
    stable_key,
)
from handrail.testing import no_waits
from handrail.testing._resilience import set_no_waits

from .conftest import Recorded, Reply, Server

FAST = RetryPolicy(attempts=3, timeout=timedelta(seconds=10))
POLICY = Policy.from_yaml("rules: [{id: crm, effect: allow, actions: ['crm.*.*']}]")
BOT = Principal(agent="sales-bot")


def get(client: httpx.Client, url: str) -> httpx.Response:
    return client.get(url).raise_for_status()


async def aget(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return (await client.get(url)).raise_for_status()


class TestWhatIsRetried:
    def test_503_then_200(self, client: httpx.Client, server: Server) -> None:
        """A 503 is retried and the 200 that follows is returned."""
        server.script(Reply(503), Reply(200, body=b"fine"))
        attempts: list[AttemptDetails] = []
        response = FAST.call(get, client, server.url, on_attempt=attempts.append)
        assert response.text == "fine"
        assert len(server.seen) == 2
        assert [a.attempt for a in attempts] == [1, 2]
        assert attempts[0].error is None
        assert isinstance(attempts[1].error, httpx.HTTPStatusError)

    def test_503_then_200_async(self, server: Server) -> None:
        """acall retries a 503 in async code and returns the 200."""
        server.script(Reply(503), Reply(200, body=b"fine"))

        async def main() -> httpx.Response:
            async with httpx.AsyncClient() as client:
                return await FAST.acall(aget, client, server.url)

        assert asyncio.run(main()).text == "fine"
        assert len(server.seen) == 2

    def test_429_waits_at_least_retry_after(self, client: httpx.Client, server: Server) -> None:
        """A 429's Retry-After sets the least wait before the next attempt."""
        server.script(Reply(429, {"Retry-After": "3"}), Reply(200))
        attempts: list[AttemptDetails] = []
        FAST.call(get, client, server.url, on_attempt=attempts.append)
        assert attempts[1].wait >= timedelta(seconds=3)

    def test_retry_after_beyond_the_budget_is_not_waited_for(
        self, client: httpx.Client, server: Server
    ) -> None:
        """A Retry-After longer than the time left raises the 429 at once instead of waiting."""
        server.script(Reply(429, {"Retry-After": "60"}), Reply(200))
        with pytest.raises(httpx.HTTPStatusError) as caught:
            RetryPolicy(timeout=timedelta(seconds=30)).call(get, client, server.url)
        assert caught.value.response.status_code == 429
        assert len(server.seen) == 1

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
    def test_client_errors_are_never_retried(
        self, client: httpx.Client, server: Server, status: int
    ) -> None:
        """A 4xx the caller caused is raised after one attempt."""
        server.script(Reply(status), Reply(200))
        with pytest.raises(httpx.HTTPStatusError) as caught:
            FAST.call(get, client, server.url)
        assert caught.value.response.status_code == status
        assert len(server.seen) == 1

    def test_timeouts_are_retried_until_the_attempts_run_out(self, server: Server) -> None:
        """A read timeout is retried; when every attempt times out, the last timeout is raised."""
        server.script(*[Reply(hang=True)] * 3)
        with httpx.Client(timeout=0.05) as client, pytest.raises(httpx.ReadTimeout):
            FAST.call(get, client, server.url)
        assert len(server.seen) == 3

    def test_timeout_then_success_async(self, server: Server) -> None:
        """An async read timeout is retried and the next answer returned."""
        server.script(Reply(hang=True), Reply(200, body=b"late but fine"))

        async def main() -> httpx.Response:
            async with httpx.AsyncClient(timeout=0.05) as client:
                return await FAST.acall(aget, client, server.url)

        assert asyncio.run(main()).text == "late but fine"

    def test_exhausted_retries_raise_the_last_error_itself(
        self, client: httpx.Client, server: Server
    ) -> None:
        """After the last attempt the caller gets its real error, not a retry wrapper."""
        server.script(Reply(503), Reply(502), Reply(504))
        with pytest.raises(httpx.HTTPStatusError) as caught:
            FAST.call(get, client, server.url)
        assert caught.value.response.status_code == 504
        assert len(server.seen) == 3

    def test_connection_refused_is_retried(self, client: httpx.Client) -> None:
        """A refused connection is transient: every attempt is made, then ConnectError raised."""
        with socket.socket() as probe:  # a port that was free a moment ago and is closed now
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        attempts: list[AttemptDetails] = []
        with pytest.raises(httpx.ConnectError):
            FAST.call(get, client, f"http://127.0.0.1:{port}", on_attempt=attempts.append)
        assert len(attempts) == 3


class TestWrites:
    def test_write_without_a_key_is_not_retried(self, client: httpx.Client, server: Server) -> None:
        """A write failing transiently with no idempotency key raises WriteNotRetried at once."""
        server.script(Reply(503), Reply(200))
        with pytest.raises(WriteNotRetried) as caught:
            FAST.call(
                lambda: client.post(server.url, json={"n": 1}).raise_for_status(),
                action="erp.order.create",
                is_write=True,
            )
        assert len(server.seen) == 1
        assert caught.value.action == "erp.order.create"
        assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
        assert "idempotency key" in str(caught.value)
        assert str(caught.value).startswith("erp.order.create: failed with HTTPStatusError")

    def test_write_without_a_key_keeps_its_permanent_error(
        self, client: httpx.Client, server: Server
    ) -> None:
        """A write failing permanently raises its own error: there was nothing to retry."""
        server.script(Reply(400))
        with pytest.raises(httpx.HTTPStatusError):
            FAST.call(lambda: client.post(server.url).raise_for_status(), is_write=True)

    def test_write_with_a_key_is_retried_with_the_same_key(
        self, client: httpx.Client, server: Server
    ) -> None:
        """A keyed write is retried, sending the same key on every attempt."""
        server.script(Reply(503), Reply(502), Reply(201))
        key = stable_key({"action": "erp.order.create", "order": "o-1"})

        def create(client: httpx.Client) -> httpx.Response:
            headers = {"Idempotency-Key": current_idempotency_key() or ""}
            return client.post(server.url, headers=headers).raise_for_status()

        response = FAST.call(create, client, is_write=True, idempotency_key=key)
        assert response.status_code == 201
        assert [seen.headers["Idempotency-Key"] for seen in server.seen] == [key] * 3

    def test_decorated_write_is_retried_with_its_argument_s_key(
        self, client: httpx.Client, server: Server
    ) -> None:
        """@retry(idempotency_key="request_id") retries under the key that argument carries."""
        server.script(Reply(503), Reply(201), Reply(201))

        @retry(is_write=True, idempotency_key="request_id")
        def refund(invoice: str, amount: int, request_id: str | None = None) -> int:
            headers = {"Idempotency-Key": current_idempotency_key() or ""}
            return client.post(server.url, headers=headers).raise_for_status().status_code

        assert refund("inv-7", 40, request_id="rq-1") == 201
        # The same arguments again, with another key: a second refund, not a retry of the first.
        assert refund("inv-7", 40, "rq-2") == 201
        keys = [seen.headers["Idempotency-Key"] for seen in server.seen]
        assert keys == ["rq-1", "rq-1", "rq-2"]

    def test_async_write_without_a_key_is_not_retried(self, server: Server) -> None:
        """An async keyless write is tried once, too."""
        server.script(Reply(503), Reply(200))

        @retry(is_write=True, action="erp.order.create")
        async def create(client: httpx.AsyncClient) -> httpx.Response:
            return (await client.post(server.url)).raise_for_status()

        async def main() -> None:
            async with httpx.AsyncClient() as client:
                await create(client)

        with pytest.raises(WriteNotRetried):
            asyncio.run(main())
        assert len(server.seen) == 1

    def test_reads_need_no_key(self) -> None:
        """Outside a retried call there is no current idempotency key."""
        assert current_idempotency_key() is None
        assert FAST.call(current_idempotency_key) is None


class TestClassifier:
    def test_a_classifier_can_widen_what_is_retried(self) -> None:
        """is_transient= makes the caller's own errors retryable."""
        calls = []

        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise KeyError("busy")
            return "done"

        policy = RetryPolicy(is_transient=lambda e: isinstance(e, KeyError))
        assert policy.call(flaky) == "done"
        assert len(calls) == 3

    @pytest.mark.parametrize(
        "error",
        [CircuitOpen("crm"), WriteNotRetried("x", ValueError()), KeyboardInterrupt()],
        ids=lambda e: type(e).__name__,
    )
    def test_no_classifier_can_retry_refusals(self, error: BaseException) -> None:
        """Refusals and interrupts are raised at once even when the classifier says retry all."""
        calls = []

        def refuse() -> None:
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            RetryPolicy(is_transient=lambda e: True).call(refuse)
        assert len(calls) == 1

    def test_validation_errors_are_never_retried(self) -> None:
        """A pydantic ValidationError fails the same way every time, so it is raised at once."""

        class Order(BaseModel):
            amount: int

        calls = []

        def parse() -> Order:
            calls.append(1)
            return Order.model_validate({"amount": "lots"})

        with pytest.raises(ValidationError):
            RetryPolicy(is_transient=lambda e: True).call(parse)
        assert len(calls) == 1


class TestWaiting:
    def test_waits_really_happen_without_no_waits(
        self, client: httpx.Client, server: Server
    ) -> None:
        """With no-waits off, the next attempt starts only after the wait."""
        server.script(Reply(503, {"Retry-After": "0.05"}), Reply(200))
        attempts: list[AttemptDetails] = []
        previous = set_no_waits(False)
        try:
            FAST.call(get, client, server.url, on_attempt=attempts.append)
        finally:
            set_no_waits(previous)
        assert attempts[1].elapsed >= timedelta(seconds=0.05)

    def test_async_waits_really_happen_without_no_waits(self) -> None:
        """acall waits without blocking the loop, for as long as it chose."""
        request = httpx.Request("GET", "http://crm.invalid/")
        busy = httpx.Response(503, headers={"Retry-After": "0.05"}, request=request)
        outcomes: list[Any] = [busy, "ok"]
        attempts: list[AttemptDetails] = []

        async def call() -> str:
            outcome = outcomes.pop(0)
            if isinstance(outcome, httpx.Response):
                outcome.raise_for_status()
            return str(outcome)

        previous = set_no_waits(False)
        try:
            assert asyncio.run(FAST.acall(call, on_attempt=attempts.append)) == "ok"
        finally:
            set_no_waits(previous)
        assert attempts[1].elapsed >= timedelta(seconds=0.05)

    def test_backoff_grows_but_stays_under_wait_max(self) -> None:
        """Backoff waits are jittered up to wait_initial doubled per retry, capped by wait_max."""
        attempts: list[AttemptDetails] = []
        policy = RetryPolicy(
            attempts=8, wait_initial=timedelta(seconds=1), wait_max=timedelta(seconds=5)
        )
        with pytest.raises(TimeoutError):
            policy.call(_raise(TimeoutError), on_attempt=attempts.append)
        for details in attempts[1:]:
            cap = min(2 ** (details.attempt - 2), 5)
            assert timedelta(0) <= details.wait <= timedelta(seconds=cap)


class TestTelemetry:
    def test_each_retry_is_counted_and_logged(
        self, client: httpx.Client, server: Server, recorded: Recorded
    ) -> None:
        """Every retry adds to handrail.retries and logs the attempt, error type and wait."""
        server.script(Reply(503), Reply(503), Reply(200))
        FAST.call(get, client, server.url, action="crm.contact.read", telemetry=recorded.telemetry)
        events = recorded.events("handrail.retry")
        assert [e["attempt"] for e in events] == [2, 3]
        assert {e["error_type"] for e in events} == {"HTTPStatusError"}
        assert {e["action"] for e in events} == {"crm.contact.read"}
        assert recorded.counter("handrail.retries") == [
            ({"handrail.action": "crm.contact.read", "error.type": "HTTPStatusError"}, 2)
        ]

    def test_no_retry_logs_nothing(
        self, client: httpx.Client, server: Server, recorded: Recorded
    ) -> None:
        """A first-time success is not a retry: no event, no count."""
        server.script(Reply(200))
        FAST.call(get, client, server.url, telemetry=recorded.telemetry)
        assert recorded.events("handrail.retry") == []
        assert recorded.counter("handrail.retries") == []


class TestDecorator:
    def test_keeps_the_function_s_name_signature_and_kind(self) -> None:
        """@retry keeps name, docstring and signature; an async function stays async."""

        def read(contact_id: str, *, fields: tuple[str, ...] = ()) -> str:
            """Read a contact."""
            return contact_id

        async def aread(contact_id: str) -> str:
            return contact_id

        retried, aretried = retry()(read), retry()(aread)
        assert retried.__name__ == "read"
        assert retried.__doc__ == "Read a contact."
        assert inspect.signature(retried) == inspect.signature(read)
        assert inspect.iscoroutinefunction(aretried)
        assert not inspect.iscoroutinefunction(retried)
        assert retried("c-1") == "c-1"
        assert asyncio.run(aretried("c-1")) == "c-1"

    def test_action_defaults_to_the_qualified_name(self) -> None:
        """Attempts are reported under the function's qualified name unless action= is given."""
        attempts: list[AttemptDetails] = []

        @retry(on_attempt=attempts.append)
        def read() -> None:
            return None

        @retry(on_attempt=attempts.append, action="crm.contact.read")
        def named() -> None:
            return None

        read()
        named()
        assert attempts[0].action.endswith(
            "test_action_defaults_to_the_qualified_name.<locals>.read"
        )
        assert attempts[1].action == "crm.contact.read"

    def test_bad_bounds_fail_at_decoration(self) -> None:
        """Impossible bounds raise ConfigurationError when decorating, not on the first call."""
        with pytest.raises(ConfigurationError, match="attempts=0"):
            retry(attempts=0)


class TestDecoratorKeys:
    """A decorator's idempotency_key names an argument; a call's takes the key."""

    def test_the_key_is_read_however_the_argument_is_passed(self) -> None:
        """Positional, keyword, keyword-only and positional-only arguments all carry the key."""
        seen: list[str | None] = []

        @retry(is_write=True, idempotency_key="key")
        def by_name(order: str, key: str | None) -> None:
            seen.append(current_idempotency_key())

        @retry(is_write=True, idempotency_key="key")
        def keyword_only(order: str, *, key: str | None = None) -> None:
            seen.append(current_idempotency_key())

        @retry(is_write=True, idempotency_key="key")
        def positional_only(key: str | None, /, **fields: str) -> None:
            seen.append(current_idempotency_key())

        by_name("o-1", "k-1")
        by_name("o-1", key="k-2")
        keyword_only("o-1", key="k-3")
        keyword_only("o-1")
        positional_only("k-4", key="not-this-one")
        assert seen == ["k-1", "k-2", "k-3", None, "k-4"]

    def test_a_method_reads_the_key_past_self(self) -> None:
        """On a method the named argument is found after ``self``."""

        class Billing:
            @retry(is_write=True, idempotency_key="request_id")
            def refund(self, amount: int, request_id: str | None = None) -> str | None:
                return current_idempotency_key()

        assert Billing().refund(40, "rq-1") == "rq-1"

    def test_none_means_no_key_so_the_write_is_not_retried(
        self, client: httpx.Client, server: Server
    ) -> None:
        """A None key argument leaves the write keyless: tried once, then WriteNotRetried."""
        server.script(Reply(503), Reply(201))

        @retry(is_write=True, idempotency_key="request_id", action="billing.refund.create")
        def refund(amount: int, request_id: str | None = None) -> int:
            assert current_idempotency_key() is None
            return client.post(server.url).raise_for_status().status_code

        with pytest.raises(WriteNotRetried) as caught:
            refund(40, request_id=None)
        assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
        assert len(server.seen) == 1

    def test_the_async_decorator_reads_the_argument_too(self, server: Server) -> None:
        """An async write is retried under its argument's key, the same on every attempt."""
        server.script(Reply(503), Reply(201))

        @retry(is_write=True, idempotency_key="request_id")
        async def refund(client: httpx.AsyncClient, request_id: str | None) -> int:
            headers = {"Idempotency-Key": current_idempotency_key() or ""}
            return (await client.post(server.url, headers=headers)).raise_for_status().status_code

        async def main() -> int:
            async with httpx.AsyncClient() as client:
                return await refund(client, request_id="rq-9")

        assert asyncio.run(main()) == 201
        assert [seen.headers["Idempotency-Key"] for seen in server.seen] == ["rq-9", "rq-9"]

    @pytest.mark.parametrize(
        ("value", "got"), [("", "an empty str"), (7, "int"), (b"rq-1", "bytes")]
    )
    def test_a_bad_key_value_is_a_type_error_before_any_attempt(
        self, value: object, got: str
    ) -> None:
        """A key argument that is not a non-empty str (or None) raises TypeError, unattempted."""
        attempts: list[AttemptDetails] = []
        calls: list[object] = []

        @retry(is_write=True, idempotency_key="request_id", on_attempt=attempts.append)
        def refund(amount: int, request_id: object = None) -> None:
            calls.append(request_id)

        with pytest.raises(TypeError, match=f"argument 'request_id' must be .*got {got}$"):
            refund(40, request_id=value)
        assert calls == []
        assert attempts == []

    def test_an_async_bad_key_value_is_a_type_error_before_any_attempt(self) -> None:
        """The async wrapper refuses a bad key before awaiting anything."""
        calls: list[object] = []

        @retry(is_write=True, idempotency_key="request_id")
        async def refund(request_id: object) -> None:
            calls.append(request_id)

        with pytest.raises(TypeError, match="'request_id' must be a non-empty str"):
            asyncio.run(refund(12))
        assert calls == []

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("request", "'request' is not a named parameter"),
            ("fields", "'fields' is not a named parameter"),
            ("options", "'options' is not a named parameter"),
            ("fixed", "its default 'k-1' would be the key of every call"),
        ],
    )
    def test_a_name_that_is_not_a_parameter_fails_at_decoration(
        self, name: str, message: str
    ) -> None:
        """A missing, variadic or fixed-default key argument is a ConfigurationError at once."""

        def refund(
            request_id: str | None, *fields: str, fixed: str = "k-1", **options: str
        ) -> None:
            return None

        with pytest.raises(ConfigurationError, match=message):
            retry(is_write=True, idempotency_key=name)(refund)

    @pytest.mark.parametrize("value", [lambda order, **_: order, "", "request-id", 3])
    def test_idempotency_key_must_be_a_name(self, value: object) -> None:
        """A key function (the old API) or a non-name is refused when retry() is called."""
        with pytest.raises(ConfigurationError, match="names the argument that carries"):
            retry(is_write=True, idempotency_key=value)  # type: ignore[arg-type]

    def test_a_call_s_key_must_be_the_key_itself(self) -> None:
        """RetryPolicy.call takes the key itself: anything but a non-empty str is refused."""
        with pytest.raises(ConfigurationError, match="must be the key itself"):
            FAST.call(lambda: None, is_write=True, idempotency_key="")
        with pytest.raises(ConfigurationError, match="must be the key itself"):
            FAST.call(lambda: None, is_write=True, idempotency_key=lambda: "k")  # type: ignore[arg-type]


class TestPolicy:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"attempts": 0}, "attempts=0"),
            ({"attempts": 2.5}, "attempts must be an int"),
            ({"timeout": timedelta(0)}, "timeout=0:00:00 must be positive"),
            ({"timeout": 30}, "timeout must be a datetime.timedelta"),
            ({"wait_initial": timedelta(seconds=20)}, "wait_initial <= wait_max"),
        ],
    )
    def test_bounds_are_checked(self, kwargs: dict[str, Any], message: str) -> None:
        """RetryPolicy refuses bounds that make no sense and says which."""
        with pytest.raises(ConfigurationError, match=message):
            RetryPolicy(**kwargs)

    def test_is_frozen(self) -> None:
        """A policy cannot be changed after it is made, so it can be shared."""
        with pytest.raises(AttributeError):
            FAST.attempts = 5  # type: ignore[misc]

    def test_call_refuses_async_functions(self) -> None:
        """call() on async work says to use acall, and leaves no coroutine un-awaited."""

        async def read() -> None:
            return None

        with pytest.raises(TypeError, match="acall"):
            FAST.call(read)
        with pytest.raises(TypeError, match="returned a coroutine"):
            FAST.call(functools.partial(_call, read))

    def test_acall_refuses_sync_functions(self) -> None:
        """acall() on a sync function says to use call."""
        with pytest.raises(TypeError, match=r"policy\.call"):
            asyncio.run(FAST.acall(lambda: "sync"))  # type: ignore[arg-type,return-value]

    def test_acall_accepts_a_lambda_returning_a_coroutine(self) -> None:
        """acall awaits whatever awaitable the function returns."""

        async def read(n: int) -> int:
            return n

        assert asyncio.run(FAST.acall(lambda: read(7))) == 7

    def test_arguments_reach_the_function(self) -> None:
        """Positional and keyword arguments pass through; control arguments do not."""

        def echo(*args: object, **kwargs: object) -> tuple[object, ...]:
            return args, kwargs

        assert FAST.call(echo, 1, 2, x=3, action="a.b") == ((1, 2), {"x": 3})


def _call(fn: Callable[[], object]) -> object:
    return fn()


def _raise(kind: type[BaseException]) -> Any:
    def fail() -> None:
        raise kind("always")

    return fail


class TestSecretsInRetryLogs:
    """The handrail.retry event scrubs the call's secrets, as the audit record and span do."""

    def test_a_secret_argument_echoed_in_a_retried_error_is_not_logged(
        self, recorded: Recorded
    ) -> None:
        """A SecretStr, and a value under a sensitive parameter name, never reach the log."""
        calls = []

        @retry(attempts=2, telemetry=recorded.telemetry)
        def fetch(contact_id: str, api_token: str, key: SecretStr) -> str:
            calls.append(contact_id)
            if len(calls) == 1:
                raise ConnectionError(
                    f"reset fetching {contact_id} with {api_token} and {key.get_secret_value()}"
                )
            return contact_id

        with no_waits():
            assert fetch("c-1", "tok-secret-1", key=SecretStr("sk-secret-2")) == "c-1"
        (event,) = recorded.events("handrail.retry")
        assert event["error"] == "reset fetching c-1 with *** and ***"

    def test_a_guarded_call_s_secrets_are_scrubbed_from_its_retry_log(self) -> None:
        """Through a Guard with retries, the retry event is scrubbed like the audit record."""
        attempts = []

        def update(contact_id: str, password: str) -> str:
            attempts.append(contact_id)
            if len(attempts) == 1:
                raise TimeoutError(f"login as {contact_id}:{password} timed out")
            return contact_id

        log = AuditLog.memory()
        guard = Guard(POLICY, audit=log, retry=FAST)
        guarded = guard.protect("crm.contact.read")(update)
        with structlog.testing.capture_logs() as logs, no_waits(), acting_as(BOT):
            assert guarded("c-1", "hunter2-pw") == "c-1"
        (event,) = [e for e in logs if e["event"] == "handrail.retry"]
        assert event["error"] == "login as c-1:*** timed out"
        assert "hunter2-pw" not in str(logs)

    def test_the_retry_log_keeps_only_the_url_s_host_and_path(self, recorded: Recorded) -> None:
        """A URL in a retried error loses its userinfo and query string in the log."""
        error = ConnectionError("reset by https://u:pw-1234@h.example/x?token=t-5678")
        attempts = []

        def fetch() -> None:
            attempts.append(1)
            if len(attempts) == 1:
                raise error

        with no_waits():
            FAST.call(fetch, telemetry=recorded.telemetry)
        (event,) = recorded.events("handrail.retry")
        assert event["error"] == "reset by https://***@h.example/x?***"


def test_waits_and_the_budget_go_through_the_policys_clock() -> None:
    """With a FakeClock the backoff moves fake time: nothing really sleeps, and the time
    budget is counted on that clock (a 30 s budget ends the retries, not real seconds)."""
    import time as _time

    from handrail.testing import FakeClock

    clock = FakeClock()
    policy = RetryPolicy(
        attempts=50,
        timeout=timedelta(seconds=30),
        wait_initial=timedelta(seconds=4),
        wait_max=timedelta(seconds=8),
        clock=clock,
    )
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused")

    started = _time.monotonic()
    with pytest.raises(httpx.ConnectError):
        policy.call(down)
    assert _time.monotonic() - started < 20  # generous: the fake waits add up to ~30 s
    assert 1 < calls < 50  # stopped by the budget on the fake clock, not the attempts
    assert 0 < clock.monotonic() <= 30  # the waits moved fake time, within the budget
