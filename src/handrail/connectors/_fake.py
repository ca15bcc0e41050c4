"""``fake_connector``: a stand-in with a real connector's operations, answered from seeded data.

For unit tests of agent code: the fake has the same operation names,
kinds, permissions and models as the connector it imitates, and goes
through the same guard (policy, audit, shadow mode, output validation), but
answers from ``responses`` instead of calling a system.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from .._errors import ConfigurationError
from ._connector import BaseConnector
from ._operation import Operation, OperationMethod

__all__ = ["FakeConnector", "fake_connector"]

C = TypeVar("C", bound=BaseConnector)


class FakeConnector(BaseConnector):
    """The base of every fake: ``calls`` records (operation, input) for each call that ran.

    A response is a value (a record, a list of records for a list read), a
    callable taking the input model, or an exception instance to raise.
    """

    name = "fake"

    def __init__(self, responses: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.responses: dict[str, Any] = dict(responses or {})
        self.calls: list[tuple[str, BaseModel | None]] = []

    def respond(self, operation: str, params: BaseModel | None) -> Any:
        """The seeded answer to one call of ``operation``."""
        self.calls.append((operation, params))
        if operation not in self.responses:
            raise NotImplementedError(
                f"{type(self).__name__}: no response seeded for {operation!r}; pass "
                f"responses={{{operation!r}: ...}}"
            )
        answer = self.responses[operation]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer) and not isinstance(answer, type):
            return answer(params)
        return answer


def fake_connector(like: type[C], responses: Mapping[str, Any] | None = None, **kwargs: Any) -> C:
    """A ``FakeConnector`` with every operation of ``like``, answering from ``responses``.

    ``responses`` maps operation names to answers (see ``FakeConnector``);
    ``kwargs`` build its guard as for ``BaseConnector`` (``policy=``,
    ``audit=``, ``shadow=``, ``quarantine=``...).  Its ``name`` is
    ``like.name``.  Typed as ``like`` for the agent code under test; it is a
    ``FakeConnector`` (check ``.calls``).
    """
    if not (isinstance(like, type) and issubclass(like, BaseConnector)):
        raise ConfigurationError(f"fake_connector: expected a BaseConnector class, got {like!r}")
    unknown = sorted(set(responses or {}) - {op.name for op in like.operations()})
    if unknown:
        raise ConfigurationError(f"fake_connector: {like.__name__} has no operation {unknown[0]!r}")
    methods = {attr: _faked(method) for attr, method in like._operations.items()}
    namespace: dict[str, Any] = {"name": like.name, "description": like.description, **methods}
    fake = type(f"Fake{like.__name__}", (FakeConnector,), namespace)
    return cast(C, fake(responses, **kwargs))


def _faked(method: OperationMethod[Any, Any]) -> OperationMethod[Any, Any]:
    spec: Operation = method.spec
    name = spec.name
    takes_input = bool(inspect.signature(method.fn).parameters.keys() - {"self"})

    def params_of(args: tuple[Any, ...]) -> BaseModel | None:
        return args[0] if takes_input and args else None

    fn: Callable[..., Any]
    if spec.is_async and spec.many:

        async def agen(self: FakeConnector, *args: Any) -> AsyncIterator[Any]:
            for record in self.respond(name, params_of(args)):
                yield record

        fn = agen
    elif spec.is_async:

        async def acall(self: FakeConnector, *args: Any) -> Any:
            return self.respond(name, params_of(args))

        fn = acall
    elif spec.many:

        def gen(self: FakeConnector, *args: Any) -> Iterator[Any]:
            yield from self.respond(name, params_of(args))

        fn = gen
    else:

        def call(self: FakeConnector, *args: Any) -> Any:
            return self.respond(name, params_of(args))

        fn = call
    faked = copy.copy(method)
    faked.fn = fn
    faked._spec = spec  # the original's models and permission, not the stand-in's annotations
    return faked
