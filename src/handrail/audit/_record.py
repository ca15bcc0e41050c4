"""``AuditRecord``, and how an ``AuditEntry`` becomes a record.

The pure core of an append, in two steps.  ``prepare`` takes an entry (who,
what, on what, with which arguments, decided how, ended how), redacts it,
checks it, and encodes everything that does not depend on the chain.
``chain`` adds the id, sequence number, time and previous hash, and seals
the record: its canonical JSON and SHA-256.  No I/O here.

The JSON is written by hand, key by key in sorted order, with the same
encoders ``canonical`` uses: it is the hot path of every append, and a
property test checks that it always equals ``canonical`` of the record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._effect import Effect
from .._encoding import canonical, digest_text, encode_revealing
from .._ids import new_id
from ._entry import AuditEntry
from ._line import format_timestamp
from ._outcome import Outcome
from ._redact import NOT_PLAIN, PartRedactor

__all__ = [
    "FORMAT_VERSION",
    "MAX_ERROR_MESSAGE",
    "AuditRecord",
    "Prepared",
    "UnreadableRecord",
    "chain",
    "decode",
    "prepare",
    "validate",
]

FORMAT_VERSION = 2
"""The newest record format this version of handrail reads and writes (``format_version``).

1: every field but ``details``.  2: ``details`` too.  A record is written as
version 1 unless it has ``details``, so logs without them stay byte for byte
what earlier versions wrote, and an earlier reader refuses only the records
it cannot read.
"""

MAX_ERROR_MESSAGE = 4096
"""Error messages longer than this many characters are cut, saying how much was cut."""


class AuditRecord(BaseModel):
    """One entry of the audit trail: who did what, as whom, why it was allowed, and how it ended.

    ``agent`` and ``on_behalf_of`` are the principal (the agent's id and the
    id of the user it acted for).  ``args``, ``resource`` and ``context`` are
    redacted; ``args_digest`` is a digest of the full arguments (see
    ``handrail.audit.args_digest``).  ``effect``, ``rule_id`` and ``reason``
    are the policy decision, when there was one.  ``error_message`` is
    scrubbed of the secrets found in the request.  ``seq`` numbers the records
    of a log from 0 without gaps; ``hash`` is the SHA-256 of the record's
    canonical JSON (every field but ``hash``, ``prev_hash`` included), and
    ``prev_hash`` the previous record's ``hash`` (64 zeros for the first).
    ``details`` (redacted) says how a call ended beyond its outcome; a record
    has it only when one was given, and then has ``format_version`` 2.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str
    seq: int = Field(ge=0)
    timestamp: dt.datetime
    agent: str
    on_behalf_of: str | None = None
    action: str
    resource: dict[str, Any] | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    args_digest: str
    context: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] | None = None
    effect: Effect | None = None
    rule_id: str | None = None
    reason: str | None = None
    outcome: Outcome
    error_type: str | None = None
    error_message: str | None = None
    duration: dt.timedelta | None = None
    attempts: int = Field(default=1, ge=0)
    trace_id: str | None = None
    span_id: str | None = None
    escalation_id: str | None = None
    idempotency_key: str | None = None
    format_version: int = 1
    prev_hash: str
    hash: str

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if not 1 <= version <= FORMAT_VERSION:
            raise ValueError(
                f"format_version {version} is not one this version of handrail reads "
                f"(1 to {FORMAT_VERSION}); a newer handrail may read it"
            )
        return version

    @model_validator(mode="after")
    def _details_need_version_2(self) -> AuditRecord:
        if self.details is not None and self.format_version < 2:
            raise ValueError("a record with 'details' has format_version 2 or later")
        return self

    def to_json(self) -> str:
        """The record as stored: canonical JSON with ``hash`` last, no newline."""
        body = self.model_dump(exclude={"hash"} if self.details is not None else _NO_DETAILS)
        body["timestamp"] = format_timestamp(self.timestamp)
        body["duration"] = _seconds(self.duration)
        body["effect"] = None if self.effect is None else self.effect.value
        body["outcome"] = self.outcome.value
        return canonical(body)[:-1] + f',"hash":"{self.hash}"}}'


def _seconds(duration: dt.timedelta | None) -> float | None:
    # Rounded to the microsecond, so reading it back as a timedelta and
    # writing it again gives the same text.
    return None if duration is None else round(duration.total_seconds(), 6)


