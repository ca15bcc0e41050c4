"""The record of a payload a read could not validate, and how it is made safe to keep.

``QuarantinedRecord`` holds the payload as received, with values under
sensitive keys masked, pydantic's errors without the input (``RecordError``)
and where it came from; ``InvalidRecord`` is the refusal of a ``strict`` read,
naming the failing fields, never their values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, cast, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
)
from pydantic_core import to_jsonable_python
from pydantic_core.core_schema import ErrorType

from .._errors import HandrailError
from .._ids import new_id
from ..redaction import Redactor

__all__ = ["InvalidRecord", "QuarantinedRecord", "RecordError", "qualified_name"]

# pydantic's own error types have messages built from the schema, never from
# the input; a validator's ``value_error`` or ``assertion_error`` (or a custom
# type) may quote the value, so only its type goes into an exception message.
_SCHEMA_MESSAGES = frozenset(get_args(ErrorType)) - {"value_error", "assertion_error"}


class RecordError(BaseModel):
    """One validation error of a record: where (``loc``), what (``msg``) and its ``type``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loc: tuple[str | int, ...]
    msg: str
    type: str

    @property
    def where(self) -> str:
        """``loc`` as a dotted path (``address.zip``, ``tags[2]``); ``<record>`` for the whole."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "<record>"

    def __str__(self) -> str:
        return f"{self.where}: {self.msg}"


class InvalidRecord(HandrailError, ValueError):
    """A read in ``strict`` mode met a record its output model rejects; the read stopped.

    ``.connector``, ``.operation``, ``.index`` (0-based position in the read) and
    ``.errors`` (``RecordError``s) say which and why.  The message names the
    failing fields, never their values.
    """

    def __init__(
        self,
        *,
        connector: str,
        operation: str,
        index: int,
        model: str,
        errors: tuple[RecordError, ...],
    ) -> None:
        self.connector = connector
        self.operation = operation
        self.index = index
        self.model = model
        self.errors = errors
        fields = "; ".join(
            f"{e.where}: {e.msg}" if e.type in _SCHEMA_MESSAGES else f"{e.where}: {e.type}"
            for e in errors
        )
        short = model.rpartition(".")[2]
        super().__init__(
            f"{operation}: record {index} is not a valid {short}: {fields} "
            "(use validation='quarantine' to set invalid records aside and read on)"
        )


# -- the record -----------------------------------------------------------------------


class QuarantinedRecord(BaseModel):
    """A record a read could not validate, set aside for a human.

    ``raw`` is the payload as received, with values under sensitive keys
    masked; ``source`` says where it came from (URL credentials and query
    strings masked); ``index`` is its 0-based position in the read;
    ``errors`` are pydantic's, without the input; ``model`` is the output
    model's qualified name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    at: AwareDatetime
    connector: str
    operation: str
    source: str | None = None
    index: int | None = None
    raw: JsonValue
    errors: tuple[RecordError, ...] = Field(min_length=1)
    model: str

    @field_validator("at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)

    @classmethod
    def from_error(
        cls,
        raw: Any,
        error: ValidationError,
        *,
        connector: str,
        operation: str,
        model: type[BaseModel] | str,
        source: str | None = None,
        index: int | None = None,
        at: dt.datetime | None = None,
        redactor: Redactor | None = None,
    ) -> QuarantinedRecord:
        """The record for ``raw``, which failed validation with ``error``; secrets masked.

        Values under sensitive keys are masked in ``raw``; those secrets, URL
        credentials and query strings are scrubbed from ``source`` and from the
        error messages.
        """
        redactor = redactor or Redactor()
        at = at or dt.datetime.now(dt.UTC)
        secrets = redactor.secrets_in(raw)
        errors = tuple(
            RecordError(
                loc=tuple(e["loc"]),
                msg=redactor.scrub(e["msg"], secrets),
                type=e["type"],
            )
            for e in error.errors(include_url=False, include_input=False, include_context=False)
        )
        if not errors:  # pragma: no cover - pydantic never raises an empty ValidationError
            errors = (RecordError(loc=(), msg=str(error), type="invalid"),)
        return cls(
            id=new_id(int(at.timestamp() * 1000)),
            at=at,
            connector=connector,
            operation=operation,
            source=None if source is None else _shown_source(source, secrets, redactor),
            index=index,
            raw=_jsonable(redactor.scrub_strings(redactor.redact(raw), secrets)),
            errors=errors,
            model=model if isinstance(model, str) else qualified_name(model),
        )


def _shown_source(source: str, secrets: Iterable[str], redactor: Redactor) -> str:
    """``source`` without the record's secrets, URL credentials or secret-looking parameters.

    Page parameters (``page=2``, ``cursor=...``) stay: they say where to look.
    ``Redactor.mask_urls`` finds the URLs in linear time (a regular expression
    retrying a scheme from every letter of a long run was quadratic).
    """
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            source = source.replace(secret, redactor.mask)
    return redactor.mask_urls(source)


def _jsonable(value: Any) -> JsonValue:
    try:
        return cast(JsonValue, to_jsonable_python(value, fallback=repr))
    except ValueError:  # e.g. bytes that are not UTF-8
        return repr(value)


def qualified_name(model: type[BaseModel]) -> str:
    return f"{model.__module__}.{model.__qualname__}"
