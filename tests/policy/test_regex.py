"""``matches`` conditions: patterns checked at load time, input bounded at run time.

Both engines are exercised: RE2 (google-re2, installed in the dev environment)
and Python's ``re``, forced with ``set_regex_engine``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from handrail import ActionRequest, ConfigurationError, Effect, Policy, PolicyError, Principal, Rule
from handrail.policy import REGEX_INPUT_LIMIT, regex_engine, set_regex_engine
from handrail.policy._regex import REGEX_PATTERN_LIMIT

BOT = Principal(agent="mail-bot")
CATASTROPHIC = r"^(a+)+$"


@pytest.fixture(params=["re2", "re"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on each engine, restoring the default afterwards."""
    previous = set_regex_engine(request.param)
    try:
        yield request.param
    finally:
        set_regex_engine(previous)


@pytest.fixture
def stdlib() -> Iterator[None]:
    """Force Python's re, as on a machine without google-re2."""
    previous = set_regex_engine("re")
    try:
        yield
    finally:
        set_regex_engine(previous)


def rule(pattern: str, effect: str = "deny", **kw: Any) -> Rule:
    return Rule.model_validate(
        {"id": "r", "effect": effect, "actions": ["email.send"],
         "when": {"args.to": {"matches": pattern}}, **kw}
    )  # fmt: skip


def send(to: Any) -> ActionRequest:
    return ActionRequest(principal=BOT, action="email.send", args={"to": to})


def test_the_default_engine_is_re2_when_installed() -> None:
    """RE2 is the default when google-re2 imports (it is in the dev extra), else Python's re."""
    from handrail.policy import _regex

    default = "re" if _regex._RE2 is None else "re2"
    assert regex_engine() == default
    assert set_regex_engine(None) == default


def test_a_catastrophic_pattern_is_refused_without_re2(stdlib: None) -> None:
    """(a+)+ on Python's re is refused when the rule is built, saying to install handrail[re2]."""
    with pytest.raises(ValidationError, match=r"nests quantifiers.*handrail\[re2\]"):
        rule(CATASTROPHIC)
    with pytest.raises(PolicyError, match="nests quantifiers"):
        Policy.from_yaml(
            "version: 1\nrules:\n  - id: r\n    effect: deny\n    actions: [a.b]\n"
            f"    when: {{args.to: {{matches: '{CATASTROPHIC}'}}}}\n"
        )


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a|ab)*c", "repeats an alternation"),
        (r"(\w+\s?)*$", "nests quantifiers"),
        (r"(a)\1", "backreference"),
        (r"(?=a)a", "lookahead"),
        (r"(?<!a)b", "lookahead or lookbehind"),
        (r"(a)?(?(1)b|c)", "conditional group"),
        (r"\d*\d*\d*x", "backtrack for too long"),
        (r"a?" * 30 + "a" * 30, "backtrack for too long"),
    ],
)
def test_backtracking_hazards_are_refused_on_python_re(
    stdlib: None, pattern: str, why: str
) -> None:
    """Each hazard is refused by inspecting the parsed pattern, with the reason."""
    with pytest.raises(ValidationError, match=why):
        rule(pattern)


@pytest.mark.parametrize(
    "pattern", [r"^[a-z]+@[a-z]+\.com$", r"@acme\.com$", r"^(eu|us)$", r"^\d{3}-\d{4}$", "prod"]
)
def test_ordinary_patterns_pass_on_both_engines(engine: str, pattern: str) -> None:
    """Everyday patterns load on either engine."""
    rule(pattern)


def test_re2_runs_the_catastrophic_pattern_in_linear_time(engine: str) -> None:
    """On RE2 (a+)+ is harmless; on re it is refused. Neither can stall a decision."""
    if engine == "re":
        with pytest.raises(ValidationError):
            rule(CATASTROPHIC)
        return
    policy = Policy([rule(".*", "allow", description="all"), rule(CATASTROPHIC, id="x")])
    # 1,000 a's and a b: backtracking re would take longer than the universe has.
    assert policy.evaluate(send("a" * 1000 + "b")).effect is Effect.ALLOW
    assert policy.evaluate(send("a" * 1000)).effect is Effect.DENY


def test_re2_refuses_what_it_cannot_run(engine: str) -> None:
    """Backreferences and lookarounds are refused on both engines."""
    for pattern in (r"(a)\1", r"a(?=b)"):
        with pytest.raises(ValidationError):
            rule(pattern)


def test_input_past_the_limit_is_undetermined(engine: str) -> None:
    """A string longer than REGEX_INPUT_LIMIT is not searched: grants fail, restrictions hold."""
    deny = Policy([rule("^x", "allow", id="ok"), rule("evil", id="no-evil")])
    long = "x" + "a" * REGEX_INPUT_LIMIT
    decision = deny.evaluate(send(long))
    assert decision.effect is Effect.DENY
    assert decision.undetermined == ("args.to",)
    assert deny.evaluate(send("x" + "a" * (REGEX_INPUT_LIMIT - 1))).effect is Effect.ALLOW


def test_overlong_patterns_are_refused(engine: str) -> None:
    """A pattern past REGEX_PATTERN_LIMIT characters is refused."""
    with pytest.raises(ValidationError, match="limit"):
        rule("a" * (REGEX_PATTERN_LIMIT + 1))


def test_asking_for_re2_without_it_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """set_regex_engine('re2') without google-re2 says how to install it."""
    from handrail.policy import _regex

    monkeypatch.setattr(_regex, "_RE2", None)
    with pytest.raises(ConfigurationError, match=r"handrail\[re2\]"):
        set_regex_engine("re2")
    with pytest.raises(ConfigurationError):
        set_regex_engine("pcre")  # type: ignore[arg-type]