_NO_DETAILS = {"hash", "details"}  # absent, not null: records without details are format 1
_FIELDS_SET = frozenset(AuditRecord.model_fields)
_set = object.__setattr__
_new_record = AuditRecord.__new__
_UTC = dt.UTC


# -- reading a record back -------------------------------------------------------

# Every field without a default: a JSON object lacking one is not an audit record.
_REQUIRED = tuple(sorted(n for n, f in AuditRecord.model_fields.items() if f.is_required()))
# The fields the readers' filters compare before validating: text in every record written.
_FILTERED = ("action", "agent", "outcome", "timestamp")
# A problem quotes at most this much of what it found (a key may be a megabyte long).
_MAX_QUOTED = 80


class UnreadableRecord(Exception):
    """A stored line is not an audit record; the message says why, in a few words.

    Internal: readers turn it into ``AuditIntegrityError`` naming the file and line.
    """


def decode(raw: bytes) -> dict[str, Any]:
    """The fields of one stored line, checked to have a record's shape (but not validated).

    Raises ``UnreadableRecord`` for bytes that are not UTF-8, not JSON, nest
    too deeply, hold a number too long to read, or are not an object with
    every field a record must have.  Time and memory are linear in the line.
    """
    try:
        fields = json.loads(raw)
    except RecursionError:
        raise UnreadableRecord("its JSON nests too deeply to read") from None
    except UnicodeDecodeError as exc:
        raise UnreadableRecord(f"not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        # json refuses integers longer than sys.get_int_max_str_digits() (4300):
        # reading them would take time quadratic in their length.
        what = "a number too long to read" if "digits" in str(exc) else f"not JSON ({exc})"
        raise UnreadableRecord(what) from None
    if type(fields) is not dict:
        raise UnreadableRecord(f"not a JSON object but {_json_kind(fields)}")
    for name in _REQUIRED:
        if name not in fields:
            raise UnreadableRecord(f"no {name!r} field")
    for name in _FILTERED:
        if type(fields[name]) is not str:
            raise UnreadableRecord(f"field {name!r} is {_json_kind(fields[name])}, not text")
    return fields


def validate(fields: dict[str, Any]) -> AuditRecord:
    """The ``AuditRecord`` of fields ``decode`` returned; ``UnreadableRecord`` if they fail.

    Its timestamp is checked to have an offset and to convert to UTC, as
    every reader and printer of records assumes.
    """
    try:
        record = AuditRecord.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        problem = f"field {_quoted(where)}: {error['msg']}" if where else error["msg"]
        more = exc.error_count() - 1
        raise UnreadableRecord(problem + (f" (and {more} more)" if more else "")) from None
    except RecursionError:
        raise UnreadableRecord("its fields nest too deeply to read") from None
    stamp = record.timestamp
    if stamp.utcoffset() is None:
        raise UnreadableRecord("field 'timestamp': no UTC offset")
    try:
        stamp.astimezone(dt.UTC)
    except OverflowError:
        raise UnreadableRecord("field 'timestamp': out of range in UTC") from None
    return record


def _json_kind(value: object) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    kinds |= {int: "a number", float: "a number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _quoted(text: str) -> str:
    """``text`` quoted with its control characters escaped, cut short if long."""
    quoted = repr(text)
    if len(quoted) > _MAX_QUOTED:
        quoted = f"{quoted[:_MAX_QUOTED]}... ({len(quoted) - _MAX_QUOTED} more characters)"
    return quoted


# -- building a record -------------------------------------------------------------

_OUTCOMES: dict[object, Outcome] = {**{o: o for o in Outcome}, **{o.value: o for o in Outcome}}
_EFFECTS: dict[object, Effect] = {**{e: e for e in Effect}, **{e.value: e for e in Effect}}
_EMPTY_DIGEST = digest_text("{}", None)
_MIN_SECRET = 4  # Redactor.scrub leaves shorter strings alone: too likely by chance
_s = encode_basestring  # json's own string encoder, as canonical uses with ensure_ascii=False
_sha256 = hashlib.sha256
_EMPTY: dict[str, Any] = {}  # an absent context, never handed out (the record gets a copy)


Prepared = tuple[tuple[str, str, str, str, str], dict[str, Any]]
"""A record before it joins the chain: its JSON around the gaps, and its model values.

The gaps are the id, ``prev_hash``, ``seq`` and the timestamp, in that
(sorted) order; the five strings are the stretches of JSON between them.  The
values hold placeholders for the gaps, in the model's order.  A plain tuple:
one is made for every append.
"""


def prepare(
    redaction: PartRedactor, entry: AuditEntry, digest_key: bytes | None = None
) -> Prepared:
    """Redact and check ``entry`` and encode all of its record that does not depend on the chain.

    Secrets in ``args``, ``resource``, ``context`` and ``details`` are
    masked; the same secrets are scrubbed from ``reason`` and the error
    message.  Raises ``TypeError``/``ValueError`` for a malformed field,
    before anything is written.
    """
    if type(entry) is not AuditEntry and not isinstance(entry, AuditEntry):
        raise TypeError(
            "AuditLog.append takes an AuditEntry (build one with AuditEntry.of(principal, "
            f"action, outcome, ...) or AuditEntry.for_decision(decision)), got {_kind(entry)}"
        )
    (action, agent, outcome, on_behalf_of, resource, args, context, effect, rule_id, reason,
     error, error_type, error_message, duration, attempts, trace_id, span_id, escalation_id,
     idempotency_key, details) = entry  # fmt: skip
    if type(action) is not str or not action:
        raise TypeError(f"audit record field 'action' must be a non-empty str, got {action!r}")
    if type(agent) is not str or not agent:
        raise TypeError(f"audit record field 'agent' must be a non-empty str, got {agent!r}")
    if type(attempts) is not int or attempts < 0:
        raise ValueError(f"audit record field 'attempts' must be an int >= 0, got {attempts!r}")
    seconds: float | None = None
    if duration is not None:
        if not isinstance(duration, dt.timedelta):
            raise TypeError(
                f"audit record field 'duration' must be a timedelta, got {type(duration).__name__}"
            )
        # Kept to the microsecond, so the timedelta read back writes the same text.
        seconds = round(duration.total_seconds(), 6)
        duration = dt.timedelta(seconds=seconds)
    # `type(x) is` first: hashing an enum member runs Python code.
    if type(outcome) is Outcome:
        kind = outcome
    else:
        try:
            kind = _OUTCOMES[outcome]
        except (KeyError, TypeError):
            names = ", ".join(o.value for o in Outcome)
            raise ValueError(
                f"unknown audit outcome {outcome!r} (expected one of {names})"
            ) from None
    if effect is not None and type(effect) is not Effect:
        try:
            effect = _EFFECTS[effect]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown effect {effect!r} (expected allow, audit, escalate, deny)"
            ) from None
    if reason is not None and type(reason) is not str:
        _check_text("reason", reason)
    if error_message is not None and type(error_message) is not str:
        _check_text("error_message", error_message)
    # The raw secrets masked in the parts, in order; None: a part went through
    # the Redactor itself (ask it, below).  A part's own are kept only if it
    # was masked, except for args (as each part's were merged before).
    found: list[str] = []
    collected = True
    walk = redaction.fast  # None: redaction.redact for each part
    try:
        if not args:
            full_args: Any = {}
            safe_args: Any = full_args
        else:
            full_args = args if type(args) is dict else dict(args)
            safe_args = NOT_PLAIN if walk is None else walk(full_args, found)
            if safe_args is NOT_PLAIN:
                full_args, safe_args, ok = _redact_part(redaction, full_args, "args", walk, found)
                collected = collected and ok
        full_context: Any = _EMPTY
        safe_context: Any = _EMPTY
        if context:
            full_context = context if type(context) is dict else dict(context)
            mark = len(found)
            safe_context = NOT_PLAIN if walk is None else walk(full_context, found)
            if safe_context is NOT_PLAIN:
                full_context, safe_context, ok = _redact_part(
                    redaction, full_context, "context", walk, found, keep=False
                )
                collected = collected and ok
            elif safe_context is full_context and len(found) > mark:
                del found[mark:]
        full_resource: Any = None
        safe_resource: Any = None
        if resource is not None:
            resource_type = type(resource)
            if resource_type is dict:
                full_resource = resource
            elif _is_mapping(resource_type):
                full_resource = dict(resource)  # type: ignore[arg-type]
            else:
                full_resource = _resource_fields(resource)
            mark = len(found)
            safe_resource = NOT_PLAIN if walk is None else walk(full_resource, found)
            if safe_resource is NOT_PLAIN:
                full_resource, safe_resource, ok = _redact_part(
                    redaction, full_resource, "resource", walk, found, keep=False
                )
                collected = collected and ok
            elif safe_resource is full_resource and len(found) > mark:
                del found[mark:]
        full_details: Any = None
        safe_details: Any = None
        if details is not None:
            full_details = details if type(details) is dict else _mapping("details", details)
            mark = len(found)
            safe_details = NOT_PLAIN if walk is None else walk(full_details, found)
            if safe_details is NOT_PLAIN:
                full_details, safe_details, ok = _redact_part(
                    redaction, full_details, "details", walk, found, keep=False
                )
                collected = collected and ok
            elif safe_details is full_details and len(found) > mark:
                del found[mark:]
        # A part is masked when its copy is not the part itself.
        masked = (
            safe_args is not full_args
            or safe_context is not full_context
            or safe_resource is not full_resource
            or safe_details is not full_details
        )
        secrets = found if collected else None

        if error is not None:
            error_type = error_type or _error_type(error)
            error_message = str(error) if error_message is None else error_message
        redactor = redaction.redactor
        scrub_args = False
        if masked:
            # A secret masked in one place is scrubbed from every other string
            # of the record too: a note or a URL may repeat it unmarked.
            if secrets is None:
                parts = [full_args, full_context, full_resource, full_details]
                secrets = list(redactor.secrets_in(parts))
            secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
            if secrets:
                mask = redactor.mask
                scrub_args = True  # below, once its JSON says whether it must be
                if safe_context:
                    safe_context = _scrubbed(safe_context, secrets, mask)
                if safe_resource is not None:
                    safe_resource = _scrubbed(safe_resource, secrets, mask)
                if safe_details is not None:
                    safe_details = _scrubbed(safe_details, secrets, mask)
        # Free text is scrubbed whatever was masked: it may hold credentials in URLs.
        # Redactor.scrub is skipped when it could change nothing: no secret, no URL.
        skip_scrub = redaction.standard_scrub and not secrets
        if reason and not (skip_scrub and "://" not in reason):
            reason = redactor.scrub(reason, secrets or ())
        if error_message and not (skip_scrub and "://" not in error_message):
            error_message = redactor.scrub(error_message, secrets or ())

        if not full_args and digest_key is None:
            args_text = "{}"
            digest = _EMPTY_DIGEST
            safe_args = {}
        else:
            args_text = canonical(safe_args)
            if scrub_args and secrets:
                # JSON escapes each character alone: a string holding a secret
                # holds it escaped in the text.  No secret there, nothing to scrub.
                for secret in secrets:
                    if _s(secret)[1:-1] in args_text:
                        safe_args = _scrubbed(safe_args, secrets, mask)
                        args_text = canonical(safe_args)
                        break
            if safe_args is full_args:
                # Nothing masked: one encoding serves the digest and the record.
                if digest_key is None:  # digest_text, inline
                    data = args_text.encode("utf-8", "surrogatepass")
                    digest = "sha256:" + _sha256(data).hexdigest()
                else:
                    digest = digest_text(args_text, digest_key)
                safe_args = dict(full_args)  # the record's own copy, not the caller's dict
            else:
                digest = digest_text(encode_revealing(full_args), digest_key)
        context_text = canonical(safe_context) if safe_context else "{}"
        resource_text = "null" if safe_resource is None else canonical(safe_resource)
        if safe_details is None:
            # No "details" key at all: such a record is format 1, as before there were details.
            details_text = ""
            version = 1
        else:
            details_text = f'"details":{canonical(safe_details)},'
            version = 2
    except RecursionError:
        raise ValueError(
            "audit record: the args, resource, context or details nest too deeply "
            "(or contain themselves)"
        ) from None

    if error_message is not None and len(error_message) > MAX_ERROR_MESSAGE:
        # Cut after scrubbing, so no secret survives half-cut at the edge.
        cut = len(error_message) - MAX_ERROR_MESSAGE
        error_message = f"{error_message[:MAX_ERROR_MESSAGE]}... ({cut} more characters)"

    n = "null"
    try:
        parts_text = (
            f'{{"action":{_s(action)},"agent":{_s(agent)},"args":{args_text},'
            f'"args_digest":"{digest}","attempts":{attempts},"context":{context_text},'
            f'{details_text}"duration":{n if seconds is None else repr(seconds)},'
            f'"effect":{n if effect is None else _s(effect)},'
            f'"error_message":{n if error_message is None else _s(error_message)},'
            f'"error_type":{n if error_type is None else _s(error_type)},'
            f'"escalation_id":{n if escalation_id is None else _s(escalation_id)},'
            f'"format_version":{version},"id":"',
            f'","idempotency_key":{n if idempotency_key is None else _s(idempotency_key)},'
            f'"on_behalf_of":{n if on_behalf_of is None else _s(on_behalf_of)},'
            f'"outcome":{_s(kind)},"prev_hash":"',
            f'","reason":{n if reason is None else _s(reason)},"resource":{resource_text},'
            f'"rule_id":{n if rule_id is None else _s(rule_id)},"seq":',
            f',"span_id":{n if span_id is None else _s(span_id)},"timestamp":"',
            f'","trace_id":{n if trace_id is None else _s(trace_id)}',
        )
    except TypeError:  # json's string encoder met something else: name it
        texts = (on_behalf_of, rule_id, error_type, trace_id, span_id, escalation_id,
                 idempotency_key)  # fmt: skip
        for name, value in zip(_OPTIONAL_TEXTS, texts, strict=True):
            _check_text(name, value)
        raise  # pragma: no cover - every value was a str or None
    # The template's copy, then what differs from it: a copy is one memcpy, a
    # 26-key dict display inserts every key (it cost 1.3 µs of each append).
    values = _VALUES.copy()
    values["agent"] = agent
    values["action"] = action
    values["args"] = safe_args
    values["args_digest"] = digest
    values["context"] = {} if safe_context is _EMPTY else safe_context
    values["outcome"] = kind
    if on_behalf_of is not None:
        values["on_behalf_of"] = on_behalf_of
    if safe_resource is not None:
        values["resource"] = safe_resource
    if safe_details is not None:
        values["details"] = safe_details
        values["format_version"] = version
    if effect is not None:
        values["effect"] = effect
    if rule_id is not None:
        values["rule_id"] = rule_id
    if reason is not None:
        values["reason"] = reason
    if error_type is not None:
        values["error_type"] = error_type
    if error_message is not None:
        values["error_message"] = error_message
    if duration is not None:
        values["duration"] = duration
    if attempts != 1:
        values["attempts"] = attempts
    if trace_id is not None:
        values["trace_id"] = trace_id
    if span_id is not None:
        values["span_id"] = span_id
    if escalation_id is not None:
        values["escalation_id"] = escalation_id
    if idempotency_key is not None:
        values["idempotency_key"] = idempotency_key
    return parts_text, values


# A record's fields in the model's order, as prepare starts them: None, and
# placeholders for what chain fills in (id, seq, timestamp, prev_hash, hash).
_VALUES: dict[str, Any] = dict.fromkeys(AuditRecord.model_fields)
_VALUES.update(id="", seq=0, attempts=1, format_version=1, prev_hash="", hash="")

_OPTIONAL_TEXTS = (
    "on_behalf_of",
    "rule_id",
    "error_type",
    "trace_id",
    "span_id",
    "escalation_id",
    "idempotency_key",
)


_MAPPING_TYPES: dict[type, bool] = {}
_MAPPING_TYPES_LIMIT = 256


def _is_mapping(kind: type) -> bool:
    """Whether instances of ``kind`` are mappings; remembered per type, since an ABC's
    ``isinstance`` costs more than the rest of reading a resource."""
    known = _MAPPING_TYPES.get(kind)
    if known is None:
        known = issubclass(kind, Mapping)
        if len(_MAPPING_TYPES) < _MAPPING_TYPES_LIMIT:
            _MAPPING_TYPES[kind] = known
    return known


def _resource_fields(resource: Any) -> dict[str, Any]:
    """A resource object's fields (``handrail.Resource``, or anything shaped like it)."""
    try:
        return {"attributes": resource.attributes, "id": resource.id, "type": resource.type}
    except AttributeError:
        raise TypeError(
            "audit record field 'resource' must be a mapping or have type, id and attributes, "
            f"got {_kind(resource)}"
        ) from None


def _mapping(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"audit record field {name!r} must be a mapping, got {_kind(value)}")
    return dict(value)


def _kind(value: object) -> str:
    return type(value).__name__


def _check_text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"audit record field {name!r} must be a str or None, got {type(value).__name__}"
        )


