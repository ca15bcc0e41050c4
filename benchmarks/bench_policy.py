"""How long a policy decision takes: handrail against a floor and against pycasbin.

One run measures, interleaved so that machine noise falls on every contender
alike:

* ``handrail``: ``Policy.evaluate`` on a realistic 100-rule RBAC + ABAC policy;
* ``floor``: a bare Python function call plus a dict lookup, the least any
  Python authoriser can cost;
* ``pycasbin`` and ``pycasbin (indexed)``: the same policy as a casbin model
  (roles through ``g``, conditions through ``eval()``), with casbin's plain
  ``Enforcer`` and with its ``FastEnforcer`` indexing policy lines by (object, action);
* ``handrail, 1,000 rules``: ten times the rules, with the same rules sharing
  each benchmarked action;
* ``bare function`` and ``@requires_permission``: the cost the decorator adds;
* ``10,000 wildcard rules``: a decision for an action name seen before
  (cached) against one for a name never seen (the rules covering it found
  through the pattern index, then cached).

Run ``python benchmarks/bench_policy.py`` for a table, ``--json`` for one JSON
document, ``--quick`` for a smoke run whose figures mean nothing.
See ``benchmarks/README.md`` for how to read the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handrail import ActionRequest, Policy, Principal, Rule

# -- the policy ----------------------------------------------------------------
# Written once as neutral specs, then rendered both as handrail rules and as
# casbin policy lines, so the two engines enforce the same thing by construction.

INTERNAL_DOMAINS = ("acme.com", "acme.co.uk")
MAIL_DOMAINS = ("acme.com", "acme.co.uk", "partner.example")
VERBS = ("read", "list", "update", "create", "delete", "export")

# Resource types by family; the family decides which ABAC restriction guards it.
RESOURCE_TYPES: tuple[tuple[str, str], ...] = (
    ("crm.contact", "data"),
    ("crm.lead", "data"),
    ("crm.account", "data"),
    ("crm.deal", "money"),
    ("sales.quote", "pricing"),
    ("sales.order", "pricing"),
    ("billing.invoice", "money"),
    ("billing.refund", "money"),
    ("billing.subscription", "money"),
    ("finance.payment", "money"),
    ("hr.payroll", "money"),
    ("email.message", "mail"),
    ("email.campaign", "mail"),
    ("calendar.event", "mail"),
    ("support.ticket", "data"),
    ("support.macro", "data"),
    ("hr.employee", "data"),
    ("docs.file", "data"),
    ("analytics.report", "data"),
    ("inventory.item", "data"),
)
FAMILIES = ("data", "money", "pricing", "mail")


@dataclass(frozen=True)
class Comparison:
    """One comparison on a request argument, e.g. ``args.amount > 10000``."""

    arg: str
    op: str  # le, gt, in, not_in
    value: Any

    def to_handrail(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {f"args.{self.arg}": {self.op: value}}

    def to_casbin(self) -> str:
        symbol = {"le": "<=", "gt": ">", "in": "in", "not_in": "not in"}[self.op]
        return f"r.attrs.{self.arg} {symbol} {self.value!r}"


@dataclass(frozen=True)
class AnyOf:
    """At least one of the tests holds."""

    tests: tuple[Comparison, ...]

    def to_handrail(self) -> dict[str, Any]:
        return {"any": [t.to_handrail() for t in self.tests]}

    def to_casbin(self) -> str:
        return "(" + " or ".join(t.to_casbin() for t in self.tests) + ")"


@dataclass(frozen=True)
class Spec:
    """One rule, independent of either engine."""

    id: str
    effect: str
    actions: tuple[str, ...]
    roles: tuple[str, ...] = ()  # empty: anyone
    when: Comparison | AnyOf | None = None
    escalate_to: str | None = None

    def to_rule(self) -> Rule:
        data: dict[str, Any] = {"id": self.id, "effect": self.effect, "actions": self.actions}
        if self.roles:
            data["principals"] = {"roles": self.roles}
        if self.when is not None:
            data["when"] = self.when.to_handrail()
        if self.escalate_to is not None:
            data["escalate_to"] = self.escalate_to
        return Rule.model_validate(data)


def _per_type(resource_type: str, family: str) -> list[Spec]:
    """Four rules per resource type: view, edit, remove, and the family's ABAC guard."""
    t = resource_type
    small = Comparison("amount", "le", 50_000) if family in ("money", "pricing") else None
    specs = [
        Spec(f"{t}.view", "allow", (f"{t}.read", f"{t}.list"), ("viewer", "editor", "manager")),
        Spec(f"{t}.edit", "allow", (f"{t}.create", f"{t}.update"), ("editor", "manager"), small),
        Spec(f"{t}.remove", "allow", (f"{t}.delete",), ("manager",)),
    ]
    if family == "money":
        specs.append(
            Spec(f"{t}.large-amounts", "escalate", (f"{t}.create", f"{t}.update"),
                 when=Comparison("amount", "gt", 10_000), escalate_to="finance-approvers")
        )  # fmt: skip
    elif family == "pricing":
        deal = AnyOf((Comparison("amount", "gt", 10_000), Comparison("discount_pct", "gt", 20)))
        specs.append(
            Spec(f"{t}.big-deals", "escalate", (f"{t}.create", f"{t}.update"),
                 when=deal, escalate_to="sales-managers")
        )  # fmt: skip
    elif family == "mail":
        specs.append(
            Spec(f"{t}.unknown-recipients", "deny", (f"{t}.create",),
                 when=Comparison("to_domain", "not_in", MAIL_DOMAINS))
        )  # fmt: skip
    else:
        specs.append(
            Spec(f"{t}.no-exfiltration", "deny", (f"{t}.export",),
                 when=Comparison("to_domain", "not_in", INTERNAL_DOMAINS))
        )  # fmt: skip
    return specs


