"""``handrail escalations list | show | ack | approve | reject | cancel``: humans decide cases.

Every command opens the store ``--store`` names (an SQLite file, a
``postgresql://`` URL or a libpq ``key=value`` string; default: the
``HANDRAIL_ESCALATION_STORE`` environment variable, else
``handrail-escalations.db``).  A mistyped URL is a usage error, never a new
file.  The commands that change a case
go through an ``EscalationRouter``, so the state machine, the decider check
and the outbox are the library's own; ``--audit`` (default: the
``HANDRAIL_AUDIT`` environment variable) names the audit log the agent writes,
so decisions and refused attempts land in the same trail.

``ack``, ``approve`` and ``reject`` decide as the verified OS user who runs
the command (``OSUserAuthenticator``), never as a name typed on the command
line: ``--by`` is gone.  ``--as USER`` decides in another decider's name, and
only when the store says its user is an administrator (``is_admin``: a
PostgreSQL role in ``handrail_admin``; an SQLite file has no roles, so never
there); the history records both names.  Decisions are always audited.

Escalations keep a snapshot of their route and of the user ids allowed at the
current level, groups expanded by the router that opened them: those decide.
``--routes FILE`` only shows who is in each ``group:`` decider; it never
widens who may decide (anyone can write a file).

Exit codes: 0 done; 1 refused or failed (not a decider, a state that forbids
the change, no such escalation, a store or file that cannot be opened), with
one line on stderr naming the escalation and why; 2 the command line is wrong.
Nothing printed carries a database password, and every field read from a
case is printed terminal-safe (see ``_terminal``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from .._errors import ConfigurationError, HandrailError, NotAuthenticated, PolicyError
from .._names import canonical_name
from ..approvals import Identity, OSUserAuthenticator
from ..escalation import (
    STORE_ENV,
    Escalation,
    EscalationRouter,
    EscalationState,
    EscalationStore,
    Event,
    RoutesFile,
    check_store,
    load_routes,
    open_store,
    redact_store,
    scrub_store,
    summarize,
)
from ._terminal import safe, say, say_json, warn

__all__ = ["AUDIT_ENV", "DEFAULT_STORE", "add_commands"]

AUDIT_ENV = "HANDRAIL_AUDIT"
"""The environment variable naming the audit log when ``--audit`` is not given."""
DEFAULT_STORE = "handrail-escalations.db"
"""The SQLite file used when neither ``--store`` nor ``HANDRAIL_ESCALATION_STORE`` is set."""

_STATES = [state.value for state in EscalationState]
Handler = Callable[[argparse.Namespace], int]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``escalations`` and its subcommands on the top-level parser."""
    escalations = commands.add_parser(
        "escalations",
        help="list, show, acknowledge and decide escalations",
        description=(
            "Read and decide the escalations agents wait on.  Exit 0 when done, 1 when the "
            "change is refused or fails (naming the escalation and why), 2 for a wrong "
            "command line."
        ),
    )
    sub = escalations.add_subparsers(
        title="commands", dest="escalations_command", metavar="COMMAND", required=True
    )
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        metavar="PATH_OR_URL",
        help=f"an SQLite file, a postgresql:// URL or a libpq key=value string (default: "
        f"${STORE_ENV}, else {DEFAULT_STORE})",
    )
    store.add_argument(
        "--schema", metavar="SCHEMA", help="the PostgreSQL schema of the tables (default: public)"
    )
    store.add_argument(
        "--routes",
        metavar="FILE",
        type=Path,
        help="a routes file whose groups: are shown as the members of each group:NAME "
        "decider (display only: it never changes who may decide)",
    )
    store.add_argument("--json", action="store_true", help="print JSON instead of text")
    changes = argparse.ArgumentParser(add_help=False)
    changes.add_argument(
        "--audit",
        metavar="PATH",
        help=f"the audit log to record the change (or refusal) in (default: ${AUDIT_ENV}); "
        "required unless --no-audit",
    )
    changes.add_argument(
        "--no-audit",
        action="store_true",
        help="change the escalation without an audit record (only where no audit log is kept)",
    )
    changes.add_argument("--by", action=_Removed, nargs="?", help=argparse.SUPPRESS)
    decisions = argparse.ArgumentParser(add_help=False)
    decisions.add_argument(
        "--audit",
        metavar="PATH",
        help=f"the audit log to record the decision (or refusal) in (default: ${AUDIT_ENV}); "
        "required: decisions are always audited",
    )
    decisions.add_argument("--no-audit", action=_NotForDecisions, nargs=0, help=argparse.SUPPRESS)
    decisions.add_argument("--by", action=_Removed, nargs="?", help=argparse.SUPPRESS)
    decisions.add_argument(
        "--as",
        dest="as_user",
        type=_user_id,
        metavar="USER",
        help="decide in USER's name; only for an administrator of the store (a PostgreSQL "
        "role in handrail_admin), and recorded with your own OS user name",
    )

    listing = sub.add_parser(
        "list",
        parents=[store],
        help="list escalations, oldest first",
        description="List escalations, oldest first, optionally only those in one state or route.",
    )
    listing.add_argument("--state", choices=_STATES, metavar="STATE", help=", ".join(_STATES))
    listing.add_argument("--route", metavar="ROUTE", help="only escalations on this route")
    listing.add_argument("--limit", type=_positive, metavar="N", help="at most N escalations")
    listing.set_defaults(handler=_guarded(_list), parser=listing)

    show = sub.add_parser(
        "show",
        parents=[store],
        help="show one escalation: request, decision, route, deadlines and history",
        description="Show one escalation in full: what was asked, why it escalated, who may "
        "decide, its deadlines and its history.",
    )
    show.add_argument("id", metavar="ID", help="the escalation's id")
    show.set_defaults(handler=_guarded(_show), parser=show)

    ack = sub.add_parser(
        "ack",
        parents=[store, decisions],
        help="acknowledge an open escalation: you take it and stop the ack deadline",
        description="Acknowledge an open escalation as one of its current deciders: you, the "
        "OS user running the command.",
    )
    ack.add_argument("id", metavar="ID", help="the escalation's id")
    ack.set_defaults(handler=_guarded(_ack), parser=ack)

    for name, verb in (("approve", "approve"), ("reject", "reject")):
        decide = sub.add_parser(
            name,
            parents=[store, decisions],
            help=f"{verb} an escalation (final)",
            description=f"{verb.capitalize()} an escalation as one of its current deciders: "
            "you, the OS user running the command.  Final: it cannot be changed afterwards.",
        )
        decide.add_argument("id", metavar="ID", help="the escalation's id")
        decide.add_argument(
            "--reason",
            required=True,
            type=_text,
            metavar="TEXT",
            help="why; kept in the escalation's history and the audit log",
        )
        decide.set_defaults(handler=_guarded(_decide), parser=decide, approve=name == "approve")

    cancel = sub.add_parser(
        "cancel",
        parents=[store, changes],
        help="cancel an escalation: the action will not run",
        description="Withdraw an escalation that is not yet final; its action will not run.",
    )
    cancel.add_argument("id", metavar="ID", help="the escalation's id")
    cancel.add_argument("--reason", default="", metavar="TEXT", help="why")
    cancel.set_defaults(handler=_guarded(_cancel), parser=cancel)