def _scrubbed(value: Any, secrets: list[str], mask: str) -> Any:
    """``value`` (plain) with every secret in every string masked; itself if none changed."""
    kind = type(value)
    if kind is str:
        for secret in secrets:  # longest first, so no secret is half-masked by another
            if secret in value:
                value = value.replace(secret, mask)
        return value
    if kind is dict:
        copy = {key: _scrubbed(item, secrets, mask) for key, item in value.items()}
        return value if all(copy[k] is v for k, v in value.items()) else copy
    if kind is list:
        items = [_scrubbed(item, secrets, mask) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def _redact_part(
    redaction: PartRedactor,
    part: dict[str, Any],
    path: str,
    walked: object,
    found: list[str],
    *,
    keep: bool = True,
) -> tuple[Any, Any, bool]:
    """(the part as plain data, its redacted copy, whether its secrets are in ``found``),
    the slow way: ``redaction.slow`` if the fast walk was tried, else ``redaction.redact``.

    The part's secrets are added to ``found`` if it was masked, or whatever
    with ``keep``; the copy is the part itself (by identity) if nothing was masked.
    """
    redact = redaction.redact if walked is None else redaction.slow
    full, safe, more, same = redact(part, path)
    if same:
        safe = full
    if more is None:
        return full, safe, False
    if keep or not same:
        found.extend(more)
    return full, safe, True


def _error_type(error: BaseException) -> str:
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def chain(
    prepared: Prepared, *, seq: int, prev_hash: str, now: dt.datetime
) -> tuple[bytes, AuditRecord]:
    """Seal ``prepared`` as record ``seq`` after ``prev_hash``: (the stored line, the record).

    Adds a fresh id and the timestamp (``now``, in UTC).
    """
    if now.tzinfo is not _UTC:
        now = now.astimezone(_UTC)
    seconds = now.timestamp()
    record_id = new_id(int(seconds * 1000))
    second = seconds // 1
    cached = _Second.cached
    if cached[0] != second:
        # One tuple, swapped in whole: threads writing other logs read it too.
        cached = _Second.cached = (second, now.isoformat(timespec="seconds")[:-6])
    (a, b, c, d, e), fields = prepared
    # zfill, not a format spec: parsing ":06d" costs more than the rest of the stamp.
    micro = str(now.microsecond).zfill(6)
    body = f"{a}{record_id}{b}{prev_hash}{c}{seq}{d}{cached[1]}.{micro}Z{e}"
    try:
        data = f"{body}}}".encode()
    except UnicodeEncodeError:
        return _chain_with_surrogates(f"{body}}}")
    digest = _sha256(data).hexdigest()
    # The placeholders keep the fields in the model's order.
    fields["id"] = record_id
    fields["seq"] = seq
    fields["timestamp"] = now
    fields["prev_hash"] = prev_hash
    fields["hash"] = digest
    # The AuditRecord, built without validation from fields built and checked
    # above: validation would cost as much as the rest of the append.  That it
    # equals AuditRecord.model_validate of the line is tested.
    record = _new_record(AuditRecord)
    _set(record, "__dict__", fields)
    _set(record, "__pydantic_fields_set__", _FIELDS_SET)
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return f'{body},"hash":"{digest}"}}\n'.encode(), record


class _Second:
    """The last second a timestamp was written for, and its text (date and time, no fraction)."""

    cached: tuple[float, str] = (-1.0, "")


def _chain_with_surrogates(body: str) -> tuple[bytes, AuditRecord]:
    """Seal a body holding a lone surrogate, which UTF-8 cannot store: as ``?``.

    The record returned is read back from the line, so it is the one stored.
    """
    data = body.encode("utf-8", "replace")
    digest = hashlib.sha256(data).hexdigest()
    line = b'%s,"hash":"%s"}' % (data[:-1], digest.encode("ascii"))
    return line + b"\n", AuditRecord.model_validate(json.loads(line))
