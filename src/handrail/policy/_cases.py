"""Policy tests: cases that say what a policy must decide, and a report of how it did.

The people who own the rules write the cases, in YAML, next to the policy::

    cases:
      - name: a rep reads a contact
        request:
          principal: {agent: sales-assistant, on_behalf_of: {id: alice, roles: [sales_rep]}}
          action: crm.contact.read
          resource: {type: contact, id: c-1}
        expect: allow              # allow | audit | escalate | deny
        rule: read-crm             # optional; null expects the default deny
        escalate_to: sales-managers  # optional
        undetermined: [args.discount_pct]  # optional: the attributes counted against it

Running them against a policy gives a ``PolicyTestReport``: which cases
failed and why, and which rules no case exercised (rule coverage).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._errors import PolicyError
from .._text import problem
from ..identity import Principal, User
from ._decision import Decision
from ._model import ActionRequest, Effect, Resource, effect_from

if TYPE_CHECKING:
    from ._policy import Policy

__all__ = ["CaseResult", "PolicyCase", "PolicyCases", "PolicyTestReport"]

_Loc = tuple[str | int, ...]


class PolicyCase(BaseModel):
    """One request and what the policy must decide about it.

    ``rule``, ``escalate_to`` and ``undetermined`` are checked only when given;
    ``rule: null`` expects the default deny (no deciding rule).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str = Field(min_length=1)
    description: str = ""
    request: ActionRequest
    expect: Effect
    rule: str | None = None
    escalate_to: str | None = None
    undetermined: frozenset[str] | None = None

    @field_validator("expect", mode="before")
    @classmethod
    def _known_effect(cls, value: object) -> object:
        return effect_from(value)

    @model_validator(mode="after")
    def _route_only_for_escalate(self) -> PolicyCase:
        if self.escalate_to is not None and self.expect is not Effect.ESCALATE:
            raise ValueError(
                f"'escalate_to' can only be expected with expect: escalate, not {self.expect.value}"
            )
        return self

    @property
    def checks_rule(self) -> bool:
        """True when the case names the deciding rule it expects (``null`` included)."""
        return "rule" in self.model_fields_set


@dataclass(frozen=True, slots=True)
class CaseResult:
    """How one case fared: the decision the policy made, and what differed from the case."""

    case: PolicyCase
    actual: Decision
    mismatches: tuple[str, ...]

    @property
    def name(self) -> str:
        """The case's name."""
        return self.case.name

    @property
    def expected(self) -> Effect:
        """The effect the case expects (its other expectations are on ``.case``)."""
        return self.case.expect

    @property
    def passed(self) -> bool:
        """True when the decision met every expectation of the case."""
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the decision without request arguments)."""
        case = self.case
        expected: dict[str, Any] = {"effect": case.expect.value}
        if case.checks_rule:
            expected["rule_id"] = case.rule
        if case.escalate_to is not None:
            expected["escalate_to"] = case.escalate_to
        if case.undetermined is not None:
            expected["undetermined"] = sorted(case.undetermined)
        return {
            "name": case.name,
            "passed": self.passed,
            "expected": expected,
            "actual": self.actual.to_dict(),
            "mismatches": list(self.mismatches),
        }


@dataclass(frozen=True, slots=True)
class PolicyTestReport:
    """The outcome of running policy cases: per-case results and rule coverage.

    A rule is *covered* when it matched in at least one case, for the agent or
    for the user it acts for.  ``str(report)`` is for humans, ``to_dict()``
    for machines.
    """

    results: tuple[CaseResult, ...]
    rule_ids: tuple[str, ...]
    """Every rule id of the policy, in policy order."""

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        """The cases whose decision differed from what they expected."""
        return tuple(r for r in self.results if not r.passed)

    @property
    def passed(self) -> bool:
        """True when every case passed."""
        return all(r.passed for r in self.results)

    @property
    def covered_rules(self) -> tuple[str, ...]:
        """The ids of rules that matched in some case, in policy order."""
        matched: set[str] = set()
        for result in self.results:
            matched.update(_matched_ids(result.actual))
        return tuple(rule_id for rule_id in self.rule_ids if rule_id in matched)

    @property
    def uncovered_rules(self) -> tuple[str, ...]:
        """The ids of rules no case exercised, in policy order."""
        covered = set(self.covered_rules)
        return tuple(rule_id for rule_id in self.rule_ids if rule_id not in covered)

    @property
    def coverage(self) -> float:
        """The fraction of rules some case exercised (1.0 for a policy without rules)."""
        if not self.rule_ids:
            return 1.0
        return len(self.covered_rules) / len(self.rule_ids)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the report."""
        return {
            "passed": self.passed,
            "total": len(self.results),
            "failed": len(self.failures),
            "coverage": self.coverage,
            "covered_rules": list(self.covered_rules),
            "uncovered_rules": list(self.uncovered_rules),
            "cases": [r.to_dict() for r in self.results],
        }

    def __str__(self) -> str:
        lines = []
        for result in self.results:
            if result.passed:
                lines.append(f"  ok    {result.name}")
                continue
            decision = result.actual
            lines.append(f"  FAIL  {result.name}")
            expected = _describe_expected(result.case)
            if result.case.rule is not None and result.case.rule not in self.rule_ids:
                expected += f" (the policy has no rule {result.case.rule!r})"
            lines.append(f"        expected: {expected}")
            lines.append(f"        actual:   {_describe_actual(decision)}")
            lines.append(f"        reason:   {decision.reason}")
        total, failed = len(self.results), len(self.failures)
        counted = f"{total} case{'' if total == 1 else 's'}"
        if failed:
            lines.append(f"{counted}: {failed} FAILED, {total - failed} passed")
        else:
            lines.append(f"{counted}: all passed")
        lines.append(
            f"rule coverage: {len(self.covered_rules)}/{len(self.rule_ids)} rules "
            f"({self.coverage:.0%})"
        )
        if self.uncovered_rules:
            lines.append(f"uncovered rules: {', '.join(self.uncovered_rules)}")
        return "\n".join(lines)


