"""How an ``EscalationRouter`` waits for a decision: through its clock, woken by its changes.

Every pause goes through the router's ``Clock`` (a ``FakeClock`` moves its own
time forward); with the real clock a sync wait sleeps on the router's
condition, so a change this router makes ends the pause at once.
``Waiting`` is a base of ``EscalationRouter``, not used on its own.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from ..clock import Clock, SystemClock
from ._model import Escalation
from ._router_checks import check_duration

__all__ = ["Waiting"]


class Waiting:
    """``wait_decision`` and ``await_decision``, and the pauses they (and ``run``) make."""

    # Set by EscalationRouter.__init__.
    clock: Clock
    _poll: float
    _changed: threading.Condition
    _generation: int

    if TYPE_CHECKING:

        def get(self, escalation_id: str) -> Escalation: ...  # EscalationRouter.get

        async def aget(self, escalation_id: str) -> Escalation: ...  # EscalationRouter.aget

    def wait_decision(self, escalation_id: str, timeout: timedelta | None = None) -> Escalation:
        """Block until the escalation is final or ``timeout`` passes on the router's clock.

        Returns the escalation either way: check ``.is_terminal`` and
        ``.allowed``.  The deadline is read from ``clock.monotonic()`` and
        every pause goes through the clock: a ``FakeClock`` moves its own
        time forward (a 30-minute wait returns at once, the case still
        pending), a ``SystemClock`` really waits and changes made by this
        router wake it at once.  A clock without ``sleep`` (your own
        ``Clock``) is waited on in real time until its ``monotonic()``
        passes the deadline.  Changes made elsewhere (the CLI, another
        process) are seen within ``poll_interval``.  ``timeout`` is a
        ``timedelta`` (``None``: wait until final).
        """
        end = None
        if timeout is not None:
            limit = check_duration("timeout", timeout, allow_zero=True)
            end = self.clock.monotonic() + limit.total_seconds()
        while True:
            seen = self._generation  # read before get(): a change after it is not slept through
            escalation = self.get(escalation_id)
            if escalation.is_terminal:
                return escalation
            pause = self._poll
            if end is not None:
                remaining = end - self.clock.monotonic()
                if remaining <= 0:
                    return escalation
                pause = min(pause, remaining)
            self._pause(pause, seen)

    async def await_decision(
        self, escalation_id: str, timeout: timedelta | None = None
    ) -> Escalation:
        """``wait_decision`` for async code: never blocks the event loop.

        Reads the case in a thread and pauses with the clock's ``asleep``
        (``asyncio.sleep`` for a ``SystemClock`` or a clock without one).
        """
        end = None
        if timeout is not None:
            limit = check_duration("timeout", timeout, allow_zero=True)
            end = self.clock.monotonic() + limit.total_seconds()
        while True:
            escalation = await self.aget(escalation_id)
            if escalation.is_terminal:
                return escalation
            pause = self._poll
            if end is not None:
                remaining = end - self.clock.monotonic()
                if remaining <= 0:
                    return escalation
                pause = min(pause, remaining)
            await self._apause(pause)

    def _pause(self, seconds: float, seen: int) -> None:
        """Pause a sync wait through the clock (see ``wait_decision``).

        The real clock's pause is this router's condition, so a change it
        makes meanwhile (``seen`` is the generation read before the case)
        ends the pause at once.
        """
        sleep = getattr(self.clock, "sleep", None)
        if sleep is not None and getattr(sleep, "__func__", None) is not SystemClock.sleep:
            sleep(seconds)
            return
        with self._changed:
            if self._generation == seen:
                self._changed.wait(seconds)

    async def _apause(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """Pause an async wait through the clock's ``asleep``; end early once ``stop`` is set."""
        asleep = getattr(self.clock, "asleep", None) or asyncio.sleep
        if stop is None:
            await asleep(seconds)
            return
        if stop.is_set():
            return  # a fake clock's pause would move its time for nothing
        pause = asyncio.ensure_future(asleep(seconds))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((pause, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pause, stopped):
                task.cancel()
            await asyncio.gather(pause, stopped, return_exceptions=True)
        error = None if pause.cancelled() else pause.exception()
        if error is not None:  # the clock's own failure is not swallowed
            raise error
