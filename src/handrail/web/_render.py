"""The approval page's HTML: Jinja2 templates, autoescaped, every value shown as inert text.

Everything a case holds came from the agent (action, arguments, resource,
context) or passed through it, so every value is hostile: the environment
autoescapes every template, and its ``finalize`` passes every string through
``printable`` before escaping, so a control, bidi or zero-width character is
shown as an escape (``\\x1b``, ``\\u202e``) and can neither hide nor reorder
text.  No template marks agent data ``|safe``, and no agent value reaches an
``href``, ``src`` or ``style``: links carry only router-made case ids.

The style sheet is the package's own ``style.css``, inlined; the Content
Security Policy names its hash, so nothing else can style or script the page.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from .._text import printable
from ..escalation import Escalation, Event

__all__ = ["CONTENT_SECURITY_POLICY", "Pages", "Shown", "case_href", "shown"]

_TEMPLATES = resources.files(__package__) / "templates"
_CSS = (_TEMPLATES / "style.css").read_text(encoding="utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
"""No script, no outside resource, forms post only here, the page is never framed."""


@dataclasses.dataclass(frozen=True, slots=True)
class Shown:
    """One value as the page shows it: ``text`` for a scalar, ``lines`` of indented JSON
    for a list or mapping; ``grouped`` is a number with thousands separators (or "")."""

    kind: str
    text: str = ""
    lines: tuple[str, ...] = ()
    grouped: str = ""


def shown(value: Any) -> Shown:
    """How the page shows ``value`` (plain JSON data, as a case keeps it)."""
    if isinstance(value, str):
        return Shown("str", printable(value))
    if value is None or isinstance(value, bool):
        return Shown("null" if value is None else "bool", json.dumps(value))
    if isinstance(value, int | float):
        text = printable(repr(value))
        # Thousands separators, so 250000 cannot pass for 25000 at a glance.
        grouped = f"{value:,}" if math.isfinite(value) and abs(value) >= 1000 else ""
        return Shown(type(value).__name__, text, grouped=grouped)
    if isinstance(value, Mapping | list | tuple):
        # json escapes control characters inside strings (\n, \u001b); printable
        # then escapes what it leaves (bidi, zero-width, U+2028). The line breaks
        # are the indentation's own: strings never hold a raw newline here.
        dumped = json.dumps(value, indent=2, ensure_ascii=False, default=repr)
        kind = "object" if isinstance(value, Mapping) else "list"
        return Shown(kind, lines=tuple(printable(line) for line in dumped.split("\n")))
    return Shown(type(value).__name__, printable(repr(value)))


def case_href(root_path: str, escalation_id: str) -> str:
    """The case page's path: case ids are made by the router, and quoted all the same."""
    return f"{root_path}/cases/{quote(escalation_id, safe='')}"


def _finalize(value: Any) -> Any:
    # Markup is only ever the package's own text (the style sheet); anything
    # else printed by a template is shown printable, then escaped.
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return printable(value)
    return value


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["printable"] = lambda value: printable(str(value))
    env.filters["when"] = _when
    env.filters["shown"] = shown
    return env


def _load(name: str) -> str | None:
    found = _TEMPLATES / name
    return found.read_text(encoding="utf-8") if found.is_file() else None


class Pages:
    """Renders the approval page's templates; ``title`` names the page in every heading."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._env = _environment()

    def render(self, template: str, **values: Any) -> str:
        """``template`` rendered with ``values`` (and the title and style sheet)."""
        return self._env.get_template(template).render(title=self.title, css=Markup(_CSS), **values)

    def case(
        self,
        case: Escalation,
        *,
        root_path: str,
        form: Mapping[str, str] | None,
        notice: str = "",
    ) -> str:
        """The case page: the exact redacted request, the rule, deadlines, history; ``form``
        (``action`` and ``csrf``) adds Approve / Reject, ``notice`` a line on top."""
        request = case.request
        resource = request.get("resource")
        decision = case.decision
        level = case.route.level(case.level)
        return self.render(
            "case.html",
            case=case,
            action=str(request.get("action", "")),
            agent=str(request.get("agent", "")),
            on_behalf_of=request.get("on_behalf_of"),
            args=_items(request.get("args")),
            context=_items(request.get("context")),
            resource=None if resource is None else _items(resource),
            rule_id=decision.get("rule_id"),
            why=str(decision.get("reason", "")),
            level_name=level.name,
            approvals=case.approvals,
            required=level.required_approvals,
            history=[_event(e) for e in case.history],
            form=form,
            notice=notice,
            href=case_href(root_path, case.id),
        )

    def inbox(self, cases: Sequence[Escalation], *, user: str, root_path: str) -> str:
        """The inbox: ``cases`` (those ``user`` may decide), each linking to its page."""
        rows = [
            {
                "case": case,
                "href": case_href(root_path, case.id),
                "action": str(case.request.get("action", "")),
                "agent": str(case.request.get("agent", "")),
                "on_behalf_of": case.request.get("on_behalf_of"),
            }
            for case in cases
        ]
        return self.render("inbox.html", rows=rows, user=user)

    def refused(self, *, status: int, heading: str, why: str) -> str:
        """A page that says why nothing was done."""
        return self.render("refused.html", status=status, heading=heading, why=why)


def _items(value: Any) -> list[tuple[str, Shown]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return [(str(key), shown(item)) for key, item in value.items()]
    return [("", shown(value))]


def _event(event: Event) -> dict[str, Any]:
    return {
        "at": event.at,
        "kind": event.kind,
        "level": event.level,
        "by": event.by,
        "via": event.via,
        "reason": event.reason,
    }
