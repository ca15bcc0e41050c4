"""Policy files: YAML or TOML text to a ``Policy`` and back, with file:line errors.

Loading reports every problem at once, each naming the file, the line, the
rule and the field, and saying how to fix it; a policy with any problem is
never built, so nothing of it is used.

Reading goes through ``handrail._yaml`` and ``handrail._toml``, which bound what a hostile file
can cost (nesting depth, alias expansion, number length) and escapes control
characters in every message.

Where lines come from:

* YAML lines are exact: the loader composes the node graph (with libyaml when
  PyYAML has it) and records the line of every mapping key and sequence item,
  so an error deep in a condition points at its own line.
* TOML lines point at the key (``effect = ...``), or at the rule's
  ``[[rules]]`` header for anything the small line locator does not follow
  (values inside inline tables and multi-line arrays, rules written as an
  inline array).
* Data given as a mapping (``Policy.from_dict``) has no lines; problems still
  name the rule and the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

import yaml
from pydantic import ValidationError

from .._errors import PolicyError, PolicyProblem
from .._files import Issue as _Issue
from .._files import (
    LineMap,
    Location,
    describe,
    dotted,
    expected_text,
    line_of,
    loc_key,
    read_text,
    show,
    unknown_key,
)
from .._names import ACTION_PATTERN_RE
from .._text import problem
from .._toml import read_toml
from .._yaml import read_yaml as _read_yaml
from ._conditions import ConditionSyntaxError
from ._model import PrincipalMatch, Rule
from ._policy import Policy

__all__ = ["dumps", "from_data", "load_file", "load_located", "loads", "to_data"]

Format: TypeAlias = Literal["yaml", "toml"]

_SUFFIXES: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}
_TOP_KEYS = ("version", "name", "description", "rules")
_RULE_FIELDS = tuple(Rule.model_fields)
_PRINCIPAL_FIELDS = tuple(PrincipalMatch.model_fields)
_EFFECTS = "allow, audit, escalate, deny"
_CONDITION_SHAPE = "a condition is a mapping of paths to tests, or all / any / not"

_MISSING_FIELD = {
    "id": "missing: every rule needs an id, unique in the policy (for example id: block-deletes)",
    "effect": f"missing: say what the rule does with one of {_EFFECTS}",
    "actions": (
        "missing: list the actions the rule covers, "
        "for example actions: [crm.contact.update] or actions: 'crm.*'"
    ),
}


# -- reading -------------------------------------------------------------------


def load_file(path: Path) -> Policy:
    """Load a ``.yaml``/``.yml`` or ``.toml`` policy file.

    Raises ``PolicyError`` naming the file for an unknown suffix, a file that
    cannot be read, and every problem inside it (with lines).
    """
    return load_located(path)[0]


def load_located(path: Path) -> tuple[Policy, LineMap]:
    """Load a policy file, and the line of every key and item in it (for cross-checks).

    ``policy.rules[i]`` is the rule at ``("rules", i)`` in the line map.
    Raises ``PolicyError`` as ``load_file`` does.
    """
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PolicyError(
            problem(
                f"cannot tell the format from the suffix {path.suffix or '(none)'!r}: "
                "name a policy file *.yaml, *.yml or *.toml",
                path,
            )
        )
    return _located(read_text(path, "policy file"), fmt, path)


def _read_toml(text: str, source: Path | None) -> tuple[Any, LineMap, list[_Issue]]:
    data, lines = read_toml(text, source)
    return data, lines, []


def loads(text: str, fmt: Format, source: Path | None) -> Policy:
    """Load a policy from YAML or TOML text; ``source`` names it in errors.

    Raises ``PolicyError`` listing every problem found.
    """
    return _located(text, fmt, source)[0]


def _located(text: str, fmt: Format, source: Path | None) -> tuple[Policy, LineMap]:
    lines: LineMap
    if fmt == "yaml":
        data, lines, issues = _read_yaml(text, source)
    elif fmt == "toml":
        data, lines, issues = _read_toml(text, source)
    else:
        raise ValueError(f"unknown policy format {fmt!r} (expected 'yaml' or 'toml')")
    policy = _build(data, source, lines, issues)
    policy._lines = _rule_lines(lines)
    return policy, lines


def _rule_lines(lines: LineMap) -> dict[tuple[int, str], int]:
    """The line of each rule and of each of its fields: a policy keeps no map of every key."""
    kept: dict[tuple[int, str], int] = {}
    for loc, line in lines.items():
        if len(loc) not in (2, 3) or loc[0] != "rules" or type(loc[1]) is not int:
            continue
        if len(loc) == 2:
            kept[loc[1], ""] = line
        elif isinstance(loc[2], str):
            kept[loc[1], loc[2]] = line
    return kept


def from_data(data: Mapping[str, Any], source: Path | None, lines: LineMap | None = None) -> Policy:
    """Build a policy from data in the file format; ``lines`` maps locations to lines.

    Raises ``PolicyError`` listing every problem found (with lines when known).
    """
    return _build(data, source, lines, [])


def _build(
    data: object, source: Path | None, lines: LineMap | None, issues: list[_Issue]
) -> Policy:
    issues = list(issues)
    if not isinstance(data, Mapping):
        issues.append(
            _Issue(
                (),
                f"a policy is a mapping with a 'rules' list at the top level, got {describe(data)}",
            )
        )
        raise _error(issues, data, source, lines)

    for key in data:
        if key not in _TOP_KEYS:
            issues.append(_Issue((loc_key(key),), unknown_key(key, _TOP_KEYS, "a policy")))
    if "version" in data:
        version = data["version"]
        if type(version) is not int or version != 1:
            issues.append(
                _Issue(
                    ("version",),
                    f"unsupported version {describe(version)}: "
                    "this handrail reads version 1 (write version: 1, or leave it out)",
                )
            )
    texts: dict[str, str] = {}
    for key in ("name", "description"):
        value = data.get(key, "")
        if isinstance(value, str):
            texts[key] = value
        else:
            issues.append(_Issue((key,), expected_text(value)))

    rules: list[Rule] = []
    raw_rules = data.get("rules")
    if "rules" not in data:
        issues.append(
            _Issue(
                ("rules",), "missing: a policy lists its rules under 'rules' (rules: [] for none)"
            )
        )
    elif not isinstance(raw_rules, list | tuple):
        issues.append(
            _Issue(
                ("rules",),
                "expected a list of rules (YAML '- id: ...' items, TOML [[rules]] tables), "
                f"got {describe(raw_rules)}",
            )
        )
    else:
        first_seen: dict[str, int] = {}
        for index, raw in enumerate(raw_rules):
            here: Location = ("rules", index)
            if not isinstance(raw, Mapping):
                issues.append(
                    _Issue(
                        here,
                        "expected a rule (a mapping with id, effect and actions), "
                        f"got {describe(raw)}",
                    )
                )
                continue
            rule_id = raw.get("id")
            if isinstance(rule_id, str):
                if rule_id in first_seen:
                    issues.append(_duplicate_id(index, first_seen[rule_id], lines))
                else:
                    first_seen[rule_id] = index
            try:
                rules.append(Rule.model_validate(dict(raw)))
            except ValidationError as exc:
                issues.extend(_Issue((*here, *loc), message) for loc, message in _explain(exc, raw))

    if issues:
        raise _error(issues, data, source, lines)
    return Policy(rules, name=texts["name"], description=texts["description"], source=source)


def _duplicate_id(index: int, first: int, lines: LineMap | None) -> _Issue:
    first_line = line_of(("rules", first, "id"), lines)
    where = f"the rule at line {first_line}" if first_line else f"rules[{first}]"
    return _Issue(
        ("rules", index, "id"),
        f"duplicate rule id: already used by {where}; give each rule its own id",
    )


def _explain(exc: ValidationError, raw: Mapping[Any, Any]) -> Iterator[tuple[Location, str]]:
    """Pydantic's errors for one rule as (location in the rule, a message that says the fix)."""
    for error in exc.errors(include_url=False):
        loc: Location = tuple(error["loc"])
        kind = error["type"]
        value = error.get("input")
        cause = error.get("ctx", {}).get("error")
        message = str(error["msg"]).removeprefix("Value error, ")
        field = loc[0] if loc else None
        if isinstance(cause, ConditionSyntaxError):
            # The condition parser knows the exact spot: when.all[1].args.x.gte.
            yield ("when", *cause.loc), cause.message
        elif kind == "extra_forbidden":
            if loc[:1] == ("principals",) and len(loc) == 2:
                yield loc, unknown_key(loc[-1], _PRINCIPAL_FIELDS, "principals")
            else:
                yield loc, unknown_key(loc[-1], _RULE_FIELDS, "a rule")
        elif kind == "missing" and len(loc) == 1 and loc[0] in _MISSING_FIELD:
            yield loc, _MISSING_FIELD[str(loc[0])]
        elif not loc:
            # The escalate_to check spans two fields: point at the one to change.
            has_route = raw.get("escalate_to") is not None
            yield ("escalate_to",) if has_route else ("effect",), message
        elif field == "effect" and kind == "enum":
            yield loc, f"unknown effect {show(value)} (expected {_EFFECTS})"
        elif field == "actions" and kind == "value_error":
            yield _bad_action(raw.get("actions")), message
        elif field == "actions" and kind.endswith("_type") and len(loc) == 1:
            yield loc, f"expected an action pattern or a list of them, got {describe(value)}"
        elif field == "actions" and kind == "too_short":
            yield loc, "is empty: list at least one action pattern, such as crm.contact.update"
        elif field == "principals" and len(loc) == 1 and kind.endswith("_type"):
            yield (
                loc,
                f"expected a mapping of {', '.join(_PRINCIPAL_FIELDS)} to lists of names, "
                f"got {describe(value)}",
            )
        elif field == "principals" and len(loc) == 2 and kind.endswith("_type"):
            yield loc, f"expected a list of names, got {describe(value)}: write {loc[1]}: [...]"
        elif field == "when":
            yield loc, f"{_CONDITION_SHAPE}, got {describe(value)}"
        elif kind == "string_type":
            yield loc, expected_text(value)
        else:
            yield loc, message


