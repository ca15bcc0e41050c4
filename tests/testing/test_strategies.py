"""handrail.testing: the strategies generate valid objects, and FakeClock keeps time."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from handrail import ActionRequest, Effect, Policy, Principal, Resource, Rule, User
from handrail.clock import Clock, SystemClock
from handrail.policy import AllOf, AnyOf, Compare, Condition, Exists, Not
from handrail.policy._condition_syntax import parse_condition
from handrail.policy._patterns import action_matches
from handrail.testing import (
    FakeClock,
    action_requests,
    attribute_values,
    conditions,
    policies,
    principals,
    resources,
    rules,
    scalar_values,
    users,
)

QUICK = settings(max_examples=30, deadline=None)


def depth(condition: Condition) -> int:
    """How deep combinators nest: 0 for a single test."""
    if isinstance(condition, AllOf | AnyOf):
        return 1 + max((depth(c) for c in condition.conditions), default=0)
    if isinstance(condition, Not):
        return 1 + depth(condition.condition)
    return 0


def leaves(condition: Condition) -> list[Condition]:
    """The single tests inside a condition."""
    if isinstance(condition, AllOf | AnyOf):
        return [leaf for c in condition.conditions for leaf in leaves(c)]
    if isinstance(condition, Not):
        return leaves(condition.condition)
    return [condition]


# -- the strategies ------------------------------------------------------------------


@QUICK
@given(principals())
def test_principals_are_valid(principal: Principal) -> None:
    """A generated principal passes validation again, unchanged."""
    assert Principal.model_validate(principal.model_dump()) == principal


@QUICK
@given(principals(users=users(ids=["dana"], groups=["ops"])))
def test_principals_can_always_act_for_a_user(principal: Principal) -> None:
    """Given a strategy for users, every principal acts for one drawn from it."""
    assert principal.on_behalf_of is not None
    assert principal.on_behalf_of.id == "dana"
    assert principal.on_behalf_of.groups <= {"ops"}


@QUICK
@given(principals(agents=["only-bot"], roles=[], users=[], attributes=[]))
def test_principals_follow_the_given_vocabulary(principal: Principal) -> None:
    """Empty vocabularies mean no roles, no user and no attributes."""
    assert principal == Principal(agent="only-bot")


@QUICK
@given(users(attributes={"level": st.integers(1, 3)}))
def test_users_hold_the_given_attributes(user: User) -> None:
    """User attributes come from the mapping given, key by key."""
    assert User.model_validate(user.model_dump()) == user
    assert set(user.attributes) <= {"level"}
    assert all(1 <= v <= 3 for v in user.attributes.values())


@QUICK
@given(resources(types=["ticket"], ids=[], attributes=["owner"], values=st.just("me")))
def test_resources_follow_the_given_vocabulary(resource: Resource) -> None:
    """Resource types, ids and attributes come from the vocabulary given."""
    assert resource.type == "ticket"
    assert resource.id is None
    assert dict(resource.attributes) in ({}, {"owner": "me"})


@QUICK
@given(action_requests())
def test_action_requests_are_valid(request: ActionRequest) -> None:
    """A generated request passes validation again, unchanged."""
    assert ActionRequest.model_validate(request.model_dump()) == request


@QUICK
@given(action_requests(actions=["crm.*.read", "email.*", "billing.refund.create"]))
def test_action_patterns_stand_for_names_they_match(request: ActionRequest) -> None:
    """An action given as a pattern yields concrete names the pattern covers."""
    assert "*" not in request.action
    assert any(
        action_matches(p, request.action)
        for p in ("crm.*.read", "email.*", "billing.refund.create")
    )


@QUICK
@given(action_requests(args=["a"], context={"b": st.just(1)}, values=st.just("v")))
def test_values_replaces_every_key_strategy(request: ActionRequest) -> None:
    """``values`` overrides the per-key strategies, in args and context alike."""
    assert set(request.args.values()) <= {"v"}
    assert set(request.context.values()) <= {"v"}


@settings(max_examples=200, deadline=None)
@given(conditions())
def test_conditions_are_valid_and_readable_back(condition: Condition) -> None:
    """A generated condition survives the file syntax, and so passes every check."""
    assert parse_condition(condition.to_data()) == condition
    assert depth(condition) <= 2


@QUICK
@given(conditions(paths=["args.n"], values=st.integers(0, 9), max_depth=0))
def test_conditions_follow_the_given_paths_and_values(condition: Condition) -> None:
    """Paths and values given are the only ones a condition uses."""
    assert condition.paths() == {"args.n"}
    if isinstance(condition, Compare):
        values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        assert all(isinstance(v, int) and 0 <= v <= 9 for v in values)


@QUICK
@given(conditions(operators=["exists"], max_depth=1))
def test_conditions_use_only_the_given_operators(condition: Condition) -> None:
    """With operators=['exists'], every test is an exists test."""
    assert all(isinstance(leaf, Exists) for leaf in leaves(condition))


@QUICK
@given(conditions(operators=["lt", "matches"], max_depth=0))
def test_conditions_pair_operators_with_values_they_can_decide(condition: Condition) -> None:
    """Ordering gets numbers or strings; matches gets one of the regexes."""
    assert isinstance(condition, Compare)
    assert condition.op in ("lt", "matches")
    assert isinstance(condition.value, int | float | str)
    assert not isinstance(condition.value, bool)


@QUICK
@given(rules())
def test_rules_are_valid(generated: Rule) -> None:
    """A generated rule passes validation again, unchanged (its condition in file syntax)."""
    data = generated.model_dump(exclude={"when"})
    data["when"] = None if generated.when is None else generated.when.to_data()
    assert Rule.model_validate(data) == generated


@QUICK
@given(rules(effects=[Effect.ESCALATE], actions=["x.*"], routes=["oncall"]))
def test_rules_follow_the_given_vocabulary(generated: Rule) -> None:
    """Effects, action patterns and routes come from the vocabulary given."""
    assert generated.effect is Effect.ESCALATE
    assert generated.actions == ("x.*",)
    assert generated.escalate_to == "oncall"


@QUICK
@given(policies(max_rules=3))
def test_policies_have_unique_rule_ids(policy: Policy) -> None:
    """A generated policy has at most max_rules rules, with distinct ids."""
    ids = [r.id for r in policy.rules]
    assert len(ids) <= 3
    assert len(set(ids)) == len(ids)


@QUICK
@given(scalar_values(), attribute_values())
def test_values_are_of_the_kinds_conditions_compare(scalar: Any, attribute: Any) -> None:
    """Scalars are single numbers, strings, bools or None; attributes may also be lists."""
    assert scalar is None or isinstance(scalar, int | float | str)
    assert attribute is None or isinstance(attribute, int | float | str | list)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: action_requests(actions=["not an action"]), "malformed action pattern"),
        (lambda: action_requests(actions=[]), "actions must not be empty"),
        (lambda: principals(agents=[]), "agents must not be empty"),
        (lambda: conditions(paths=["nowhere.x"]), "must start with one of"),
        (lambda: conditions(regexes=["("]), "invalid regular expression"),
        (lambda: conditions(operators=["equals"]), "unknown operators equals"),
        (lambda: conditions(max_depth=-1), "max_depth must be 0 or more"),
        (lambda: rules(actions=["crm..read"]), "malformed action pattern"),
        (lambda: policies(max_rules=-1), "max_rules must be 0 or more"),
    ],
)
def test_bad_vocabularies_fail_when_the_strategy_is_built(make: Any, message: str) -> None:
    """A malformed vocabulary raises at once, naming the problem, not at the first draw."""
    with pytest.raises(ValueError, match=message):
        make()


# -- registration with Hypothesis -----------------------------------------------------


@pytest.mark.parametrize("model", [Principal, User, Resource, ActionRequest, Rule, Policy])
def test_from_type_knows_handrail_types(model: type[Any]) -> None:
    """st.from_type works for handrail's types, through the hypothesis entry point."""

    @settings(max_examples=5, deadline=None)
    @given(st.from_type(model))
    def check(value: object) -> None:
        assert isinstance(value, model)

    check()


