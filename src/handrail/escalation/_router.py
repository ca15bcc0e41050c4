"""``EscalationRouter``: opens escalations, lets deciders act, fires SLA timers, delivers notices.

The router turns an ESCALATE decision into a durable case and moves it
through its states (``_machine``); the store makes each move atomic and
concurrency-safe (``_store``).  Side effects go through the store's outbox,
written in the same transaction as the move, so a crash between a move and
its notification or audit record loses neither: the next tick of any worker
delivers what is pending (at least once).  The router also delivers audit
records right after each move it makes, so the trail is current without a
worker.

Timers fire in ``tick()`` (sync), ``atick()`` or the ``run()`` worker loop:
``tick`` asks the store for what is due at the clock's now, so its cost
grows with the number due, not the number open.

Every method that does I/O has an async twin named ``a`` + its name
(``open``/``aopen``, ``wait_decision``/``await_decision``, ``tick``/``atick``):
the twin runs the store work in a thread, so it never blocks the event loop.
Every wait reads and pauses through the router's ``Clock``.

The class is written in parts: the waits (``_waiting``), the outbox and its
delivery (``_outbox``), the audit records of case events (``_audit_events``)
and the argument checks (``_router_checks``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import SecretBytes, SecretStr

from .._encoding import plain
from .._errors import (
    ConfigurationError,
    NotADecider,
    NotAuthenticated,
    UnknownEscalation,
)
from .._keys import derive_key, read_key
from .._names import canonical_name, canonical_names
from .._text import printable
from ..approvals import DecisionLinks, Identity
from ..clock import Clock, SystemClock
from ..policy import ActionRequest, Decision, Effect
from ..redaction import Redactor
from ..telemetry import Telemetry, default_telemetry
from . import _machine
from ._audit_events import AUDIT_TARGET
from ._fingerprint import request_fingerprint
from ._model import (
    Delivery,
    Escalation,
    EscalationPreview,
    EscalationState,
    Event,
    OnTimeout,
    Route,
    check_external_id,
)
from ._outbox import Outbox
from ._router_checks import (
    check_channels,
    check_duration,
    check_identity,
    check_routes,
    check_same_request,
    without_password,
)
from ._store import Change, EscalationStore
from ._waiting import Waiting

if TYPE_CHECKING:
    from ..audit import AuditLog
    from ._channels import Channel

__all__ = ["ROUTER_KEY_ENV", "EscalationRouter", "TickReport"]

ROUTER_KEY_ENV = "HANDRAIL_ROUTER_KEY"
"""The environment variable ``EscalationRouter(key=None)`` reads when it is built."""

_LEASE = timedelta(seconds=60)
# The label of the fingerprint's sub-key: the router key may key other things too.
_FINGERPRINT_PURPOSE = b"handrail/fingerprint/v1"

Resolved = Callable[[Escalation], object]


class TickReport(NamedTuple):
    """What one tick did: escalations whose timers fired, notifications and audit records
    delivered, deliveries that failed (and will be retried or were given up)."""

    fired: int
    delivered: int
    failed: int


class EscalationRouter(Waiting, Outbox):
    """Routes escalated decisions to the humans who may decide them, under SLA timers.

    ``routes`` are the ``Route``\\ s a rule's ``escalate_to`` may name;
    ``store`` keeps the cases (an ``EscalationStore``, or a SQLite path or
    PostgreSQL URL for ``open_store``); ``channels`` deliver notifications;
    ``clock`` is read for every deadline (inject ``FakeClock`` in tests);
    ``audit`` receives a record for every transition, refusal and failed
    delivery; ``groups`` maps group names to member user ids for
    ``group:NAME`` deciders (the directory: see ``decide`` for who may
    act); ``on_resolved`` is called (in this process)
    with every escalation this router moves to a final state.  ``store_hint``
    is the ``--store`` value printed in the CLI commands notifications carry.
    ``key`` (at least 32 bytes; ``None`` reads ``HANDRAIL_ROUTER_KEY`` when
    the router is built) keys the fingerprint that binds an approval to the
    exact request (see ``fingerprint``); ``open``, ``preview`` and
    ``fingerprint`` need it, reading and deciding cases does not.  It is
    never shown (``repr``, errors, logs).
    Durations (``delivery_backoff``, ``poll_interval``: how often a wait
    looks at a case another process may change) are ``timedelta`` values; a
    number is refused with ``ConfigurationError``.  ``links`` signs a
    decision link for each user decider into every notice that asks for a
    decision (``Notification.links``), as it is sent: never stored.

    Thread-safe; the async methods may be used from any event loop.  Several
    routers (processes) may share one store: each due timer fires once.
    """

    def __init__(
        self,
        routes: Iterable[Route] | Mapping[str, Route],
        store: EscalationStore | str | os.PathLike[str],
        *,
        channels: Sequence[Channel] = (),
        clock: Clock | None = None,
        audit: AuditLog | None = None,
        groups: Mapping[str, Iterable[str]] | None = None,
        telemetry: Telemetry | None = None,
        redactor: Redactor | None = None,
        on_resolved: Resolved | Iterable[Resolved] = (),
        worker: str | None = None,
        store_hint: str | None = None,
        batch_size: int = 500,
        delivery_backoff: timedelta = timedelta(seconds=5),
        max_delivery_attempts: int = 10,
        poll_interval: timedelta = timedelta(milliseconds=200),
        links: DecisionLinks | None = None,
        key: SecretStr | str | bytes | None = None,
    ) -> None:
        self.routes = check_routes(routes)
        # Read first: a bad key fails the build before a store is opened.  Only
        # the derived sub-key is kept; the key itself is never stored or shown.
        secret = read_key(key, argument="EscalationRouter: key", env=ROUTER_KEY_ENV)
        self._fingerprint_key = (
            None if secret is None else SecretBytes(derive_key(secret, _FINGERPRINT_PURPOSE))
        )
        self._owns_store = not isinstance(store, EscalationStore)
        if isinstance(store, EscalationStore):
            self.store = store
        else:
            from ._open import open_store

            self.store = open_store(store)
            if store_hint is None:
                store_hint = os.fspath(store)
        self.channels = check_channels(channels)
        self.clock: Clock = clock or SystemClock()
        self.audit = audit
        # Group names and members are names like a User's (handrail._names).
        self.groups = {
            canonical_name(name, "group name"): canonical_names(list(members), f"group {name}")
            for name, members in (groups or {}).items()
        }
        self.telemetry = telemetry
        self.redactor = redactor or Redactor()
        self._resolved: list[Resolved] = (
            [on_resolved] if callable(on_resolved) else list(on_resolved)
        )
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.store_hint = None if store_hint is None else without_password(store_hint)
        if batch_size < 1 or max_delivery_attempts < 1:
            raise ConfigurationError(
                "EscalationRouter: batch_size and max_delivery_attempts must be >= 1"
            )
        self.batch_size = batch_size
        self.delivery_backoff = check_duration("delivery_backoff", delivery_backoff)
        self.max_delivery_attempts = max_delivery_attempts
        self.poll_interval = check_duration("poll_interval", poll_interval)
        self._poll = self.poll_interval.total_seconds()
        if links is not None and not isinstance(links, DecisionLinks):
            raise ConfigurationError(
                f"EscalationRouter: links must be a DecisionLinks, got {type(links).__name__}"
            )
        self.links = links
        self._changed = threading.Condition()
        self._generation = 0  # bumped under _changed by every change this router makes

    # -- opening ------------------------------------------------------------------

    def open(self, decision: Decision, *, external_id: str | None = None) -> Escalation:
        """Open an escalation for an ESCALATE decision and notify the route's first level.

        ``external_id`` is the caller's own name for the case, such as a
        framework's tool-call id (a non-empty printable str of at most 256
        characters).  Opening is idempotent on it: a second ``open`` under
        the same external id for the same request (see
        ``fingerprint``) returns the case opened first, and notifies
        and audits nothing again, however many routers and processes race to
        open it.  The case may be final by then: check ``.is_terminal``.

        Raises ``ExternalIdConflict`` if the external id already names a case
        for a different request (nothing is opened), and
        ``ConfigurationError`` if the router has no key, the external id is
        malformed, the decision does not escalate, names no known route, or
        holds values that cannot be fingerprinted: the caller must then
        refuse the action.
        """
        route = self._route("open", decision)
        key = None if external_id is None else check_external_id(external_id)
        request = self._snapshot(decision.request, "open")  # first: refuses what it cannot tell
        if key is not None:
            found = self.store.find(key)
            if found is not None:
                return check_same_request(found, request, key)
        from .._ids import new_id

        now = self.clock.now()
        rule = decision.rule
        escalation = _machine.new_escalation(
            escalation_id=new_id(int(now.timestamp() * 1000)),
            route=route,
            request=request,
            decision=decision.to_dict(),
            allow_on_timeout=rule is not None and rule.on_timeout == "allow",
            now=now,
            groups=self.groups,
        )
        if key is not None:
            escalation = escalation.model_copy(update={"external_id": key})
        deliveries = self._deliveries(None, escalation, now)
        with self._span("open", escalation_id=escalation.id):
            stored = self.store.create(escalation, deliveries)
            if not isinstance(stored, Escalation):
                raise ConfigurationError(
                    f"{self.store!r}: create() returned {type(stored).__name__}, not the stored "
                    "Escalation (see EscalationStore.create)"
                )
            if stored.id != escalation.id:  # another router opened this external id first
                assert key is not None
                return check_same_request(stored, request, key)
            self._after([(None, escalation, deliveries)])
        return escalation

    async def aopen(self, decision: Decision, *, external_id: str | None = None) -> Escalation:
        """``open`` for async code: the store work runs in a thread."""
        return await asyncio.to_thread(self.open, decision, external_id=external_id)

    def preview(self, decision: Decision) -> EscalationPreview:
        """What ``open`` would do for ``decision``, without storing or notifying anything.

        The route, the level the case would start at, who could decide and
        who would be told there, its deadlines and what its timeout would
        bring: what a shadow run records instead of opening a case.  Pure (no
        I/O), so there is no async twin.  Raises ``ConfigurationError`` as
        ``open`` does: no router key, a decision that does not escalate, an
        unknown route, values that cannot be fingerprinted.
        """
        route = self._route("preview", decision)
        self._fingerprint(decision.request, "preview")
        level = route.level(0)
        rule = decision.rule
        on_timeout = route.on_timeout
        if on_timeout is OnTimeout.ALLOW and (rule is None or rule.on_timeout != "allow"):
            on_timeout = OnTimeout.DENY  # silence is consent only when the rule says so too
        return EscalationPreview(
            route=route.name,
            level=0,
            level_name=level.name,
            deciders=_machine.expand_deciders(level, self.groups),
            notify=level.notify,
            ack_within=level.ack_within,
            resolve_within=level.resolve_within,
            on_timeout=on_timeout,
        )

    def fingerprint(self, request: ActionRequest) -> str:
        """The keyed fingerprint of ``request``: what a case's approval is bound to.

        ``request_fingerprint`` under this router's key; ``open`` stores it in
        ``case.request["fingerprint"]`` and a resumed call must match it.
        Pure (no I/O).  Raises ``ConfigurationError`` without a router key, or
        for a request holding a value an approval could not tell apart.
        """
        return self._fingerprint(request, "fingerprint")

    # -- humans act ----------------------------------------------------------------

    def acknowledge(self, escalation_id: str, *, by: Identity) -> Escalation:
        """``open → acknowledged``: ``by`` (a decider at the current level) takes the case.

        Who may act is as for ``decide``.
        """
        return self._act(
            escalation_id,
            "acknowledge",
            by,
            lambda e, who, now: _machine.acknowledge(
                e, by=who.user, now=now, via=who.via, token=_token(who)
            ),
        )

    async def aacknowledge(self, escalation_id: str, *, by: Identity) -> Escalation:
        """``acknowledge`` for async code: the store work runs in a thread."""
        return await asyncio.to_thread(self.acknowledge, escalation_id, by=by)

    def decide(
        self, escalation_id: str, *, approve: bool, by: Identity, reason: str = ""
    ) -> Escalation:
        """Approve or reject: final once the level's ``required_approvals`` are in.

        ``by`` must be an ``Identity`` (an authenticator verified the
        person); anything else (a user id, a ``User``) is refused with
        ``NotAuthenticated``.  The user must be a decider at the case's
        current level in the case's snapshot and, when this router knows the
        route, in this router's directory too (the route's deciders, its
        ``groups`` expanded: see ``_machine.may_decide``); never the agent
        that asked nor the user it acts for (four eyes).  Otherwise
        ``NotADecider``.  A signed link's ``Identity`` (``binding`` set) is
        accepted only for this case at its current level and request
        fingerprint, and once (``NotAuthenticated``).  Every refusal is
        audited and changes nothing.

        When the level requires more than one approval, each approval from
        a different decider is recorded (``approvals``, an ``approval``
        event) and the case waits for the next; a second approval by the
        same person is refused (``NotADecider``); a rejection is final.
        """
        attempted = "approve" if approve else "reject"
        return self._act(
            escalation_id,
            attempted,
            by,
            lambda e, who, now: _machine.decide(
                e,
                approve=approve,
                by=who.user,
                reason=reason,
                now=now,
                via=who.via,
                token=_token(who),
                required=self._required_approvals(e),
            ),
        )

    async def adecide(
        self, escalation_id: str, *, approve: bool, by: Identity, reason: str = ""
    ) -> Escalation:
        """``decide`` for async code: the store work runs in a thread."""
        return await asyncio.to_thread(
            self.decide, escalation_id, approve=approve, by=by, reason=reason
        )

    def approve(self, escalation_id: str, *, by: Identity, reason: str = "") -> Escalation:
        """``decide(approve=True)``."""
        return self.decide(escalation_id, approve=True, by=by, reason=reason)

    async def aapprove(self, escalation_id: str, *, by: Identity, reason: str = "") -> Escalation:
        """``approve`` for async code: the store work runs in a thread."""
        return await self.adecide(escalation_id, approve=True, by=by, reason=reason)

    def reject(self, escalation_id: str, *, by: Identity, reason: str = "") -> Escalation:
        """``decide(approve=False)``."""
        return self.decide(escalation_id, approve=False, by=by, reason=reason)

    async def areject(self, escalation_id: str, *, by: Identity, reason: str = "") -> Escalation:
        """``reject`` for async code: the store work runs in a thread."""
        return await self.adecide(escalation_id, approve=False, by=by, reason=reason)

    def cancel(self, escalation_id: str, *, reason: str = "", by: str | None = None) -> Escalation:
        """``→ cancelled``: the agent withdrew the request; it will not run."""
        return self._change(
            escalation_id,
            "cancel",
            None,
            lambda e, now: _machine.cancel(e, by=by, reason=reason, now=now),
        )

    async def acancel(
        self, escalation_id: str, *, reason: str = "", by: str | None = None
    ) -> Escalation:
        """``cancel`` for async code: the store work runs in a thread."""
        return await asyncio.to_thread(self.cancel, escalation_id, reason=reason, by=by)

    def record_refusal(
        self,
        escalation_id: str,
        refusal: NotAuthenticated | NotADecider,
        *,
        attempted: str,
        by: str = "",
        via: str = "",
    ) -> None:
        """Audit a refusal an authenticator or a front end made before the router was asked.

        For an approval service that refused an act on case ``escalation_id``
        itself (an expired or reused link, a form token that does not match,
        a spoofed header on a case's page): the audit trail records it as the
        router's own refusals are, with ``attempted`` (``approve``, ``reject``,
        ``acknowledge``, ``view``), the name offered (``by``, shown escaped,
        never trusted) and how it came (``via``).  A case that does not exist
        gets telemetry only.  Changes nothing; never raises for a failed
        record (it is logged).
        """
        try:
            self._refused(
                escalation_id,
                refusal,
                printable(attempted)[:40],
                self.clock.now(),
                by=printable(by)[:256],
                level=None,
                via=printable(via)[:256],
            )
        except Exception as exc:  # the refusal stands; report what could not be recorded
            self._log_error("audit_failed", exc, escalation_id=escalation_id)

    async def arecord_refusal(
        self,
        escalation_id: str,
        refusal: NotAuthenticated | NotADecider,
        *,
        attempted: str,
        by: str = "",
        via: str = "",
    ) -> None:
        """``record_refusal`` for async code: the store work runs in a thread."""
        await asyncio.to_thread(
            self.record_refusal, escalation_id, refusal, attempted=attempted, by=by, via=via
        )

    def claim_execution(self, escalation_id: str) -> Escalation:
        """Mark the approved action as executing, once across every worker.

        Raises ``AlreadyExecuted`` if any worker claimed it before, and
        ``IllegalTransition`` if it is not approved (nor allowed on timeout).
        """
        return self._change(
            escalation_id,
            "execute",
            None,
            lambda e, now: _machine.claim_execution(e, by=self.worker, now=now),
        )

    async def aclaim_execution(self, escalation_id: str) -> Escalation:
        """``claim_execution`` for async code: the store work runs in a thread."""
        return await asyncio.to_thread(self.claim_execution, escalation_id)

    # -- reading and waiting -------------------------------------------------------

    def get(self, escalation_id: str) -> Escalation:
        """The escalation with this id; ``UnknownEscalation`` if there is none."""
        found = self.store.get(escalation_id)
        if found is None:
            raise UnknownEscalation(escalation_id, repr(self.store))
        return found

    async def aget(self, escalation_id: str) -> Escalation:
        """``get`` for async code: the store work runs in a thread."""
        return await asyncio.to_thread(self.get, escalation_id)

    def find(self, external_id: str) -> Escalation | None:
        """The escalation opened under ``external_id`` (see ``open``), or ``None``.

        Raises ``ConfigurationError`` for a malformed external id, which no
        case can carry.
        """
        return self.store.find(check_external_id(external_id))

    async def afind(self, external_id: str) -> Escalation | None:
        """``find`` for async code: the store work runs in a thread."""
        return await asyncio.to_thread(self.find, external_id)

    def list(
        self,
        *,
        state: EscalationState | str | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Escalation]:
        """Escalations, oldest first, optionally only those in ``state`` or on ``route``."""
        wanted = None if state is None else EscalationState(state)
        return self.store.list(state=wanted, route=route, limit=limit)

    async def alist(
        self,
        *,
        state: EscalationState | str | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Escalation]:
        """``list`` for async code: the store work runs in a thread."""
        return await asyncio.to_thread(self.list, state=state, route=route, limit=limit)

    def on_resolved(self, callback: Resolved) -> Resolved:
        """Register ``callback(escalation)`` for final states reached through this router.

        Called after the change is stored; an exception in it is logged and
        does not undo the change.  Usable as a decorator.
        """
        self._resolved.append(callback)
        return callback

    # -- timers and deliveries -------------------------------------------------------

    def tick(self) -> TickReport:
        """Fire every timer due at the clock's now and deliver pending notices; sync.

        Use ``atick()`` inside an event loop (``tick`` refuses there, before
        touching anything).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise ConfigurationError(
                "EscalationRouter.tick() was called inside a running event loop; "
                "use 'await router.atick()' there"
            )
        with self._span("tick"):
            now = self.clock.now()
            fired = self._fire_due(now)
            claimed = self.store.claim_deliveries(now, limit=self.batch_size, lease=_LEASE)
            if not claimed:
                return TickReport(fired, 0, 0)
            links = self._links_for(claimed)
            outcomes = asyncio.run(self._send_all(claimed, links))
            delivered, failed = self._settle(claimed, outcomes, now)
            return TickReport(fired, delivered, failed)

    async def atick(self) -> TickReport:
        """``tick`` for async code: store work runs in a thread, channels are awaited."""
        with self._span("tick"):
            now = self.clock.now()
            fired = await asyncio.to_thread(self._fire_due, now)
            claimed = await asyncio.to_thread(
                self.store.claim_deliveries, now, limit=self.batch_size, lease=_LEASE
            )
            if not claimed:
                return TickReport(fired, 0, 0)
            links = await asyncio.to_thread(self._links_for, claimed)
            outcomes = await self._send_all(claimed, links)
            delivered, failed = await asyncio.to_thread(self._settle, claimed, outcomes, now)
            return TickReport(fired, delivered, failed)

    async def run(
        self, *, interval: timedelta = timedelta(seconds=1), stop: asyncio.Event | None = None
    ) -> None:
        """The worker loop: ``atick()`` every ``interval`` until ``stop`` is set.

        A failing tick (the database is down) is logged and retried on the
        next round; nothing is lost, because every timer and delivery stays in
        the store until done.  Run one per process, as many processes as you
        like.  The pause between ticks goes through the clock's ``asleep``
        (a ``FakeClock`` runs the loop through fake time) and ends early when
        ``stop`` is set.  Async only: a worker loop belongs on an event loop
        (sync code calls ``tick()`` on its own schedule).
        """
        pause = check_duration("interval", interval).total_seconds()
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.atick()
            except Exception as exc:  # keep the worker alive; the store keeps the work
                self._log_error("tick_failed", exc)
            await self._apause(pause, stop)

    def close(self) -> None:
        """Close the store if this router opened it (from a path or URL)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> EscalationRouter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EscalationRouter(routes={sorted(self.routes)}, store={self.store!r})"

    # -- internals --------------------------------------------------------------------

    def _route(self, doing: str, decision: Decision) -> Route:
        """The route an ESCALATE decision names; ``ConfigurationError`` otherwise."""
        if decision.effect is not Effect.ESCALATE:
            raise ConfigurationError(
                f"EscalationRouter.{doing}: the decision is {decision.effect.value}, not escalate"
            )
        name = decision.escalate_to or ""
        route = self.routes.get(name)
        if route is None:
            known = ", ".join(sorted(self.routes)) or "none"
            raise ConfigurationError(
                f"EscalationRouter.{doing}: no route named {name!r} (rule "
                f"{decision.rule_id!r} escalates to it); routes: {known}"
            )
        return route

    def _act(
        self,
        escalation_id: str,
        attempted: str,
        by: object,
        move: Callable[[Escalation, Identity, datetime], Escalation],
    ) -> Escalation:
        """A human's act on a case, by a verified ``Identity`` only; refusals are audited."""
        identity = check_identity(escalation_id, by)
        if isinstance(identity, NotAuthenticated):
            self._refused(
                escalation_id, identity, attempted, self.clock.now(), by=_offered(by), level=None
            )
            raise identity
        return self._change(
            escalation_id, attempted, identity, lambda e, now: move(e, identity, now)
        )

    def _check_decider(self, current: Escalation, identity: Identity) -> None:
        """Refuse ``identity`` unless it may act on ``current`` now (see ``decide``).

        Runs inside the store's atomic update: the used-once check of a
        signed link's token cannot race another use of it.
        """
        if identity.binding is not None:
            _machine.check_binding(current, identity.binding)
        user = identity.user
        directory = self._directory(current)
        allowed = current.deciders
        if directory is not None:
            allowed = tuple(who for who in allowed if who in directory)
        why = _machine.own_case(current, user)
        if why is not None:
            raise NotADecider(current.id, user, current.level, allowed, why=why)
        if not _machine.may_decide(current, user, directory):
            # Before the final-state check: a non-decider learns nothing about the case,
            # and the attempt is audited.
            raise NotADecider(current.id, user, current.level, allowed)
        # A decider acting on a final case: the move itself refuses (IllegalTransition).

    def _directory(self, escalation: Escalation) -> tuple[str, ...] | None:
        """The deciders of the case's level by this router's route and groups (None: unknown)."""
        route = self.routes.get(escalation.route.name)
        if route is None:
            return None
        return _machine.expand_deciders(route.level(escalation.level), self.groups)

    def _required_approvals(self, escalation: Escalation) -> int:
        """How many approvals the case's level needs: the stricter of the case and this router."""
        required = escalation.route.level(escalation.level).required_approvals
        route = self.routes.get(escalation.route.name)
        if route is not None:
            required = max(required, route.level(escalation.level).required_approvals)
        return required

    def _change(
        self,
        escalation_id: str,
        attempted: str,
        identity: Identity | None,
        move: Callable[[Escalation, datetime], Escalation],
    ) -> Escalation:
        now = self.clock.now()
        done: list[tuple[Escalation, Escalation, list[Delivery]]] = []

        def change(current: Escalation) -> Change:
            if identity is not None:
                self._check_decider(current, identity)
            new = move(current, now)
            deliveries = self._deliveries(current, new, now)
            done.append((current, new, deliveries))
            return new, deliveries

        with self._span(attempted, escalation_id=escalation_id):
            try:
                new = self.store.update(escalation_id, change)
            except NotADecider as refusal:
                self._refused(
                    escalation_id,
                    refusal,
                    attempted,
                    now,
                    by=refusal.by,
                    level=refusal.level,
                    via="" if identity is None else identity.via,
                )
                raise
            except NotAuthenticated as refusal:  # the router's check, or the store's grant
                self._refused(
                    escalation_id,
                    refusal,
                    attempted,
                    now,
                    by=self.worker if identity is None else identity.user,
                    level=None,
                    via="" if identity is None else identity.via,
                )
                raise
            self._after([(old, changed, deliveries) for old, changed, deliveries in done])
            return new

    def _fire_due(self, now: datetime) -> int:
        fired = 0
        done: list[tuple[Escalation, Escalation, list[Delivery]]] = []

        def change(current: Escalation) -> Change | None:
            try:
                new = _machine.fire_due(current, now, self.groups)
            except Exception as exc:  # one broken case must not stall the others
                self._log_error("timer_failed", exc, escalation_id=current.id)
                return None
            if new is None:
                return None
            deliveries = self._deliveries(current, new, now)
            done.append((current, new, deliveries))
            return new, deliveries

        while True:
            done.clear()
            handled = self.store.process_due(now, change, limit=self.batch_size)
            self._after(list(done))
            fired += len(done)
            if handled < self.batch_size or not done:
                return fired

    def _after(
        self, changes: Sequence[tuple[Escalation | None, Escalation, Sequence[Delivery]]]
    ) -> None:
        """After a commit: audit records, telemetry, waiters, resolution callbacks."""
        if not changes:
            return
        appended: builtins.list[str] = []
        for _, new, deliveries in changes:
            if self.audit is None:
                break
            for delivery in deliveries:
                if delivery.target != AUDIT_TARGET:
                    continue
                try:
                    self._audit_event(new, Event.model_validate(delivery.payload))
                except Exception as exc:
                    # The change is stored and its record waits in the outbox: a later
                    # tick appends it.  Raising here would report a done change as failed.
                    self._log_error("audit_failed", exc, escalation_id=new.id)
                    continue
                appended.append(delivery.id)
        self._complete_audited(appended)
        for old, new, _ in changes:
            telemetry = self.telemetry or default_telemetry()
            for event in new.history[len(old.history) if old is not None else 0 :]:
                telemetry.escalation_event(
                    event.kind,
                    escalation_id=new.id,
                    route=new.route.name,
                    level=event.level,
                    state=new.state.value,
                    by=event.by,
                )
            if new.is_terminal and (old is None or not old.is_terminal):
                for callback in self._resolved:
                    try:
                        callback(new)
                    except Exception as exc:  # the change is stored; report, don't undo
                        self._log_error("callback_failed", exc, escalation_id=new.id)
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _fingerprint(self, request: ActionRequest, doing: str) -> str:
        if self._fingerprint_key is None:
            raise ConfigurationError(
                f"EscalationRouter.{doing}: the router has no key, and an approval must be "
                "bound to the exact request with a keyed fingerprint: pass "
                f"EscalationRouter(..., key=...) or set ${ROUTER_KEY_ENV} (at least 32 bytes, "
                "e.g. python -c 'import secrets; print(secrets.token_hex(32))'), the same key "
                "in every process that opens or resumes cases"
            )
        return request_fingerprint(request, key=self._fingerprint_key.get_secret_value())

    def _snapshot(self, request: ActionRequest, doing: str) -> dict[str, Any]:
        """The redacted, JSON-ready request an escalation keeps (and shows to humans)."""
        principal = request.principal
        # First: it refuses what it cannot tell apart, and a router without a key.
        fingerprint = self._fingerprint(request, doing)
        redactor = self.redactor
        resource = None if request.resource is None else plain(request.resource.model_dump())
        args, context = plain(request.args), plain(request.context)
        parts = [redactor.redact(part) for part in (resource, args, context)]
        # A secret masked in one place is scrubbed from every other string too (a note
        # may repeat a token unmarked), as the audit record does.
        parts = redactor.scrub_strings(parts, redactor.secrets_in([resource, args, context]))
        return {
            "action": request.action,
            "agent": principal.agent,
            "on_behalf_of": None if principal.on_behalf_of is None else principal.on_behalf_of.id,
            "resource": parts[0],
            "args": parts[1],
            "context": parts[2],
            "fingerprint": fingerprint,
        }

    def _span(self, operation: str, escalation_id: str | None = None) -> ContextManager[object]:
        """A ``handrail.escalation.<operation>`` span (the transitions' events land on it)."""
        tracer = (self.telemetry or default_telemetry()).tracer()
        if tracer is None:
            return contextlib.nullcontext()
        attributes = {"handrail.escalation.worker": self.worker}
        if escalation_id is not None:
            attributes["handrail.escalation.id"] = escalation_id
        return tracer.start_as_current_span(
            f"handrail.escalation.{operation}", attributes=attributes
        )


def _token(identity: Identity) -> str | None:
    """The signed link's token id an act was made with, recorded so it is used once."""
    return None if identity.binding is None else identity.binding.token_id


def _offered(by: object) -> str:
    """The name an unverified ``by`` offered, escaped and cut short: shown, never trusted."""
    if isinstance(by, str):
        shown = by
    else:
        user_id = getattr(by, "id", None)
        shown = user_id if isinstance(user_id, str) else type(by).__name__
    return printable(shown)[:200]
