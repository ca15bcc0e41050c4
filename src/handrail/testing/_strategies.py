"""Hypothesis strategies for identities and requests: users, principals, resources, requests.

Drawn from the shared vocabulary (``_vocabulary``), or from yours: pass the
agents, roles and actions your policy names to aim the search at it::

    from hypothesis import given
    from handrail.testing import action_requests

    @given(action_requests(actions=["crm.contact.read", "crm.*.update"]))
    def test_reads_never_escalate(request): ...

Action names may contain ``*``: a pattern stands for names it matches.
Requires Hypothesis (``pip install handrail[testing]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from .._names import check_action_pattern
from ..identity import Principal, User
from ..policy import ActionRequest, Resource
from ._vocabulary import (
    ACTIONS,
    AGENTS,
    ARGS,
    CONTEXT,
    GROUPS,
    PRINCIPAL_ATTRIBUTES,
    RESOURCE_ATTRIBUTES,
    RESOURCE_IDS,
    RESOURCE_TYPES,
    ROLES,
    USERS,
    Vocabulary,
    mappings,
    mostly,
    nonempty,
    subsets,
)

__all__ = ["action_requests", "principals", "resources", "users"]


def users(
    *,
    ids: Sequence[str] = USERS,
    roles: Sequence[str] = ROLES,
    groups: Sequence[str] = GROUPS,
    attributes: Vocabulary = (),
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[User]:
    """Users with an id from ``ids``, and some of ``roles`` and ``groups``.

    ``attributes`` names the keys that may appear in ``User.attributes``
    (none by default); see ``action_requests`` for keys and ``values``.
    """
    return st.builds(
        User,
        id=st.sampled_from(nonempty("ids", ids)),
        roles=subsets(roles),
        groups=subsets(groups),
        attributes=mappings(attributes, values),
    )


def principals(
    *,
    agents: Sequence[str] = AGENTS,
    roles: Sequence[str] = ROLES,
    users: Sequence[str] | st.SearchStrategy[User | None] = USERS,
    groups: Sequence[str] = GROUPS,
    attributes: Vocabulary = PRINCIPAL_ATTRIBUTES,
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[Principal]:
    """Principals: an agent from ``agents`` with some ``roles``, acting alone or for a user.

    ``users`` is either user ids (the user then gets some of ``roles`` and
    ``groups``; about half the principals act alone) or a strategy for
    ``on_behalf_of`` itself, such as ``users(ids=[...]) | st.none()``.
    ``attributes`` are the keys of ``Principal.attributes``; see
    ``action_requests`` for keys and ``values``.
    """
    if isinstance(users, st.SearchStrategy):
        on_behalf_of: st.SearchStrategy[User | None] = users
    elif users:
        on_behalf_of = st.none() | _users(ids=users, roles=roles, groups=groups)
    else:
        on_behalf_of = st.none()
    return st.builds(
        Principal,
        agent=st.sampled_from(nonempty("agents", agents)),
        on_behalf_of=on_behalf_of,
        roles=subsets(roles),
        attributes=mappings(attributes, values),
    )


def resources(
    *,
    types: Sequence[str] = RESOURCE_TYPES,
    ids: Sequence[str] = RESOURCE_IDS,
    attributes: Vocabulary = RESOURCE_ATTRIBUTES,
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[Resource]:
    """Resources of a type from ``types``, with or without an id from ``ids``, and attributes.

    See ``action_requests`` for ``attributes`` and ``values``.
    """
    return st.builds(
        Resource,
        type=st.sampled_from(nonempty("types", types)),
        id=(st.none() | st.sampled_from(ids)) if ids else st.none(),
        attributes=mappings(attributes, values),
    )


def action_requests(
    *,
    actions: Sequence[str] = ACTIONS,
    principals: st.SearchStrategy[Principal] | None = None,
    resources: st.SearchStrategy[Resource | None] | None = None,
    args: Vocabulary = ARGS,
    context: Vocabulary = CONTEXT,
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[ActionRequest]:
    """Requests for one of ``actions``, by a principal, on a resource or none.

    ``actions`` may hold patterns such as ``crm.*.read`` (a name it matches is
    drawn, reusing the segments of the other names), so the action patterns of
    a policy's rules can be passed as they are.

    ``args`` and ``context`` give the keys that may appear in those mappings
    (each key is present three times in four): either a mapping from each
    key to the values it holds, or keys alone, holding ``attribute_values()``.
    ``values``, if given, is used for every key instead, here and in the
    default principals and resources.  The defaults hold mostly the values a
    key usually has, and sometimes any other kind, so conditions also meet
    values of the wrong kind.
    """
    return st.builds(
        ActionRequest,
        principal=_principals(values=values) if principals is None else principals,
        action=_action_names(actions),
        resource=mostly(_resources(values=values), st.none()) if resources is None else resources,
        args=mappings(args, values),
        context=mappings(context, values),
    )


# The public names are also parameter names (``principals=...``); these keep
# the functions reachable inside the strategies that take such a parameter.
_users, _principals, _resources = users, principals, resources


# -- action names ------------------------------------------------------------------


def _action_names(names: Sequence[str]) -> st.SearchStrategy[str]:
    for name in nonempty("actions", names):
        check_action_pattern(name, "actions")
    segments = sorted({s for name in names for s in name.split(".") if s != "*"}) or ["x"]
    segment = st.sampled_from(segments)
    return _action_name(
        names=st.sampled_from(tuple(names)),
        segment=segment,
        tails=st.lists(segment, min_size=1, max_size=3),
    )


@st.composite
def _action_name(
    draw: st.DrawFn,
    *,
    names: st.SearchStrategy[str],
    segment: st.SearchStrategy[str],
    tails: st.SearchStrategy[list[str]],
) -> str:
    name = draw(names)
    if "*" not in name:
        return name
    parts = name.split(".")
    filled = [draw(segment) if part == "*" else part for part in parts[:-1]]
    if parts[-1] == "*":  # a trailing '*' stands for one or more segments
        filled += draw(tails)
    else:
        filled.append(parts[-1])
    return ".".join(filled)
