"""Messy production data: validate records lazily, set the invalid ones aside.

A read's output is validated record by record against the operation's output
model.  ``strict`` fails the read at the first invalid record
(``InvalidRecord``); ``quarantine`` puts each invalid one, with its redacted
raw payload, the validation errors and where it came from, into a
``QuarantineSink`` (JSON Lines, SQLite or memory), counts it in the
``handrail.connector.quarantined`` metric, and lets the valid ones flow on.

Unknown extra fields are kept: a model whose ``extra`` is unset or
``"ignore"`` is validated through ``keep_extra(model)``, a cached subclass
with ``extra="allow"``; ``"allow"`` models are used as they are; ``"forbid"``
is the author's explicit choice and is respected (a record with unknown
fields is invalid).  See ``docs/quarantine.md``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Literal, Self, TypeVar, cast, get_args

from pydantic import BaseModel, ConfigDict, RootModel, ValidationError

from .._errors import ConfigurationError
from .._version import __version__
from ..clock import Clock, SystemClock
from ..guard import current_call
from ..redaction import Redactor
from ._quarantine import QuarantineSink
from ._quarantined import InvalidRecord, QuarantinedRecord, RecordError, qualified_name

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, MeterProvider

    from ..telemetry import Telemetry

__all__ = [
    "ValidatedRecords",
    "Validation",
    "keep_extra",
    "validate_one",
    "validate_records",
]

T = TypeVar("T", bound=BaseModel)

Validation = Literal["strict", "quarantine"]
"""What a read does with a record its output model rejects.

