"""Policy files: YAML or TOML text to a ``Policy`` and back, with file:line errors.

Loading reports every problem at once, each naming the file, the line, the
rule and the field, and saying how to fix it; a policy with any problem is
never built, so nothing of it is used.

Where lines come from:

* YAML lines are exact: the loader composes the node graph itself and
  records the line of every mapping key and sequence item, so an error deep in
  a condition points at its own line.
* TOML lines point at the key (``effect = ...``), or at the rule's
  ``[[rules]]`` header for anything the small line locator does not follow
  (values inside inline tables and multi-line arrays, rules written as an
  inline array).
* Data given as a mapping (``Policy.from_dict``) has no lines; problems still
  name the rule and the field.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

import yaml
from pydantic import ValidationError

from .._errors import PolicyError, PolicyProblem
from ._conditions import ConditionSyntaxError
from ._model import ACTION_PATTERN_RE, PrincipalMatch, Rule
from ._policy import Policy

__all__ = ["LineMap", "Location", "dumps", "from_data", "load_file", "loads", "to_data"]

Format: TypeAlias = Literal["yaml", "toml"]

Location: TypeAlias = tuple[str | int, ...]
"""Where a value sits in the file's data: ``("rules", 3, "when", "all", 1)``."""

LineMap: TypeAlias = Mapping[Location, int]
"""The 1-based line of each recorded location (a key, a list item or a TOML header)."""

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
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PolicyError(
            PolicyProblem(
                f"cannot tell the format from the suffix {path.suffix or '(none)'!r}: "
                "name a policy file *.yaml, *.yml or *.toml",
                path,
            )
        )
    return loads(read_text(path, "policy file"), fmt, path)


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; a PolicyError naming it (``what`` says which file) if not."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            PolicyProblem(f"not UTF-8 text ({exc.reason}): save the file as UTF-8", path)
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PolicyError(
            PolicyProblem(f"cannot read the {what}: {reason}; check the path", path)
        ) from exc


def read_yaml(text: str, source: Path | None) -> tuple[Any, LineMap, list[PolicyProblem]]:
    """YAML text as data, the line of every key and item, and its duplicate-key problems.

    Raises PolicyError for a syntax error.  Shared with the policy test-case loader.
    """
    data, lines, issues = _read_yaml(text, source)
    problems = [
        PolicyProblem(
            i.message, source, i.line or _line_of(i.loc, lines), field=_dotted(i.loc) or None
        )
        for i in issues
    ]
    return data, lines, problems


def line_of(loc: Location, lines: LineMap | None) -> int | None:
    """The line of ``loc`` in a document read by ``read_yaml``, or of its nearest ancestor."""
    return _line_of(loc, lines)


def loads(text: str, fmt: Format, source: Path | None) -> Policy:
    """Load a policy from YAML or TOML text; ``source`` names it in errors.

    Raises ``PolicyError`` listing every problem found.
    """
    if fmt == "yaml":
        data, lines, issues = _read_yaml(text, source)
    elif fmt == "toml":
        data, lines, issues = _read_toml(text, source)
    else:
        raise ValueError(f"unknown policy format {fmt!r} (expected 'yaml' or 'toml')")
    return _build(data, source, lines, issues)


def from_data(data: Mapping[str, Any], source: Path | None, lines: LineMap | None = None) -> Policy:
    """Build a policy from data in the file format; ``lines`` maps locations to lines.

    Raises ``PolicyError`` listing every problem found (with lines when known).
    """
    return _build(data, source, lines, [])


@dataclass(frozen=True, slots=True)
class _Issue:
    """A problem before it is placed: where in the data, what, and the line if already known."""

    loc: Location
    message: str
    line: int | None = None