def _bad_action(actions: object) -> Location:
    """Point at the malformed item of ``actions`` when it is a list."""
    if isinstance(actions, list | tuple):
        for index, pattern in enumerate(actions):
            if not (isinstance(pattern, str) and ACTION_PATTERN_RE.fullmatch(pattern)):
                return ("actions", index)
    return ("actions",)


# -- placing problems: rule, field and line ------------------------------------


def _error(
    issues: list[_Issue], data: object, source: Path | None, lines: LineMap | None
) -> PolicyError:
    problems = [_place(issue, data, source, lines) for issue in issues]
    problems.sort(key=lambda p: p.line or 0)  # stable: same-line problems keep their order
    return PolicyError(problems)


def _place(
    issue: _Issue, data: object, source: Path | None, lines: LineMap | None
) -> PolicyProblem:
    loc = issue.loc
    line = issue.line if issue.line is not None else line_of(loc, lines)
    rule_id = None
    field_loc = loc
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = _rule_id(data, loc[1])
        if rule_id is not None:
            field_loc = loc[2:]
    return problem(issue.message, source, line, rule_id, dotted(field_loc) or None)


def _rule_id(data: object, index: int) -> str | None:
    rules = data.get("rules") if isinstance(data, Mapping) else None
    if isinstance(rules, list | tuple) and 0 <= index < len(rules):
        rule = rules[index]
        if isinstance(rule, Mapping) and isinstance(rule.get("id"), str) and rule["id"]:
            return str(rule["id"])
    return None


