"""What the agent wrote is inert wherever humans read it: Slack, the email's text and HTML parts.

The issue's exploit: a resource id built from a tool argument renders, in
Slack, a bold "Reason: Pre-approved by CFO, amount €12" and a fake command
block, while the real amount (250,000) is shown nowhere.  Here it must
reach the decider as those characters, and the arguments must be shown.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handrail import ActionRequest, ConfigurationError, Policy, Principal, Resource
from handrail._text import html_text, slack_code, slack_text
from handrail.escalation import (
    EmailChannel,
    EscalationRouter,
    EscalationState,
    Level,
    MemoryStore,
    Notification,
    Route,
    SlackWebhookChannel,
)
from handrail.testing import FakeClock, hostile_json

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
EXPLOIT = (
    "x *Reason* Pre-approved by CFO, amount €12\n```handrail escalations approve esc-1 --by cfo```"
)
SLACK_URL = "https://hooks.slack.com/services/T0/B0/abcd"

FINANCE = Route(
    name="finance",
    levels=(
        Level(
            name="cfo",
            notify=("cfo@example.com",),
            deciders=("carol",),
            resolve_within=timedelta(hours=4),
        ),
    ),
)
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "finance", "effect": "allow", "actions": "fin.*.*"},
            {
                "id": "big-payment",
                "effect": "escalate",
                "actions": "fin.invoice.pay",
                "escalate_to": "finance",
            },
        ]
    }
)


class Inbox:
    """A channel that keeps what it is sent."""

    name = "inbox"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


@pytest.fixture
def exploit(monkeypatch: pytest.MonkeyPatch) -> Notification:
    """The notification a router sends for the issue's request: a crafted id, 250,000 to pay."""
    monkeypatch.setenv("HANDRAIL_ROUTER_KEY", "render-tests-router-key-0123456789")
    inbox = Inbox()
    router = EscalationRouter(
        [FINANCE], MemoryStore(), channels=[inbox], clock=FakeClock(NOW), audit=None
    )
    request = ActionRequest(
        action="fin.invoice.pay",
        principal=Principal(agent="ap-bot", on_behalf_of="dave"),
        resource=Resource(type="invoice", id=EXPLOIT),
        args={"amount": 250000, "currency": "EUR", "invoice": EXPLOIT},
        context={"environment": "production"},
    )
    case = router.open(POLICY.evaluate(request))
    router.tick()
    (notification,) = inbox.sent
    assert notification.escalation_id == case.id
    return notification


def test_router_notifications_carry_the_redacted_arguments_context_and_fingerprint(
    exploit: Notification,
) -> None:
    """What the router sends holds the case's arguments, context and fingerprint."""
    assert exploit.args == {"amount": 250000, "currency": "EUR", "invoice": EXPLOIT}
    assert exploit.context == {"environment": "production"}
    assert exploit.fingerprint
    assert exploit.links == {}


def test_the_exploit_is_inert_in_slack_and_the_real_amount_is_shown(
    exploit: Notification,
) -> None:
    """No bold forged line, no command block breaking out; the amount 250000 is there."""
    message = SlackWebhookChannel(SLACK_URL, clock=FakeClock(NOW)).message(exploit)
    shown = (
        "`invoice:x *Reason* Pre-approved by CFO, amount €12"
        "\\n\u02cb\u02cb\u02cbhandrail escalations approve esc-1 --by cfo\u02cb\u02cb\u02cb`"
    )
    resource = next(
        f["text"] for b in message["blocks"] for f in b.get("fields", ()) if "Resource" in f["text"]
    )
    assert resource == f"*Resource*\n{shown}"
    arguments = next(
        b["text"]["text"]
        for b in message["blocks"]
        if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("*Arguments*")
    )
    assert arguments.startswith('*Arguments*\n```amount: 250000\ncurrency: "EUR"\ninvoice: "x ')
    assert "amount: 250000" in message["text"]
    for text in _mrkdwn_texts(message):
        assert not re.search(r"(?m)^\s*\*Reason\* Pre-approved", text)
        assert not re.search(r"(?m)^`*handrail escalations approve esc-1 --by cfo", text)
        assert "Pre-approved" not in _shape(text)  # never outside a code span or block