def _build(
    data: object, source: Path | None, lines: LineMap | None, issues: list[_Issue]
) -> Policy:
    issues = list(issues)
    if not isinstance(data, Mapping):
        issues.append(
            _Issue(
                (),
                "a policy is a mapping with a 'rules' list at the top level, "
                f"got {_describe(data)}",
            )
        )
        raise _error(issues, data, source, lines)

    for key in data:
        if key not in _TOP_KEYS:
            issues.append(_Issue((_loc_key(key),), _unknown_key(key, _TOP_KEYS, "a policy")))
    if "version" in data:
        version = data["version"]
        if type(version) is not int or version != 1:
            issues.append(
                _Issue(
                    ("version",),
                    f"unsupported version {_describe(version)}: "
                    "this handrail reads version 1 (write version: 1, or leave it out)",
                )
            )
    texts: dict[str, str] = {}
    for key in ("name", "description"):
        value = data.get(key, "")
        if isinstance(value, str):
            texts[key] = value
        else:
            issues.append(_Issue((key,), _expected_text(value)))

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
                f"got {_describe(raw_rules)}",
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
                        f"got {_describe(raw)}",
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
    first_line = _line_of(("rules", first, "id"), lines)
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
                yield loc, _unknown_key(loc[-1], _PRINCIPAL_FIELDS, "principals")
            else:
                yield loc, _unknown_key(loc[-1], _RULE_FIELDS, "a rule")
        elif kind == "missing" and len(loc) == 1 and loc[0] in _MISSING_FIELD:
            yield loc, _MISSING_FIELD[str(loc[0])]
        elif not loc:
            # The escalate_to check spans two fields: point at the one to change.
            has_route = raw.get("escalate_to") is not None
            yield ("escalate_to",) if has_route else ("effect",), message
        elif field == "effect" and kind == "enum":
            yield loc, f"unknown effect {_show(value)} (expected {_EFFECTS})"
        elif field == "actions" and kind == "value_error":
            yield _bad_action(raw.get("actions")), message
        elif field == "actions" and kind.endswith("_type") and len(loc) == 1:
            yield loc, f"expected an action pattern or a list of them, got {_describe(value)}"
        elif field == "actions" and kind == "too_short":
            yield loc, "is empty: list at least one action pattern, such as crm.contact.update"
        elif field == "principals" and len(loc) == 1 and kind.endswith("_type"):
            yield (
                loc,
                f"expected a mapping of {', '.join(_PRINCIPAL_FIELDS)} to lists of names, "
                f"got {_describe(value)}",
            )
        elif field == "principals" and len(loc) == 2 and kind.endswith("_type"):
            yield loc, f"expected a list of names, got {_describe(value)}: write {loc[1]}: [...]"
        elif field == "when":
            yield loc, f"{_CONDITION_SHAPE}, got {_describe(value)}"
        elif kind == "string_type":
            yield loc, _expected_text(value)
        else:
            yield loc, message


def _bad_action(actions: object) -> Location:
    """Point at the malformed item of ``actions`` when it is a list."""
    if isinstance(actions, list | tuple):
        for index, pattern in enumerate(actions):
            if not (isinstance(pattern, str) and ACTION_PATTERN_RE.fullmatch(pattern)):
                return ("actions", index)
    return ("actions",)


def _unknown_key(key: object, allowed: tuple[str, ...], owner: str) -> str:
    message = f"unknown field {key!r}"
    close = difflib.get_close_matches(str(key), allowed, n=1)
    if close:
        message += f": did you mean {close[0]!r}?"
    return f"{message} ({owner} takes {', '.join(allowed)})"


def _expected_text(value: object) -> str:
    if value is None:
        return "is empty: give it a value or remove the key"
    if isinstance(value, bool | int | float):
        return f"expected text, got {_describe(value)}: quote it ('{_show(value)}')"
    return f"expected text, got {_describe(value)}"


