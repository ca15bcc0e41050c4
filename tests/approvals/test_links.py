"""DecisionLinks: signed, expiring links bound to one decision by one decider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from handrail import ConfigurationError
from handrail.approvals import DecisionLinks, HttpRequest, Identity, LinkBinding
from handrail.escalation import NotAuthenticated
from handrail.testing import FakeClock

KEY = b"k" * 32
FINGERPRINT = "f" * 64


def links(clock: FakeClock | None = None, key: bytes | str | SecretStr = KEY) -> DecisionLinks:
    return DecisionLinks(key, base_url="https://approvals.example.com/", clock=clock or FakeClock())


def issue(dl: DecisionLinks, **overrides: object) -> str:
    fields: dict[str, object] = {
        "escalation_id": "esc-1",
        "level": 1,
        "decider": "Alice",
        "fingerprint": FINGERPRINT,
    }
    fields.update(overrides)
    return dl.issue(**fields)  # type: ignore[arg-type]


def test_round_trip() -> None:
    """A token verifies as the decider it was issued to, bound to the case, level and request."""
    dl = links()
    identity = dl.verify(issue(dl))
    assert identity.user == "alice"
    assert identity.method == "signed-link"
    assert identity.binding is not None
    assert identity.binding == LinkBinding("esc-1", 1, FINGERPRINT, identity.binding.token_id)
    assert len(identity.binding.token_id) == 32  # 128 random bits, hex
    assert identity.via == f"signed-link token {identity.binding.token_id}"


def test_each_token_is_new() -> None:
    """Two links for the same decision differ, and so do their token ids."""
    dl = links()
    first, second = issue(dl), issue(dl)
    assert first != second
    assert dl.verify(first).binding != dl.verify(second).binding


def test_url() -> None:
    """url() is the approval page's /link/{token}, without a doubled slash; the token verifies."""
    dl = links()
    url = dl.url(escalation_id="esc-1", level=0, decider="bob", fingerprint=FINGERPRINT)
    prefix = "https://approvals.example.com/link/"
    assert url.startswith(prefix)
    assert dl.verify(url.removeprefix(prefix)).user == "bob"


def test_payload_is_the_documented_format() -> None:
    """The token is base64url(canonical JSON) '.' base64url(HMAC-SHA256 under the derived key)."""
    clock = FakeClock()
    dl = links(clock)
    token = issue(dl)
    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    expiry = int((clock.now() + timedelta(hours=24)).timestamp())
    assert payload == {
        "v": 1,
        "e": "esc-1",
        "l": 1,
        "d": "alice",
        "f": FINGERPRINT,
        "x": expiry,
        "n": payload["n"],
    }
    sub_key = hmac.new(KEY, b"handrail/links/v1", hashlib.sha256).digest()
    mac = hmac.new(sub_key, body.encode(), hashlib.sha256).digest()
    assert signature == base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_every_character_changed_is_refused() -> None:
    """Changing any one character of the payload or the signature is refused."""
    dl = links()
    token = issue(dl)
    alphabet = string.ascii_letters + string.digits + "-_."
    for index, original in enumerate(token):
        for replacement in (alphabet[(alphabet.index(original) + 1) % len(alphabet)], "A", "w"):
            if replacement == original:
                continue
            forged = token[:index] + replacement + token[index + 1 :]
            with pytest.raises(NotAuthenticated):
                dl.verify(forged)


def test_every_byte_flipped_is_refused() -> None:
    """Flipping any bit of any decoded byte of the payload or the signature is refused."""
    dl = links()
    token = issue(dl)
    body, signature = token.split(".")
    raw = [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in (body, signature)]
    for part in (0, 1):
        for index in range(len(raw[part])):
            for bit in (0x01, 0x80):
                changed = bytearray(raw[part])
                changed[index] ^= bit
                parts = [body, signature]
                parts[part] = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
                with pytest.raises(NotAuthenticated, match="bad signature"):
                    dl.verify(".".join(parts))


def test_unused_bits_in_the_last_character_are_refused() -> None:
    """A signature spelled with different unused low bits (same bytes) is not the token."""
    dl = links()
    token = issue(dl)
    last = token[-1]
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    # 32 bytes use 43 characters: the last carries 4 bits and 2 unused ones.
    sibling = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(NotAuthenticated, match="canonical"):
        dl.verify(token[:-1] + sibling)


def test_expired_link_is_refused() -> None:
    """A link works until its ttl has passed on the injected clock, then is refused."""
    clock = FakeClock()
    dl = DecisionLinks(KEY, base_url="https://a.example", ttl=timedelta(minutes=10), clock=clock)
    token = issue(dl)
    clock.advance(timedelta(minutes=9, seconds=59))
    assert dl.verify(token).user == "alice"
    clock.advance(timedelta(seconds=1))
    with pytest.raises(NotAuthenticated, match="expired") as refused:
        dl.verify(token)
    assert refused.value.escalation_id == "esc-1"
    assert token not in str(refused.value)


def test_wrong_key_is_refused() -> None:
    """A token made with another key is a bad signature, whatever key type was given."""
    token = issue(links(key=b"x" * 32))
    for key in (KEY, KEY.decode(), SecretStr(KEY.decode())):
        with pytest.raises(NotAuthenticated, match="bad signature") as refused:
            links(key=key).verify(token)
        assert refused.value.escalation_id == ""  # an unverified id is never believed