def _cross_cutting() -> list[Spec]:
    """Twenty rules that span resource types, as real policies grow them."""
    money_writes = tuple(
        f"{t}.{v}"
        for t, f in RESOURCE_TYPES
        if f in ("money", "pricing")
        for v in ("create", "update")
    )
    exports = tuple(f"{t}.export" for t, _ in RESOURCE_TYPES)
    return [
        Spec("admin.everything", "allow", ("*",), ("admin",)),
        Spec("analysts.export", "audit", exports, ("analyst",)),
        Spec("money.hard-limit", "deny", money_writes, when=Comparison("amount", "gt", 1_000_000)),
        Spec("pricing.discount-cap", "deny",
             ("sales.quote.create", "sales.quote.update",
              "sales.order.create", "sales.order.update"),
             when=Comparison("discount_pct", "gt", 50)),
        Spec("support.small-refunds", "audit", ("billing.refund.create",), ("support",),
             Comparison("amount", "le", 200)),
        Spec("support.invoice-fixes", "allow", ("billing.invoice.update",), ("support",),
             Comparison("amount", "le", 1_000)),
        Spec("payroll.need-to-know", "deny",
             ("hr.payroll.read", "hr.payroll.list", "hr.payroll.export"), ("viewer", "analyst")),
        Spec("hr.employee.export-internal", "deny", ("hr.employee.export",),
             when=Comparison("to_domain", "not_in", ("acme.com",))),
        Spec("sales.deal-updates", "audit", ("crm.deal.update",), ("sales",),
             Comparison("amount", "le", 10_000)),
        Spec("sales.quotes", "allow", ("sales.quote.create", "sales.quote.update"), ("sales",),
             Comparison("discount_pct", "le", 30)),
        Spec("sales.orders", "allow", ("sales.order.create",), ("sales",),
             Comparison("amount", "le", 25_000)),
        Spec("marketing.external-campaigns", "escalate",
             ("email.campaign.create", "email.campaign.update"),
             when=Comparison("to_domain", "not_in", ("acme.com",)), escalate_to="marketing-leads"),
        Spec("marketing.campaigns", "allow", ("email.campaign.*",), ("marketing",)),
        Spec("support.replies", "allow", ("email.message.create",), ("support",)),
        Spec("support.tickets", "allow", ("support.ticket.*",), ("support",)),
        Spec("docs.external-shares", "escalate", ("docs.file.export",),
             when=Comparison("to_domain", "not_in", INTERNAL_DOMAINS), escalate_to="security"),
        Spec("billing.large-refunds", "escalate", ("billing.refund.create",),
             when=Comparison("amount", "gt", 1_000), escalate_to="finance-approvers"),
        Spec("finance.payments", "allow", ("finance.payment.create",), ("finance",),
             Comparison("amount", "le", 100_000)),
        Spec("warehouse.stock", "allow", ("inventory.item.create", "inventory.item.update"),
             ("warehouse",)),
        Spec("analysts.reports", "allow",
             ("analytics.report.create", "analytics.report.read", "analytics.report.list"),
             ("analyst",)),
    ]  # fmt: skip