def _show(value: object) -> str:
    """A value as the file would spell it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _describe(value: object) -> str:
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"boolean {_show(value)}"
    if isinstance(value, int | float):
        return f"number {_show(value)}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _loc_key(key: object) -> str | int:
    return key if isinstance(key, str | int) else repr(key)


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
    line = issue.line if issue.line is not None else _line_of(loc, lines)
    rule_id = None
    field_loc = loc
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = _rule_id(data, loc[1])
        if rule_id is not None:
            field_loc = loc[2:]
    return PolicyProblem(issue.message, source, line, rule_id, _dotted(field_loc) or None)


def _rule_id(data: object, index: int) -> str | None:
    rules = data.get("rules") if isinstance(data, Mapping) else None
    if isinstance(rules, list | tuple) and 0 <= index < len(rules):
        rule = rules[index]
        if isinstance(rule, Mapping) and isinstance(rule.get("id"), str) and rule["id"]:
            return str(rule["id"])
    return None


def _line_of(loc: Location, lines: LineMap | None) -> int | None:
    """The line of ``loc``, or of its nearest recorded ancestor."""
    if lines is None:
        return None
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


def _dotted(loc: Location) -> str:
    """``("when", "all", 1, "args.x")`` -> ``when.all[1].args.x``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else f".{part}"
    return text.lstrip(".")


# -- YAML: build the data from the node graph, recording lines ------------------

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _read_yaml(text: str, source: Path | None) -> tuple[Any, dict[Location, int], list[_Issue]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise PolicyError(_yaml_syntax(exc, source)) from exc
    builder = _YamlBuilder()
    if root is None:  # only comments: read as an empty mapping, which lacks 'rules'
        return {}, {(): 1}, []
    return builder.build(root, ()), builder.lines, builder.issues


def _yaml_syntax(exc: yaml.YAMLError, source: Path | None) -> PolicyProblem:
    hint = "check the indentation (spaces, not tabs) and quote values containing ': ' or ' #'"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return PolicyProblem(f"YAML syntax error: {exc}; {hint}", source)
    detail = exc.problem or "malformed"
    if exc.context:
        context_line = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        detail = f"{exc.context}{context_line}: {detail}"
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    return PolicyProblem(f"YAML syntax error: {detail}; {hint}", source, line)


class _YamlBuilder:
    """Python data from composed YAML nodes, as SafeLoader would build it, plus lines.

    Scalars go through SafeLoader's own constructor so their types are the
    usual YAML ones.  Duplicate keys, which PyYAML silently resolves to the
    last one, are reported instead (the first is kept, so any further problem
    points at the line the user sees first).
    """

    def __init__(self) -> None:
        self.lines: dict[Location, int] = {}
        self.issues: list[_Issue] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()  # collection nodes being built: catches recursive aliases

    def build(self, node: yaml.Node, loc: Location) -> Any:
        line = node.start_mark.line + 1
        self.lines.setdefault(loc, line)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag in (
            _MAP_TAG,
            _SEQ_TAG,
        ):
            if id(node) in self._open:
                self.issues.append(
                    _Issue(loc, "an alias refers to its own anchor: unfold it", line)
                )
                return None
            self._open.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, loc)
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            finally:
                self._open.discard(id(node))
        return self._scalar(node, loc)

    def _scalar(self, node: yaml.Node, loc: Location) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            detail = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
            line = node.start_mark.line + 1
            self.issues.append(_Issue(loc, f"cannot read this value: {detail}", line))
            return None

    def _mapping(self, node: yaml.MappingNode, loc: Location) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        key_lines: dict[Any, int] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append(
                    _Issue(loc, "a key must be a plain value, not a list or mapping", key_line)
                )
                continue
            key = self._scalar(key_node, loc)
            here = (*loc, _loc_key(key))
            if key in key_lines:
                self.issues.append(
                    _Issue(
                        here,
                        f"duplicate key {key!r} (first at line {key_lines[key]}): "
                        "a key appears once per mapping (PyYAML would silently keep the last); "
                        "remove or merge one of them",
                        key_line,
                    )
                )
                continue
            key_lines[key] = key_line
            self.lines.setdefault(here, key_line)
            result[key] = self.build(value_node, here)
        for merge in merges:
            self._merge(merge, loc, result)
        return result

    def _merge(self, node: yaml.Node, loc: Location, result: dict[Any, Any]) -> None:
        """Apply ``<<: *anchor`` (or a list of anchors): keys already present win.

        A merged value keeps the lines of the anchor it came from; an explicit
        key keeps its own line.
        """
        saved, self.lines = self.lines, {}
        try:
            items = node.value if isinstance(node, yaml.SequenceNode) else [node]
            sources = [(item, self.build(item, loc)) for item in items]
        finally:
            merged_lines, self.lines = self.lines, saved
        for item, source in sources:
            if not isinstance(source, dict):
                line = item.start_mark.line + 1
                self.issues.append(_Issue(loc, "'<<' merges a mapping or a list of mappings", line))
                continue
            for key, value in source.items():
                if key in result:
                    continue
                result[key] = value
                prefix = (*loc, _loc_key(key))
                for where, line in merged_lines.items():
                    if where[: len(prefix)] == prefix:
                        self.lines.setdefault(where, line)


