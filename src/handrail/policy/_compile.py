"""The compiled evaluator: rules indexed by action, conditions turned into closures.

Compilation happens once, when a ``Policy`` is built.  A decision then costs a
dict lookup for the rules that cover the action and a short loop over them:
it grows with the rules that share an action, not with the policy's size.

The rules covering an action name never seen before are found through a trie
over the patterns' segments (``_patterns``), so a new name costs a walk down
a few levels, not a pass over every wildcard rule.  The caches are bounded
and keep working when full: the least recently used action is evicted, and
the oldest plan.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, NamedTuple

from .._names import canonical_name, canonical_names, check_action
from ..identity import Principal, User
from ._comparisons import Test
from ._decision import Decision, Explanation, RuleTrace
from ._model import ActionRequest, Effect, Rule, trusted_request
from ._patterns import PatternTrie

# Bound the caches so a stream of distinct (possibly hostile) action names or
# principals cannot grow memory without limit.
_CACHE_LIMIT = 4096


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
    # Copied out of the Rule: reading a pydantic model's attribute costs ~3x a slot's.
    effect: Effect
    escalate_to: str | None
    order: tuple[int, str]  # strictest first, then by id: the result never depends on rule order

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
            effect=rule.effect,
            escalate_to=rule.escalate_to,
            order=(-rule.effect.strictness, rule.id),
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

    def canonical(self) -> _Subject:
        """The subject with canonical names; raises if one cannot be made canonical.

        Principals built normally are canonical already; one built without
        validation (``model_construct``) is checked here, once per plan, so
        a look-alike id can never match a rule, nor escape one.
        """
        kind = "user" if self.is_user else "agent"
        return _Subject(
            self.is_user,
            canonical_name(self.id, f"{kind} id"),
            canonical_names(self.roles, f"{kind} roles"),
            canonical_names(self.groups, f"{kind} groups"),
        )

    def has_plain_types(self) -> bool:
        """True when the id is a ``str`` and roles and groups are frozensets of ``str``.

        Only such a subject compares honestly: a str subclass may answer
        ``==`` and ``hash`` as it likes.
        """
        return (
            type(self.id) is str
            and type(self.roles) is frozenset
            and type(self.groups) is frozenset
            and all(type(name) is str for name in (*self.roles, *self.groups))
        )

    def is_exactly(self, canonical: _Subject) -> bool:
        """True when this subject, as given, already is ``canonical``: plain strs, same names.

        Types are checked before comparing, so a str subclass's own ``__eq__``
        is never asked.
        """
        return (
            self.has_plain_types()
            and self.id == canonical.id
            and self.roles == canonical.roles
            and self.groups == canonical.groups
        )


_NO_GROUPS: frozenset[str] = frozenset()
# Enum members read once: `Effect.DENY` goes through EnumType.__getattr__ (~150 ns).
_DENY = Effect.DENY
_ALLOW = Effect.ALLOW
_rule_of = attrgetter("rule")


_order = attrgetter("order")


# What deciding one action for one subject needs, worked out once per (action,
# subject) and cached: the rules that cover the action and apply to the subject,
# strictest first; the subject's label; the reason for a default deny.  The
# principal checks and both strings then cost nothing per decision.
_Plan = tuple[tuple[_CompiledRule, ...], str, str]


def _decide(plan: _Plan, request: ActionRequest) -> Decision:
    rules, label, no_grant = plan
    matched: list[_CompiledRule] = []
    undetermined: list[_CompiledRule] = []
    granted = False
    for compiled in rules:
        test = compiled.test
        if test is not None:
            value = test(request)
            if value is not True:
                if value is not False:  # None, or anything that is not a real bool
                    undetermined.append(compiled)
                    # Undetermined never grants, but always narrows: restrictions
                    # apply, and an AUDIT still flags what another rule grants.
                    if compiled.effect is not _ALLOW:
                        matched.append(compiled)
                continue
        if compiled.is_grant:
            granted = True
        matched.append(compiled)
    # The rules are sorted strictest first, so matched is too: the first decides.
    if not granted:  # restrictions alone never grant
        return _default_deny(request, label, no_grant, undetermined, matched)
    top = matched[0]
    reason = top.reason
    missing: tuple[str, ...] = ()
    if undetermined:
        missing = _undetermined_paths(undetermined, request)
        reason = _note_missing(reason, missing)
    return _tuple_new(
        Decision,
        (top.effect, reason, request, top.rule, tuple(map(_rule_of, matched)),
         top.escalate_to, missing, label, None, None),
    )  # fmt: skip


def _default_deny(
    request: ActionRequest,
    label: str,
    no_grant: str,
    undetermined: list[_CompiledRule],
    matched: list[_CompiledRule],
) -> Decision:
    missing = _undetermined_paths(undetermined, request) if undetermined else ()
    top = matched[0] if matched else None
    if top is not None and top.effect is _DENY:
        deny: Rule | None = top.rule
        reason = top.reason
    else:
        deny, reason = None, no_grant
    return _tuple_new(
        Decision,
        (_DENY, _note_missing(reason, missing), request, deny,
         tuple(map(_rule_of, matched)), None, missing, label, None, None),
    )  # fmt: skip


class CompiledPolicy:
    """Rules indexed by action; evaluates requests without raising."""

    __slots__ = (
        "_agent_plans",
        "_cache",
        "_exact",
        "_rules",
        "_subjects",
        "_user_plans",
        "_wildcard",
    )

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = tuple(_CompiledRule.of(r) for r in rules)
        self._exact: dict[str, list[_CompiledRule]] = {}
        self._wildcard: PatternTrie[_CompiledRule] = PatternTrie()
        for compiled in self._rules:
            for pattern in compiled.rule.actions:
                if "*" in pattern:
                    self._wildcard.add(pattern, compiled)
                else:
                    self._exact.setdefault(pattern, []).append(compiled)
        # Least recently used first; at the limit the first entry goes.
        self._cache: OrderedDict[str, tuple[_CompiledRule, ...]] = OrderedDict()
        # Keyed by (action, agent id, roles) and (action, user id, roles, groups);
        # first in, first out (a hit costs one lookup, with no bookkeeping).
        self._agent_plans: OrderedDict[tuple[str, str, frozenset[str]], _Plan] = OrderedDict()
        self._user_plans: OrderedDict[tuple[str, str, frozenset[str], frozenset[str]], _Plan] = (
            OrderedDict()
        )
        # Each subject as given -> its canonical form (canonicalising costs microseconds).
        self._subjects: OrderedDict[_Subject, _Subject] = OrderedDict()

    def candidates(self, action: str) -> tuple[_CompiledRule, ...]:
        """The rules whose action patterns cover ``action``, each once, strictest first."""
        cache = self._cache
        found = cache.get(action)
        if found is not None:
            try:  # noqa: SIM105 - see _evict
                cache.move_to_end(action)
            except KeyError:  # evicted by another thread meanwhile: nothing to refresh
                pass
            return found
        # Only a request built without validation can fail these: refused (evaluate
        # denies), never split into segments a wildcard could match ("billing.refund.").
        if type(action) is not str:  # a str subclass could answer split() as it likes
            raise ValueError(f"action must be a plain str, got {type(action).__name__}")
        check_action(action)
        chosen = dict.fromkeys(self._exact.get(action, ()))
        self._wildcard.covering(action.split("."), chosen)
        # Sorted once here, so the rules a decision matches come out in
        # decision order and no call sorts them.
        found = tuple(sorted(chosen, key=_order))
        if len(cache) >= _CACHE_LIMIT:
            _evict(cache)
        cache[action] = found
        return found

    # -- deciding ------------------------------------------------------------

    def evaluate(self, request: ActionRequest, *, canonical: bool = False) -> Decision:
        """Decide; any error inside evaluation yields DENY with the reason (fail closed).

        A principal whose names are not canonical as given (one built with
        ``model_construct``) is decided as its canonical form: the request is
        rebuilt with it (``canonical=True`` marks that rebuilt request), so
        conditions on ``principal.agent`` and kin read canonical names too.
        """
        try:
            principal = request.principal
            action = request.action
            agent, roles = principal.agent, principal.roles
            # The cache hit inline: a method call would cost as much as the lookup.
            plan = self._agent_plans.get((action, agent, roles))
            if plan is None:
                plan = self._plan(action, _Subject(False, agent, roles, _NO_GROUPS))
                if plan is None:
                    return self._evaluate_canonical(request, canonical)
            as_agent = _decide(plan, request)
            user = principal.on_behalf_of
            if user is None:
                return as_agent
            plan = self._user_plans.get((action, user.id, user.roles, user.groups))
            if plan is None:
                plan = self._plan(action, _Subject(True, user.id, user.roles, user.groups))
                if plan is None:
                    return self._evaluate_canonical(request, canonical)
            return _combine(request, as_agent, _decide(plan, request))
        except Exception as exc:
            return _failed(request, exc)

    def _evaluate_canonical(self, request: ActionRequest, rebuilt: bool) -> Decision:
        if rebuilt:  # pragma: no cover - a canonical name is canonical again
            raise ValueError("the principal's names do not stay canonical")
        return self.evaluate(_canonical_request(request), canonical=True)

    def _plan(self, action: str, subject: _Subject) -> _Plan | None:
        """Work out, and cache, what deciding ``action`` for ``subject`` needs.

        Raises if the subject's names cannot be made canonical (``evaluate``
        then denies); such a subject is never cached.  None when the subject
        is not canonical as given: ``evaluate`` then decides the canonical
        request, and no plan is cached under the names as given.
        """
        canonical = self._subjects.get(subject)
        if canonical is None:
            canonical = subject.canonical()
            # Only subjects that compare honestly are remembered: one whose str
            # subclass claims to equal another's names must not stand for them.
            if subject.has_plain_types():
                if len(self._subjects) >= _CACHE_LIMIT:
                    _evict(self._subjects)
                self._subjects[subject] = canonical
        if not subject.is_exactly(canonical):
            return None
        label = canonical.label
        plan = (
            tuple(c for c in self.candidates(action) if c.applies_to(canonical)),
            label,
            f"no rule grants {action} to {label} (default deny)",
        )
        # Bounded, dropping the oldest plan when full: a hit costs one dict
        # lookup, with no bookkeeping.
        if subject.is_user:
            users = self._user_plans
            if len(users) >= _CACHE_LIMIT:
                _evict(users)
            users[action, subject.id, subject.roles, subject.groups] = plan
        else:
            agents = self._agent_plans
            if len(agents) >= _CACHE_LIMIT:
                _evict(agents)
            agents[action, subject.id, subject.roles] = plan
        return plan

    # -- explaining ----------------------------------------------------------

    def explain(self, request: ActionRequest) -> Explanation:
        """Evaluate and say, for every rule and subject, what happened to it."""
        decision = self.evaluate(request)
        request = decision.request  # the canonical request, if the principal was not
        principal = request.principal
        subjects = [_Subject(False, principal.agent, principal.roles, frozenset())]
        if principal.on_behalf_of is not None:
            user = principal.on_behalf_of
            subjects.append(_Subject(True, user.id, user.roles, user.groups))
        try:
            subjects = [subject.canonical() for subject in subjects]
            covering = set(self.candidates(request.action))
        except ValueError:  # the decision says why it denied; no rule can apply
            return Explanation(decision, ())
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


def _evict(cache: OrderedDict[Any, Any]) -> None:
    """Drop the first (oldest, or least recently used) entry of a full cache.

    Another thread may be changing the cache at the same moment: losing that
    race only means one entry more or less, never a wrong answer.
    """
    # try/except, not contextlib.suppress: this runs for every new name, and
    # the context manager costs as much as the eviction.
    try:  # noqa: SIM105
        cache.popitem(last=False)
    except KeyError:
        pass


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


def _canonical_request(request: ActionRequest) -> ActionRequest:
    """``request`` with its principal (and user) validated: every name in canonical form.

    Raises (and ``evaluate`` denies) if a name cannot be made canonical.
    """
    principal = request.principal
    user = principal.on_behalf_of
    canonical = Principal(
        agent=principal.agent,
        roles=principal.roles,
        attributes=principal.attributes,
        on_behalf_of=None
        if user is None
        else User(id=user.id, roles=user.roles, groups=user.groups, attributes=user.attributes),
    )
    return trusted_request(
        canonical, request.action, request.resource, request.args, request.context
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
