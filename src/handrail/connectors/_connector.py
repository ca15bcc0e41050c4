"""``Connector`` and ``BaseConnector``: typed operations on a real system, under the guard.

A connector author writes the operations (``@operation`` methods that talk
to the system) and none of the rest.  Each call of an operation is a front
end of the one guarded call: the input is validated against the input model
(``InvalidInput`` before anything runs), the ``ActionRequest`` is built from
it (``build_request``: the permission, the input's fields as ``args``, the
resource, the connector and operation as context, the acting principal), and
the guard runs the method — decide, escalate, shadow, retry, breaker, one
audit record — with the output validated (strict, or quarantined) inside::

    input model ─▶ ActionRequest ─▶ guard.call(request, method ∘ validate output,
                                               write=, lazy= (list reads), key=, ...)

A list read returns its records lazily; its one audit record is written
when the iteration ends, fails or is abandoned (see ``handrail.guard.Recorded``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from .._errors import ConfigurationError, InvalidInput
from .._text import key_problem
from ..audit import AuditLog
from ..escalation import EscalationRouter
from ..guard import Guard, build_request
from ..policy import Policy
from ..resilience import CircuitBreakers, RetryPolicy
from ..telemetry import Telemetry
from ._operation import NoInput, Operation, OperationMethod
from ._pagination import current_page_source
from ._quarantine import QuarantineSink, open_quarantine
from ._validation import Validation, validate_one, validate_records

__all__ = ["BaseConnector", "Connector", "ConnectorDescription"]

M = TypeVar("M", bound=BaseModel)


class ConnectorDescription(BaseModel):
    """What a connector can do: every operation with its kind, permission and schemas.

    The source for the tool definitions handed to an agent framework
    (``tools()``) and for the permission matrix humans review (``matrix()``).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    description: str = ""
    operations: tuple[dict[str, Any], ...]

    def tools(self) -> list[dict[str, Any]]:
        """One tool definition per operation: name, description, JSON Schema of the input."""
        return [
            {
                "name": op["name"],
                "description": op["description"],
                "parameters": op["input_schema"],
            }
            for op in self.operations
        ]

    def matrix(self) -> list[tuple[str, str, str]]:
        """(operation, kind, permission) rows, for the review of what the agent may touch."""
        return [(op["name"], op["kind"], op["permission"]) for op in self.operations]


@runtime_checkable
class Connector(Protocol):
    """What every connector offers: a name and a description of its operations."""

    name: str

    def describe(self) -> ConnectorDescription:
        """Every operation with its kind, permission and input/output JSON Schemas."""
        ...