def test_same_key_as_str_bytes_and_secret() -> None:
    """A key given as str, bytes or SecretStr is the same key."""
    token = issue(links(key=KEY))
    assert links(key=SecretStr(KEY.decode())).verify(token).user == "alice"
    assert links(key=KEY.decode()).verify(token).user == "alice"


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "abc",
        "abc.",
        ".abc",
        "a.b.c",
        "a=.b",
        "####.####",
        "é.é",
        "A" * 3000,
        "A" * 2000 + "." + "A" * 100,
        "\x00.\x00",
    ],
)
def test_garbage_is_refused(token: str) -> None:
    """Garbage and oversized tokens are refused as malformed, never echoed."""
    with pytest.raises(NotAuthenticated, match="malformed") as refused:
        links().verify(token)
    if token:
        assert token not in refused.value.why


def test_oversized_token_is_refused_before_decoding() -> None:
    """A token over 2 KB is refused for its length, before any decoding or hashing."""
    dl = links()
    token = issue(dl)
    with pytest.raises(NotAuthenticated, match="too long"):
        dl.verify("A" * 1_000_000 + "." + "A" * 43)
    with pytest.raises(NotAuthenticated, match="too long"):
        dl.verify(token + "A" * (2049 - len(token)))


def test_signed_but_malformed_payload_is_refused() -> None:
    """A validly signed payload with a wrong shape (as if from a later version) is refused."""
    dl = links()
    sub_key = hmac.new(KEY, b"handrail/links/v1", hashlib.sha256).digest()

    def signed(payload: object) -> str:
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        mac = hmac.new(sub_key, body.encode(), hashlib.sha256).digest()
        return body + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    good = {"v": 1, "e": "esc-1", "l": 0, "d": "alice", "f": "fp", "x": 2**40, "n": "0" * 32}
    assert dl.verify(signed(good)).user == "alice"
    for change in (
        {"v": 2},
        {"l": True},
        {"l": -1},
        {"x": "soon"},
        {"n": "short"},
        {"e": ""},
        {"f": 5},
        {"extra": 1},
    ):
        with pytest.raises(NotAuthenticated, match="malformed"):
            dl.verify(signed({**good, **change}))
    with pytest.raises(NotAuthenticated, match="malformed"):
        dl.verify(signed([good]))
    with pytest.raises(NotAuthenticated, match="malformed link: bad decider"):
        dl.verify(signed({**good, "d": "not a name"}))


def test_key_and_configuration_checks() -> None:
    """A short key, a relative base URL or a non-positive ttl is refused at construction."""
    with pytest.raises(ConfigurationError, match="DecisionLinks: key is too short") as short:
        DecisionLinks(b"k" * 31, base_url="https://a.example")
    assert "kkkk" not in str(short.value)
    with pytest.raises(ConfigurationError, match="DecisionLinks: key must be"):
        DecisionLinks(None, base_url="https://a.example")  # type: ignore[arg-type]
    for base_url in ("approvals.example.com", "/link", "ftp://a.example", "https://a.example/?q=1"):
        with pytest.raises(ConfigurationError, match="base_url"):
            DecisionLinks(KEY, base_url=base_url)
    with pytest.raises(ConfigurationError, match="ttl"):
        DecisionLinks(KEY, base_url="https://a.example", ttl=timedelta(0))
    dl = links()
    with pytest.raises(ConfigurationError):
        issue(dl, level=-1)
    with pytest.raises(ConfigurationError):
        issue(dl, escalation_id="")
    with pytest.raises(ConfigurationError):
        issue(dl, decider="group:leads ")
    with pytest.raises(ConfigurationError, match="group"):
        issue(dl, decider="group:leads")


def test_key_never_in_repr() -> None:
    """Neither the key nor the derived key shows in the repr."""
    shown = repr(links(key="s3cret-" * 6))
    assert "s3cret" not in shown
    assert (
        shown
        == "DecisionLinks(base_url='https://approvals.example.com', ttl=datetime.timedelta(days=1))"
    )


def test_as_authenticator() -> None:
    """A /link/{token} path or a token query parameter authenticates; neither gives None."""
    dl = links()
    token = issue(dl)
    by_path = dl.authenticate(HttpRequest("GET", f"/approvals/link/{token}"))
    by_query = dl.authenticate(HttpRequest("POST", "/decide", query={"token": token}))
    assert isinstance(by_path, Identity)
    assert by_path.user == "alice"
    assert isinstance(by_query, Identity)
    assert by_query.user == "alice"
    assert dl.authenticate(HttpRequest("GET", "/cases/esc-1")) is None
    with pytest.raises(NotAuthenticated):
        dl.authenticate(HttpRequest("GET", f"/link/{token[:-2]}"))
    with pytest.raises(NotAuthenticated):
        dl.authenticate(HttpRequest("GET", "/link/"))


_TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_.="
_DL = links()
_TOKEN = issue(_DL)


@given(
    position=st.integers(min_value=0, max_value=len(_TOKEN)),
    delete=st.integers(min_value=0, max_value=3),
    insert=st.text(alphabet=_TOKEN_ALPHABET, max_size=4),
)
def test_any_mutation_is_refused(position: int, delete: int, insert: str) -> None:
    """Property: any edit of a token (delete, insert or replace characters) is refused."""
    mutated = _TOKEN[:position] + insert + _TOKEN[position + delete :]
    if mutated == _TOKEN:
        return
    with pytest.raises(NotAuthenticated):
        _DL.verify(mutated)


@given(st.text(max_size=3000) | st.text(alphabet=_TOKEN_ALPHABET, max_size=600))
def test_verify_raises_only_not_authenticated(token: str) -> None:
    """Property: for any str, verify raises NotAuthenticated (no other error, no identity)."""
    with pytest.raises(NotAuthenticated):
        _DL.verify(token)
