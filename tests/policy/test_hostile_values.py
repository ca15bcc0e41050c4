"""Numbers from outside (numpy, Decimal, Fraction, hostile objects) never decide a comparison.

A comparison is decided only by a real ``bool``; values are made plain at the
request boundary, and whatever cannot be made a number is undetermined: it
never grants, and always restricts.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handrail import (
    ActionRequest,
    Effect,
    PermissionDenied,
    Policy,
    Principal,
    Rule,
    requires_permission,
)
from handrail._values import MAX_INT_DIGITS, MAX_VALUE_DEPTH, OpaqueValue, normalise
from handrail.testing import numeric_like_values
from handrail.testing._hostile_values import LyingNumber, NotANumber, RaisingNumber

BOT = Principal(agent="refund-bot")
ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def rule(id: str, effect: str, **kw: Any) -> Rule:
    return Rule.model_validate({"id": id, "effect": effect, "actions": ["billing.refund"], **kw})


def request(amount: Any) -> ActionRequest:
    return ActionRequest(principal=BOT, action="billing.refund", args={"amount": amount})


def unvalidated(amount: Any) -> ActionRequest:
    """A request that skipped the boundary (model_construct): the evaluator must still hold."""
    return ActionRequest.model_construct(
        principal=BOT, action="billing.refund", args={"amount": amount}, context={}
    )


LIMIT = Policy([rule("all", "allow"), rule("limit", "deny", when={"args.amount": {"gt": 10000}})])
ASK = Policy(
    [
        rule("all", "allow"),
        rule("ask", "escalate", when={"args.amount": {"gt": 10000}}, escalate_to="finance"),
    ]
)
RANGE = Policy([rule("small", "allow", when={"args.amount": {"gt": 0, "le": 10000}})])


@pytest.mark.parametrize("build", [request, unvalidated])
@pytest.mark.parametrize(
    "amount", [np.float64(12000), np.int64(12000), np.float32(12000), np.array(12000.0)]
)
def test_numpy_numbers_meet_the_limits(amount: Any, build: Callable[[Any], ActionRequest]) -> None:
    """numpy.float64(12000) is over a 10,000 limit: deny and escalate apply, a range refuses."""
    assert LIMIT.evaluate(build(amount)).effect is Effect.DENY
    assert ASK.evaluate(build(amount)).effect is Effect.ESCALATE
    assert RANGE.evaluate(build(amount * 4)).effect is Effect.DENY
    assert LIMIT.explain(build(amount)).decision.effect is Effect.DENY


def test_numpy_numbers_in_range_are_allowed() -> None:
    """A numpy number within the limits is the number it is: allowed like a plain one."""
    assert RANGE.evaluate(request(np.float64(500))).effect is Effect.ALLOW
    assert LIMIT.evaluate(request(np.int32(500))).effect is Effect.ALLOW


def test_decorator_refuses_numpy_amount_like_a_plain_one() -> None:
    """End to end: np.float64(50000) is refused exactly as 50000.0 is."""
    ran: list[Any] = []

    @requires_permission("billing.refund", policy=RANGE)
    def refund(amount: Any, principal: Principal) -> None:
        ran.append(amount)

    for amount in (50000.0, np.float64(50000), np.array(50000.0), Decimal(50000)):
        with pytest.raises(PermissionDenied):
            refund(amount, principal=BOT)
    refund(np.float64(50), principal=BOT)
    assert ran == [np.float64(50)]
    assert type(ran[0]) is np.float64  # the function gets its own value, untouched


@pytest.mark.parametrize(
    "amount",
    [
        np.bool_(True),
        True,
        "12000",
        Decimal("NaN"),
        Decimal("sNaN"),
        float("nan"),
        np.float64("nan"),
        NotANumber(),
        np.array([12000.0, 1.0]),
        np.complex128(12000),
    ],
)
def test_values_that_are_no_number_are_undetermined(amount: Any) -> None:
    """Bools, strings, NaN, arrays and hostile objects never grant, and always restrict."""
    for build in (request, unvalidated):
        assert RANGE.evaluate(build(amount)).effect is Effect.DENY
        decision = ASK.evaluate(build(amount))
        assert decision.effect is Effect.ESCALATE, (amount, decision.reason)
        assert decision.undetermined == ("args.amount",)


@pytest.mark.parametrize("build", [request, unvalidated])
def test_subclasses_are_read_as_their_value(build: Callable[[Any], ActionRequest]) -> None:
    """An int or float subclass is compared as the number it holds; its methods are not asked."""
    assert LIMIT.evaluate(build(RaisingNumber(12000))).effect is Effect.DENY
    assert LIMIT.evaluate(build(LyingNumber(5.0))).effect is Effect.ALLOW
    assert RANGE.evaluate(build(LyingNumber(50000.0))).effect is Effect.DENY
    assert RANGE.evaluate(build(RaisingNumber(5))).effect is Effect.ALLOW


def test_exact_numbers_are_not_rounded() -> None:
    """A Fraction or long double a hair over the limit is over it: no rounding to the limit."""
    hair = Fraction(10000) + Fraction(1, 10**30)
    assert LIMIT.evaluate(request(hair)).effect is Effect.DENY
    assert LIMIT.evaluate(request(Decimal("10000.000000000000000000001"))).effect is Effect.DENY
    wide = np.longdouble(10000) + np.longdouble(2) ** -40
    assert LIMIT.evaluate(request(wide)).effect is Effect.DENY


def test_deep_and_huge_arguments_become_opaque() -> None:
    """Nesting past MAX_VALUE_DEPTH is opaque; a condition reaching into it is undetermined."""
    deep: Any = 12000
    for _ in range(MAX_VALUE_DEPTH + 5):
        deep = [deep]
    plain = normalise({"x": deep})
    node = plain["x"]
    while isinstance(node, list):
        node = node[0]
    assert isinstance(node, OpaqueValue)
    contains = Policy([rule("c", "allow", when={"args.amount": {"contains": "x"}})])
    assert contains.evaluate(request(deep)).effect is Effect.DENY


def test_integers_too_long_to_print_become_opaque() -> None:
    """An int past MAX_INT_DIGITS digits (a fraction of one, a key) is opaque: undetermined."""
    huge = 10**MAX_INT_DIGITS
    assert normalise(10**MAX_INT_DIGITS - 1) == 10**MAX_INT_DIGITS - 1
    for value in (huge, -huge, Fraction(huge, 3), Fraction(1, huge), np.longdouble("1e4900")):
        assert isinstance(normalise(value), OpaqueValue), type(value)
        assert isinstance(normalise({"amount": value})["amount"], OpaqueValue)
    (key,) = normalise({huge: 1})
    assert isinstance(key, OpaqueValue)
    assert LIMIT.evaluate(request(huge)).effect is Effect.DENY
    assert RANGE.evaluate(request(huge)).effect is Effect.DENY
    assert "undetermined" in ASK.evaluate(request(-huge)).reason


# -- properties -----------------------------------------------------------------


def exact(value: Any) -> Fraction | float | None:
    """The reference: the number a value stands for, or None if it is no comparable number."""
    if isinstance(value, NotANumber | str | bool | np.bool_):
        return None
    if isinstance(value, np.ndarray):
        return exact(value[()]) if value.ndim == 0 else None
    if isinstance(value, np.complexfloating):
        return None
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if value.is_infinite():
            return math.inf if value > 0 else -math.inf
        return Fraction(value)
    if isinstance(value, RaisingNumber):
        return Fraction(int.__int__(value))
    if isinstance(value, float | np.floating):
        number = float.__float__(value) if isinstance(value, float) else value
        if math.isnan(number):
            return None
        if math.isinf(number):
            return float(number)
        return Fraction(*number.as_integer_ratio())
    if isinstance(value, int | np.integer):
        return Fraction(int(value))
    if isinstance(value, Fraction):
        return value
    raise AssertionError(f"no reference for {value!r}")  # pragma: no cover


LIMITS = st.sampled_from([0, 1, 10000, -5, 0.5, 19.99, 10**40])
QUICK = settings(max_examples=200, deadline=None)


@QUICK
@given(value=numeric_like_values(), op=st.sampled_from(sorted(ORDERING)), limit=LIMITS)
def test_a_restriction_on_a_value_never_turns_into_an_allow(
    value: Any, op: str, limit: Any
) -> None:
    """allow all, deny when amount <op> limit: allowed only if the exact comparison is false."""
    policy = Policy(
        [rule("all", "allow"), rule("limit", "deny", when={"args.amount": {op: limit}})]
    )
    number = exact(value)
    for build in (request, unvalidated):
        allowed = policy.evaluate(build(value)).is_allowed
        expected = number is not None and not ORDERING[op](number, limit)
        assert allowed is expected, (value, op, limit)


@QUICK
@given(value=numeric_like_values(), op=st.sampled_from(sorted(ORDERING)), limit=LIMITS)
def test_a_grant_never_grants_on_a_value_it_cannot_compare(value: Any, op: str, limit: Any) -> None:
    """allow when amount <op> limit: granted only for a number whose comparison holds."""
    policy = Policy([rule("when", "allow", when={"args.amount": {op: limit}})])
    number = exact(value)
    expected = number is not None and ORDERING[op](number, limit)
    for build in (request, unvalidated):
        assert policy.evaluate(build(value)).is_allowed is expected, (value, op, limit)


@QUICK
@given(value=numeric_like_values())
def test_normalise_never_raises_and_gives_plain_values(value: Any) -> None:
    """Whatever comes in, normalise returns a plain value or an OpaqueValue, without raising.

    Objects of no known kind (NotANumber) are kept as they are: no condition compares them.
    """
    plain = normalise(value)
    kinds = (int, float, bool, str, Decimal, Fraction, OpaqueValue, type(None))
    assert type(plain) in kinds or (plain is value and isinstance(value, NotANumber))
