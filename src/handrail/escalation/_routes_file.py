"""Routes files: escalation routes and decider groups from YAML or TOML, with file:line errors.

The shape (YAML; TOML is the same data with ``[[routes]]`` and
``[[routes.levels]]`` tables)::

    routes:
      - name: sales-managers
        hours: {timezone: Europe/Berlin, days: [1, 2, 3, 4, 5], start: "09:00", end: "17:00"}
        on_timeout: deny            # deny | allow | keep_open
        repeat_last: 1
        levels:
          - name: team-lead
            notify: ["#sales-approvals", maria@example.com]
            deciders: [maria, group:sales-leads]
            ack_within: 30m
            resolve_within: 4h
            required_approvals: 1   # optional: how many different deciders must approve
    groups:                         # optional: group name -> member user ids
      sales-leads: [maria, li]

Durations are compact (``90s``, ``30m``, ``4h``, ``2d``, ``1w``, ``1h30m``,
``1.5h``), ISO 8601 (``PT4H``, ``P1DT2H``) or a number of seconds; each must
be longer than zero.

Loading reports every problem at once, each naming the file, the line and
the field (``routes[0].levels[1].ack_within``), the way policy files do: the
same YAML reader (exact lines, duplicate keys reported, not silently
dropped) and the same did-you-mean for misspelt keys.  A file with any
problem yields nothing.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

from pydantic import TypeAdapter, ValidationError

from .._errors import ConfigurationError, PolicyError, PolicyProblem
from .._files import (
    Issue,
    LineMap,
    Location,
    describe,
    expected_text,
    line_of,
    loc_key,
    located_problems,
    read_text,
    show,
    unknown_key,
)
from .._names import canonical_name, canonical_names
from .._text import problem
from .._toml import read_toml
from .._yaml import read_yaml
from ._calendar import BusinessHours
from ._model import _NAME_RE, Level, OnTimeout, Route

__all__ = [
    "ExternalGroups",
    "RoutesFile",
    "load_routes",
    "parse_duration",
    "routes_from_dict",
    "routes_from_toml",
    "routes_from_yaml",
]

_TOP_KEYS = ("version", "routes", "groups")
_ROUTE_FIELDS = tuple(Route.model_fields)
_LEVEL_FIELDS = tuple(Level.model_fields)
_HOURS_FIELDS = tuple(BusinessHours.model_fields)
_DURATION_FIELDS = ("ack_within", "resolve_within")
_ON_TIMEOUT = ", ".join(o.value for o in OnTimeout)
_DURATION_FORMS = "such as 90s, 30m, 4h, 2d, 1h30m, PT4H, or a number of seconds"

_COMPACT = re.compile(
    r"(?:(?P<w>\d+(?:\.\d+)?)w)?(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?"
)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_ISO = TypeAdapter(timedelta)

_MISSING: dict[Location, str] = {
    ("name",): "missing: every route needs a name, the one a rule's escalate_to gives",
    ("levels",): "missing: list the route's levels, first to last (levels: [...])",
    ("deciders",): (
        "missing: name who may decide at this level, user ids or group:NAME "
        "(for example deciders: [maria, group:sales-leads])"
    ),
    ("resolve_within",): (
        "missing: say how long this level has to decide, for example resolve_within: 4h"
    ),
    ("timezone",): "missing: name the IANA time zone, for example timezone: Europe/Berlin",
}


@dataclass(frozen=True, slots=True)
class RoutesFile:
    """What a routes file holds: its ``routes`` in file order and its decider ``groups``.

    ``groups`` maps a group name to its members' user ids; pass both to the
    router: ``EscalationRouter(f.routes, store, groups=f.groups)``.
    ``source`` is the file it came from, if any.
    """

    routes: tuple[Route, ...]
    groups: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    source: Path | None = None

    def route(self, name: str) -> Route:
        """The route called ``name``; ``KeyError`` naming the known ones if there is none."""
        for route in self.routes:
            if route.name == name:
                return route
        known = ", ".join(r.name for r in self.routes) or "none"
        raise KeyError(f"no route named {name!r} (routes: {known})")

    def groups_of(self, user: str) -> frozenset[str]:
        """The names of the groups ``user`` is a member of."""
        return frozenset(name for name, members in self.groups.items() if user in members)


ExternalGroups: TypeAlias = bool | Iterable[str]
"""Groups defined outside the file: ``True`` for any, or the names of those that exist."""


def load_routes(
    path: str | os.PathLike[str], *, external_groups: ExternalGroups = False
) -> RoutesFile:
    """Load a ``.yaml``/``.yml`` or ``.toml`` routes file.

    Every ``group:NAME`` decider must name a group the file's ``groups:``
    defines, or nobody could ever decide that level.  When the router's
    ``groups=`` directory comes from elsewhere (a database, a directory
    service), say so: ``external_groups=True`` accepts any group name, and an
    iterable of names accepts those as well as the file's own.

    Raises ``PolicyError`` (a ``ConfigurationError``) naming the file for an
    unknown suffix or an unreadable file, and listing every problem inside it
    with its line and field.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise PolicyError(
            problem(
                f"cannot tell the format from the suffix {suffix or '(none)'!r}: "
                "name a routes file *.yaml, *.yml or *.toml",
                source,
            )
        )
    text = read_text(source, "routes file")
    if suffix == ".toml":
        return routes_from_toml(text, source=source, external_groups=external_groups)
    return routes_from_yaml(text, source=source, external_groups=external_groups)