* ``strict``: the read fails with ``InvalidRecord`` at the first invalid record.
* ``quarantine``: the record goes to a ``QuarantineSink`` and the read goes on.
"""

_VALIDATIONS: tuple[Validation, ...] = get_args(Validation)


# -- keeping extra fields ---------------------------------------------------------------

_KEEP_EXTRA: dict[type[BaseModel], type[BaseModel]] = {}
_KEEP_EXTRA_LOCK = threading.Lock()


def keep_extra(model: type[T]) -> type[T]:
    """``model``, or a subclass of it that keeps unknown fields (``extra="allow"``).

    A model whose ``extra`` is unset or ``"ignore"`` would drop fields the
    upstream system added; the subclass keeps them (``instance.model_extra``,
    and in ``model_dump()``).  It is made once per model, has the same name,
    is an ``isinstance`` of ``model``, compares equal to a ``model`` instance
    with the same fields and no extras, and pickles.  Only ``type(x) is
    model`` tells them apart.  ``"allow"`` models, ``"forbid"`` models (the
    author's explicit choice: unknown fields are an error) and ``RootModel``s
    are returned unchanged.  Only the top level is changed: nested models
    follow their own ``extra``.
    """
    if model.model_config.get("extra") in ("allow", "forbid") or issubclass(model, RootModel):
        return model
    cached = _KEEP_EXTRA.get(model)
    if cached is None:
        with _KEEP_EXTRA_LOCK:
            cached = _KEEP_EXTRA.get(model)
            if cached is None:
                cached = _KEEP_EXTRA[model] = _extra_keeping(model)
    return cast(type[T], cached)


def _extra_keeping(model: type[BaseModel]) -> type[BaseModel]:
    fields = tuple(model.model_fields)
    parent_eq = model.__eq__

    def __eq__(self: BaseModel, other: object) -> bool:
        # pydantic compares exact types; this subclass stands in for ``model``.
        # Python asks the subclass first, so ``model(...) == kept`` lands here too.
        if type(other) is not model and type(other) is not kept:
            return parent_eq(self, other)
        assert isinstance(other, BaseModel)
        mine, theirs = self.__dict__, other.__dict__
        return (
            all(mine.get(name, _MISSING) == theirs.get(name, _MISSING) for name in fields)
            and (self.__pydantic_extra__ or {}) == (other.__pydantic_extra__ or {})
            and self.__pydantic_private__ == other.__pydantic_private__
        )

    def __reduce__(self: BaseModel) -> tuple[Any, ...]:
        # By name, pickle would find ``model``, not this subclass.
        return (_restore_kept, (model, self.__getstate__()))

    namespace = {
        "__module__": model.__module__,
        "__qualname__": model.__qualname__,
        "__doc__": model.__doc__,
        "model_config": ConfigDict(extra="allow"),
        "__eq__": __eq__,
        "__hash__": model.__hash__,  # defining __eq__ would otherwise unset it
        "__reduce__": __reduce__,
    }
    metaclass: Any = type(model)  # pydantic's ModelMetaclass builds the subclass
    kept: type[BaseModel] = metaclass(model.__name__, (model,), namespace)
    return kept


_MISSING = object()


def _restore_kept(model: type[BaseModel], state: Any) -> BaseModel:
    """Unpickle an instance of ``keep_extra(model)``."""
    kept = keep_extra(model)
    instance = kept.__new__(kept)
    instance.__setstate__(state)
    return instance


# -- the metric --------------------------------------------------------------------------

_COUNTERS: weakref.WeakKeyDictionary[MeterProvider, Counter] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def _quarantined_counter(telemetry: Telemetry | None) -> Counter | None:
    """The ``handrail.connector.quarantined`` counter, or None when no SDK listens."""
    from ..telemetry import default_telemetry

    instruments = (telemetry or default_telemetry())._metrics()
    if instruments is None:
        return None
    provider = instruments.provider
    counter = _COUNTERS.get(provider)
    if counter is None:
        with _COUNTERS_LOCK:
            counter = _COUNTERS.get(provider)
            if counter is None:
                counter = provider.get_meter("handrail", __version__).create_counter(
                    "handrail.connector.quarantined",
                    unit="{record}",
                    description="Records a connector read set aside as invalid",
                )
                _COUNTERS[provider] = counter
    return counter


# -- validation ---------------------------------------------------------------------------


class ValidatedRecords(Iterator[T], Generic[T]):
    """The valid records of a read, validated lazily as it is iterated.

    ``valid`` and ``quarantined`` count what has been seen so far: read them
    during or after iteration.  Holds one record at a time, so memory stays
    constant however long the read.  Not thread-safe (it is an iterator).
    """

    __slots__ = (
        "_clock",
        "_connector",
        "_index",
        "_model",
        "_on_quarantine",
        "_operation",
        "_records",
        "_redactor",
        "_sink",
        "_source",
        "_telemetry",
        "_validate",
        "_validation",
        "quarantined",
        "valid",
    )

    def __init__(
        self,
        records: Iterable[Any],
        model: type[T],
        *,
        validation: Validation,
        sink: QuarantineSink | None,
        connector: str,
        operation: str,
        source: str | Callable[[int], str] | None,
        on_quarantine: Callable[[QuarantinedRecord], None] | None,
        clock: Clock,
        redactor: Redactor,
        telemetry: Telemetry | None,
    ) -> None:
        self._records = iter(records)
        self._model = model
        self._validate = keep_extra(model).model_validate
        self._validation = validation
        self._sink = sink
        self._connector = connector
        self._operation = operation
        self._source = source
        self._on_quarantine = on_quarantine
        self._clock = clock
        self._redactor = redactor
        self._telemetry = telemetry
        self._index = 0
        self.valid = 0
        self.quarantined = 0

    @property
    def seen(self) -> int:
        """How many input records have been read so far (``valid + quarantined``)."""
        return self._index

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        for item in self._records:
            index = self._index
            self._index = index + 1
            if isinstance(item, self._model):  # built by the connector: already valid
                self.valid += 1
                return item
            try:
                value = self._validate(item)
            except ValidationError as exc:
                self._reject(item, index, exc)
                continue
            self.valid += 1
            return value
        raise StopIteration

    def _reject(self, item: Any, index: int, error: ValidationError) -> None:
        if self._validation == "strict":
            errors = tuple(
                RecordError(loc=tuple(e["loc"]), msg=e["msg"], type=e["type"])
                for e in error.errors(include_url=False, include_input=False, include_context=False)
            )
            raise InvalidRecord(
                connector=self._connector,
                operation=self._operation,
                index=index,
                model=qualified_name(self._model),
                errors=errors,
            ) from None  # the ValidationError would repeat the values
        source = self._source(index) if callable(self._source) else self._source
        record = QuarantinedRecord.from_error(
            item,
            error,
            connector=self._connector,
            operation=self._operation,
            model=self._model,
            source=source,
            index=index,
            at=self._clock.now(),
            redactor=self._redactor,
        )
        assert self._sink is not None  # checked when the reader was made
        self._sink.put(record)
        self.quarantined += 1
        progress = current_call()
        if progress is not None:  # a guarded read: its audit record counts what was set aside
            progress.count(quarantined=1)
        counter = _quarantined_counter(self._telemetry)
        if counter is not None:
            counter.add(
                1, {"handrail.connector": self._connector, "handrail.operation": self._operation}
            )
        if self._on_quarantine is not None:
            self._on_quarantine(record)

    def close(self) -> None:
        """Close the input if it is a generator (e.g. stop fetching pages)."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return (
            f"<ValidatedRecords {self._operation} {qualified_name(self._model)}: "
            f"{self.valid} valid, {self.quarantined} quarantined>"
        )