class BaseConnector:
    """The base class connector authors derive from: declare ``@operation`` methods, done.

    ``name`` (a class attribute, or the keyword) names the connector in
    requests, audit records and quarantine entries.  Every operation runs
    under ``guard`` (a ``Guard``, shared with the rest of the agent's tools
    if you like), or under one built from ``policy``, ``audit``, ``retry``,
    ``breakers``, ``telemetry``, ``escalations`` and ``shadow``.
    ``quarantine`` (a ``QuarantineSink`` or a path) receives the invalid
    records of quarantining reads; without one, such reads fail on the first
    invalid record, as strict ones do.  Sync and async operations
    may be mixed.  Thread-safe if the methods are.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    _operations: ClassVar[dict[str, OperationMethod[Any, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, OperationMethod[Any, Any]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, OperationMethod):
                    found[attr] = value
        names = [m.name for m in found.values()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigurationError(
                f"{cls.__name__}: two methods declare the operation {duplicates[0]!r}"
            )
        cls._operations = found

    def __init__(
        self,
        *,
        name: str | None = None,
        guard: Guard | None = None,
        policy: Policy | None = None,
        audit: AuditLog | None = None,
        retry: RetryPolicy | None = None,
        breakers: CircuitBreakers | None = None,
        telemetry: Telemetry | None = None,
        escalations: EscalationRouter | None = None,
        shadow: bool | None = None,
        quarantine: QuarantineSink | str | os.PathLike[str] | None = None,
    ) -> None:
        if name is not None:
            self.name = name  # type: ignore[misc]  # an instance may rename its class's default
        if not self.name:
            raise ConfigurationError(
                f"{type(self).__name__}: give the connector a name (class attribute "
                "`name = 'crm'` or name='crm')"
            )
        if guard is not None and any(
            v is not None for v in (policy, audit, retry, breakers, telemetry, escalations, shadow)
        ):
            raise ConfigurationError(
                f"{type(self).__name__}: pass either guard= or its parts (policy=, audit=, ...)"
            )
        if guard is not None and not isinstance(guard, Guard):
            raise ConfigurationError(
                f"{type(self).__name__}: guard must be a Guard, got {type(guard).__name__}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError(
                f"{type(self).__name__}: retry must be a RetryPolicy or None, got "
                f"{type(retry).__name__}"
            )
        self.guard = guard or Guard(
            policy,
            audit=audit,
            retry=retry,
            breakers=breakers,
            telemetry=telemetry,
            escalations=escalations,
            shadow=shadow,
        )
        self._owns_quarantine = isinstance(quarantine, str | os.PathLike)
        self.quarantine = (
            open_quarantine(quarantine) if isinstance(quarantine, str | os.PathLike) else quarantine
        )
        self._calls: dict[str, Callable[..., Any]] = {}

    # -- what it offers ----------------------------------------------------------------

    @classmethod
    def operations(cls) -> list[Operation]:
        """Every ``Operation`` the class declares, in definition order."""
        return [method.spec for method in cls._operations.values()]

    def describe(self) -> ConnectorDescription:
        """Every operation with its kind, permission and input/output JSON Schemas."""
        return ConnectorDescription(
            name=self.name,
            description=self.description,
            operations=tuple(op.to_dict() for op in self.operations()),
        )

    def breaker_key(self) -> str | None:
        """The circuit breaker every operation goes through (default: the connector's name)."""
        return self.name if self.guard.breakers is not None else None

    def shadow_aware(self) -> bool:
        """True when the operations stop their own writes in shadow mode (see ``HTTPConnector``).

        The base class does not know how its methods write, so in shadow mode
        it does not call write methods at all.
        """
        return False

    def retries_each_request(self) -> bool:
        """True when the operations retry each request themselves (``HTTPConnector`` does).

        Then the guard does not retry an operation as a whole, and its record
        counts the attempts the requests reported.  The base class: False, the
        guard's ``retry`` retries the whole operation.
        """
        return False

    def sends_idempotency_key(self) -> bool:
        """True when the write methods send ``current_idempotency_key()`` to the system.

        Only then may the guard retry a write (a retry the system can
        recognise); an operation with ``idempotency_key=`` sends the caller's
        key in its input and is retried either way.  The base class: False.
        """
        return False

    def close(self) -> None:
        """Release what the connector opened itself (a quarantine file given as a path)."""
        if self._owns_quarantine and self.quarantine is not None:
            self.quarantine.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- calling -----------------------------------------------------------------------

    def _operation_call(self, method: OperationMethod[Any, Any]) -> Callable[..., Any]:
        call = self._calls.get(method.attr)
        if call is None:
            call = self._calls[method.attr] = self._build_call(method)
        return call

    def _build_call(self, method: OperationMethod[Any, Any]) -> Callable[..., Any]:
        """The guarded call of one operation: parse, build the request, hand it to the guard."""
        spec = method.spec
        run = method.fn
        guard = self.guard
        fields = tuple(spec.input.model_fields)
        takes_input = spec.input is not NoInput
        key_field = spec.idempotency_key
        is_write = spec.kind == "write"
        context = {"connector": self.name, "operation": spec.name}
        options: dict[str, Any] = {
            "write": is_write,
            "lazy": spec.many,
            "idempotent": is_write and (key_field is not None or self.sends_idempotency_key()),
            "shadow_aware": self.shadow_aware(),
            "breaker": self.breaker_key(),
            "tool_name": spec.name,
            "retry": not self.retries_each_request(),
        }

        def prepare(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
            params = _parse(spec, args, kwargs)
            # The request's arguments are the input's fields, by name: what policies test.
            values = {f: getattr(params, f) for f in fields}
            key = None if key_field is None else _key_of(spec, key_field, values[key_field])
            request = build_request(
                spec.permission, values, resource=spec.resource, context=context
            )
            return request, (params,) if takes_input else (), key

        if spec.is_async:

            async def acall(*args: Any, **kwargs: Any) -> Any:
                request, argv, key = prepare(args, kwargs)

                async def guarded() -> Any:
                    if spec.many:
                        return _AsyncRecords(self, spec, run(self, *argv))
                    return self._one(spec, await run(self, *argv))

                return await guard.acall(request, guarded, key=key, **options)

            acall.__name__ = spec.method
            acall.__doc__ = run.__doc__
            return acall

        def call(*args: Any, **kwargs: Any) -> Any:
            request, argv, key = prepare(args, kwargs)
            if spec.many:
                return guard.call(
                    request, lambda: self._many(spec, run(self, *argv)), key=key, **options
                )
            return guard.call(
                request, lambda: self._one(spec, run(self, *argv)), key=key, **options
            )

        call.__name__ = spec.method
        call.__doc__ = run.__doc__
        return call

    def _one(self, spec: Operation, raw: Any) -> Any:
        if isinstance(raw, spec.output):
            return raw
        return validate_one(
            raw,
            spec.output,
            validation=self._validation(spec),
            sink=self.quarantine,
            connector=self.name,
            operation=spec.name,
        )

    def _many(self, spec: Operation, raw: Iterable[Any]) -> Iterator[Any]:
        return validate_records(
            raw,
            spec.output,
            validation=self._validation(spec),
            sink=self.quarantine,
            connector=self.name,
            operation=spec.name,
            # Paginated reads (Pages) say which page each record came from.
            source=getattr(raw, "source_of", None),
        )

    def _validation(self, spec: Operation) -> Validation:
        # Quarantine needs somewhere to put records; without a sink, fail closed (strict).
        if spec.validation == "quarantine" and self.quarantine is None:
            return "strict"
        return spec.validation


class _AsyncRecords(Generic[M]):
    """The validated records of an async list read, pulled one at a time as they arrive.

    What the guard wraps (``AsyncRecorded``); ``valid`` and ``quarantined``
    count what has been yielded and set aside so far, and are read through it.
    """

    __slots__ = ("_connector", "_raw", "_spec", "_validation", "quarantined", "valid")

    def __init__(self, connector: BaseConnector, spec: Operation, raw: AsyncIterator[Any]) -> None:
        self._connector = connector
        self._spec = spec
        self._raw = raw.__aiter__()
        self._validation = connector._validation(spec)
        self.valid = 0
        self.quarantined = 0

    def __aiter__(self) -> _AsyncRecords[M]:
        return self

    async def __anext__(self) -> M:
        spec = self._spec
        connector = self._connector
        while True:
            item = await self._raw.__anext__()
            record = (
                item
                if isinstance(item, spec.output)
                else validate_one(
                    item,
                    spec.output,
                    validation=self._validation,
                    sink=connector.quarantine,
                    connector=connector.name,
                    operation=spec.name,
                    source=current_page_source(),
                )
            )
            if record is None:
                self.quarantined += 1
                continue
            self.valid += 1
            return record  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Stop the read: close the operation's generator (no further page is fetched)."""
        closer = getattr(self._raw, "aclose", None)
        if closer is not None:
            await closer()


def _key_of(spec: Operation, field: str, value: object) -> str | None:
    """The caller's idempotency key from the input (None: the call gets a fresh one)."""
    if value is None:
        return None
    problem = key_problem(value)
    if problem is None:
        return value  # type: ignore[return-value]  # key_problem checked it is a str
    raise InvalidInput(
        spec.name,
        [{"loc": (field,), "msg": f"an idempotency key {problem}", "type": "idempotency_key"}],
    )


def _parse(spec: Operation, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> BaseModel:
    """The call's input model: given whole, as a mapping, or as keyword arguments."""
    try:
        if args:
            if len(args) > 1 or kwargs:
                raise TypeError(
                    f"{spec.name}: pass one {spec.input.__name__} (or a mapping), "
                    "or its fields as keyword arguments"
                )
            given = args[0]
            if isinstance(given, spec.input):
                return given
            return spec.input.model_validate(given)
        return spec.input.model_validate(kwargs)
    except ValidationError as exc:
        raise InvalidInput(
            spec.name,
            [
                {"loc": e["loc"], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_input=False)
            ],
        ) from None