def routes_from_yaml(
    text: str,
    *,
    source: str | os.PathLike[str] | None = None,
    external_groups: ExternalGroups = False,
) -> RoutesFile:
    """Routes from YAML text; ``source`` names it in errors.  Raises ``PolicyError``.

    ``external_groups`` as for ``load_routes``.
    """
    where = None if source is None else Path(source)
    data, lines, issues = read_yaml(text, where)
    return _build(data, where, lines, located_problems(issues, where, lines), external_groups)


def routes_from_toml(
    text: str,
    *,
    source: str | os.PathLike[str] | None = None,
    external_groups: ExternalGroups = False,
) -> RoutesFile:
    """Routes from TOML text; ``source`` names it in errors.  Raises ``PolicyError``.

    ``external_groups`` as for ``load_routes``.
    """
    where = None if source is None else Path(source)
    data, lines = read_toml(text, where)
    return _build(data, where, lines, [], external_groups)


def routes_from_dict(
    data: Mapping[str, Any],
    *,
    source: str | os.PathLike[str] | None = None,
    external_groups: ExternalGroups = False,
) -> RoutesFile:
    """Routes from data in the file's shape (no lines in errors).  Raises ``PolicyError``.

    ``external_groups`` as for ``load_routes``.
    """
    where = None if source is None else Path(source)
    return _build(data, where, None, [], external_groups)


def parse_duration(value: object) -> timedelta:
    """A positive duration from ``90s``/``30m``/``4h``/``2d``/``1h30m``, ISO 8601 or seconds.

    Raises ``ValueError`` saying what was wrong and which forms are read.
    """
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, bool) or value is None:
        raise ValueError(f"expected a duration {_DURATION_FORMS}, got {describe(value)}")
    elif isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"expected a duration {_DURATION_FORMS}, got {value}")
        try:
            duration = timedelta(seconds=value)
        except OverflowError:
            raise ValueError(_too_long(value)) from None
    elif isinstance(value, str):
        duration = _parse_text(value)
    else:
        raise ValueError(f"expected a duration {_DURATION_FORMS}, got {describe(value)}")
    if duration <= timedelta(0):
        shown = show(value) if not isinstance(value, timedelta) else str(value)
        raise ValueError(f"a duration must be longer than zero, got {shown}")
    return duration