def policy_specs(rule_count: int = 100) -> list[Spec]:
    """The benchmark policy with ``rule_count`` rules (100, or 100 + a multiple of 4).

    Beyond 100, synthetic resource types add four rules each; none of them
    covers the benchmarked actions, so as many rules share each benchmarked
    action at every size.
    """
    extra, remainder = divmod(rule_count - 100, 4)
    if extra < 0 or remainder:
        raise ValueError("rule_count must be 100 plus a multiple of 4")
    types = list(RESOURCE_TYPES)
    types += [(f"tenant{i:03d}.records", FAMILIES[i % len(FAMILIES)]) for i in range(extra)]
    specs = [spec for t, family in types for spec in _per_type(t, family)]
    return specs + _cross_cutting()


def build_policy(rule_count: int = 100) -> Policy:
    """The handrail policy for ``policy_specs(rule_count)``."""
    return Policy([spec.to_rule() for spec in policy_specs(rule_count)], name="bench")


# -- the requests ----------------------------------------------------------------

AGENTS: dict[str, tuple[str, ...]] = {
    "billing-bot": ("editor", "support"),
    "sales-bot": ("sales",),
    "mail-bot": ("support",),
    "insight-bot": ("analyst",),
    "reader-bot": ("viewer",),
    "ops-bot": ("admin",),
}

# (agent, action, args): allows, audits, escalations and denials, by role and by condition.
REQUESTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("billing-bot", "billing.invoice.update", {"amount": 800}),
    ("billing-bot", "billing.invoice.update", {"amount": 25_000}),
    ("billing-bot", "billing.refund.create", {"amount": 150}),
    ("sales-bot", "sales.quote.update", {"amount": 5_000, "discount_pct": 10}),
    ("sales-bot", "sales.quote.update", {"amount": 5_000, "discount_pct": 35}),
    ("sales-bot", "sales.order.create", {"amount": 30_000, "discount_pct": 5}),
    ("mail-bot", "email.message.create", {"to_domain": "acme.com"}),
    ("mail-bot", "email.message.create", {"to_domain": "evil.example"}),
    ("insight-bot", "crm.contact.export", {"to_domain": "acme.com"}),
    ("insight-bot", "hr.payroll.export", {"to_domain": "acme.com"}),
    ("reader-bot", "crm.contact.read", {}),
    ("reader-bot", "crm.contact.delete", {}),
    ("ops-bot", "finance.payment.create", {"amount": 2_000_000}),
)


# Argument sets for the agreement grid: every agent tries every action with each.
GRID_ARGS: tuple[dict[str, Any], ...] = (
    {"amount": 150, "discount_pct": 10, "to_domain": "acme.com"},
    {"amount": 5_000, "discount_pct": 25, "to_domain": "acme.co.uk"},
    {"amount": 20_000, "discount_pct": 35, "to_domain": "partner.example"},
    {"amount": 2_000_000, "discount_pct": 60, "to_domain": "evil.example"},
)


