"""The redaction fast path gives exactly what Redactor.redact and Redactor.secrets_in give."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretBytes, SecretStr

from handrail import Principal
from handrail.audit import AuditEntry, AuditLog
from handrail.audit._redact import PartRedactor
from handrail.redaction import MASK, Redactor

keys = st.sampled_from(["id", "amount", "note", "password", "api_key", "Session-Id", "x"])
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.builds(SecretStr, st.text(min_size=4, max_size=8))
    | st.builds(SecretBytes, st.binary(min_size=4, max_size=8))
    | st.builds(
        "{}://{}{}/p{}".format,
        st.sampled_from(["https", "s3", ""]),
        st.sampled_from(["", "user:pass-1@", "tok-12@", "u:@"]),
        st.sampled_from(["h", "h:8080", "h@x"]),
        st.sampled_from(["", "?page=2", "?token=t-123&page=2", "?key=", "#access_token=a-9"]),
    )
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(keys, values, max_size=4))
def test_the_fast_path_masks_exactly_what_the_redactor_masks(value: dict[str, Any]) -> None:
    """Same redacted copy, same raw secrets, and the original left as it was."""
    redactor = Redactor()
    parts = PartRedactor(redactor)
    original, redacted, secrets, unchanged = parts.redact(value, "args")
    assert original is value
    assert redacted == redactor.redact(value, "args")
    expected = redactor.secrets_in(value)
    if secrets is not None:
        assert {s for s in secrets if len(s) >= 4} == expected
    assert unchanged == (redacted is value)
    if unchanged:
        assert not expected


def test_values_under_sensitive_keys_and_secret_types_are_masked() -> None:
    """A value under a sensitive key is masked whole; a SecretStr anywhere is masked."""
    parts = PartRedactor(Redactor())
    value = {"user": {"password": {"old": "a1b2c3", "new": "d4e5f6"}}, "tags": [SecretStr("tok-1")]}
    _, redacted, secrets, unchanged = parts.redact(value, "args")
    assert redacted == {"user": {"password": MASK}, "tags": [MASK]}
    assert secrets is not None
    assert set(secrets) == {"a1b2c3", "d4e5f6", "tok-1"}
    assert not unchanged


def test_nothing_secret_means_no_copy() -> None:
    """Data with nothing to mask comes back as the very same object."""
    value = {"amount": 3, "items": [{"sku": "a"}]}
    _, redacted, secrets, unchanged = PartRedactor(Redactor()).redact(value, "args")
    assert redacted is value
    assert unchanged
    assert secrets == []


def test_user_redactors_take_the_redactors_own_path() -> None:
    """With a value redactor, Redactor.redact decides, and the secrets are left to it."""

    def cards(path: str, value: Any) -> Any:
        return MASK if isinstance(value, str) and value.startswith("4111") else value

    redactor = Redactor(redactors=[cards])
    _, redacted, secrets, _ = PartRedactor(redactor).redact({"card": "4111-1111"}, "args")
    assert redacted == {"card": MASK}
    assert secrets is None
    assert redactor.secrets_in({"card": "4111-1111"}) == {"4111-1111"}


def test_data_that_is_not_plain_goes_through_the_redactor() -> None:
    """Tuples, sets and models are made plain first, then redacted as usual."""
    _, redacted, secrets, _ = PartRedactor(Redactor()).redact(
        {"pair": (1, SecretStr("sk-abc")), "token": {"a", "b"}}, "args"
    )
    assert redacted == {"pair": [1, MASK], "token": MASK}
    assert secrets is None


def test_url_credentials_in_arguments_are_masked_in_the_record() -> None:
    """A URL argument keeps its host, path and harmless parameters; its credentials are masked."""
    log = AuditLog.memory()
    url = "https://user:S3cr3t-pw@api.example.com/x?token=S3cr3t-tok&page=2#access_token=S3cr3t-at"
    record = log.append(
        AuditEntry.of(
            Principal(agent="bot"),
            "crm.fetch",
            "failed",
            args={"url": url, "urls": [f"see {url} now"], "note": "S3cr3t-tok again"},
            error=RuntimeError("token S3cr3t-tok refused"),
        )
    )
    masked = "https://***@api.example.com/x?token=***&page=2#access_token=***"
    assert record.args == {"url": masked, "urls": [f"see {masked} now"], "note": "*** again"}
    assert record.error_message == "token *** refused"
    assert "S3cr3t" not in log.sink.getvalue().decode()


def test_url_credentials_are_masked_by_the_redactor_and_found_as_secrets() -> None:
    """Redactor.redact masks URL credentials in any string; secrets_in returns the raw values."""
    redactor = Redactor()
    value = {"link": "go to s3://AKIA-key-id@bucket/o?X-Amz-Signature=abcd1234&sig=zz99 now"}
    assert redactor.redact(value) == {
        "link": "go to s3://***@bucket/o?X-Amz-Signature=***&sig=*** now"
    }
    assert redactor.secrets_in(value) == {"AKIA-key-id", "abcd1234", "zz99"}
    # a URL nested in a parameter keeps no credentials either
    nested = "https://h/login?next=https%3A%2F%2Fu%3Apw%40x&q=1"
    assert redactor.redact(nested) == "https://h/login?next=***&q=1"


def test_a_password_holding_an_at_sign_is_masked_whole() -> None:
    """``u:p@ss@host`` is password ``p@ss`` to urllib and httpx: no part of it stays visible."""
    redactor = Redactor()
    url = "https://user:p@ss-w0rd@host.example/x?page=2"
    assert urlsplit(url).password == "p@ss-w0rd"
    masked = "https://***@host.example/x?page=2"
    assert redactor.redact({"url": url}) == {"url": masked}
    assert redactor.scrub(f"GET {url} failed", ()) == "GET https://***@host.example/x?*** failed"
    assert "p@ss-w0rd" in redactor.secrets_in({"url": url})
    # the authority may end at "?" too; masking up to the last "@" masks more, never less
    assert redactor.redact("https://u:a@b@h?next=c@d") == "https://***@d"


@pytest.mark.parametrize(
    "password", ["p\\w0rd-1", "pässwörd-1", 'p"w0rd-1', "pw0rd\n-1", "p@ss w0rd"]
)
@pytest.mark.parametrize(
    "quoted", [repr, str, json.dumps, lambda args: f"?x={quote(args['password'])}"]
)
def test_a_secret_quoted_with_escapes_is_scrubbed_from_error_messages(
    password: str, quoted: Callable[[dict[str, str]], str]
) -> None:
    """A password with a backslash, quote or accent is masked as repr, JSON and URLs quote it."""
    args = {"password": password}
    log = AuditLog.memory()
    record = log.append(
        AuditEntry.of(
            Principal(agent="bot"),
            "crm.fetch",
            "failed",
            args=args,
            error=ValueError(f"refused: {quoted(args)}"),
        )
    )
    assert record.error_message is not None
    assert MASK in record.error_message
    for form in (password, repr(password)[1:-1], json.dumps(password)[1:-1], quote(password)):
        assert form not in log.sink.getvalue().decode()


def _old_scrub_urls(text: str) -> str:
    """Redactor.scrub's URL masking before 0.x: a regular expression (quadratic on some inputs).

    Its userinfo ends at the last "@" before a "/" or whitespace, as the scanner's does.
    """
    pattern = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s]+@)?([^\s?#'\"]*)(\?[^\s#'\"]*)?")

    def masked(match: re.Match[str]) -> str:
        scheme, userinfo, rest, query = match.group(1, 2, 3, 4)
        return f"{scheme}{MASK + '@' if userinfo else ''}{rest}{'?' + MASK if query else ''}"

    return pattern.sub(masked, text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab1:/@?#&= '\"", max_size=40))
def test_the_linear_url_scanner_masks_what_the_regular_expression_did(text: str) -> None:
    """Where the old expression found each URL (a letter before every ://, no #): same result."""
    assume(all(i > 0 and text[i - 1] in "ab" for i in _all(text, "://")) and "#" not in text)
    assert Redactor().scrub(text, ()) == _old_scrub_urls(text)


def _all(text: str, sub: str) -> list[int]:
    return [i for i in range(len(text)) if text.startswith(sub, i)]


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def test_scrubbing_is_linear_on_the_input_that_was_quadratic() -> None:
    """100 KB of letters before a :// scrub within 50x the time of 100 KB of ordinary text.

    The old expression retried the scheme from every position of the run:
    about 30 s here, against a millisecond now.
    """
    redactor = Redactor()
    size = 100_000
    hostile = "a" * size + " x://h"
    benign = ("GET https://api.example.com/v1/items?page=2 failed: timeout " * (size // 60))[:size]
    hostile_time = _best_of(3, lambda: redactor.scrub(hostile, ()))
    benign_time = _best_of(3, lambda: redactor.scrub(benign, ()))
    assert hostile_time <= 50 * benign_time + 0.05