def _parse_text(value: str) -> timedelta:
    text = "".join(value.split())
    negative = text.startswith("-")
    body = text.removeprefix("-")
    if body[:1] in ("P", "p"):
        try:
            duration = _ISO.validate_python(text.upper())
        except ValidationError:
            raise ValueError(
                f"cannot read {value!r} as an ISO 8601 duration: write it like PT4H or P1DT2H, "
                "or use the compact form (4h, 1d2h)"
            ) from None
        return duration
    match = _COMPACT.fullmatch(body.lower())
    if not body or match is None or not any(match.groupdict().values()):
        raise ValueError(f"cannot read {value!r} as a duration: write it {_DURATION_FORMS}")
    try:
        duration = timedelta(
            **{_UNITS[unit]: float(amount) for unit, amount in match.groupdict().items() if amount}
        )
    except OverflowError:
        raise ValueError(_too_long(value)) from None
    return -duration if negative else duration


def _too_long(value: object) -> str:
    shown = value if isinstance(value, str) else show(value)
    return (
        f"the duration {shown!s:.40} is too long: a duration is at most "
        f"{timedelta.max.days:,} days; write a shorter one"
    )


# -- building -------------------------------------------------------------------


def _build(
    data: object,
    source: Path | None,
    lines: LineMap | None,
    problems: list[PolicyProblem],
    external_groups: ExternalGroups,
) -> RoutesFile:
    if not isinstance(external_groups, bool):
        external_groups = canonical_names(list(external_groups), "external_groups")
    issues: list[Issue] = []
    routes: list[tuple[int, Route]] = []
    groups: dict[str, frozenset[str]] = {}
    if not isinstance(data, Mapping):
        issues.append(
            Issue(
                (),
                "a routes file is a mapping with a 'routes' list at the top level, "
                f"got {describe(data)}",
            )
        )
    else:
        for key in data:
            if key not in _TOP_KEYS:
                issues.append(Issue((loc_key(key),), unknown_key(key, _TOP_KEYS, "a routes file")))
        version = data.get("version", 1)
        if type(version) is not int or version != 1:
            issues.append(
                Issue(
                    ("version",),
                    f"unsupported version {describe(version)}: this handrail reads "
                    "version 1 (write version: 1, or leave it out)",
                )
            )
        groups = _groups(data.get("groups"), "groups" in data, issues)
        routes = _routes(data, lines, issues)
        # A malformed or misspelt groups: section is the one problem to report, not
        # every decider it leaves undefined.
        top_level_problem = any(len(issue.loc) == 1 for issue in issues)
        if external_groups is not True and not top_level_problem:
            raw_groups = data.get("groups")
            declared: set[object] = set(groups)
            if isinstance(raw_groups, Mapping):  # a bad entry is reported once, as itself
                declared |= {k.lower() if isinstance(k, str) else k for k in raw_groups}
            known = declared | (external_groups or frozenset())
            _check_groups(routes, known, issues)
    problems = [*problems, *located_problems(issues, source, lines)]
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise PolicyError(problems)
    return RoutesFile(tuple(route for _, route in routes), MappingProxyType(groups), source)


def _check_groups(routes: list[tuple[int, Route]], known: set[object], issues: list[Issue]) -> None:
    """Every ``group:NAME`` decider names a known group, or nobody could decide that level."""
    for index, route in routes:
        for number, level in enumerate(route.levels):
            for position, who in enumerate(level.deciders):
                name = who.removeprefix("group:")
                if name == who or name in known:
                    continue
                defined = ", ".join(sorted(str(k) for k in known)) or "none"
                issues.append(
                    Issue(
                        ("routes", index, "levels", number, "deciders", position),
                        f"group {name!r} is not defined (the file's groups: {defined}): "
                        f"add '{name}: [user, ...]' under groups:, or load the file with "
                        "external_groups when the router's groups come from elsewhere",
                    )
                )