def grid_requests() -> list[tuple[str, str, dict[str, Any]]]:
    """Every agent x every action x every argument set, for the agreement check."""
    actions = [f"{t}.{v}" for t, _ in RESOURCE_TYPES for v in VERBS]
    return [(agent, action, args) for agent in AGENTS for action in actions for args in GRID_ARGS]


def build_requests(
    requests: Sequence[tuple[str, str, dict[str, Any]]] = REQUESTS,
) -> list[ActionRequest]:
    """Requests given as (agent, action, args), as handrail ``ActionRequest``\\ s."""
    principals = {a: Principal(agent=a, roles=frozenset(r)) for a, r in AGENTS.items()}
    return [
        ActionRequest(principal=principals[agent], action=action, args=args)
        for agent, action, args in requests
    ]


# -- 10,000 wildcard rules --------------------------------------------------------

WILDCARD_APPS = 2_500  # four wildcard rules each: 10,000 rules


def build_wildcard_policy(apps: int = WILDCARD_APPS) -> Policy:
    """Four wildcard rules per app: reads for viewers, all for editors, no admin, no exports."""
    rules = []
    for i in range(apps):
        rules += [
            Rule(id=f"app{i}.view", effect="allow", actions=(f"app{i}.*.read",),
                 principals={"roles": ["viewer"]}),
            Rule(id=f"app{i}.edit", effect="allow", actions=(f"app{i}.*",),
                 principals={"roles": ["editor"]}),
            Rule(id=f"app{i}.admin", effect="deny", actions=(f"app{i}.admin.*",)),
            Rule(id=f"app{i}.export", effect="deny", actions=(f"*.app{i}.export",)),
        ]  # fmt: skip
    return Policy(rules, name="wildcards")