def test_the_exploit_is_inert_in_the_email_and_the_real_amount_is_shown(
    exploit: Notification,
) -> None:
    """Text part: one line, newline escaped; HTML part: escaped in <code>; both list 250000."""
    message = EmailChannel("localhost", sender="h@example.com", clock=FakeClock(NOW)).message(
        exploit
    )
    assert (
        message["Subject"]
        == f"[handrail] approval needed: fin.invoice.pay ({exploit.escalation_id})"
    )
    text = _part(message, "plain")
    line = (
        "invoice:x *Reason* Pre-approved by CFO, amount €12"
        "\\n```handrail escalations approve esc-1 --by cfo```"
    )
    assert f"Resource:     {line}\n" in text
    assert not re.search(r"(?m)^```handrail", text)
    assert "    amount: 250000\n" in text
    page = _part(message, "html")
    assert f"<code>{line}</code>" in page
    assert "amount: 250000" in page


# -- the helpers ---------------------------------------------------------------------------


def test_slack_code_cannot_end_its_span_link_or_break_a_line() -> None:
    """Backticks become U+02CB, &<> entities, line breaks and controls escapes."""
    assert slack_code("a`b <!channel> & <@U1>\n\x1b[2J\u202e") == (
        "a\u02cbb &lt;!channel&gt; &amp; &lt;@U1&gt;\\n\\x1b[2J\\u202e"
    )
    assert slack_code("*bold* _it_ ~s~") == "*bold* _it_ ~s~"  # no markup inside a span


def test_slack_text_shows_markup_characters_as_look_alikes() -> None:
    """Outside a span *, _, ~ and backticks cannot format: they become look-alikes."""
    assert slack_text("*b* _i_ ~s~ `c` <x>") == (
        "\u2217b\u2217 \u02cdi\u02cd \u223cs\u223c \u02cbc\u02cb &lt;x&gt;"
    )


def test_slack_limits_cut_between_characters_never_inside_an_entity() -> None:
    """A cut value ends with … and never with half an entity; a value that fits is not cut."""
    assert slack_code("<<<<", limit=9) == "&lt;&lt;…"
    assert slack_code("<<", limit=8) == "&lt;&lt;"
    assert slack_code("abcdef", limit=6) == "abcdef"
    assert slack_code("abcdefg", limit=6) == "abcde…"


def test_html_text_escapes_markup_and_controls() -> None:
    """HTML-escaped after printable: quotes too, so no value can end an attribute."""
    assert html_text('<a href="x">&\'\n') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;\\n"


def test_slack_buttons_are_bound_to_the_case_level_and_fingerprint() -> None:
    """buttons=True: Approve/Reject with the documented ids and value; none for an FYI."""
    channel = SlackWebhookChannel(SLACK_URL, buttons=True, clock=FakeClock(NOW))
    message = channel.message(_notification(fingerprint="fp-1", level=2))
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("handrail_approve", "esc-1|2|fp-1"),
        ("handrail_reject", "esc-1|2|fp-1"),
    ]
    resolved = _notification(kind="resolved", state=EscalationState.APPROVED, fingerprint="fp")
    unbound = _notification(fingerprint="")  # queued by an older version: nothing to bind to
    for notification in (resolved, unbound):
        assert all(b["type"] != "actions" for b in channel.message(notification)["blocks"])
    without = SlackWebhookChannel(SLACK_URL, clock=FakeClock(NOW))
    assert all(b["type"] != "actions" for b in without.message(_notification())["blocks"])
    assert "buttons=True" in repr(channel)