def _groups(raw: object, present: bool, issues: list[Issue]) -> dict[str, frozenset[str]]:
    if not present:
        return {}
    if not isinstance(raw, Mapping):
        issues.append(
            Issue(
                ("groups",),
                "expected a mapping of group names to lists of user ids "
                f"(groups: {{sales-leads: [maria, li]}}), got {describe(raw)}",
            )
        )
        return {}
    groups: dict[str, frozenset[str]] = {}
    for name, members in raw.items():
        here: Location = ("groups", loc_key(name))
        group = _name(name, "a group name", here, issues)
        if group is None:
            continue
        items = [members] if isinstance(members, str) else members
        if not isinstance(items, list | tuple):
            issues.append(Issue(here, f"expected a list of user ids, got {describe(members)}"))
            continue
        canonical = [
            _name(member, "a user id", here if isinstance(members, str) else (*here, i), issues)
            for i, member in enumerate(items)
        ]
        if None not in canonical:
            groups[group] = frozenset(c for c in canonical if c is not None)
    return groups


def _name(value: object, what: str, here: Location, issues: list[Issue]) -> str | None:
    """``value`` in canonical form (the one name rule, as on a ``User``), or None and an issue."""
    if isinstance(value, str) and _NAME_RE.fullmatch(unicodedata.normalize("NFKC", value)):
        try:
            return canonical_name(value, what)
        except ConfigurationError:
            pass
    issues.append(Issue(here, _bad_name(value, what)))
    return None


def _bad_name(value: object, what: str) -> str:
    if isinstance(value, str):
        return (
            f"{value!r} is not {what}: use letters, digits and _ . : @ -, "
            "starting with a letter or digit"
        )
    return f"expected {what}, got {describe(value)}"


def _routes(
    data: Mapping[Any, Any], lines: LineMap | None, issues: list[Issue]
) -> list[tuple[int, Route]]:
    if "routes" not in data:
        issues.append(Issue(("routes",), "missing: a routes file lists its routes under 'routes'"))
        return []
    raw_routes = data["routes"]
    if not isinstance(raw_routes, list | tuple):
        issues.append(
            Issue(
                ("routes",),
                "expected a list of routes (YAML '- name: ...' items, TOML [[routes]] tables), "
                f"got {describe(raw_routes)}",
            )
        )
        return []
    routes: list[tuple[int, Route]] = []
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(raw_routes):
        here: Location = ("routes", index)
        if not isinstance(raw, Mapping):
            issues.append(
                Issue(
                    here,
                    f"expected a route (a mapping with name and levels), got {describe(raw)}",
                )
            )
            continue
        name = raw.get("name")
        if isinstance(name, str) and name:
            if name in first_seen:
                line = line_of(("routes", first_seen[name], "name"), lines)
                where = f"the route at line {line}" if line else f"routes[{first_seen[name]}]"
                issues.append(
                    Issue(
                        (*here, "name"),
                        f"duplicate route name: already used by {where}; give each route "
                        "its own name",
                    )
                )
            else:
                first_seen[name] = index
        route = _route(raw, here, issues)
        if route is not None:
            routes.append((index, route))
    return routes


def _route(raw: Mapping[Any, Any], here: Location, issues: list[Issue]) -> Route | None:
    """One route, its durations and times read first so pydantic sees plain values."""
    found: list[Issue] = []
    prepared = dict(raw)
    levels = raw.get("levels")
    if isinstance(levels, list | tuple):
        prepared["levels"] = [
            _level(level, (*here, "levels", i), found) if isinstance(level, Mapping) else level
            for i, level in enumerate(levels)
        ]
    hours = raw.get("hours")
    if isinstance(hours, Mapping):
        for name in ("start", "end"):
            value = hours.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                found.append(
                    Issue(
                        (*here, "hours", name),
                        f"expected a time such as '17:00' in quotes, got number {value} "
                        "(YAML reads an unquoted 17:00 as the number 1020)",
                    )
                )
    reported = {issue.loc[len(here) :] for issue in found}
    route = None
    try:
        route = Route.model_validate(prepared)
    except ValidationError as exc:
        for loc, message in _explain(exc):
            if not any(loc[: len(done)] == done for done in reported):
                found.append(Issue((*here, *loc), message))
    issues.extend(found)
    return None if found else route


