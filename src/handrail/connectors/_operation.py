"""``@operation``: a connector method declared as a typed, permissioned read or write.

The decorator records what the method is — its name, kind, input and output
models (from its annotations), the permission it needs and how its output is
validated — and leaves the method itself untouched.  The connector turns it
into a guarded call (``_connector``); ``describe()`` turns it into a tool
definition and a line of the permission matrix.

Annotations say the models::

    @operation("crm.contact.get")
    def get_contact(self, params: ContactRef) -> Contact: ...

    @operation("crm.contact.list")                      # a list read: many records
    def list_contacts(self, params: ContactQuery) -> Iterator[Contact]: ...

    @operation("crm.contact.update", kind="write")
    def update_contact(self, params: ContactPatch) -> Contact: ...

    @operation("billing.refund.create", kind="write", idempotency_key="request_id")
    def refund(self, params: Refund) -> RefundReceipt: ...  # the caller's key, if it sends one

The body returns raw data (parsed JSON) or model instances; the connector
validates it against the output model.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, overload

from pydantic import BaseModel, ConfigDict

from .._errors import ConfigurationError
from .._names import check_action
from ..policy import Resource
from ..shadow import ShadowResult
from ._validation import Validation

__all__ = ["Operation", "OperationKind", "OperationMethod", "ResourceSpec", "operation"]

OperationKind = Literal["read", "write"]
"""A read (retried, run in shadow mode) or a write (retried only with its idempotency key)."""

ResourceSpec = Resource | Mapping[str, Any] | Callable[..., Resource | Mapping[str, Any] | None]
"""What ``@operation(resource=...)`` takes: a resource, or a function of the input's fields."""

P = ParamSpec("P")
R = TypeVar("R")

_MANY = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
)


class NoInput(BaseModel):
    """The input model of an operation that takes no arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Operation:
    """One typed operation of a connector, as ``describe()`` reports it.

    ``permission`` is the action the policy is asked about (by default the
    operation's name); ``many`` marks a list read that yields records
    lazily; ``validation`` is how invalid output records are handled:
    ``strict`` fails the call, ``quarantine`` (the default for list reads)
    sets them aside and lets the valid ones through.  ``idempotency_key``
    names the input field that carries the caller's idempotency key (a
    write's), or is None.
    """

    name: str
    kind: OperationKind
    permission: str
    input: type[BaseModel]
    output: type[BaseModel]
    many: bool
    validation: Validation
    description: str
    is_async: bool
    method: str
    resource: ResourceSpec | None = None
    idempotency_key: str | None = None

    def input_schema(self) -> dict[str, Any]:
        """The input model's JSON Schema: what a tool definition hands the model."""
        return self.input.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        """The JSON Schema of one output record."""
        return self.output.model_json_schema()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (name, kind, permission, schemas, validation)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "permission": self.permission,
            "description": self.description,
            "many": self.many,
            "validation": self.validation,
            "is_async": self.is_async,
            "input_schema": self.input_schema(),
            "output_schema": self.output_schema(),
        }


class OperationMethod(Generic[P, R]):
    """A connector method marked with ``@operation``; on an instance, the guarded call.

    On the class it is this descriptor (``.spec`` is the ``Operation``); on a
    connector instance it is a callable taking the input model (or its
    fields as keyword arguments) and returning the validated output.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        kind: OperationKind,
        permission: str | None,
        validation: Validation | None,
        description: str | None,
        resource: ResourceSpec | None,
        idempotency_key: str | None = None,
    ) -> None:
        check_action(name, "@operation name")
        if permission is not None:
            check_action(permission, "@operation permission")
        if kind not in ("read", "write"):
            raise ConfigurationError(f"@operation({name!r}): kind must be 'read' or 'write'")
        if validation not in (None, "strict", "quarantine"):
            raise ConfigurationError(
                f"@operation({name!r}): validation must be 'strict' or 'quarantine'"
            )
        _check_key_field(name, kind, idempotency_key)
        self.fn = fn
        self.name = name
        self.kind: OperationKind = kind
        self.permission = permission or name
        self.validation = validation
        self.description = description if description is not None else _first_line(fn)
        self.resource = resource
        self.idempotency_key = idempotency_key
        self.attr = fn.__name__
        self._spec: Operation | None = None

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    @property
    def spec(self) -> Operation:
        """The ``Operation``, worked out from the method's annotations on first use."""
        if self._spec is None:
            self._spec = self._resolve()
        return self._spec

    @overload
    def __get__(self, obj: None, owner: type) -> OperationMethod[P, R]: ...

    @overload
    def __get__(self, obj: object, owner: type) -> Callable[P, R]: ...

    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self
        bind = getattr(obj, "_operation_call", None)
        if bind is None:
            raise ConfigurationError(
                f"@operation {self.name!r} is on {owner.__name__}, which is not a "
                "BaseConnector: derive the class from handrail.connectors.BaseConnector"
            )
        return bind(self)

    def __repr__(self) -> str:
        return f"<operation {self.name!r} ({self.kind})>"

    def _resolve(self) -> Operation:
        where = f"@operation({self.name!r}) on {self.fn.__qualname__}"
        try:
            hints = typing.get_type_hints(self.fn)
        except Exception as exc:
            raise ConfigurationError(f"{where}: cannot read its annotations: {exc}") from exc
        params = list(inspect.signature(self.fn).parameters.values())[1:]  # after self
        if len(params) > 1:
            raise ConfigurationError(
                f"{where}: takes one argument, a pydantic model of its input "
                f"(got {', '.join(p.name for p in params)})"
            )
        input_model: type[BaseModel] = NoInput
        if params:
            annotated = hints.get(params[0].name)
            if not _is_model(annotated):
                raise ConfigurationError(
                    f"{where}: annotate its argument {params[0].name!r} with a pydantic "
                    "model of the input"
                )
            input_model = annotated
        output, many = _output(hints.get("return"), where)
        is_async = inspect.iscoroutinefunction(self.fn) or inspect.isasyncgenfunction(self.fn)
        if many and inspect.iscoroutinefunction(self.fn):
            raise ConfigurationError(
                f"{where}: an async list read is an async generator (use 'yield'), "
                "annotated AsyncIterator[Model]"
            )
        if many and self.kind == "write":
            raise ConfigurationError(f"{where}: a write returns one record, not many")
        validation: Validation = self.validation or ("quarantine" if many else "strict")
        key = self.idempotency_key
        if key is not None and key not in input_model.model_fields:
            fields = ", ".join(input_model.model_fields) or "none"
            raise ConfigurationError(
                f"{where}: idempotency_key={key!r} is not a field of its input model "
                f"{input_model.__name__} (fields: {fields})"
            )
        return Operation(
            name=self.name,
            kind=self.kind,
            permission=self.permission,
            input=input_model,
            output=output,
            many=many,
            validation=validation,
            description=self.description,
            is_async=is_async,
            method=self.attr,
            resource=self.resource,
            idempotency_key=key,
        )


