"""``Policy``: a set of rules, compiled once, that decides requests."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._errors import PolicyError, PolicyProblem
from ._compile import CompiledPolicy
from ._conditions import MAX_CONDITION_DEPTH, condition_depth
from ._decision import Decision, Explanation
from ._model import ActionRequest, Rule

__all__ = ["Policy"]


class Policy:
    """An immutable set of rules that decides ``ActionRequest``\\ s.

    Semantics: ALLOW and AUDIT grant, ESCALATE and DENY restrict.  With no
    matching grant the answer is DENY; with one, the strictest matching effect
    wins (DENY > ESCALATE > AUDIT > ALLOW).  Rule order never matters.  A
    condition that cannot be evaluated never grants and always restricts.  A
    principal acting for a user gets the stricter of the agent's and the
    user's decisions.  ``evaluate`` never raises: an internal error is a DENY.

    Thread-safe and async-safe: nothing about a policy changes after it is built.
    """

    __slots__ = ("_compiled", "_lines", "_rules", "description", "name", "source")

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        name: str = "",
        description: str = "",
        source: Path | None = None,
    ) -> None:
        self._rules = tuple(rules)
        seen: set[str] = set()
        problems = []
        for rule in self._rules:
            if not isinstance(rule, Rule):
                raise TypeError(f"Policy takes Rule objects, got {type(rule).__name__}")
            if rule.id in seen:
                problems.append(
                    PolicyProblem(
                        "duplicate rule id: each rule needs its own id", source, rule_id=rule.id
                    )
                )
            seen.add(rule.id)
            # Nodes check their depth when built; a rule put together without
            # validation (model_construct) is checked here, before compiling recurses.
            depth = condition_depth(rule.when, MAX_CONDITION_DEPTH)
            if rule.when is not None and depth > MAX_CONDITION_DEPTH:
                problems.append(
                    PolicyProblem(
                        f"conditions nest more than {MAX_CONDITION_DEPTH} levels of "
                        "all / any / not (MAX_CONDITION_DEPTH): flatten them",
                        source,
                        rule_id=rule.id,
                        field="when",
                    )
                )
        if problems:
            raise PolicyError(problems)
        self.name = name
        self.description = description
        self.source = source
        self._compiled = CompiledPolicy(self._rules)
        # (rule index, field or "") -> line, for a policy read from text (set by _load).
        self._lines: Mapping[tuple[int, str], int] = {}

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they were given (which never affects a decision)."""
        return self._rules

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; raises KeyError naming the id if there is none."""
        for rule in self._rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r} in policy {self.name or '(unnamed)'}")

    def line_of(self, rule_id: str, field: str | None = None) -> int | None:
        """The line of ``source`` where the rule (or its ``field``, such as ``"escalate_to"``)
        is written; None for a policy not read from YAML or TOML text, or a field not written.

        For tools that check a policy against something else (``handrail policy
        check --routes``) and point at the line to change.  Raises ``KeyError``
        for an unknown ``rule_id``, as ``rule`` does.
        """
        index = next((i for i, rule in enumerate(self._rules) if rule.id == rule_id), None)
        if index is None:
            raise KeyError(f"no rule {rule_id!r} in policy {self.name or '(unnamed)'}")
        lines = self._lines
        if field is None:
            return lines.get((index, ""))
        return lines.get((index, field), lines.get((index, "")))

    def with_rules(self, *rules: Rule) -> Policy:
        """A new policy with these rules added (ids must stay unique)."""
        return Policy(
            (*self._rules, *rules), name=self.name, description=self.description, source=None
        )

    def evaluate(self, request: ActionRequest) -> Decision:
        """Decide one request.  Never raises: an error inside evaluation is a DENY saying why."""
        return self._compiled.evaluate(request)

    def explain(self, request: ActionRequest) -> Explanation:
        """Decide, and account for every rule: which matched, which did not, and why."""
        return self._compiled.explain(request)

    # -- files -----------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Policy:
        """Load a YAML (``.yaml``/``.yml``) or TOML (``.toml``) policy file.

        Raises ``PolicyError`` naming the file, line and field of every problem;
        a policy that fails to load is never partly used.
        """
        from ._load import load_file

        return load_file(Path(path))

    @classmethod
    def from_yaml(cls, text: str, *, source: str | os.PathLike[str] | None = None) -> Policy:
        """Load a policy from YAML text (``source`` names it in errors)."""
        from ._load import loads

        return loads(text, "yaml", None if source is None else Path(source))

    @classmethod
    def from_toml(cls, text: str, *, source: str | os.PathLike[str] | None = None) -> Policy:
        """Load a policy from TOML text (``source`` names it in errors)."""
        from ._load import loads

        return loads(text, "toml", None if source is None else Path(source))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build a policy from already-parsed data in the file format."""
        from ._load import from_data

        return from_data(data, None)

    def to_dict(self) -> dict[str, Any]:
        """The policy in the file format, as plain data (Python predicates cannot be written)."""
        from ._load import to_data

        return to_data(self)

    def to_yaml(self) -> str:
        """The policy as YAML text that ``from_yaml`` reads back to an equivalent policy."""
        from ._load import dumps

        return dumps(self, "yaml")

    def to_toml(self) -> str:
        """The policy as TOML text (needs the ``toml`` extra: tomli-w)."""
        from ._load import dumps

        return dumps(self, "toml")

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<Policy{name} with {len(self._rules)} rules>"