def _level(raw: Mapping[Any, Any], here: Location, found: list[Issue]) -> dict[Any, Any]:
    level = dict(raw)
    for name in _DURATION_FIELDS:
        if name in level and level[name] is not None:
            try:
                level[name] = parse_duration(level[name])
            except ValueError as exc:
                found.append(Issue((*here, name), str(exc)))
    return level


def _explain(exc: ValidationError) -> Iterator[tuple[Location, str]]:
    """Pydantic's errors for one route as (location in the route, a message that says the fix)."""
    for error in exc.errors(include_url=False):
        loc: Location = tuple(error["loc"])
        kind = error["type"]
        value = error.get("input")
        message = str(error["msg"]).removeprefix("Value error, ")
        last = loc[-1] if loc else None
        if kind == "too_short" and isinstance(value, list | tuple) and value:
            continue  # pydantic counts only the valid items; the others are reported
        if kind == "extra_forbidden":
            yield loc, unknown_key(last, *_owner(loc))
        elif kind == "missing" and loc[-1:] in _MISSING:
            yield loc, _MISSING[loc[-1:]]
        elif kind == "enum" and loc == ("on_timeout",):
            yield loc, f"unknown on_timeout {show(value)} (expected {_ON_TIMEOUT})"
        elif kind == "too_short" and last == "levels":
            yield loc, "is empty: a route needs at least one level"
        elif kind == "too_short" and last == "deciders":
            yield loc, "is empty: name at least one decider (a user id or group:NAME)"
        elif loc[-1:] == ("repeat_last",) and kind.startswith(("greater_than", "int")):
            yield loc, f"expected a whole number, 0 or more, got {describe(value)}"
        elif loc[-2:-1] == ("days",) or (loc[-1:] == ("days",) and kind.endswith("_type")):
            yield loc, f"expected ISO weekdays, 1=Monday ... 7=Sunday, got {describe(value)}"
        elif kind == "model_type" and last == "hours":
            yield (
                loc,
                "expected a mapping of timezone, days, start, end and holidays, "
                f"got {describe(value)}",
            )
        elif kind == "model_type":
            yield (
                loc,
                "expected a level (a mapping with deciders and resolve_within), "
                f"got {describe(value)}",
            )
        elif "is not after start" in message and last == "hours":
            yield (*loc, "end"), message
        elif loc[-1:] == ("required_approvals",) and kind.startswith(
            ("greater_than", "less_than", "int")
        ):
            yield loc, f"expected a whole number from 1 to 10, got {describe(value)}"
        elif "required_approvals" in message and kind == "value_error" and len(loc) == 2:
            yield (*loc, "required_approvals"), message  # more approvals than deciders
        elif "ack_within" in message and kind == "value_error" and len(loc) == 2:
            yield (*loc, "ack_within"), message  # ack longer than resolve: point at ack
        elif kind == "string_type":
            yield loc, expected_text(value)
        elif kind.endswith(("_type", "_parsing")):
            yield loc, f"{message}, got {describe(value)}"
        else:
            yield loc, message


def _owner(loc: Location) -> tuple[tuple[str, ...], str]:
    """The fields allowed where an unknown key sits, and what owns them."""
    parent = loc[:-1]
    if parent[-1:] == ("hours",):
        return _HOURS_FIELDS, "hours"
    if len(parent) == 2 and parent[0] == "levels":
        return _LEVEL_FIELDS, "a level"
    return _ROUTE_FIELDS, "a route"