def measure_first_seen(
    policy: Policy, *, repetitions: int, batch: int, seed: int = 0
) -> dict[str, Any]:
    """Median ns per decision on names seen before, and on names never seen, interleaved.

    Each repetition times ``batch`` decisions of each kind, in a shuffled
    order.  The first-seen batch uses names no decision has used (prebuilt, so
    building requests is not timed); the cached batch cycles through 10 names
    decided before.  Also checks that a first-seen decision equals the cached
    decision of the same name afterwards.
    """
    principal = Principal(agent="wild-bot", roles=frozenset({"viewer"}))
    apps = WILDCARD_APPS

    def ask(name: str) -> ActionRequest:
        return ActionRequest(principal=principal, action=name)

    seen = [ask(f"app{(i * 397) % apps}.record.read") for i in range(10)]
    for request in seen:
        policy.evaluate(request)
    cached_items = (seen * (batch // len(seen) + 1))[:batch]
    fresh = [
        [ask(f"app{(r * batch + i) * 7919 % apps}.item{r}x{i}.read") for i in range(batch)]
        for r in range(repetitions + 1)
    ]
    _time_loop(policy.evaluate, fresh[-1])  # warm the code paths, not the names
    samples: dict[str, list[float]] = {"cached": [], "first seen": []}
    order = list(samples)
    shuffle = random.Random(seed).shuffle
    first_effects = []
    gc.collect()
    for r in range(repetitions):
        shuffle(order)
        for kind in order:
            items = cached_items if kind == "cached" else fresh[r]
            gc.collect(0)
            gc.disable()
            elapsed = _time_loop(policy.evaluate, items)
            gc.enable()
            samples[kind].append(elapsed / len(items))
        first_effects.append(policy.evaluate(fresh[r][0]).effect)
    agreed = all(
        policy.evaluate(ask(fresh[r][0].action)).effect is effect
        for r, effect in enumerate(first_effects)
    )
    return {name: statistics.median(values) for name, values in samples.items()} | {
        "agreed": agreed and all(e.value == "allow" for e in first_effects)
    }


# -- pycasbin ------------------------------------------------------------------

CASBIN_MODEL = """
[request_definition]
r = sub, obj, act, attrs

[policy_definition]
p = sub, obj, act, eft, cond

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.obj == p.obj && r.act == p.act && (p.sub == "*" || g(r.sub, p.sub)) && eval(p.cond)
"""
# An action such as billing.invoice.update is casbin's object billing.invoice
# and action update.  handrail's grants (allow, audit) are casbin allows, its
# restrictions (escalate, deny) casbin denies.  A rule for anyone has subject "*".
_CASBIN_EFFECT = {"allow": "allow", "audit": "allow", "escalate": "deny", "deny": "deny"}


def casbin_lines(specs: Sequence[Spec]) -> tuple[list[list[str]], list[list[str]]]:
    """The ``p`` and ``g`` lines for ``specs``.

    casbin has no segment wildcards (its keyMatch lets ``*`` span dots), so a
    wildcard action pattern is expanded to the actions it covers.
    """
    known = [f"{t}.{v}" for t, _ in RESOURCE_TYPES for v in VERBS]
    policies: list[list[str]] = []
    for spec in specs:
        actions: list[str] = []
        for pattern in spec.actions:
            if "*" not in pattern:
                actions.append(pattern)
                continue
            prefix = pattern.removesuffix("*")
            actions += [a for a in known if pattern == "*" or a.startswith(prefix)]
        condition = "True" if spec.when is None else spec.when.to_casbin()
        effect = _CASBIN_EFFECT[spec.effect]
        for role in spec.roles or ("*",):
            for action in actions:
                resource_type, verb = action.rsplit(".", 1)
                policies.append([role, resource_type, verb, effect, condition])
    groupings = [[agent, role] for agent, roles in AGENTS.items() for role in roles]
    return policies, groupings


class CasbinObject:
    """The ABAC attributes casbin's matcher reads as ``r.attrs.<name>``."""

    __slots__ = ("amount", "discount_pct", "to_domain")

    def __init__(self, args: Mapping[str, Any]) -> None:
        self.amount = args.get("amount")
        self.discount_pct = args.get("discount_pct")
        self.to_domain = args.get("to_domain")


def build_casbin(specs: Sequence[Spec], *, indexed: bool) -> Any:
    """A casbin enforcer for ``specs``; ``indexed`` filters policy lines by action first."""
    import casbin

    if indexed:
        from casbin.model import FastModel

        # Columns 1 and 2 (object, action) agree between requests and policy lines.
        model = FastModel([1, 2])
        model.load_model_from_text(CASBIN_MODEL)
        enforcer = casbin.FastEnforcer(model, cache_key_order=[1, 2])
    else:
        enforcer = casbin.Enforcer(casbin.Enforcer.new_model(text=CASBIN_MODEL))
    policies, groupings = casbin_lines(specs)
    enforcer.add_policies(policies)
    enforcer.add_grouping_policies(groupings)
    return enforcer


def casbin_requests(
    requests: Sequence[tuple[str, str, dict[str, Any]]] = REQUESTS,
) -> list[tuple[str, str, str, CasbinObject]]:
    """Requests given as (agent, action, args), as casbin's (sub, obj, act, attrs)."""
    converted = []
    for agent, action, args in requests:
        resource_type, verb = action.rsplit(".", 1)
        converted.append((agent, resource_type, verb, CasbinObject(args)))
    return converted


# -- timing --------------------------------------------------------------------


@dataclass
class Contender:
    """Something to time: ``call`` applied to each of ``items`` (unpacked if ``spread``)."""

    name: str
    call: Callable[..., object]
    items: Sequence[Any]
    spread: bool = False


def _time_loop(call: Callable[..., object], items: Sequence[Any]) -> int:
    start = time.perf_counter_ns()
    for item in items:
        call(item)
    return time.perf_counter_ns() - start


def _time_spread(call: Callable[..., object], items: Sequence[Any]) -> int:
    start = time.perf_counter_ns()
    for item in items:
        call(*item)
    return time.perf_counter_ns() - start


def measure(
    contenders: Sequence[Contender],
    *,
    repetitions: int,
    batch_ns: int,
    warmups: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """Median nanoseconds per call of each contender.

    Each contender runs in batches sized to take about ``batch_ns`` (whole
    passes over its items, so every item weighs the same).  One repetition
    times one batch of every contender, in a shuffled order, so a noisy
    moment on the machine lands on all of them alike.  GC is off while a batch
    runs, and the garbage it leaves is collected before the next one.
    """
    batches: dict[str, tuple[Callable[..., int], Callable[..., object], list[Any], list[Any]]] = {}
    for c in contenders:
        timer = _time_spread if c.spread else _time_loop
        items = list(c.items)
        for _ in range(warmups):  # fill caches: casbin's role links, handrail's action index
            timer(c.call, items)
        one_pass = min(timer(c.call, items) for _ in range(warmups))
        passes = max(1, round(batch_ns / max(one_pass, 1)))
        # An untimed pass before each batch re-warms the CPU caches that the
        # previous contender evicted; skipped where a pass is itself long.
        rewarm = items if one_pass < batch_ns // 10 else []
        batches[c.name] = (timer, c.call, rewarm, items * passes)
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    order = [c.name for c in contenders]
    shuffle = random.Random(seed).shuffle
    was_enabled = gc.isenabled()
    gc.collect()
    try:
        for _ in range(repetitions):
            shuffle(order)
            for name in order:
                timer, call, rewarm, items = batches[name]
                # Collect the previous batch's cyclic garbage untimed (casbin
                # leaves plenty), so no contender runs in another's litter.
                gc.collect(0)
                gc.disable()
                timer(call, rewarm)
                elapsed = timer(call, items)
                gc.enable()
                samples[name].append(elapsed / len(items))
    finally:
        if not was_enabled:
            gc.disable()
    return {name: statistics.median(values) for name, values in samples.items()}


# -- the run -------------------------------------------------------------------

DECISION_BUDGET_NS = 3_000
CASBIN_SPEEDUP = 50.0
SCALING_LIMIT = 1.5
DECORATOR_BUDGET_NS = 10_000
FIRST_SEEN_LIMIT = 10.0
CACHED_ROW = "10,000 wildcard rules, cached name"
FIRST_SEEN_ROW = "10,000 wildcard rules, first-seen name"


def run(*, quick: bool = False, repetitions: int | None = None) -> dict[str, Any]:
    """Run every measurement and return the figures as JSON-ready data.

    ``quick`` runs a handful of tiny batches: it proves the benchmark works,
    and its figures mean nothing.
    """
    from handrail import acting_as, requires_permission

    reps = repetitions or (3 if quick else 51)
    batch_ns = 20_000 if quick else 2_000_000

    specs = policy_specs(100)
    policy = build_policy(100)
    policy_1000 = build_policy(1_000)
    requests = build_requests()
    # Private, on purpose: this checks the claim the 1,000-rule row rests on.
    shared = {r.action: len(policy._compiled.candidates(r.action)) for r in requests}
    shared_1000 = {r.action: len(policy_1000._compiled.candidates(r.action)) for r in requests}
    if shared != shared_1000:
        raise AssertionError(f"rules sharing each action differ: {shared} vs {shared_1000}")

    # Agreement: on the benchmark requests with both enforcers, and on a grid
    # of every agent, action and argument set with the indexed one (same
    # model and lines; the plain enforcer is too slow for thousands).
    plain = build_casbin(specs, indexed=False)
    indexed = build_casbin(specs, indexed=True)
    c_requests = casbin_requests()
    expected = [policy.evaluate(r).is_allowed for r in requests]
    grid = grid_requests()
    grid_expected = [policy.evaluate(r).is_allowed for r in build_requests(grid)]
    agreement = {
        "requests": len(requests),
        "allowed": sum(expected),
        "pycasbin": _agreed(plain, c_requests, expected),
        "pycasbin (indexed)": _agreed(indexed, c_requests, expected),
        "grid": len(grid),
        "grid_allowed": sum(grid_expected),
        "grid_agreed": _agreed(indexed, casbin_requests(grid), grid_expected),
    }

    floor_table = {r.action: True for r in requests}

    def floor(request: ActionRequest) -> bool:
        return floor_table[request.action]

    # The decorator: one function, bare and guarded, on allowed calls that
    # build a resource and bind two arguments, as a real guarded tool would.
    def update_invoice(invoice_id: str, amount: int) -> int:
        return amount

    guarded = requires_permission(
        "billing.invoice.update",
        resource=lambda invoice_id, **_: {"type": "invoice", "id": invoice_id},
        policy=policy,
    )(update_invoice)
    calls = [(f"inv-{i}", 100 + i) for i in range(10)]

    contenders = [
        Contender("floor", floor, requests),
        Contender("handrail", policy.evaluate, requests),
        Contender("handrail, 1,000 rules", policy_1000.evaluate, requests),
        Contender("pycasbin", plain.enforce, c_requests, spread=True),
        Contender("pycasbin (indexed)", indexed.enforce, c_requests, spread=True),
        Contender("bare function", update_invoice, calls, spread=True),
        Contender("@requires_permission", guarded, calls, spread=True),
    ]
    with acting_as(requests[0].principal):  # billing-bot: an editor
        guarded(*calls[0])  # allowed, or this raises and the run stops
        medians = measure(
            contenders, repetitions=reps, batch_ns=batch_ns, warmups=1 if quick else 3
        )
    wildcards = measure_first_seen(
        build_wildcard_policy(), repetitions=reps, batch=20 if quick else 400
    )
    agreement = {**agreement, "first_seen_agreed": int(wildcards["agreed"])}
    medians = {
        **medians,
        CACHED_ROW: wildcards["cached"],
        FIRST_SEEN_ROW: wildcards["first seen"],
    }
    return report(medians, reps, agreement, shared, quick=quick)


def _agreed(enforcer: Any, requests: Sequence[tuple[Any, ...]], expected: Sequence[bool]) -> int:
    return sum(enforcer.enforce(*r) == e for r, e in zip(requests, expected, strict=True))


def report(
    medians: Mapping[str, float],
    repetitions: int,
    agreement: Mapping[str, int],
    shared: Mapping[str, int],
    *,
    quick: bool,
) -> dict[str, Any]:
    """Turn medians into rows with ratios, targets and verdicts (none when ``quick``)."""
    floor = medians["floor"]
    handrail = medians["handrail"]
    added = medians["@requires_permission"] - medians["bare function"]
    scaling = medians["handrail, 1,000 rules"] / handrail
    plain_ratio = medians["pycasbin"] / handrail
    indexed_ratio = medians["pycasbin (indexed)"] / handrail
    first_seen = medians[FIRST_SEEN_ROW] / medians[CACHED_ROW]

    # contender: (target, the figure it is about, its unit, met)
    targets: dict[str, tuple[str, float, str, bool]] = {
        "handrail": ("<= 3,000 ns", handrail, "ns", handrail <= DECISION_BUDGET_NS),
        "handrail, 1,000 rules": (
            f"<= {SCALING_LIMIT:g}x handrail", scaling, "x", scaling <= SCALING_LIMIT
        ),
        "pycasbin": (f">= {CASBIN_SPEEDUP:g}x handrail", plain_ratio, "x",
                     plain_ratio >= CASBIN_SPEEDUP),
        "pycasbin (indexed)": (f">= {CASBIN_SPEEDUP:g}x handrail", indexed_ratio, "x",
                               indexed_ratio >= CASBIN_SPEEDUP),
        "@requires_permission": (
            "<= bare + 10,000 ns", added, "ns added", added <= DECORATOR_BUDGET_NS
        ),
        FIRST_SEEN_ROW: (f"<= {FIRST_SEEN_LIMIT:g}x cached", first_seen, "x",
                         first_seen <= FIRST_SEEN_LIMIT),
    }  # fmt: skip
    rows = []
    for name, median in medians.items():
        row: dict[str, Any] = {
            "contender": name,
            "median_ns": round(median, 1),
            "ratio_vs_floor": round(median / floor, 2),
            "target": None,
            "measured": None,
            "unit": None,
            "passed": None,
        }
        if name in targets:
            target, measured, unit, met = targets[name]
            row.update(target=target, measured=round(measured, 2), unit=unit)
            row["passed"] = None if quick else met
        rows.append(row)
    agreed = (
        agreement["pycasbin"] == agreement["pycasbin (indexed)"] == agreement["requests"]
        and agreement["grid_agreed"] == agreement["grid"]
        and agreement.get("first_seen_agreed", 1) == 1
    )
    met_all = all(row["passed"] is not False for row in rows)
    return {
        "benchmark": "policy",
        "quick": quick,
        "repetitions": repetitions,
        "python": platform.python_version(),
        "rows": rows,
        "figures": {
            "decision_ns": round(handrail, 1),
            "floor_ns": round(floor, 1),
            "pycasbin_over_handrail": round(plain_ratio, 1),
            "indexed_pycasbin_over_handrail": round(indexed_ratio, 1),
            "rules_1000_over_100": round(scaling, 3),
            "decorator_added_ns": round(added, 1),
            "first_seen_over_cached": round(first_seen, 2),
        },
        "agreement": dict(agreement),
        "agreed": agreed,
        "rules_sharing_each_action": dict(shared),
        "passed": None if quick else agreed and met_all,
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table for humans."""
    headers = ("contender", "median ns", "x floor", "target", "measured", "result")
    lines = [
        (
            row["contender"],
            f"{row['median_ns']:,.0f}",
            f"{row['ratio_vs_floor']:,.1f}",
            row["target"] or "",
            _show_measured(row),
            {True: "pass", False: "FAIL", None: ""}[row["passed"]],
        )
        for row in result["rows"]
    ]
    widths = [max(map(len, column)) for column in zip(headers, *lines, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i in (0, 3) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    a = result["agreement"]
    verdict = {True: "pass", False: "FAIL", None: "not judged (--quick)"}[result["passed"]]
    return "\n".join(
        [
            f"policy decisions: median of {result['repetitions']} interleaved repetitions, "
            f"Python {result['python']}"
            + ("  [--quick: the figures mean nothing]" if result["quick"] else ""),
            "",
            fmt(headers),
            fmt(["-" * width for width in widths]),
            *(fmt(line) for line in lines),
            "",
            f"allow/deny agreement with handrail: pycasbin {a['pycasbin']}/{a['requests']} and "
            f"pycasbin (indexed) {a['pycasbin (indexed)']}/{a['requests']} benchmark requests "
            f"({a['allowed']} allowed); pycasbin (indexed) {a['grid_agreed']}/{a['grid']} "
            f"grid requests ({a['grid_allowed']} allowed)",
            "rules sharing each benchmarked action (100 and 1,000 rules alike): "
            + ", ".join(
                f"{action} {n}" for action, n in result["rules_sharing_each_action"].items()
            ),
            f"overall: {verdict}",
        ]
    )


def _show_measured(row: Mapping[str, Any]) -> str:
    if row["measured"] is None:
        return ""
    if row["unit"] == "x":
        return f"{row['measured']:,.2f}x"
    return (
        f"{row['measured']:+,.0f} ns" if row["unit"] == "ns added" else f"{row['measured']:,.0f} ns"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or ``--json``; exit 1 if the engines disagree or a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run with tiny batches; judges no target"
    )
    parser.add_argument("--repetitions", type=int, help="timed repetitions (default 51)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, repetitions=args.repetitions)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agreed"] and result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
