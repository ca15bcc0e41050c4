"""Every error handrail raises, in one place.

The tree is split by what the caller does next::

    HandrailError                  catch-all for handrail's own failures
    ├── Refusal                    a decision refused the call (never retried)
    │   ├── PermissionDenied       refuse: the policy (or a failure in it) said no
    │   └── EscalationRequired     wait: a human must decide before the action runs
    ├── CircuitOpen                retry later: calls to a failing system are paused
    ├── WriteNotRetried            a write failed once and was not retried (no idempotency key)
    ├── CredentialError            a credential is missing, expired or could not be fetched
    ├── EscalationError            an escalation could not be changed as asked; nothing changed
    │   ├── UnknownEscalation      no escalation has this id (also a LookupError)
    │   ├── IllegalTransition      its state forbids the change (e.g. approving an expired one)
    │   ├── NotADecider            this person may not decide at this level (audited)
    │   ├── NotAuthenticated       no verified identity: a bare name, a forged, expired, reused link
    │   ├── AlreadyExecuted        the approved action already ran once; it never runs twice
    │   └── ExternalIdConflict     an external id already names a case for another request
    ├── ConnectorError             a connector operation failed before or after the call
    │   └── InvalidInput           its arguments fail the operation's input model (also ValueError)
    ├── AuditError                 the audit trail could not be written or read
    │   └── AuditIntegrityError    the audit trail fails verification (edited, torn, ...)
    └── ConfigurationError         fix the configuration (also a ValueError)
        └── PolicyError            a policy or its test cases are malformed

Each carries the data a caller needs (``.decision``, ``.path``, ``.line``), not
only a message.  The two refusals carry a ``Decision``, a policy type, so they
are defined in ``handrail.policy._refusals`` (this module is the foundation:
it imports no package); every other error is defined here.  Third-party
errors are translated at one boundary with ``raise ... from exc``; the
user's own exceptions pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


class HandrailError(Exception):
    """The root of every error handrail raises."""


class Refusal(HandrailError):
    """A decision refused the call; nothing ran.  Never retried: it would be refused again.

    Its two kinds carry the ``Decision``, so they live with it in
    ``handrail.policy`` (and are exported by ``handrail``): ``PermissionDenied``
    and ``EscalationRequired``.
    """


class EscalationError(HandrailError):
    """An escalation could not be changed as asked; ``.escalation_id`` names it.

    Nothing was changed: the escalation is exactly as it was before the call.
    """

    def __init__(self, escalation_id: str, message: str) -> None:
        self.escalation_id = escalation_id
        super().__init__(f"escalation {escalation_id}: {message}")


class UnknownEscalation(EscalationError, LookupError):
    """No escalation has this id in the store."""

    def __init__(self, escalation_id: str, where: str = "") -> None:
        at = f" in {where}" if where else ""
        super().__init__(escalation_id, f"no such escalation{at}")


class IllegalTransition(EscalationError):
    """The escalation's state does not allow this change (e.g. approving an expired one).

    ``.state`` is the state it is in, ``.attempted`` what was asked.
    """

    def __init__(self, escalation_id: str, state: str, attempted: str, detail: str = "") -> None:
        self.state = state
        self.attempted = attempted
        extra = f": {detail}" if detail else ""
        super().__init__(escalation_id, f"cannot {attempted} an escalation that is {state}{extra}")


class NotADecider(EscalationError):
    """``.by`` may not act on this escalation at its current level; the refusal is audited.

    ``.why`` (optional) says why when being listed is not the reason: the
    decider asked for the case themselves, or already approved at this level.
    """

    def __init__(
        self,
        escalation_id: str,
        by: str,
        level: int,
        allowed: tuple[str, ...],
        why: str = "",
    ) -> None:
        self.by = by
        self.level = level
        self.allowed = allowed
        self.why = why
        who = ", ".join(allowed) or "nobody"
        because = f" ({why})" if why else ""
        super().__init__(
            escalation_id,
            f"{by!r} may not decide at level {level}{because}; the deciders are: {who}",
        )


class NotAuthenticated(EscalationError):
    """The decider's identity was not verified; nothing changed.

    The router audits every refusal it makes; a front end audits its own on
    the case they name (``EscalationRouter.record_refusal``).

    Raised for a decision made without an ``Identity`` (a bare name), and by
    authenticators for a forged, expired, reused or misbound credential.
    ``.why`` says which, without echoing the credential.
    """

    def __init__(self, escalation_id: str, why: str) -> None:
        self.why = why
        super().__init__(escalation_id, f"not authenticated: {why}")


class AlreadyExecuted(EscalationError):
    """The approved action was already run once (by this or another worker); it is not run again."""

    def __init__(self, escalation_id: str, by: str | None = None) -> None:
        self.by = by
        who = f" by {by}" if by else ""
        super().__init__(escalation_id, f"its approved action was already executed{who}")


class ExternalIdConflict(EscalationError):
    """``.external_id`` already names escalation ``.escalation_id``, opened for another request.

    An external id (a framework's tool-call id) opens one case for one
    request: the same request under the same id returns that case, a
    different one (another action, principal, resource or arguments) is
    refused, and nothing is opened.
    """

    def __init__(self, escalation_id: str, external_id: str) -> None:
        self.external_id = external_id
        super().__init__(
            escalation_id,
            f"the external id {external_id!r} was opened for a different request "
            "(action, principal, resource or arguments differ); a new request needs a new "
            "external id",
        )


class ConfigurationError(HandrailError, ValueError):
    """handrail was set up wrongly (a malformed action name, a bad argument); fix the code."""


class CircuitOpen(HandrailError):
    """The circuit breaker ``.name`` is open; no call was made.  Try again after ``.retry_at``."""

    def __init__(self, name: str, retry_at: datetime | None = None) -> None:
        self.name = name
        self.retry_at = retry_at
        when = f" until {retry_at.isoformat()}" if retry_at is not None else ""
        super().__init__(f"circuit {name!r} is open{when}: calls fail fast while it recovers")


class WriteNotRetried(HandrailError):
    """A write failed with a transient error and was not retried: it has no idempotency key.

    Retrying a write without one could apply it twice.  The original error is
    ``__cause__``.  Give the write a key to make it retryable: a call's
    ``idempotency_key=`` takes the key; a decorator's names the argument
    that carries it.
    """

    def __init__(self, action: str, cause: BaseException) -> None:
        self.action = action
        super().__init__(
            f"{action}: failed with {type(cause).__name__} and was not retried: "
            "a write is retried only when it carries an idempotency key"
        )


class CredentialError(HandrailError):
    """A credential is missing, expired or could not be fetched; no request was sent with it.

    ``.name`` is the credential, ``.where`` where it was looked for
    (``environment variable CRM_TOKEN``, ``file /run/secrets/crm_token``, a
    token URL).  The message says what to fix and never contains the secret.
    """

    def __init__(self, name: str, where: str, message: str) -> None:
        self.name = name
        self.where = where
        super().__init__(f"credential {name!r} {message}")


class ConnectorError(HandrailError):
    """A connector operation could not be carried out as asked; ``.operation`` names it."""

    def __init__(self, operation: str, message: str) -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}")


class InvalidInput(ConnectorError, ValueError):
    """The arguments of a connector operation fail its input model; nothing was sent.

    ``.errors`` lists each failing field (location, message, type) without
    the values given, which may be secrets.
    """

    def __init__(self, operation: str, errors: Sequence[Mapping[str, Any]]) -> None:
        self.errors = list(errors)
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '(input)'}: {e.get('msg', '')}"
            for e in errors
        )
        super().__init__(operation, f"invalid input: {fields}")


class AuditError(HandrailError):
    """The audit trail could not be written or read."""


class AuditIntegrityError(AuditError):
    """The audit trail fails verification.

    ``.path`` is the log, ``.index`` the 0-based position of the first bad
    record, ``.kind`` what was found: ``edited``, ``deleted``, ``inserted``,
    ``reordered``, ``torn`` or ``corrupt``.
    """

    def __init__(
        self, message: str, *, path: Path | None = None, index: int | None = None, kind: str = ""
    ) -> None:
        self.path = path
        self.index = index
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with a policy: what, and where (file, line, rule, field)."""

    message: str
    path: Path | None = None
    line: int | None = None
    rule_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        rule = f"rule {self.rule_id!r}: " if self.rule_id else ""
        field = f"{self.field}: " if self.field else ""
        return f"{where}{rule}{field}{self.message}"


class PolicyError(ConfigurationError):
    """A policy (or a policy test file) is malformed; nothing of it was used.

    ``.problems`` lists everything found; ``.path``, ``.line``, ``.rule_id`` and
    ``.field`` describe the first.
    """

    def __init__(self, problems: PolicyProblem | list[PolicyProblem] | str) -> None:
        if isinstance(problems, str):
            problems = PolicyProblem(problems)
        if isinstance(problems, PolicyProblem):
            problems = [problems]
        if not problems:
            raise ValueError("PolicyError needs at least one problem")
        self.problems: tuple[PolicyProblem, ...] = tuple(problems)
        first = self.problems[0]
        self.path = first.path
        self.line = first.line
        self.rule_id = first.rule_id
        self.field = first.field
        super().__init__("\n".join(str(p) for p in self.problems))