def _matched_ids(decision: Decision) -> Iterator[str]:
    for part in (decision, decision.as_agent, decision.as_user):
        if part is not None:
            yield from (rule.id for rule in part.matched)


def _show_rule(rule_id: str | None) -> str:
    return "the default deny" if rule_id is None else f"rule {rule_id!r}"


def _describe_expected(case: PolicyCase) -> str:
    parts = [case.expect.value]
    if case.escalate_to is not None:
        parts.append(f"to {case.escalate_to!r}")
    if case.checks_rule:
        parts.append(f"by {_show_rule(case.rule)}")
    if case.undetermined is not None:
        parts.append(f"(undetermined: {', '.join(sorted(case.undetermined)) or 'none'})")
    return " ".join(parts)


def _describe_actual(decision: Decision) -> str:
    parts = [decision.effect.value]
    if decision.escalate_to is not None:
        parts.append(f"to {decision.escalate_to!r}")
    parts.append(f"by {_show_rule(decision.rule_id)}")
    if decision.undetermined:
        parts.append(f"(undetermined: {', '.join(sorted(decision.undetermined))})")
    return " ".join(parts)


def _check(case: PolicyCase, decision: Decision, rule_ids: frozenset[str]) -> CaseResult:
    mismatches = []
    if decision.effect is not case.expect:
        mismatches.append(f"effect: expected {case.expect.value}, got {decision.effect.value}")
    if case.checks_rule and decision.rule_id != case.rule:
        note = ""
        if case.rule is not None and case.rule not in rule_ids:
            note = f" (the policy has no rule {case.rule!r})"
        mismatches.append(
            f"rule: expected {_show_rule(case.rule)}, got {_show_rule(decision.rule_id)}{note}"
        )
    if case.escalate_to is not None and decision.escalate_to != case.escalate_to:
        mismatches.append(
            f"escalate_to: expected {case.escalate_to!r}, got {decision.escalate_to!r}"
        )
    if case.undetermined is not None and case.undetermined != frozenset(decision.undetermined):
        mismatches.append(
            f"undetermined: expected [{', '.join(sorted(case.undetermined))}], "
            f"got [{', '.join(sorted(decision.undetermined))}]"
        )
    return CaseResult(case, decision, tuple(mismatches))


