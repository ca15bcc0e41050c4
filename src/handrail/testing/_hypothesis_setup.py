"""Teach Hypothesis handrail's types, so ``st.from_type(Principal)`` works in users' tests.

Hypothesis calls ``_register`` through the ``hypothesis`` entry point
declared in pyproject.toml, when Hypothesis itself is imported.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ..identity import Principal, User
from ..policy import ActionRequest, Policy, Resource, Rule
from . import _rule_strategies, _strategies


def _register() -> None:
    """Register a strategy for each of handrail's main types (the strategies' defaults).

    Registered as functions, so nothing is built until a test asks for the type.
    """
    st.register_type_strategy(User, lambda _: _strategies.users())
    st.register_type_strategy(Principal, lambda _: _strategies.principals())
    st.register_type_strategy(Resource, lambda _: _strategies.resources())
    st.register_type_strategy(ActionRequest, lambda _: _strategies.action_requests())
    st.register_type_strategy(Rule, lambda _: _rule_strategies.rules())
    st.register_type_strategy(Policy, lambda _: _rule_strategies.policies())
