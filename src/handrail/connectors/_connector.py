"""``Connector`` and ``BaseConnector``: typed operations on a real system, guarded on every call.

A connector author writes the operations (``@operation`` methods that talk
to the system) and none of the rest: every call is validated against the
input model, decided by the policy, run through the breaker and retries,
audited, traced, shadowed when asked, and its output validated — strict, or
with invalid records quarantined — by the ``Guard`` the connector holds.

Pipeline of one call::

    input model ─▶ Guard: decide ─▶ escalate/deny │ shadow (writes) │ retry ∘ breaker ∘ method
                                                       ─▶ validate output ─▶ audit ─▶ result
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from .._errors import ConfigurationError, InvalidInput
from ..audit import AuditLog
from ..escalation import EscalationRouter
from ..guard import Guard
from ..policy import Policy
from ..resilience import CircuitBreakers, RetryPolicy
from ..telemetry import Telemetry
from ._operation import NoInput, Operation, OperationMethod
from ._pagination import current_page_source
from ._quarantine import QuarantineSink, open_quarantine, validate_one, validate_records

__all__ = [
    "AsyncRecords",
    "BaseConnector",
    "Connector",
    "ConnectorDescription",
]

M = TypeVar("M", bound=BaseModel)

# The validated input of the operation call in progress, for its runner (see _build_call).
_current_params: ContextVar[BaseModel | None] = ContextVar("handrail_params", default=None)


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
    requests, audit records and quarantine entries.  The guard is built from
    ``policy``, ``audit``, ``retry``, ``breakers``, ``telemetry``,
    ``escalations`` and ``shadow`` (see ``Guard``), or passed whole as
    ``guard``.  ``quarantine`` (a ``QuarantineSink`` or a path) receives the
    invalid records of quarantining reads; without one, such reads fail on
    the first invalid record, as strict ones do.  Sync and async operations
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
        spec = method.spec
        fn = method.fn
        fields = tuple(spec.input.model_fields)
        make = spec.input.model_construct

        if spec.is_async:

            async def arunner(**values: Any) -> Any:
                params = _current_params.get() or make(**values)
                if spec.many:
                    return AsyncRecords(self, spec, fn(self, *_arg(spec, params)))
                return self._one(spec, await fn(self, *_arg(spec, params)))

            runner: Callable[..., Any] = arunner
        else:

            def srunner(**values: Any) -> Any:
                params = _current_params.get() or make(**values)
                if spec.many:
                    return self._many(spec, fn(self, *_arg(spec, params)))
                return self._one(spec, fn(self, *_arg(spec, params)))

            runner = srunner
        # The request's arguments are the input's fields, by name: what policies test.
        runner.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(f, inspect.Parameter.KEYWORD_ONLY) for f in fields]
        )
        runner.__name__ = spec.method
        is_write = spec.kind == "write"
        guarded = self.guard.protect(
            spec.permission,
            resource=spec.resource,
            context={"connector": self.name, "operation": spec.name},
            is_write=is_write,
            idempotency_key=is_write or None,
            breaker=self.breaker_key(),
            tool_name=spec.name,
            shadow_aware=self.shadow_aware(),
        )(runner)

        if spec.is_async:

            async def acall(*args: Any, **kwargs: Any) -> Any:
                params = _parse(spec, args, kwargs)
                token = _current_params.set(params)
                try:
                    return await guarded(**{f: getattr(params, f) for f in fields})
                finally:
                    _current_params.reset(token)

            acall.__name__ = spec.method
            acall.__doc__ = method.fn.__doc__
            return acall

        def call(*args: Any, **kwargs: Any) -> Any:
            params = _parse(spec, args, kwargs)
            # The runner gets the validated model itself: rebuilding it from the
            # fields the request was made of would cost a model per call.
            token = _current_params.set(params)
            try:
                return guarded(**{f: getattr(params, f) for f in fields})
            finally:
                _current_params.reset(token)

        call.__name__ = spec.method
        call.__doc__ = method.fn.__doc__
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

    def _validation(self, spec: Operation) -> Any:
        # Quarantine needs somewhere to put records; without a sink, fail closed (strict).
        return (
            "strict"
            if spec.validation == "quarantine" and self.quarantine is None
            else (spec.validation)
        )


class AsyncRecords(Generic[M]):
    """The validated records of an async list read, yielded lazily as they arrive.

    ``valid`` and ``quarantined`` count what has been yielded and set aside so far.
    """

    def __init__(self, connector: BaseConnector, spec: Operation, raw: AsyncIterator[Any]) -> None:
        self._connector = connector
        self._spec = spec
        self._raw = raw
        self.valid = 0
        self.quarantined = 0

    def __aiter__(self) -> AsyncIterator[M]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[M]:
        spec = self._spec
        connector = self._connector
        validation = connector._validation(spec)
        async for item in self._raw:
            record = (
                item
                if isinstance(item, spec.output)
                else validate_one(
                    item,
                    spec.output,
                    validation=validation,
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
            yield record  # type: ignore[misc]

    async def collect(self) -> list[M]:
        """Every valid record, in order (materialises the whole read)."""
        return [record async for record in self]


def _arg(spec: Operation, params: BaseModel) -> tuple[BaseModel, ...]:
    """The method's arguments: its input model, or nothing for an operation without input."""
    return () if spec.input is NoInput else (params,)


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