class PolicyCases:
    """A set of policy cases, usually read from a YAML file with ``from_file``.

    ``run(policy)`` decides every case and reports.  Immutable; safe to share
    across threads.
    """

    __slots__ = ("_cases", "description", "source")

    def __init__(
        self,
        cases: Iterable[PolicyCase],
        *,
        description: str = "",
        source: Path | None = None,
    ) -> None:
        self._cases = tuple(cases)
        seen: set[str] = set()
        for case in self._cases:
            if not isinstance(case, PolicyCase):
                raise TypeError(f"PolicyCases takes PolicyCase objects, got {type(case).__name__}")
            if case.name in seen:
                raise PolicyError(
                    problem(f"duplicate case name {case.name!r}: names must differ", source)
                )
            seen.add(case.name)
        self.description = description
        self.source = source

    @property
    def cases(self) -> tuple[PolicyCase, ...]:
        """The cases, in file order."""
        return self._cases

    def __iter__(self) -> Iterator[PolicyCase]:
        return iter(self._cases)

    def __len__(self) -> int:
        return len(self._cases)

    def __repr__(self) -> str:
        source = f" from {self.source}" if self.source else ""
        return f"<PolicyCases: {len(self._cases)} cases{source}>"

    def run(self, policy: Policy) -> PolicyTestReport:
        """Decide every case with ``policy`` and report failures and rule coverage.

        Never raises for a failing case: the report says what failed.
        """
        rule_ids = tuple(rule.id for rule in policy.rules)
        known = frozenset(rule_ids)
        results = tuple(_check(case, policy.evaluate(case.request), known) for case in self._cases)
        return PolicyTestReport(results, rule_ids)

    # -- files -----------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PolicyCases:
        """Read cases from a YAML file.

        Raises ``PolicyError`` naming the file, line and field of every problem;
        a file with any problem yields no cases.
        """
        from .._files import read_text

        path = Path(path)
        text = read_text(path, "test file")
        return cls.from_yaml(text, source=path)

    @classmethod
    def from_yaml(cls, text: str, *, source: str | os.PathLike[str] | None = None) -> PolicyCases:
        """Read cases from YAML text (``source`` names it in errors)."""
        from .._files import located_problems
        from .._yaml import read_yaml  # here, not at the top: it imports yaml

        path = None if source is None else Path(source)
        data, lines, issues = read_yaml(text, path)
        if issues:  # keys given twice: PyYAML would silently keep one
            raise PolicyError(located_problems(issues, path, lines))
        return _from_data(data, path, _LineMap(lines))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyCases:
        """Build cases from already-parsed data in the file format."""
        return _from_data(data, None, _LineMap(None))


class _LineMap:
    """Where each key and item of the document starts, by path, for error messages."""

    def __init__(self, lines: Mapping[_Loc, int] | None) -> None:
        self._lines = lines

    def line(self, loc: _Loc) -> int | None:
        """The line of ``loc``, or of its nearest ancestor the document has.

        Looks up at most ``len(loc) + 1`` keys, never copying the map: reporting
        stays linear in the number of problems.
        """
        from .._files import line_of

        return line_of(loc, self._lines)


def _field(loc: _Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _from_data(data: object, path: Path | None, lines: _LineMap) -> PolicyCases:
    if not isinstance(data, Mapping):
        raise PolicyError(
            problem(
                "a policy test file is a mapping with a 'cases' list, "
                f"got {type(data).__name__ if data is not None else 'an empty document'}",
                path,
                lines.line(()),
            )
        )
    problems = [
        problem(f"unknown key {key!r} (expected cases, description)", path, lines.line((key,)))
        for key in data
        if key not in ("cases", "description")
    ]
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        problems.append(
            problem("'cases' must be a non-empty list of cases", path, lines.line(("cases",)), None)
        )
        raise PolicyError(problems)
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append(
            problem("must be a string", path, lines.line(("description",)), None, "description")
        )
    cases: list[PolicyCase] = []
    names: dict[str, int] = {}
    for index, raw in enumerate(raw_cases):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        label = f" (case {name!r})" if isinstance(name, str) else ""
        try:
            case = PolicyCase.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = ("cases", index, *error["loc"])
                message = _message(error["type"], error["loc"], error["msg"])
                problems.append(
                    problem(f"{message}{label}", path, lines.line(loc), field=_field(loc))
                )
            continue
        if case.name in names:
            loc = ("cases", index, "name")
            problems.append(
                problem(
                    f"duplicate case name {case.name!r} (first used by cases[{names[case.name]}]): "
                    "give each case its own name",
                    path,
                    lines.line(loc),
                    field=_field(loc),
                )
            )
            continue
        names[case.name] = index
        cases.append(case)
    if problems:
        problems.sort(key=lambda p: p.line or 0)  # stable: same-line problems keep their order
        raise PolicyError(problems)
    return PolicyCases(cases, description=str(description), source=path)


# The fields each part of a case takes, to name them when a key is unknown or missing.
_FIELDS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): tuple(PolicyCase.model_fields),
    ("request",): tuple(ActionRequest.model_fields),
    ("request", "principal"): tuple(Principal.model_fields),
    ("request", "principal", "on_behalf_of"): tuple(User.model_fields),
    ("request", "resource"): tuple(Resource.model_fields),
}


def _message(kind: str, loc: _Loc, message: str) -> str:
    """Pydantic's message for one error in a case, reworded to say the fix where we can."""
    owner = tuple(str(p) for p in loc[:-1])
    fields = _FIELDS.get(owner)
    if fields is not None and kind == "extra_forbidden":
        text = f"unknown field {loc[-1]!r}"
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        if close:
            text += f": did you mean {close[0]!r}?"
        return f"{text} (expected one of {', '.join(fields)})"
    if kind == "missing":
        return "missing: this field is required"
    return message.removeprefix("Value error, ")
