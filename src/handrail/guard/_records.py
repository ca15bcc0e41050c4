"""Lazy reads: the records of a list read, audited once, when the iteration is over.

A list read returns before any page is fetched, so its record cannot be
written when the call returns: it is written when the iteration ends
(``executed``), fails (``failed``, with the error) or is abandoned — closed,
or garbage-collected unfinished (``executed`` with ``abandoned`` in the
details).  The details carry ``records`` (yielded) and whatever the code
beneath counted through ``current_call()`` (pages, quarantined), and the
record's ``attempts`` are the real attempts it reported.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._progress import _current
from ._steps import arun, run

if TYPE_CHECKING:
    from ._core import _Call

__all__ = ["AsyncRecorded", "Recorded"]

T = TypeVar("T")


class _State:
    """What the finaliser needs, kept apart from the iterator so it can be collected."""

    __slots__ = ("call", "done", "records")

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.records = 0
        self.done = False

    def steps(self, outcome: str, error: BaseException | None, abandoned: bool) -> Any:
        self.done = True
        details: dict[str, Any] = {"records": self.records}
        if abandoned:
            details["abandoned"] = True
        return self.call.finish(outcome, error=error, details=details)

    def abandon(self) -> None:
        if not self.done:
            run(self.steps("executed", None, abandoned=True))


class Recorded(Generic[T]):
    """The records of a lazy read; the read's audit record is written when iteration is over."""

    __slots__ = ("__weakref__", "_finalizer", "_items", "_state")

    def __init__(self, call: _Call, items: Iterable[T]) -> None:
        self._items: Iterator[T] = iter(items)
        self._state = _State(call)
        self._finalizer = weakref.finalize(self, self._state.abandon)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        state = self._state
        if state.done:
            raise StopIteration
        token = _current.set(state.call.progress)
        try:
            item = next(self._items)
        except StopIteration:
            _current.reset(token)
            run(state.steps("executed", None, abandoned=False))
            raise
        except BaseException as exc:
            _current.reset(token)
            run(state.steps("failed", exc, abandoned=False))
            raise
        _current.reset(token)
        state.records += 1
        return item

    def close(self) -> None:
        """Stop reading: close the source and write the read's record (abandoned)."""
        state = self._state
        if state.done:
            return
        closer = getattr(self._items, "close", None)
        try:
            if closer is not None:
                closer()
        finally:
            self._finalizer.detach()
            run(state.steps("executed", None, abandoned=True))

    def __enter__(self) -> Recorded[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # Counters and helpers of the underlying records (``valid``, ``quarantined`` ...).
        return getattr(self._items, name)


class AsyncRecorded(Generic[T]):
    """``Recorded`` for an async lazy read (``async for``)."""

    __slots__ = ("__weakref__", "_finalizer", "_items", "_state")

    def __init__(self, call: _Call, items: Any) -> None:
        self._items: AsyncIterator[T] = items.__aiter__()
        self._state = _State(call)
        self._finalizer = weakref.finalize(self, self._state.abandon)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        state = self._state
        if state.done:
            raise StopAsyncIteration
        token = _current.set(state.call.progress)
        try:
            item = await self._items.__anext__()
        except StopAsyncIteration:
            _current.reset(token)
            self._finalizer.detach()
            await arun(state.steps("executed", None, abandoned=False))
            raise
        except BaseException as exc:
            _current.reset(token)
            self._finalizer.detach()
            await arun(state.steps("failed", exc, abandoned=False))
            raise
        _current.reset(token)
        state.records += 1
        return item

    async def aclose(self) -> None:
        """Stop reading: close the source and write the read's record (abandoned)."""
        state = self._state
        if state.done:
            return
        closer = getattr(self._items, "aclose", None)
        try:
            if closer is not None:
                await closer()
        finally:
            self._finalizer.detach()
            await arun(state.steps("executed", None, abandoned=True))

    async def collect(self) -> list[T]:
        """Every record, in order (materialises the whole read)."""
        return [item async for item in self]

    async def __aenter__(self) -> AsyncRecorded[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._items, name)