def test_importing_handrail_does_not_import_hypothesis() -> None:
    """Hypothesis is a test-time dependency: ``import handrail`` leaves it alone."""
    code = (
        "import sys, handrail, handrail.clock, handrail.policy\n"
        "assert 'hypothesis' not in sys.modules, 'hypothesis was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the clocks -------------------------------------------------------------------------

START = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


def test_fake_clock_starts_where_told_and_stands_still() -> None:
    """A FakeClock reads its start time, and monotonic zero, until it is moved."""
    clock = FakeClock(START)
    assert clock.now() == START
    assert clock.now() == START
    assert clock.monotonic() == 0.0


def test_fake_clock_advances() -> None:
    """advance moves both readings forward by exactly the delta."""
    clock = FakeClock(START)
    clock.advance(dt.timedelta(minutes=90))
    assert clock.now() == START + dt.timedelta(minutes=90)
    assert clock.monotonic() == 5400.0


def test_fake_clock_sets_forward() -> None:
    """set jumps to a later time; setting the current time is allowed."""
    clock = FakeClock(START)
    later = START + dt.timedelta(days=2)
    clock.set(later)
    clock.set(later)
    assert clock.now() == later
    assert clock.monotonic() == 2 * 86400.0


def test_fake_clock_never_goes_backwards() -> None:
    """Going back, by a negative delta or an earlier time, raises ValueError."""
    clock = FakeClock(START)
    with pytest.raises(ValueError, match="cannot go backwards"):
        clock.advance(dt.timedelta(seconds=-1))
    with pytest.raises(ValueError, match="cannot go backwards"):
        clock.set(START - dt.timedelta(microseconds=1))
    assert clock.now() == START


def test_fake_clock_speaks_utc() -> None:
    """Aware times in other zones are converted to UTC; naive ones are refused."""
    paris = dt.timezone(dt.timedelta(hours=1))
    clock = FakeClock(dt.datetime(2025, 3, 1, 10, 30, tzinfo=paris))
    assert clock.now() == START
    assert clock.now().tzinfo is dt.UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(dt.datetime(2025, 3, 1))  # naive: the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(dt.datetime(2026, 1, 1))


def test_fake_clock_has_a_fixed_default_start() -> None:
    """Without a start, every FakeClock begins at the same instant: tests stay reproducible."""
    assert FakeClock().now() == FakeClock().now()
    assert FakeClock().now().tzinfo is dt.UTC


def test_fake_clock_sleeps_by_moving_forward() -> None:
    """sleep and asleep advance the fake time by the pause and return without waiting; a
    positive pause below the clock's microsecond moves it one microsecond (a wait for a
    deadline always gets there); a negative or endless pause is refused."""
    clock = FakeClock(START)
    clock.sleep(0.2)
    clock.sleep(0)
    assert clock.now() == START + dt.timedelta(milliseconds=200)
    clock.sleep(1e-9)
    assert clock.now() == START + dt.timedelta(milliseconds=200, microseconds=1)
    asyncio.run(clock.asleep(1800))
    assert clock.monotonic() == pytest.approx(1800.200001)
    for bad in (-1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite number of seconds"):
            clock.sleep(bad)


def test_fake_asleep_lets_other_tasks_run() -> None:
    """asleep yields to the event loop once, as a real pause would: a task started before it
    runs before it returns."""
    clock = FakeClock(START)
    seen: list[str] = []

    async def other() -> None:
        seen.append("other")

    async def main() -> None:
        task = asyncio.create_task(other())
        await clock.asleep(60)
        seen.append("after the pause")
        await task

    asyncio.run(main())
    assert seen == ["other", "after the pause"]


def test_fake_clock_moves_add_up_across_threads() -> None:
    """Eight threads sleeping 1,000 times a millisecond each move the clock exactly 8 s."""
    clock = FakeClock(START)
    threads = [
        threading.Thread(target=lambda: [clock.sleep(0.001) for _ in range(1000)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == START + dt.timedelta(seconds=8)


def test_the_system_clock_sleeps_for_real() -> None:
    """SystemClock.sleep and asleep pause real time, by at least the pause."""
    clock = SystemClock()
    first = clock.monotonic()
    clock.sleep(0.01)
    asyncio.run(clock.asleep(0.01))
    assert clock.monotonic() - first >= 0.02


def test_clocks_are_clocks() -> None:
    """FakeClock and SystemClock both satisfy the Clock protocol and read aware UTC time."""
    clocks: list[Clock] = [FakeClock(), SystemClock()]
    for clock in clocks:
        assert clock.now().tzinfo is dt.UTC
        first = clock.monotonic()
        assert clock.monotonic() >= first


class FakeClockMachine(RuleBasedStateMachine):
    """Any sequence of moves keeps FakeClock monotonic and consistent."""

    def __init__(self) -> None:
        super().__init__()
        self.start_at = self.seen = START
        self.clock = FakeClock(START)
        self.elapsed = dt.timedelta(0)

    @initialize(
        start=st.datetimes(
            min_value=dt.datetime(1970, 1, 1),
            max_value=dt.datetime(9000, 1, 1),
            timezones=st.just(dt.UTC),
        )
    )
    def start(self, start: dt.datetime) -> None:
        self.start_at = self.seen = start
        self.clock = FakeClock(start)

    @rule(delta=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3)))
    def advance(self, delta: dt.timedelta) -> None:
        self.clock.advance(delta)
        self.elapsed += delta

    @rule(delta=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3)))
    def set_forward(self, delta: dt.timedelta) -> None:
        self.clock.set(self.clock.now() + delta)
        self.elapsed += delta

    @precondition(lambda self: self.elapsed > dt.timedelta(0))
    @rule(back=st.timedeltas(min_value=dt.timedelta(microseconds=1), max_value=dt.timedelta(1)))
    def set_backwards(self, back: dt.timedelta) -> None:
        before = self.clock.now()
        with pytest.raises(ValueError, match="cannot go backwards"):
            self.clock.set(before - back)
        assert self.clock.now() == before

    @invariant()
    def never_backwards(self) -> None:
        assert self.clock.now() >= self.seen
        self.seen = self.clock.now()

    @invariant()
    def readings_agree(self) -> None:
        assert self.clock.now() == self.start_at + self.elapsed
        assert self.clock.monotonic() == pytest.approx(self.elapsed.total_seconds())
        assert self.clock.now().tzinfo is dt.UTC


FakeClockMachine.TestCase.settings = settings(max_examples=30, deadline=None)
test_fake_clock_machine = FakeClockMachine.TestCase
