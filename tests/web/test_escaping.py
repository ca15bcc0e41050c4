"""Agent-controlled text on the case page is inert: escaped HTML, control characters as escapes."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from handrail._text import printable
from handrail.escalation import Escalation, EscalationRouter
from handrail.web._render import Pages

from .conftest import open_case


class Structure(HTMLParser):
    """The page's elements and attributes, and its text, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.tags.append((f"/{tag}", ()))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append(("!--", ()))

    def handle_decl(self, decl: str) -> None:
        self.tags.append(("!", ((decl, None),)))

    def handle_pi(self, data: str) -> None:
        self.tags.append(("?", ()))

    def unknown_decl(self, data: str) -> None:
        self.tags.append(("![", ()))


def parsed(page: str) -> Structure:
    structure = Structure()
    structure.feed(page)
    structure.close()
    return structure


def hostile(case: Escalation, text: str) -> Escalation:
    """``case`` with ``text`` wherever an agent's values reach the page."""
    request: dict[str, Any] = {
        **case.request,
        "action": f"erp.{text}",
        "agent": text,
        "on_behalf_of": text,
        "args": {text: text, "amount": 250000, "nested": {"k": [text, {text: 1}]}},
        "resource": {"type": text, "id": text, "attributes": {text: text}},
        "context": {"note": text},
    }
    decision = {**case.decision, "reason": text}
    return case.model_copy(update={"request": request, "decision": decision})


PAGES = Pages("Approvals")
HOSTILE = st.lists(
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs",))
        | st.sampled_from(list("<>&\"'`*_~\x1b\u202e\u200b\u2028\n\r\t\x00\x7f\x85")),
        max_size=12,
    )
    | st.sampled_from(["<script>alert(1)</script>", "<a href=x>", "javascript:", "{{ 7*7 }}"]),
    max_size=4,
).map("".join)


def test_agent_text_is_shown_only_as_escaped_printable_text(router: EscalationRouter) -> None:
    """For any string: the page has the same elements as with a benign one, no control
    character, and shows the string as ``printable`` text."""
    case = open_case(router)
    form = {"action": "/cases/x/decide", "csrf": "t"}
    baseline = parsed(PAGES.case(hostile(case, "x"), root_path="", form=form)).tags

    @settings(max_examples=150)
    @given(text=HOSTILE)
    def check(text: str) -> None:
        page = PAGES.case(hostile(case, text), root_path="", form=form)
        structure = parsed(page)
        assert structure.tags == baseline
        assert all(ch.isprintable() or ch == "\n" for ch in page)
        if text:
            assert printable(text) in "".join(structure.text)
        assert "250,000" in page

    check()


def test_a_crafted_resource_id_cannot_forge_the_page(router: EscalationRouter) -> None:
    """The issue's attack: markup and a fake 'pre-approved' line in a resource id stay text."""
    case = open_case(router)
    crafted = "inv-7</code><h2>Reason</h2><p>Pre-approved by CFO, amount €12</p>\x1b[2J"
    page = PAGES.case(hostile(case, crafted), root_path="", form=None)
    assert "<h2>Reason</h2>" not in page
    assert "&lt;h2&gt;Reason&lt;/h2&gt;" in page
    assert "\x1b" not in page
    assert "\\x1b[2J" in page
    assert "250,000" in page  # the real amount is on the page, whatever the id says
