"""Property: no generated secret reaches a retried call's log events or a shadowed request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from structlog.testing import capture_logs

from handrail import Policy, Principal, acting_as
from handrail.audit import AuditLog
from handrail.connectors._shadow_stop import SHADOW_HEADERS_SHOWN, shadow_request
from handrail.guard import Guard
from handrail.resilience import RetryPolicy
from handrail.testing import no_waits, principals

POLICY = Policy.from_yaml("rules: [{id: all, effect: allow, actions: ['crm.*.*']}]")
RETRY = RetryPolicy(attempts=2)

# A marker prefix keeps a secret from coinciding with an event name or an id by chance.
# Letters, digits, punctuation and symbols of any script: no whitespace or control
# characters, which no URL, header or token holds.
secrets = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S")), min_size=4, max_size=24
).map(lambda body: "sk-" + body)


def strings(value: Any) -> list[str]:
    """Every string inside ``value`` (log events, their fields, nested data), unescaped."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings(item)]
    return [str(value)]


# How a tool receives its secret: each is masked in the audit record.
PASSED: dict[str, Callable[[str], dict[str, Any]]] = {
    "SecretStr": lambda s: {"note": SecretStr(s)},
    "sensitive name": lambda s: {"api_token": s},
    "nested": lambda s: {"note": {"password": s}},
    "in a list": lambda s: {"note": [1, SecretStr(s)]},
    "URL password": lambda s: {"note": f"https://bot:{quote(s, safe='')}@crm.example/x"},
}

# How the error echoes it.
ECHOED: dict[str, Callable[[str], str]] = {
    "plain": lambda s: f"refused {s}",
    "twice": lambda s: f"{s} refused {s}!",
    "in a URL query": lambda s: f"reset by https://h/x?q={s}&page=2",
    "as userinfo": lambda s: f"reset by https://bot:{s}@h/x",
}


@settings(max_examples=150, deadline=None)
@given(
    secret=secrets,
    passed=st.sampled_from(sorted(PASSED)),
    echoed=st.sampled_from(sorted(ECHOED)),
    principal=principals(),
)
def test_no_secret_reaches_the_log_events_of_a_retried_call(
    secret: str, passed: str, echoed: str, principal: Principal
) -> None:
    """A secret argument echoed in a transient error is in no event of the retried call."""
    calls: list[int] = []

    def tool(note: Any = None, api_token: str | None = None) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError(ECHOED[echoed](secret))
        return "ok"

    guarded = Guard(POLICY, audit=AuditLog.memory(), retry=RETRY).protect("crm.note.add")(tool)
    with capture_logs() as logs, no_waits(), acting_as(principal):
        assert guarded(**PASSED[passed](secret)) == "ok"
    assert [e["event"] for e in logs].count("handrail.retry") == 1
    assert not [text for text in strings(logs) if secret in text]


header_names = st.from_regex(r"\AX-[A-Za-z][A-Za-z0-9-]{0,20}\Z").filter(
    lambda name: name.lower() not in SHADOW_HEADERS_SHOWN
) | st.sampled_from(["X-Auth-Key", "Ocp-Apim-Subscription-Key", "Api-Secret", "Private-Token"])
header_secrets = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=4, max_size=24
).map(lambda body: "sk-" + body)


@settings(max_examples=150, deadline=None)
@given(name=header_names, secret=header_secrets, parameter=st.from_regex(r"\A[a-z]{1,8}\Z"))
def test_no_secret_reaches_a_shadowed_request(name: str, secret: str, parameter: str) -> None:
    """A header value not known to be harmless is masked in the headers, the URL and the body."""
    request = httpx.Request(
        "POST",
        "https://crm.example/notes",
        params={parameter: secret, "page": "2"},
        headers={name: secret, "Content-Type": "application/json"},
        json={"note": f"signed with {secret}"},
    )
    shown = shadow_request(request)
    assert not [text for text in strings(shown.model_dump()) if secret in text]
    assert {k.lower(): v for k, v in shown.headers.items()}[name.lower()] == "***"