# -- TOML: the stdlib parser, and a small locator for lines --------------------

_TOML_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TOML_KEYS = rf"{_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*"
_TOML_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_TOML_KEYS})\s*\]\]")
_TOML_TABLE_HEADER = re.compile(rf"\s*\[\s*({_TOML_KEYS})\s*\]")
_TOML_ASSIGNMENT = re.compile(rf"\s*({_TOML_KEYS})\s*=")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _read_toml(text: str, source: Path | None) -> tuple[Any, dict[Location, int], list[_Issue]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        line = int(position.group(1)) if position else None
        detail = message[: position.start()] if position else message
        raise PolicyError(
            PolicyProblem(
                f"TOML syntax error: {detail}; check quoting, '=' between key and value, "
                "and that each key appears once per table",
                source,
                line,
            )
        ) from exc
    return data, _toml_lines(text), []


def _toml_lines(text: str) -> dict[Location, int]:
    """Lines of TOML table headers and ``key =`` assignments, by location.

    A line locator, not a parser: it follows ``[table]``, ``[[array]]`` and
    ``key = value`` lines and skips multi-line strings; deeper values fall
    back to the nearest of these.
    """
    lines: dict[Location, int] = {(): 1}
    arrays: dict[Location, int] = {}  # array-of-tables location -> tables seen so far
    table: Location = ()
    in_string: str | None = None

    def resolve(parts: list[str]) -> Location:
        path: Location = ()
        for part in parts:
            path = (*path, part)
            if path in arrays:  # `rules` in a header means the latest [[rules]]
                path = (*path, arrays[path] - 1)
        return path

    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if in_string in line:
                in_string = None
            continue
        if match := _TOML_ARRAY_HEADER.match(line):
            parts = _toml_key_parts(match.group(1))
            array = (*resolve(parts[:-1]), parts[-1])
            arrays[array] = arrays.get(array, 0) + 1
            table = (*array, arrays[array] - 1)
            lines.setdefault(array, number)
            lines[table] = number
        elif match := _TOML_TABLE_HEADER.match(line):
            table = resolve(_toml_key_parts(match.group(1)))
            lines.setdefault(table, number)
        elif match := _TOML_ASSIGNMENT.match(line):
            lines.setdefault((*table, *_toml_key_parts(match.group(1))), number)
            rest = line[match.end() :]
            for quotes in ('"""', "'''"):
                if rest.count(quotes) % 2 == 1:
                    in_string = quotes
                    break
    return lines


def _toml_key_parts(keys: str) -> list[str]:
    parts = re.findall(_TOML_KEY_PART, keys)
    # A quoted key means what TOML says it means; let tomllib unquote it.
    return [tomllib.loads(f"k = {p}")["k"] if p[0] in "\"'" else p for p in parts]


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
            PolicyProblem(message, rule_id=rule["id"], field=_dotted(loc)) for loc, message in found
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