# -- arguments -------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty")
    return text.strip()


class _Removed(argparse.Action):
    """``--by``: gone, because anyone can type a name; the error says what replaced it."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(
            "argument --by: removed: you act as the OS user running the command "
            "(verified by the operating system); an administrator of the store may decide "
            "in another's name with --as USER"
        )


class _NotForDecisions(argparse.Action):
    """``--no-audit`` on a decision: refused, a decision nobody can trace is worthless."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(
            f"argument --no-audit: decisions are always audited; pass --audit PATH "
            f"(or set ${AUDIT_ENV})"
        )


def _user_id(text: str) -> str:
    """A user id in canonical form (the name rule): ``Maria`` decides as ``maria``."""
    try:
        return canonical_name(_text(text), "user id")
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- running a command: open, act, report, close ----------------------------------------


class _Failed(Exception):
    """A command failed before it could act; its message is printed as it is (scrubbed)."""


@dataclass(frozen=True, slots=True)
class _Target:
    """Where the store is, and how to name it without its password."""

    location: str

    @property
    def shown(self) -> str:
        return redact_store(self.location)

    def scrub(self, text: str) -> str:
        """``text`` on one line, the store's password masked wherever it shows."""
        return scrub_store(text, self.location)


def _target(args: argparse.Namespace) -> _Target:
    return _Target(args.store or os.environ.get(STORE_ENV, "").strip() or DEFAULT_STORE)