@overload
def operation(
    name: str,
    *,
    kind: Literal["write"],
    permission: str | None = None,
    validation: Validation | None = None,
    description: str | None = None,
    resource: ResourceSpec | None = None,
    idempotency_key: str | None = None,
) -> Callable[[Callable[Concatenate[Any, P], R]], OperationMethod[P, R | ShadowResult]]: ...


@overload
def operation(
    name: str,
    *,
    kind: Literal["read"] = "read",
    permission: str | None = None,
    validation: Validation | None = None,
    description: str | None = None,
    resource: ResourceSpec | None = None,
) -> Callable[[Callable[Concatenate[Any, P], R]], OperationMethod[P, R]]: ...


def operation(
    name: str,
    *,
    kind: OperationKind = "read",
    permission: str | None = None,
    validation: Validation | None = None,
    description: str | None = None,
    resource: ResourceSpec | None = None,
    idempotency_key: str | None = None,
) -> Callable[[Callable[Concatenate[Any, P], R]], OperationMethod[P, Any]]:
    """Declare a connector method as the operation ``name`` (a dotted action name).

    ``kind`` is ``read`` or ``write`` (a write is audited as one, retried only
    with its idempotency key, and not executed in shadow mode, where it
    returns a ``ShadowResult``).  ``permission`` is the action the policy
    decides (default: ``name``).  ``validation`` is ``strict`` (default for
    single-record operations) or ``quarantine`` (default for list reads).
    ``resource`` builds the request's resource from the input's fields, as in
    ``requires_permission``.  ``description`` defaults to the docstring's first line.

    ``idempotency_key`` (writes only) names the input field that carries the
    caller's idempotency key: a call that gives it runs under that key (sent
    as ``Idempotency-Key`` by an ``HTTPConnector``), so the caller's retry
    of the same intended write is applied once; a call that leaves it None
    gets a fresh key.  Without it every call gets a fresh key, reused only by
    its own retries: two calls with the same arguments are two writes.
    It must name a field of the input model (checked on first use).
    """
    check_action(name, "@operation name")
    if kind not in ("read", "write"):
        raise ConfigurationError(f"@operation({name!r}): kind must be 'read' or 'write'")
    _check_key_field(name, kind, idempotency_key)

    def decorate(fn: Callable[Concatenate[Any, P], R]) -> OperationMethod[P, Any]:
        return OperationMethod(
            fn,
            name=name,
            kind=kind,
            permission=permission,
            validation=validation,
            description=description,
            resource=resource,
            idempotency_key=idempotency_key,
        )

    return decorate


def _check_key_field(name: str, kind: str, field: object) -> None:
    if field is None:
        return
    if not isinstance(field, str) or not field.isidentifier():
        raise ConfigurationError(
            f"@operation({name!r}): idempotency_key must name a field of the input model, "
            f"got {field!r}"
        )
    if kind != "write":
        raise ConfigurationError(
            f"@operation({name!r}): idempotency_key is for writes; a read is never de-duplicated"
        )


def _is_model(value: object) -> typing.TypeGuard[type[BaseModel]]:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _output(annotation: object, where: str) -> tuple[type[BaseModel], bool]:
    if _is_model(annotation):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in _MANY and len(args) == 1 and _is_model(args[0]):
        return args[0], True
    raise ConfigurationError(
        f"{where}: annotate its return with a pydantic model (one record) or "
        "Iterator[Model] / AsyncIterator[Model] (a list read)"
    )


def _first_line(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