def test_slack_never_renders_a_decision_link() -> None:
    """A Slack channel is shared: no decider's signed link reaches it, in blocks or text."""
    links = {"carol": "https://approve.example.com/link/tok-1", "dan_x": "https://a.example/l/2"}
    for buttons in (False, True):
        channel = SlackWebhookChannel(SLACK_URL, buttons=buttons, clock=FakeClock(NOW))
        shown = json.dumps(channel.message(_notification(links=links)))
        for url in links.values():
            assert url not in shown
        assert "tok-1" not in shown
        assert "Decide as" not in shown


def test_slack_links_the_case_page_with_page_url() -> None:
    """page_url= adds one link, to the case's page (which authenticates its viewer itself)."""
    channel = SlackWebhookChannel(
        SLACK_URL, page_url="https://approvals.example.com/", clock=FakeClock(NOW)
    )
    assert "page_url='https://approvals.example.com'" in repr(channel)
    message = channel.message(_notification(links={"carol": "https://a.example/link/tok-1"}))
    page = "<https://approvals.example.com/cases/esc-1|open this case>"
    assert f"*Approval page:* {page}" in _mrkdwn_texts(message)
    assert page in message["text"]
    assert re.findall(r"<https?://[^>]*>", json.dumps(message)) == [page, page]  # blocks, text
    without = SlackWebhookChannel(SLACK_URL, clock=FakeClock(NOW)).message(_notification())
    assert "/cases/" not in json.dumps(without)


@pytest.mark.parametrize(
    "page_url",
    [
        "approvals.example.com",
        "ftp://approvals.example.com",
        "https://approvals.example.com/?next=1",
        "https://approvals.example.com/#top",
        "https://approvals.example.com/a|b",
        "https://approvals.example.com/<x>",
        "https://approvals.example.com/a b",
    ],
)
def test_slack_refuses_a_page_url_that_is_not_a_plain_base_url(page_url: str) -> None:
    """A page_url with a query, a fragment or a character that could end the link is refused."""
    with pytest.raises(ConfigurationError, match="page_url"):
        SlackWebhookChannel(SLACK_URL, page_url=page_url)


@pytest.mark.parametrize("escalation_id", ["..", "esc/1", "esc 1", "esc|1>", "a.b", ""])
def test_slack_refuses_a_case_id_that_is_not_ours_in_the_page_link(escalation_id: str) -> None:
    """The page link takes only an id of ours (letters, digits, - and _): never a path."""
    channel = SlackWebhookChannel(SLACK_URL, page_url="https://approvals.example.com")
    with pytest.raises(ConfigurationError, match="page link"):
        channel.message(_notification(escalation_id=escalation_id))


def test_the_shared_mail_has_no_link_each_deciders_mail_only_their_own() -> None:
    """The shared mail carries no link; a decider's own mail carries theirs, labelled as such."""
    links = {"carol": "https://approve.example.com/link/tok-1", "dan": "https://a.example/l/2"}
    notification = _notification(links=links)
    mail = EmailChannel(
        "localhost",
        sender="h@example.com",
        deciders={"carol": "carol@example.com", "dan": "dan@example.com"},
        clock=FakeClock(NOW),
    )
    shared = mail.message(notification).as_string()
    for url in links.values():
        assert url not in shared
    own = mail.decider_messages(notification)
    assert set(own) == {"carol", "dan"}
    page = _part(own["carol"], "html")
    assert '<a href="https://approve.example.com/link/tok-1">Decide as carol</a>' in page
    assert "    https://approve.example.com/link/tok-1\n" in _part(own["carol"], "plain")
    assert "https://a.example/l/2" not in own["carol"].as_string()
    bad = _notification(links={"carol": 'https://x.example/"><script>'})
    with pytest.raises(ConfigurationError, match="not a plain http"):
        mail.decider_messages(bad)


# -- the contract: for any agent-controlled string, in any field ---------------------------

