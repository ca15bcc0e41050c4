"""The steps of the flow, and the two drivers that do them.

``flow`` (``_core``) makes every decision itself and *yields* each piece of
I/O as a ``Step``: open, get, wait for and claim an escalation (the router),
shadow or attempt the function, record the call (the audit log).  Each step
has a ``run`` and an ``arun``; ``run`` (sync) and ``arun`` (async) are the
only drivers: each sends the step's result back in, or throws its error,
until the flow returns.  The async driver awaits each step's async form
(the router's and the log's async twins), so nothing blocks the event loop.
"""

from __future__ import annotations

import abc
import datetime as dt
import functools
from collections.abc import Callable, Generator
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from ..audit import AuditEntry, AuditLog, AuditRecord
from ..policy import Decision
from ..resilience import using_idempotency_key
from ..shadow import ShadowIntercepted, ShadowRequest, shadowing
from ._progress import CallProgress, _current

if TYPE_CHECKING:
    from ..escalation import Escalation, EscalationRouter
    from ._core import Plan

__all__ = ["Step", "arun", "run"]


# -- steps: what the flow asks the driver to do --------------------------------------


class Step(abc.ABC):
    """One piece of I/O the flow needs done; ``run`` does it, ``arun`` awaits it."""

    __slots__ = ()

    @abc.abstractmethod
    def run(self) -> Any:
        """Do the step here, in this thread; return its result or raise its error."""

    @abc.abstractmethod
    async def arun(self) -> Any:
        """Do the step without blocking the event loop (the async driver awaits it)."""


class _Open(Step):
    __slots__ = ("decision", "external_id", "router")

    def __init__(self, router: EscalationRouter, decision: Decision, external_id: str | None):
        self.router, self.decision, self.external_id = router, decision, external_id

    def run(self) -> Escalation:
        return self.router.open(self.decision, external_id=self.external_id)

    async def arun(self) -> Escalation:
        return await self.router.aopen(self.decision, external_id=self.external_id)


class _Get(Step):
    __slots__ = ("escalation_id", "router")

    def __init__(self, router: EscalationRouter, escalation_id: str) -> None:
        self.router, self.escalation_id = router, escalation_id

    def run(self) -> Escalation:
        return self.router.get(self.escalation_id)

    async def arun(self) -> Escalation:
        return await self.router.aget(self.escalation_id)


class _Wait(Step):
    __slots__ = ("escalation_id", "router", "timeout")

    def __init__(self, router: EscalationRouter, escalation_id: str, timeout: dt.timedelta):
        self.router, self.escalation_id, self.timeout = router, escalation_id, timeout

    def run(self) -> Escalation:
        return self.router.wait_decision(self.escalation_id, self.timeout)

    async def arun(self) -> Escalation:
        return await self.router.await_decision(self.escalation_id, self.timeout)


class _Claim(Step):
    __slots__ = ("escalation_id", "router")

    def __init__(self, router: EscalationRouter, escalation_id: str) -> None:
        self.router, self.escalation_id = router, escalation_id

    def run(self) -> Escalation:
        return self.router.claim_execution(self.escalation_id)

    async def arun(self) -> Escalation:
        return await self.router.aclaim_execution(self.escalation_id)


class _Record(Step):
    __slots__ = ("audit", "entry")

    def __init__(self, audit: AuditLog, entry: AuditEntry) -> None:
        self.audit, self.entry = audit, entry

    def run(self) -> AuditRecord:
        return self.audit.append(self.entry)

    async def arun(self) -> AuditRecord:
        return await self.audit.aappend(self.entry)


class _Attempt(Step):
    """Call the function: through the breaker and retries, under its idempotency key."""

    __slots__ = ("action", "fn", "key", "plan", "progress")

    def __init__(
        self,
        plan: Plan,
        fn: Callable[[], Any],
        action: str,
        key: str | None,
        progress: CallProgress,
    ) -> None:
        self.plan, self.fn, self.action, self.key, self.progress = plan, fn, action, key, progress

    def _target(self, *, is_async: bool) -> Callable[[], Any]:
        plan = self.plan
        if plan.breaker is None or plan.breakers is None:
            return self.fn
        circuit = plan.breakers.for_key(plan.breaker)
        return functools.partial(circuit.acall if is_async else circuit.call, self.fn)

    def _retry_options(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "action": self.action,
            "is_write": plan.write,
            # A write is retried only when what it calls forwards the key.
            "idempotency_key": self.key if (not plan.write or plan.idempotent) else None,
            "on_attempt": self.progress,
            "telemetry": plan.telemetry,
        }

    def run(self) -> Any:
        target = self._target(is_async=False)
        token = _current.set(self.progress)
        try:
            if self.key is None:  # a read: no key to hand down (and no context manager to pay)
                return self._call(target)
            with using_idempotency_key(self.key):
                return self._call(target)
        finally:
            _current.reset(token)

    def _call(self, target: Callable[[], Any]) -> Any:
        retry = self.plan.retry
        if retry is None:
            self.progress.guard_attempts = 1
            result = target()
        else:
            result = retry.call(target, **self._retry_options())
        if type(result) is CoroutineType:  # nothing ran: an async fn in the sync driver
            result.close()
            raise TypeError(f"{self.action}: the function is async; use guard.acall")
        return result

    async def arun(self) -> Any:
        target = self._target(is_async=True)
        token = _current.set(self.progress)
        try:
            with using_idempotency_key(self.key):
                retry = self.plan.retry
                if retry is None:
                    self.progress.guard_attempts = 1
                    return await target()
                return await retry.acall(target, **self._retry_options())
        finally:
            _current.reset(token)


class _Shadow(Step):
    """Run a shadow-aware write so it stops at its transport; return what it would have sent."""

    __slots__ = ("fn", "key")

    def __init__(self, fn: Callable[[], Any], key: str | None) -> None:
        self.fn, self.key = fn, key

    def run(self) -> ShadowRequest | None:
        try:
            with shadowing(), using_idempotency_key(self.key):
                self.fn()
        except ShadowIntercepted as stopped:
            return stopped.request
        return None

    async def arun(self) -> ShadowRequest | None:
        try:
            with shadowing(), using_idempotency_key(self.key):
                await self.fn()
        except ShadowIntercepted as stopped:
            return stopped.request
        return None


# -- the drivers -------------------------------------------------------------------------


def run(steps: Generator[Step, Any, Any]) -> Any:
    """Drive a flow synchronously: do each step, send its result (or throw its error) back."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as done:
            return done.value
        try:
            value, error = step.run(), None
        except BaseException as exc:  # handed to the flow, which records and re-raises it
            value, error = None, exc


async def arun(steps: Generator[Step, Any, Any]) -> Any:
    """Drive a flow in async code: as ``run``, awaiting each step's async form."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as done:
            return done.value
        try:
            value, error = await step.arun(), None
        except BaseException as exc:
            value, error = None, exc