# -- writing -------------------------------------------------------------------


def to_data(policy: Policy) -> dict[str, Any]:
    """The policy in the file format, as plain data, omitting defaults.

    Raises ``PolicyError`` naming every rule whose condition is Python code
    (a ``Predicate``), which no file can hold.
    """
    problems: list[PolicyProblem] = []
    data: dict[str, Any] = {"version": 1}
    if policy.name:
        data["name"] = policy.name
    if policy.description:
        data["description"] = policy.description
    rules: list[dict[str, Any]] = []
    for rule in policy.rules:
        entry: dict[str, Any] = {
            "id": rule.id,
            "effect": rule.effect.value,
            "actions": list(rule.actions),
        }
        principals = {
            name: sorted(getattr(rule.principals, name))
            for name in _PRINCIPAL_FIELDS
            if getattr(rule.principals, name)
        }
        if principals:
            entry["principals"] = principals
        if rule.when is not None:
            try:
                entry["when"] = rule.when.to_data()
            except ValueError as exc:
                problems.append(
                    PolicyProblem(
                        f"{exc}: write the condition with paths and operators to save it",
                        rule_id=rule.id,
                        field="when",
                    )
                )
        if rule.escalate_to is not None:
            entry["escalate_to"] = rule.escalate_to
        if rule.on_timeout is not None:
            entry["on_timeout"] = rule.on_timeout
        if rule.description:
            entry["description"] = rule.description
        if rule.owner:
            entry["owner"] = rule.owner
        rules.append(entry)
    if problems:
        raise PolicyError(problems)
    data["rules"] = rules
    return data