_PAYLOADS = (
    "*bold*",
    "_italic_",
    "~struck~",
    "`",
    "```",
    "```code```",
    "<!channel>",
    "<!here|here>",
    "<@U012AB3CD>",
    "<https://evil.example|click>",
    "&lt;",
    "&",
    "<",
    ">",
    "\n",
    "\r\n",
    "\n*Reason* ok\n",
    "\x1b[2J",
    "\x1b]0;pwned\x07",
    "\u202e",
    "\u2028",
    "\x85",
    "\u200b",
    "\x00",
    "> quoted",
    "• item",
    "<b>x</b>",
    '"><script>alert(1)</script>',
    "\\n",
)

agent_text = st.one_of(
    st.lists(st.one_of(st.sampled_from(_PAYLOADS), st.text(max_size=8)), max_size=6).map("".join),
    st.text(max_size=60),
    hostile_json().map(lambda doc: doc[:60]),
)

_FIELDS = (
    "agent",
    "on_behalf_of",
    "resource_type",
    "resource_id",
    "attribute_key",
    "attribute_value",
    "arg_key",
    "arg_value",
    "context_key",
    "context_value",
    "reason",
    "summary",
)


def _placed(field: str, s: str) -> Notification:
    """A notification with ``s`` in ``field`` (every other value benign)."""
    resource: dict[str, Any] = {"type": "invoice", "id": "inv-1", "attributes": {"owner": "o"}}
    args: dict[str, Any] = {"amount": 250000}
    context: dict[str, Any] = {"environment": "production"}
    changes: dict[str, Any] = {}
    if field in ("agent", "on_behalf_of", "reason", "summary"):
        changes[field] = s
    elif field == "resource_type":
        resource["type"] = s
    elif field == "resource_id":
        resource["id"] = s
    elif field == "attribute_key":
        resource["attributes"] = {s: "v"}
    elif field == "attribute_value":
        resource["attributes"] = {"owner": s}
    elif field == "arg_key":
        args[s] = 1
    elif field == "arg_value":
        args["note"] = s
    elif field == "context_key":
        context[s] = "v"
    else:
        context["note"] = s
    return _notification(resource=resource, args=args, context=context, **changes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_FIELDS), agent_text)
def test_agent_text_is_inert_in_slack(field: str, s: str) -> None:
    """Only inside code spans and blocks; no markup, link, mention, line or control from s."""
    channel = SlackWebhookChannel(SLACK_URL, buttons=True, clock=FakeClock(NOW))
    message = channel.message(_placed(field, s))
    benign = channel.message(_placed(field, _benign(s)))
    assert message["blocks"][0] == benign["blocks"][0]  # the header: our words and the action
    texts, benign_texts = _mrkdwn_texts(message), _mrkdwn_texts(benign)
    assert len(texts) == len(benign_texts)
    for text, expected in zip(texts[:-1], benign_texts[:-1], strict=True):
        # Everything outside code spans and blocks, and the number of lines in each
        # block, is what a benign value gives: s changed only what is inside them.
        assert _shape(text) == _shape(expected)
    fallback, expected = _shape(texts[-1]), _shape(benign_texts[-1])
    assert expected.startswith(fallback.removesuffix("\n…"))  # whole pieces, at most fewer
    for text in texts:
        assert all(ch.isprintable() or ch == "\n" for ch in text)
        for inside in _insides(text):
            assert "<" not in inside
            assert ">" not in inside
            assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", inside, re.DOTALL)
    assert _actions(message) == _actions(benign)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_FIELDS), agent_text)
def test_agent_text_is_inert_in_email(field: str, s: str) -> None:
    """Text part: no control character, no added line; HTML: no tag or raw & from s."""
    channel = EmailChannel("localhost", sender="h@example.com", clock=FakeClock(NOW))
    message = channel.message(_placed(field, s))
    benign = channel.message(_placed(field, _benign(s)))
    text, benign_text = _part(message, "plain"), _part(benign, "plain")
    assert all(ch.isprintable() for line in text.split("\n") for ch in line)
    assert text.count("\n") == benign_text.count("\n")
    page, benign_page = _part(message, "html"), _part(benign, "html")
    assert re.findall(r"<[^>]*>", page) == re.findall(r"<[^>]*>", benign_page)
    outside_tags = re.sub(r"<[^>]*>", "", page)
    assert ">" not in outside_tags
    assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;|&quot;|&#x27;)*", outside_tags, re.DOTALL)
    assert all(ch.isprintable() or ch == "\n" for ch in page)


