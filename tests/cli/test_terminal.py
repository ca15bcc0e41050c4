"""Terminal-safe text: every non-printable character escaped, printable text untouched."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from handrail.cli._terminal import json_safe, safe

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def test_what_an_attacker_would_print_is_shown_escaped() -> None:
    """ESC sequences, newlines, C1 controls, bidi overrides and zero-width characters."""
    assert safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe("ok\n2026-01-01 forged\r\t") == "ok\\n2026-01-01 forged\\r\\t"
    assert safe("\x9b31m\x7f") == "\\x9b31m\\x7f"
    assert safe("user\u202etxt.exe\u2066") == "user\\u202etxt.exe\\u2066"
    assert safe("ad\u200bmin\ufeff\u2028") == "ad\\u200bmin\\ufeff\\u2028"
    assert safe("tag\U000e0041") == "tag\\U000e0041"
    assert safe("lone \udc80") == "lone \\udc80"


def test_printable_text_is_unchanged() -> None:
    """Accents, CJK, emoji and backslashes are printed as they are."""
    text = "Grüße, 東京 🚀 C:\\temp \\x1b"
    assert safe(text) == text
    assert json_safe(text) == text


@given(st.text())
def test_safe_text_is_always_one_printable_line(text: str) -> None:
    """Whatever the input, the output is printable (so one line) and can be encoded as UTF-8."""
    shown = safe(text)
    assert shown.isprintable()
    shown.encode("utf-8")
    if text.isprintable():
        assert shown == text


@given(JSON, st.sampled_from([None, 2]))
def test_json_safe_keeps_json_meaning(value: Any, indent: int | None) -> None:
    """JSON made safe reads back to the same value; only the encoder's newlines stay raw."""
    shown = json_safe(json.dumps(value, ensure_ascii=False, indent=indent))
    assert all(line.isprintable() for line in shown.split("\n"))
    assert json.loads(shown) == value