# Characters YAML reads as line breaks inside a plain or single-quoted scalar
# (so a round trip would fold them into spaces): such strings are double-quoted,
# where they are escaped.
_YAML_BREAKS = frozenset("\x85\u2028\u2029")


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if not _YAML_BREAKS.isdisjoint(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dumps(policy: Policy, fmt: Format) -> str:
    """The policy as YAML or TOML text that ``loads`` reads back to an equivalent policy.

    Raises ``PolicyError`` for what the format cannot hold (Python predicates;
    null values in TOML) and when writing TOML without the ``toml`` extra.
    """
    data = to_data(policy)
    if fmt == "yaml":
        data["rules"] = _plain_rules(data["rules"], fmt)
        return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    if fmt == "toml":
        try:
            import tomli_w  # an optional extra, needed only here
        except ImportError as exc:
            raise PolicyError(
                "writing TOML needs the 'toml' extra: pip install 'handrail[toml]'"
            ) from exc
        data["rules"] = _plain_rules(data["rules"], fmt)
        return tomli_w.dumps(data)
    raise ValueError(f"unknown policy format {fmt!r} (expected 'yaml' or 'toml')")


def _plain_rules(rules: list[dict[str, Any]], fmt: Format) -> list[dict[str, Any]]:
    """Rules with condition values the format can write; PolicyError naming any that cannot."""
    problems: list[PolicyProblem] = []
    plain: list[dict[str, Any]] = []
    for rule in rules:
        if "when" not in rule:
            plain.append(rule)
            continue
        found: list[tuple[Location, str]] = []
        plain.append({**rule, "when": _plain(rule["when"], ("when",), fmt, found)})
        problems.extend(
            PolicyProblem(message, rule_id=rule["id"], field=dotted(loc)) for loc, message in found
        )
    if problems:
        raise PolicyError(problems)
    return plain


def _plain(value: Any, loc: Location, fmt: Format, found: list[tuple[Location, str]]) -> Any:
    if value is None:
        if fmt == "toml":
            found.append(
                (loc, "TOML cannot hold null: save this policy as YAML, or test with exists")
            )
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dt.date):  # and datetime: both formats have them
        return value
    if isinstance(value, list | tuple):
        return [_plain(v, (*loc, i), fmt, found) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, (*loc, str(k)), fmt, found) for k, v in value.items()}
    found.append(
        (
            loc,
            f"a {type(value).__name__} value cannot be written to {fmt.upper()}: "
            "use text, a number, a boolean or a date",
        )
    )
    return None