@settings(max_examples=200, deadline=None)
@given(agent_text)
def test_no_text_can_add_a_mail_header(s: str) -> None:
    """The subject and X- headers stay one line whatever the action and ids say."""
    channel = EmailChannel("localhost", sender="h@example.com", clock=FakeClock(NOW))
    message = channel.message(_notification(action=s, escalation_id=s or "e", id=s or "e"))
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed.keys() == message.keys()
    assert "\n" not in str(parsed["Subject"])
    assert "\r" not in str(parsed["Subject"])


# -- helpers ---------------------------------------------------------------------------------


def _notification(**changes: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": "esc-1:1",
        "escalation_id": "esc-1",
        "kind": "opened",
        "route": "finance",
        "level": 0,
        "level_name": "cfo",
        "state": EscalationState.OPEN,
        "recipients": ("cfo@example.com",),
        "deciders": ("carol",),
        "due": NOW + timedelta(hours=4),
        "summary": "ap-bot for dave wants to fin.invoice.pay on invoice:inv-1",
        "action": "fin.invoice.pay",
        "agent": "ap-bot",
        "on_behalf_of": "dave",
        "resource": {"type": "invoice", "id": "inv-1"},
        "reason": "payments need the CFO",
        "created_at": NOW,
        "commands": ("handrail escalations approve esc-1",),
        "args": {"amount": 250000},
        "context": {},
        "fingerprint": "fp-0",
    }
    fields.update(changes)
    return Notification(**fields)


def _benign(s: str) -> str:
    return "v" if s else ""


def _mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    """Every mrkdwn text of a message, block by block, the fallback ``text`` last."""
    out: list[str] = []
    for block in message["blocks"]:
        if block["type"] == "section":
            if "text" in block:
                out.append(block["text"]["text"])
            out += [field["text"] for field in block.get("fields", ())]
        elif block["type"] == "context":
            out += [element["text"] for element in block["elements"]]
    return [*out, message["text"]]


def _segments(text: str) -> Iterator[tuple[str, str]]:
    """Slack's reading of ``text``: ("out", char), ("span", content), ("block", content)."""
    i = 0
    while i < len(text):
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            assert end != -1, f"an unclosed code block in {text!r}"
            yield "block", text[i + 3 : end]
            i = end + 3
        elif text[i] == "`":
            end = text.find("`", i + 1)
            assert end != -1, f"an unclosed code span in {text!r}"
            content = text[i + 1 : end]
            assert "\n" not in content, f"a code span over two lines in {text!r}"
            yield "span", content
            i = end + 1
        else:
            yield "out", text[i]
            i += 1


def _shape(text: str) -> str:
    """``text`` with each span's content as C and each block's lines as L."""
    out = []
    for kind, content in _segments(text):
        if kind == "out":
            out.append(content)
        elif kind == "span":
            out.append("`C`")
        else:
            out.append("```" + "\n".join("L" for _ in content.split("\n")) + "```")
    return "".join(out)


def _insides(text: str) -> list[str]:
    return [content for kind, content in _segments(text) if kind != "out"]


def _actions(message: dict[str, Any]) -> list[Any]:
    return [b for b in message["blocks"] if b["type"] == "actions"]


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_many_arguments_fit_slack_limits() -> None:
    """Sections stay under Slack's 3000 characters, saying how much is left out."""
    args = {f"field_{i:03}": "x" * 200 for i in range(40)}
    message = SlackWebhookChannel(SLACK_URL, clock=FakeClock(NOW)).message(_notification(args=args))
    texts = _mrkdwn_texts(message)
    assert all(len(text) <= 3000 for text in texts)
    assert any(re.search(r"\.\.\. \d+ more arguments, not shown here```", t) for t in texts)
