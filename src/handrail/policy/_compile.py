"""The compiled evaluator: rules indexed by action, conditions turned into closures.

Compilation happens once, when a ``Policy`` is built.  A decision then costs a
dict lookup for the rules that cover the action and a short loop over them:
it grows with the rules that share an action, not with the policy's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._conditions import Test
from ._decision import Decision, Explanation, RuleTrace
from ._model import ActionRequest, Effect, Rule

# Bound the per-action cache so a stream of distinct (possibly hostile)
# action names cannot grow memory without limit; beyond it we just scan.
_CACHE_LIMIT = 4096


def _pattern_matcher(pattern: str) -> Callable[[tuple[str, ...]], bool]:
    """``*`` matches one segment; a trailing ``*`` one or more; ``*`` alone anything."""
    parts = tuple(pattern.split("."))
    if parts == ("*",):
        return lambda segments: True
    trailing = parts[-1] == "*"
    fixed = parts[:-1] if trailing else parts
    n = len(fixed)

    def matches(segments: tuple[str, ...]) -> bool:
        if trailing:
            if len(segments) <= n:
                return False
        elif len(segments) != n:
            return False
        return all(p in ("*", s) for p, s in zip(fixed, segments, strict=False))

    return matches


def action_matches(pattern: str, action: str) -> bool:
    """True when the action pattern covers the action name."""
    return _pattern_matcher(pattern)(tuple(action.split(".")))


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: rules are compared by object
class _CompiledRule:
    rule: Rule
    strictness: int
    is_grant: bool
    anyone: bool
    agents: frozenset[str]
    users: frozenset[str]
    groups: frozenset[str]
    roles: frozenset[str]
    test: Test | None
    reason: str  # precomputed: the reason when this rule decides

    @classmethod
    def of(cls, rule: Rule) -> _CompiledRule:
        p = rule.principals
        return cls(
            rule=rule,
            strictness=rule.effect.strictness,
            is_grant=rule.effect.is_grant,
            anyone=p.is_anyone,
            agents=p.agents,
            users=p.users,
            groups=p.groups,
            roles=p.roles,
            test=None if rule.when is None else rule.when.compile(),
            reason=_reason(rule),
        )

    def applies_to(self, subject: _Subject) -> bool:
        if self.anyone:
            return True
        if subject.is_user:
            if subject.id in self.users or not self.groups.isdisjoint(subject.groups):
                return True
        elif subject.id in self.agents:
            return True
        return not self.roles.isdisjoint(subject.roles)


class _Subject(NamedTuple):
    is_user: bool
    id: str
    roles: frozenset[str]
    groups: frozenset[str]

    @property
    def label(self) -> str:
        return f"{'user' if self.is_user else 'agent'}:{self.id}"


_NO_GROUPS: frozenset[str] = frozenset()


def _order(rule: _CompiledRule) -> tuple[int, str]:
    # Strictest first, then by id: the result never depends on rule order.
    return (-rule.strictness, rule.rule.id)


class CompiledPolicy:
    """Rules indexed by action; evaluates requests without raising."""

    __slots__ = ("_cache", "_exact", "_rules", "_wildcard")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = tuple(_CompiledRule.of(r) for r in rules)
        self._exact: dict[str, list[_CompiledRule]] = {}
        self._wildcard: list[tuple[Callable[[tuple[str, ...]], bool], _CompiledRule]] = []
        for compiled in self._rules:
            for pattern in compiled.rule.actions:
                if "*" in pattern:
                    self._wildcard.append((_pattern_matcher(pattern), compiled))
                else:
                    self._exact.setdefault(pattern, []).append(compiled)
        self._cache: dict[str, tuple[_CompiledRule, ...]] = {}

    def candidates(self, action: str) -> tuple[_CompiledRule, ...]:
        """The rules whose action patterns cover ``action``, each once."""
        found = self._cache.get(action)
        if found is None:
            segments = tuple(action.split("."))
            chosen = dict.fromkeys(self._exact.get(action, ()))
            for matches, compiled in self._wildcard:
                if compiled not in chosen and matches(segments):
                    chosen[compiled] = None
            found = tuple(chosen)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[action] = found
        return found

    # -- deciding ------------------------------------------------------------

    def evaluate(self, request: ActionRequest) -> Decision:
        """Decide; any error inside evaluation yields DENY with the reason (fail closed)."""
        try:
            principal = request.principal
            candidates = self.candidates(request.action)
            agent = (False, principal.agent, principal.roles, _NO_GROUPS)
            as_agent = self._decide(candidates, request, agent)  # type: ignore[arg-type]
            user = principal.on_behalf_of
            if user is None:
                return as_agent
            subject = (True, user.id, user.roles, user.groups)
            as_user = self._decide(candidates, request, subject)  # type: ignore[arg-type]
            return _combine(request, as_agent, as_user)
        except Exception as exc:
            return _failed(request, exc)

    def _decide(
        self, candidates: tuple[_CompiledRule, ...], request: ActionRequest, subject: _Subject
    ) -> Decision:
        matched: list[_CompiledRule] = []
        undetermined: list[_CompiledRule] = []
        is_user, subject_id, roles, groups = subject
        for compiled in candidates:
            if not compiled.anyone:  # inlined applies_to: this loop is the hot path
                if is_user:
                    covered = subject_id in compiled.users or not compiled.groups.isdisjoint(groups)
                else:
                    covered = subject_id in compiled.agents
                if not covered and compiled.roles.isdisjoint(roles):
                    continue
            test = compiled.test
            if test is not None:
                value = test(request)
                if value is not True:
                    if value is None:
                        undetermined.append(compiled)
                        # Undetermined never grants, and always restricts.
                        if not compiled.is_grant:
                            matched.append(compiled)
                    continue
            matched.append(compiled)
        if not matched:
            if undetermined:
                return self._default_deny(request, is_user, subject_id, undetermined)
            label = f"user:{subject_id}" if is_user else f"agent:{subject_id}"
            return _new_decision(
                (Effect.DENY, f"no rule grants {request.action} to {label} (default deny)",
                 request, None, (), None, (), label, None, None)
            )  # fmt: skip
        if len(matched) == 1:
            top = matched[0]
            rules: tuple[Rule, ...] = (top.rule,)
        else:
            matched.sort(key=_order)
            top = matched[0]
            rules = tuple([m.rule for m in matched])
        label = f"user:{subject_id}" if is_user else f"agent:{subject_id}"
        if not top.is_grant:
            for m in matched:
                if m.is_grant:
                    break
            else:  # restrictions alone never grant
                return self._default_deny(request, is_user, subject_id, undetermined, matched)
        reason = top.reason
        missing: tuple[str, ...] = ()
        if undetermined:
            missing = _undetermined_paths(undetermined, request)
            reason = _note_missing(reason, missing)
        rule = top.rule
        return _new_decision(
            (rule.effect, reason, request, rule, rules, rule.escalate_to, missing, label,
             None, None)
        )  # fmt: skip

    def _default_deny(
        self,
        request: ActionRequest,
        is_user: bool,
        subject_id: str,
        undetermined: list[_CompiledRule],
        matched: list[_CompiledRule] = [],  # noqa: B006 - read only
    ) -> Decision:
        label = f"user:{subject_id}" if is_user else f"agent:{subject_id}"
        missing = _undetermined_paths(undetermined, request) if undetermined else ()
        deny = matched[0].rule if matched and matched[0].rule.effect is Effect.DENY else None
        if deny is not None:
            reason = _reason(deny)
        else:
            reason = f"no rule grants {request.action} to {label} (default deny)"
        return _new_decision(
            (Effect.DENY, _note_missing(reason, missing), request, deny,
             tuple([m.rule for m in matched]), None, missing, label, None, None)
        )  # fmt: skip

    # -- explaining ----------------------------------------------------------

    def explain(self, request: ActionRequest) -> Explanation:
        """Evaluate and say, for every rule and subject, what happened to it."""
        decision = self.evaluate(request)
        principal = request.principal
        subjects = [_Subject(False, principal.agent, principal.roles, frozenset())]
        if principal.on_behalf_of is not None:
            user = principal.on_behalf_of
            subjects.append(_Subject(True, user.id, user.roles, user.groups))
        covering = set(self.candidates(request.action))
        traces: list[RuleTrace] = []
        for compiled in sorted(self._rules, key=_order):
            rule = compiled.rule
            if compiled not in covering:
                patterns = ", ".join(rule.actions)
                traces.append(
                    RuleTrace(rule, "-", "action not covered", f"{patterns} vs {request.action}")
                )
                continue
            for subject in subjects:
                traces.append(_trace_rule(compiled, subject, request))
        return Explanation(decision, tuple(traces))


def _trace_rule(compiled: _CompiledRule, subject: _Subject, request: ActionRequest) -> RuleTrace:
    rule = compiled.rule
    if not compiled.applies_to(subject):
        return RuleTrace(rule, subject.label, "principal not covered", _describe_principals(rule))
    if rule.when is None:
        return RuleTrace(rule, subject.label, "matched", "no condition")
    try:
        trace = rule.when.trace(request)
    except Exception as exc:
        return RuleTrace(rule, subject.label, "undetermined", f"error: {type(exc).__name__}: {exc}")
    if trace.value is None:
        return RuleTrace(rule, subject.label, "undetermined", trace.text)
    return RuleTrace(
        rule, subject.label, "matched" if trace.value else "condition false", trace.text
    )


def _describe_principals(rule: Rule) -> str:
    p = rule.principals
    parts = [
        f"{name} {', '.join(sorted(values))}"
        for name, values in (
            ("agents", p.agents),
            ("users", p.users),
            ("groups", p.groups),
            ("roles", p.roles),
        )
        if values
    ]
    return "applies to " + "; ".join(parts)


_VERB = {
    Effect.ALLOW: "allows",
    Effect.AUDIT: "allows, flagged for audit",
    Effect.DENY: "denies",
}

# Build Decisions without NamedTuple's Python-level __new__ (it checks defaults).
_tuple_new = tuple.__new__


def _new_decision(fields: tuple[Any, ...]) -> Decision:
    return _tuple_new(Decision, fields)


def _reason(rule: Rule) -> str:
    if rule.effect is Effect.ESCALATE:
        verb = f"requires approval via route {rule.escalate_to!r}"
    else:
        verb = _VERB[rule.effect]
    why = f": {rule.description}" if rule.description else ""
    return f"rule {rule.id!r} {verb}{why}"


def _note_missing(reason: str, missing: tuple[str, ...]) -> str:
    if not missing:
        return reason
    return f"{reason} (undetermined, counted against the request: {', '.join(missing)})"


def _undetermined_paths(rules: list[_CompiledRule], request: ActionRequest) -> tuple[str, ...]:
    paths: dict[str, None] = {}
    for compiled in rules:
        assert compiled.rule.when is not None
        paths.update(dict.fromkeys(compiled.rule.when.trace(request).undetermined))
    return tuple(paths)


def _combine(request: ActionRequest, as_agent: Decision, as_user: Decision) -> Decision:
    # The stricter half stands: acting for a user never widens what the agent may do.
    decisive = as_user if as_user.effect.strictness > as_agent.effect.strictness else as_agent
    matched = tuple({r.id: r for r in (*as_agent.matched, *as_user.matched)}.values())
    missing = tuple(dict.fromkeys((*as_agent.undetermined, *as_user.undetermined)))
    return Decision(
        decisive.effect,
        f"{decisive.subject}: {decisive.reason}",
        request,
        decisive.rule,
        matched,
        decisive.escalate_to,
        missing,
        f"{as_agent.subject} for {as_user.subject}",
        as_agent,
        as_user,
    )


def _failed(request: ActionRequest, exc: Exception) -> Decision:
    try:
        subject = f"agent:{request.principal.agent}"
    except Exception:
        subject = "unknown"
    return Decision(
        Effect.DENY,
        f"policy evaluation failed, denied (fail closed): {type(exc).__name__}: {exc}",
        request,
        subject=subject,
    )
