"""``FakeApprover``: a scripted human, for testing code that escalates.

A test double: it vouches for its decider itself (``Identity(user,
method="test")``), which only code that verified the person may do.  Never
use it outside tests.  It decides cases through the router's public API only (``list``, ``get``,
``approve``, ``reject``), as a person at the approval page would, so the
code under test sees exactly what a real decision does: the audit record,
the notifications, ``on_resolved``, the resumed call.
"""

from __future__ import annotations

import builtins
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ..approvals import Identity

if TYPE_CHECKING:
    from ..escalation import Escalation, EscalationRouter

__all__ = ["FakeApprover"]

_WAITING = ("open", "acknowledged")  # the states a decision can end


@dataclass(frozen=True, slots=True)
class _Scripted:
    approve: bool
    reason: str


class FakeApprover:
    """A decider that approves or rejects escalations when the test says so.

    A test double: ``decider`` (a user id, or an ``Identity``) is taken as
    verified, ``Identity(decider, method="test")``, with no authenticator
    involved; production code decides with identities its authenticators
    made.  The decider must be one the router accepts for the cases it
    decides: a decider of their current level who neither is the agent nor
    the user it acted for (otherwise the router refuses with
    ``NotADecider``, as it would refuse a person).

    Decide a case by id (``approve``, ``reject``), the oldest waiting one
    (``approve_next``, ``reject_next``), or script the coming decisions
    (``will_approve``, ``will_reject``) and apply them with
    ``decide_waiting()``, or from a background thread while the block of
    ``deciding()`` runs, for code that blocks until a human decides.

    Every decision made is in ``decided``, oldest first.  Thread-safe.
    """

    def __init__(self, router: EscalationRouter, decider: str | Identity = "approver") -> None:
        if isinstance(decider, str):
            decider = Identity(decider, method="test")
        elif not isinstance(decider, Identity):
            raise TypeError(
                f"FakeApprover: decider must be a user id or an Identity, got "
                f"{type(decider).__name__}"
            )
        self.router = router
        self.decider: Identity = decider
        self.decided: builtins.list[Escalation] = []
        self._script: deque[_Scripted] = deque()
        self._lock = threading.RLock()

    # -- deciding now -------------------------------------------------------------------

    def approve(self, escalation_id: str, *, reason: str = "") -> Escalation:
        """Approve the escalation ``escalation_id``; return it as it now is."""
        return self._decide(escalation_id, _Scripted(approve=True, reason=reason))

    def reject(self, escalation_id: str, *, reason: str = "") -> Escalation:
        """Reject the escalation ``escalation_id``; return it as it now is."""
        return self._decide(escalation_id, _Scripted(approve=False, reason=reason))

    def approve_next(self, *, reason: str = "") -> Escalation:
        """Approve the oldest escalation still waiting for a decision.

        Raises ``LookupError`` when none is waiting.
        """
        return self._decide(self._oldest_waiting("approve").id, _Scripted(True, reason))

    def reject_next(self, reason: str = "") -> Escalation:
        """Reject the oldest escalation still waiting for a decision (``LookupError``: none)."""
        return self._decide(self._oldest_waiting("reject").id, _Scripted(False, reason))

    # -- deciding later, by script ----------------------------------------------------------

    def will_approve(self, times: int = 1, *, reason: str = "") -> FakeApprover:
        """Script the next ``times`` decisions as approvals; returns self, to chain."""
        return self._add(_Scripted(approve=True, reason=reason), times)

    def will_reject(self, times: int = 1, *, reason: str = "") -> FakeApprover:
        """Script the next ``times`` decisions as rejections; returns self, to chain."""
        return self._add(_Scripted(approve=False, reason=reason), times)

    @property
    def scripted(self) -> int:
        """How many scripted decisions are left."""
        with self._lock:
            return len(self._script)

    def decide_waiting(self) -> builtins.list[Escalation]:
        """Apply the script to the escalations waiting for a decision, oldest first.

        Stops when the script or the waiting cases run out; returns the
        escalations decided, as they now are.
        """
        done: builtins.list[Escalation] = []
        with self._lock:
            for escalation in self._waiting():
                if not self._script:
                    break
                done.append(self._decide(escalation.id, self._script.popleft()))
        return done

    @contextmanager
    def deciding(self, *, every: timedelta = timedelta(milliseconds=5)) -> Iterator[FakeApprover]:
        """Apply the script from a background thread, every ``every``, while the block runs.

        For code that blocks until a human decides (a guard that waits for
        the decision).  The thread stops when the block ends; an error it
        met (say ``NotADecider``) is raised then.
        """
        stop = threading.Event()
        failures: builtins.list[BaseException] = []

        def poll() -> None:
            try:
                while True:
                    self.decide_waiting()
                    if stop.wait(every.total_seconds()):
                        return
            except BaseException as exc:  # handed to the test when the block ends
                failures.append(exc)

        thread = threading.Thread(target=poll, name="handrail-fake-approver", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
        if failures:
            raise failures[0]

    # -- helpers ------------------------------------------------------------------------------

    def _add(self, decision: _Scripted, times: int) -> FakeApprover:
        if type(times) is not int or times < 1:
            raise ValueError(f"FakeApprover: times must be an int >= 1, got {times!r}")
        with self._lock:
            self._script.extend([decision] * times)
        return self

    def _waiting(self) -> builtins.list[Escalation]:
        found = [e for state in _WAITING for e in self.router.list(state=state)]
        return sorted(found, key=lambda e: (e.opened_at, e.id))

    def _oldest_waiting(self, verb: str) -> Escalation:
        waiting = self._waiting()
        if not waiting:
            raise LookupError(f"FakeApprover: no escalation is waiting for a decision to {verb}")
        return waiting[0]

    def _decide(self, escalation_id: str, decision: _Scripted) -> Escalation:
        act = self.router.approve if decision.approve else self.router.reject
        with self._lock:
            escalation = act(escalation_id, by=self.decider, reason=decision.reason)
            self.decided.append(escalation)
        return escalation

    def __repr__(self) -> str:
        return (
            f"FakeApprover(decider={self.decider.user!r}, scripted={self.scripted}, "
            f"decided={len(self.decided)})"
        )
