"""The redaction fast path gives exactly what Redactor.redact and Redactor.secrets_in give."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretBytes, SecretStr

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