def _guarded(handler: Handler) -> Handler:
    """``handler`` with its refusals and failures turned into one scrubbed line and exit 1."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        target = _target(args)
        try:
            return handler(args)
        except _Failed as exc:
            warn(target.scrub(str(exc)))
        except PolicyError as exc:  # a malformed routes file: every problem, one per line
            warn(target.scrub(str(problem)) for problem in exc.problems)
        except HandrailError as exc:  # EscalationError names the id and says why
            warn(f"error: {target.scrub(str(exc))}")
        return 1

    return run


@dataclass(frozen=True, slots=True)
class _Session:
    router: EscalationRouter
    routes: RoutesFile | None
    store: EscalationStore

    def decider(self, args: argparse.Namespace, attempted: str) -> Identity:
        """Who decides: the verified OS user, or (``--as``) a user an administrator names.

        A refusal here (no named OS user, ``--as`` without the admin role) is
        a refused decision like the router's own: audited before it is raised.
        """
        try:
            me = OSUserAuthenticator().identity(args.id)
        except NotAuthenticated as nobody:
            self.router.record_refusal(
                args.id, nobody, attempted=attempted, by=f"uid {os.geteuid()}", via="os-user"
            )
            raise
        if args.as_user is None:
            return me
        if not self.store.is_admin():
            refusal = NotAuthenticated(
                args.id,
                f"--as {args.as_user} refused: only an administrator of the store may decide "
                f"in another's name, and {self.store!r} does not say {me.user} is one (an "
                "SQLite file or memory has no roles to say so; in PostgreSQL the database role "
                "must be a member of handrail_admin); decide as yourself, without --as",
            )
            self.router.record_refusal(
                args.id, refusal, attempted=attempted, by=args.as_user, via=f"--as by {me.via}"
            )
            raise refusal
        return Identity(user=args.as_user, method="admin", detail=f"os user {me.user}")


@contextlib.contextmanager
def _session(args: argparse.Namespace, *, audited: bool = False) -> Iterator[_Session]:
    """The store, audit log and routes file the arguments name, closed on the way out."""
    target = _target(args)
    try:
        # A mistyped URL is refused here, before it can become an SQLite file's name.
        location, postgres = check_store(target.location)
    except ConfigurationError as exc:
        _usage_error(args, f"argument --store: {target.scrub(str(exc))}")
    if args.schema is not None and not postgres:
        _usage_error(args, "argument --schema: applies to PostgreSQL URLs only, not SQLite files")
    if not postgres and not Path(location).is_file():
        where = "--store" if args.store else f"${STORE_ENV}" if os.environ.get(STORE_ENV) else ""
        how = f" (from {where})" if where else f"; pass --store PATH_OR_URL or set ${STORE_ENV}"
        _usage_error(args, f"argument --store: no escalation store at {target.shown}{how}")
    routes = None if args.routes is None else load_routes(args.routes)
    with contextlib.ExitStack() as stack:
        try:
            store = open_store(location, schema=args.schema)
        except HandrailError:
            raise  # already names the store (its password masked)
        except Exception as exc:  # a driver's own error: name the store, scrub the rest
            raise _Failed(f"error: cannot open the escalation store {target.shown}: {exc}") from exc
        stack.callback(store.close)
        audit = None
        audit_path = getattr(args, "audit", None) or os.environ.get(AUDIT_ENV, "").strip()
        if audited and not audit_path and not getattr(args, "no_audit", False):
            # A human decision nobody can trace later defeats the point.
            unrecorded = "" if hasattr(args, "as_user") else ", or --no-audit to make it unrecorded"
            _usage_error(
                args,
                f"a change must be audited: pass --audit PATH (or set ${AUDIT_ENV}){unrecorded}",
            )
        if audited and audit_path:
            from ..audit import AuditLog

            audit = stack.enter_context(AuditLog.open(audit_path))
        # No groups: the case's own deciders decide; a file anyone can write must not widen them.
        router = EscalationRouter([], store, audit=audit)
        yield _Session(router, routes, store)


def _usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    parser: argparse.ArgumentParser = args.parser
    parser.error(message)


def _print_json(data: Any) -> None:
    say_json(json.dumps(data, indent=2))


# -- the commands ------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    with _session(args) as session:
        found = session.router.list(state=args.state, route=args.route, limit=args.limit)
    if args.json:
        _print_json([escalation.model_dump(mode="json") for escalation in found])
        return 0
    if not found:
        filters = [f"in state {args.state}" if args.state else "", _on(args.route)]
        say(" ".join(["no escalations", *filter(None, filters)]))
        return 0
    rows = [
        [
            e.id,
            e.state.value,
            e.route.name,
            _level(e),
            e.action,
            _who(e),
            _time(e.opened_at),
            _time(e.next_due),
        ]
        for e in found
    ]
    headers = ["ID", "STATE", "ROUTE", "LEVEL", "ACTION", "AGENT", "OPENED", "NEXT DUE"]
    say(*_table(headers, rows))
    return 0


def _show(args: argparse.Namespace) -> int:
    with _session(args) as session:
        escalation = session.router.get(args.id)
    if args.json:
        _print_json(escalation.model_dump(mode="json"))
    else:
        say(*_describe(escalation, session.routes))
    return 0


def _ack(args: argparse.Namespace) -> int:
    with _session(args, audited=True) as session:
        escalation = session.router.acknowledge(args.id, by=session.decider(args, "acknowledge"))
    return _done(args, escalation, f"decide by {_time(escalation.resolve_due)}")


def _decide(args: argparse.Namespace) -> int:
    with _session(args, audited=True) as session:
        escalation = session.router.decide(
            args.id,
            approve=args.approve,
            by=session.decider(args, "approve" if args.approve else "reject"),
            reason=args.reason,
        )
    after = "the action may run, once" if args.approve else "the action will not run"
    return _done(args, escalation, after)


def _cancel(args: argparse.Namespace) -> int:
    with _session(args, audited=True) as session:
        me = OSUserAuthenticator().identity(args.id)
        escalation = session.router.cancel(args.id, reason=args.reason, by=me.user)
    return _done(args, escalation, "the action will not run")


def _done(args: argparse.Namespace, escalation: Escalation, after: str) -> int:
    if args.json:
        _print_json(escalation.model_dump(mode="json"))
        return 0
    event = escalation.history[-1]
    by = f" by {_by_via(event)}" if event.by else ""
    say(
        f"escalation {escalation.id}: {escalation.state.value}{by} at level "
        f"{_level(escalation)} of route {escalation.route.name}; {after}"
    )
    return 0


# -- text ----------------------------------------------------------------------------------


def _describe(escalation: Escalation, routes: RoutesFile | None) -> list[str]:
    """The readable account ``show`` prints: the whole request, the case, then its history.

    Every argument, resource attribute and context entry is listed, one per
    line, as the case stored it (redacted): the approver sees what would
    run, not only a summary.  Each line is printed terminal-safe (``say``),
    so a value cannot move the cursor or forge a line of its own.
    """
    e = escalation
    request = e.request
    decision = e.decision
    rule = decision.get("rule_id")
    policy = f"{decision.get('effect', 'escalate')}"
    if rule:
        policy += f" by rule {rule!r}"
    if decision.get("reason"):
        policy += f": {decision['reason']}"
    fields: list[tuple[str, str]] = [("request", summarize(e))]
    if e.external_id is not None:
        fields.append(("external id", e.external_id))
    fields += [
        ("action", str(request.get("action") or e.action)),
        ("agent", str(request.get("agent") or "?")),
        ("on behalf of", str(request.get("on_behalf_of") or "-")),
    ]
    resource = request.get("resource")
    if isinstance(resource, dict):
        shown = str(resource.get("type"))
        if resource.get("id") is not None:
            shown += f" {_json(resource['id'])}"
        fields.append(("resource", shown))
    fields.append(("policy", policy))
    if decision.get("undetermined"):  # escalated because a condition could not be decided
        fields.append(("undetermined", ", ".join(map(str, decision["undetermined"]))))
    fields += [
        ("route", f"{e.route.name}, level {_level(e)}, step {e.level + 1} of {e.route.steps}"),
        ("deciders", _deciders(e, routes)),
        ("opened", _time(e.opened_at)),
        ("at level since", _time(e.level_started_at)),
    ]
    deadlines = [
        ("ack due", e.ack_due),
        ("reminder at", e.warn_due),
        ("resolve due", e.resolve_due),
    ]
    fields += [(label, _time(when)) for label, when in deadlines if when is not None]
    if not e.is_terminal and e.next_due is None:
        fields.append(("deadlines", "none: it waits until someone decides or cancels it"))
    if e.acknowledged_by:
        fields.append(("acknowledged by", e.acknowledged_by))
    if e.is_terminal:
        by = f" by {e.decided_by}" if e.decided_by else ""
        at = f" at {_time(e.decided_at)}" if e.decided_at else ""
        why = f": {e.reason}" if e.reason else ""
        fields.append(("outcome", f"{e.state.value}{by}{at}{why}"))
        fields.append(("may run", "yes" if e.allowed else "no"))
    if e.executed_at is not None:
        fields.append(("executed", f"{_time(e.executed_at)} by {e.executed_by or '?'}"))
    width = max(len(label) for label, _ in fields) + 2
    lines = [f"escalation {e.id}  {e.state.value.upper()}"]
    lines += [f"  {label + ':':<{width}}{safe(value)}" for label, value in fields]
    attributes = resource.get("attributes") if isinstance(resource, dict) else None
    sections = [
        ("resource attributes", attributes),
        ("arguments (redacted)", request.get("args")),
        ("context (redacted)", request.get("context")),
    ]
    for title, values in sections:
        lines += ["", f"{title}:", *_entries(values)]
    lines += ["", "history:"]
    rows = [
        [_time(ev.at), ev.kind, _level_name(e, ev.level), _by_via(ev), ev.reason]
        for ev in e.history
    ]
    lines += ["  " + line for line in _table(["AT", "EVENT", "LEVEL", "BY", "REASON"], rows)]
    return lines


def _entries(values: object) -> list[str]:
    """``  name: value`` per entry, names sorted, each value as (one-line) JSON."""
    if not values:
        return ["  (none)"]
    if not isinstance(values, dict):
        return [f"  {_json(values)}"]
    return [f"  {safe(str(name))}: {_json(value)}" for name, value in sorted(values.items())]


def _by_via(event: Event) -> str:
    """Who acted, and how they were verified when the history says (``Event.via``)."""
    by = event.by or ""
    via = event.via
    return f"{by} ({via})" if by and via else by


def _deciders(escalation: Escalation, routes: RoutesFile | None) -> str:
    shown = []
    for who in escalation.deciders:
        members = None
        if who.startswith("group:") and routes is not None:
            members = routes.groups.get(who.removeprefix("group:"))
        shown.append(f"{who} ({', '.join(sorted(members))})" if members else who)
    return ", ".join(shown) or "nobody"


def _level(escalation: Escalation) -> str:
    return _level_name(escalation, escalation.level)


def _level_name(escalation: Escalation, index: int) -> str:
    route = escalation.route
    name = route.level(index).name
    repeat = index - len(route.levels) + 1
    if repeat > 0:
        name = f"{name}, repeat {repeat}" if name else f"repeat {repeat}"
    return f"{index} ({name})" if name else str(index)


def _who(escalation: Escalation) -> str:
    request = escalation.request
    agent = str(request.get("agent") or "?")
    user = request.get("on_behalf_of")
    return f"{agent} for {user}" if user else agent


def _on(route: str | None) -> str:
    return f"on route {route}" if route else ""


def _time(when: datetime | None) -> str:
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _json(value: Any) -> str:
    # Control characters come out as JSON escapes; what else is non-printable, say() escapes.
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart; trailing blanks trimmed.

    Cells are made terminal-safe before they are measured, so columns line up as printed.
    """
    cells = [[safe(str(cell)) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