_SYSTEM_CLOCK = SystemClock()
_REDACTOR = Redactor()  # immutable: shared by every reader without one of its own


def validate_records(
    records: Iterable[Any],
    model: type[T],
    *,
    validation: Validation,
    sink: QuarantineSink | None,
    connector: str,
    operation: str,
    source: str | Callable[[int], str] | None = None,
    on_quarantine: Callable[[QuarantinedRecord], None] | None = None,
    clock: Clock | None = None,
    redactor: Redactor | None = None,
    telemetry: Telemetry | None = None,
) -> ValidatedRecords[T]:
    """Validate ``records`` against ``model`` lazily: an iterator of the valid ones, in order.

    Each record is a payload (a dict, usually) or an instance of ``model``,
    which passes as it is.

    ``strict``: the first invalid record raises ``InvalidRecord``.
    ``quarantine``: each invalid record is put in ``sink`` (redacted),
    counted in ``handrail.connector.quarantined`` and passed to
    ``on_quarantine``; iteration goes on.  ``source`` (a string, or a
    function of the record's 0-based index) says where records came from.
    Unknown fields are kept (see ``keep_extra``).  Raises
    ``ConfigurationError`` now, before reading anything, if ``validation`` is
    unknown or ``quarantine`` has no sink; ``QuarantineError`` while
    iterating if the sink cannot store a record.
    """
    _check_setup(model, validation, sink)
    return ValidatedRecords(
        records,
        model,
        validation=validation,
        sink=sink,
        connector=connector,
        operation=operation,
        source=source,
        on_quarantine=on_quarantine,
        clock=clock or _SYSTEM_CLOCK,
        redactor=redactor or _REDACTOR,
        telemetry=telemetry,
    )


def validate_one(
    data: Any,
    model: type[T],
    *,
    validation: Validation = "strict",
    sink: QuarantineSink | None = None,
    connector: str,
    operation: str,
    source: str | None = None,
    on_quarantine: Callable[[QuarantinedRecord], None] | None = None,
    clock: Clock | None = None,
    redactor: Redactor | None = None,
    telemetry: Telemetry | None = None,
) -> T | None:
    """Validate one record (a single-record read): the model instance, or None if quarantined.

    ``strict`` (the default) raises ``InvalidRecord`` for an invalid record;
    ``quarantine`` puts it in ``sink`` and returns None.
    """
    # The common case first: a valid record costs one validation, nothing else.
    if isinstance(data, model):
        return data
    _check_setup(model, validation, sink)
    try:
        return keep_extra(model).model_validate(data)
    except ValidationError:
        pass  # the reader below rejects it: raises (strict) or quarantines it
    reader = validate_records(
        (data,),
        model,
        validation=validation,
        sink=sink,
        connector=connector,
        operation=operation,
        source=source,
        on_quarantine=on_quarantine,
        clock=clock,
        redactor=redactor,
        telemetry=telemetry,
    )
    return next(reader, None)


def _check_setup(model: type[BaseModel], validation: str, sink: QuarantineSink | None) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigurationError(f"model must be a pydantic BaseModel subclass, got {model!r}")
    if validation not in _VALIDATIONS:
        raise ConfigurationError(
            f"validation must be one of {', '.join(_VALIDATIONS)}, got {validation!r}"
        )
    if validation == "quarantine" and sink is None:
        raise ConfigurationError(
            "validation='quarantine' needs a sink for the invalid records: pass "
            "sink=open_quarantine('quarantine.jsonl') (or a SQLiteQuarantine, MemoryQuarantine)"
        )
