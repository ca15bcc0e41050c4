"""Credential providers: environment, files, callables, OAuth2; per-user tokens; no leaks.

OAuth2 runs against a real token endpoint and protected resource on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import socket
import string
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from handrail._errors import ConfigurationError, CredentialError, HandrailError
from handrail.connectors import (
    CallableCredentials,
    Credential,
    CredentialProvider,
    EnvCredentials,
    FileCredentials,
    OAuth2ClientCredentials,
    credential_auth,
)
from handrail.testing import FakeClock

CLIENT_ID = "agent-7"
CLIENT_SECRET = "sek-client-Secret-42"


# --- a real token endpoint and protected resource ---------------------------------


@dataclass
class AuthServer:
    """A token endpoint (POST /token) and resources that accept only tokens it issued.

    ``/resource`` answers 200 to a valid bearer token and 401 otherwise;
    ``/headers`` echoes the request's headers as JSON.
    """

    url: str = ""
    client_secret: str = CLIENT_SECRET
    expires_in: int | None = 3600
    token_type: str = "Bearer"
    token_prefix: str = ""
    fetches: int = 0
    resource_hits: int = 0
    valid: set[str] = field(default_factory=set)
    token_forms: list[dict[str, str]] = field(default_factory=list)
    token_auth: list[str | None] = field(default_factory=list)
    token_replies: deque[tuple[int, bytes]] = field(default_factory=deque)
    resource_statuses: deque[int] = field(default_factory=deque)
    hold_tokens: bool = False
    token_requested: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        self.client_secret = CLIENT_SECRET
        self.expires_in = 3600
        self.token_type = "Bearer"
        self.token_prefix = ""
        self.fetches = self.resource_hits = 0
        self.valid.clear()
        self.token_forms.clear()
        self.token_auth.clear()
        self.token_replies.clear()
        self.resource_statuses.clear()
        self.hold_tokens = False
        self.token_requested.clear()
        self.release.clear()

    def revoke_all(self) -> None:
        """Every token issued so far is now rejected, as an expired one would be."""
        with self.lock:
            self.valid.clear()

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, bytes]:
        self.token_requested.set()
        if self.hold_tokens:
            self.release.wait(timeout=5)
        with self.lock:
            self.token_forms.append(form)
            self.token_auth.append(authorization)
            if self.token_replies:
                return self.token_replies.popleft()
            client_id, secret = form.get("client_id"), form.get("client_secret")
            if authorization and authorization.startswith("Basic "):
                pair = base64.b64decode(authorization[6:]).decode()
                client_id, _, secret = (unquote(part) for part in pair.partition(":"))
            if client_id != CLIENT_ID or secret != self.client_secret:
                return 401, json.dumps({"error": "invalid_client"}).encode()
            self.fetches += 1
            token = f"{self.token_prefix}tok-{self.fetches}"
            self.valid.add(token)
            body: dict[str, Any] = {"access_token": token, "token_type": self.token_type}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return 200, json.dumps(body).encode()

    def resource(self, authorization: str | None) -> int:
        with self.lock:
            self.resource_hits += 1
            if self.resource_statuses:
                return self.resource_statuses.popleft()
            token = (authorization or "").removeprefix("Bearer ")
            return 200 if token in self.valid else 401


@contextmanager
def running_server() -> Iterator[AuthServer]:
    state = AuthServer()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            authorization = self.headers.get("Authorization")
            if self.path == "/token" and self.command == "POST":
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                self._reply(*state.token(form, authorization))
            elif self.path == "/headers":
                self._reply(
                    200, json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
                )
            else:
                status = state.resource(authorization)
                self._reply(status, json.dumps({"body": raw}).encode())

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    state.url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[AuthServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def server(shared_server: AuthServer) -> AuthServer:
    """The module's auth server, with no tokens issued and nothing scripted."""
    shared_server.reset()
    return shared_server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def oauth(server: AuthServer, http: httpx.Client, **kwargs: Any) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        f"{server.url}/token", CLIENT_ID, SecretStr(server.client_secret), client=http, **kwargs
    )


# --- Credential -------------------------------------------------------------------


def test_credential_hides_its_secret() -> None:
    """A credential's repr and str show a mask, never the secret."""
    credential = Credential(secret=SecretStr("sek-hidden-1"), kind="basic", username="svc")
    assert "sek-hidden-1" not in repr(credential)
    assert "sek-hidden-1" not in str(credential)
    assert "sek-hidden-1" not in credential.model_dump_json()
    assert credential.secret.get_secret_value() == "sek-hidden-1"


def test_credential_validation_errors_do_not_show_the_secret() -> None:
    """An inconsistent credential is refused with a message that leaves the secret out."""
    with pytest.raises(ValidationError, match="needs a username") as caught:
        Credential(secret=SecretStr("sek-hidden-2"), kind="basic")
    assert "sek-hidden-2" not in str(caught.value)
    with pytest.raises(ValidationError, match="needs the header's name"):
        Credential(secret=SecretStr("sek-x"), kind="header")
    with pytest.raises(ValidationError, match="header= is for"):
        Credential(secret=SecretStr("sek-x"), header="X-Key")
    with pytest.raises(ValidationError, match="empty"):
        Credential(secret=SecretStr(""))


def test_api_key_header_defaults_and_expiry() -> None:
    """An api_key goes in X-API-Key unless named; is_expired compares with the given time."""
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    credential = Credential(secret=SecretStr("k"), kind="api_key", expires_at=now)
    assert credential.header == "X-API-Key"
    assert not credential.is_expired(now - dt.timedelta(seconds=1))
    assert credential.is_expired(now)
    assert not Credential(secret=SecretStr("k")).is_expired(now)


def test_providers_satisfy_the_protocol(
    tmp_path: Path, server: AuthServer, http: httpx.Client
) -> None:
    """Every provider here is a CredentialProvider."""
    providers: list[CredentialProvider] = [
        EnvCredentials("X"),
        FileCredentials(tmp_path / "x"),
        CallableCredentials(lambda user: "s", name="c"),
        oauth(server, http),
    ]
    assert all(isinstance(p, CredentialProvider) for p in providers)


# --- environment ------------------------------------------------------------------


def test_env_credential_is_read_on_every_get(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable is read each time, so a changed value is used from the next get."""
    monkeypatch.setenv("CRM_TOKEN", "sek-first-1")
    provider = EnvCredentials("CRM_TOKEN", name="crm")
    assert provider.get().secret.get_secret_value() == "sek-first-1"
    monkeypatch.setenv("CRM_TOKEN", "sek-second-2")
    assert provider.get().secret.get_secret_value() == "sek-second-2"
    assert asyncio.run(provider.aget()).secret.get_secret_value() == "sek-second-2"


def test_env_missing_names_the_credential_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing variable is a CredentialError that says which credential and where."""
    monkeypatch.delenv("CRM_TOKEN", raising=False)
    with pytest.raises(CredentialError) as caught:
        EnvCredentials("CRM_TOKEN", name="crm").get()
    assert (
        str(caught.value) == "credential 'crm' missing: environment variable CRM_TOKEN is not set"
    )
    assert caught.value.name == "crm"
    assert caught.value.where == "environment variable CRM_TOKEN"
    assert isinstance(caught.value, HandrailError)


def test_env_empty_variable_is_an_error() -> None:
    """An empty variable is no credential."""
    with pytest.raises(CredentialError, match="empty: environment variable T is empty"):
        EnvCredentials("T", environ={"T": ""}).get()


def test_env_basic_reads_the_username_variable() -> None:
    """kind='basic' takes the username from username_var."""
    provider = EnvCredentials(
        "ERP_PASSWORD", kind="basic", username_var="ERP_USER", environ={"ERP_PASSWORD": "pw-1"}
    )
    with pytest.raises(CredentialError, match="ERP_USER is not set"):
        provider.get()
    provider = EnvCredentials(
        "ERP_PASSWORD",
        kind="basic",
        username_var="ERP_USER",
        environ={"ERP_PASSWORD": "pw-1", "ERP_USER": "svc"},
    )
    assert provider.get().username == "svc"


def test_env_configuration_is_checked() -> None:
    """A template without {user}, basic without username_var, header without a name: refused."""
    with pytest.raises(ConfigurationError, match="must contain '\\{user\\}'"):
        EnvCredentials("T", per_user_var="T_USER")
    with pytest.raises(ConfigurationError, match="needs a username"):
        EnvCredentials("T", kind="basic")
    with pytest.raises(ConfigurationError, match="needs the header's name"):
        EnvCredentials("T", kind="header")
    with pytest.raises(ConfigurationError, match="unknown kind"):
        EnvCredentials("T", kind="cookie")  # type: ignore[arg-type]


def test_env_per_user_token_or_fail_closed() -> None:
    """With per_user_var, a user gets their own token; a missing one is an error, not a fallback."""
    environ = {"CRM_TOKEN": "sek-service-1", "CRM_TOKEN_alice": "sek-alice-1"}
    provider = EnvCredentials(
        "CRM_TOKEN", per_user_var="CRM_TOKEN_{user}", environ=environ, name="crm"
    )
    assert provider.get(for_user="alice").secret.get_secret_value() == "sek-alice-1"
    assert provider.get().secret.get_secret_value() == "sek-service-1"
    with pytest.raises(CredentialError) as caught:
        provider.get(for_user="bob")
    assert str(caught.value) == (
        "credential 'crm' missing for user 'bob': environment variable CRM_TOKEN_bob is not set"
    )
    assert caught.value.where == "environment variable CRM_TOKEN_bob"


def test_env_without_per_user_config_returns_the_shared_credential() -> None:
    """A provider with no per-user credentials ignores for_user."""
    provider = EnvCredentials("CRM_TOKEN", environ={"CRM_TOKEN": "sek-service-1"})
    assert provider.get(for_user="alice").secret.get_secret_value() == "sek-service-1"


@pytest.mark.parametrize("user", ["", "..", "a/b", "a=b", "a\\b", "a\nb"])
def test_unusable_user_ids_are_refused(user: str, tmp_path: Path) -> None:
    """A user id that could name another variable or file is refused, for env and files."""
    env = EnvCredentials("T", per_user_var="T_{user}", environ={"T_": "x", "T_..": "x"})
    with pytest.raises(CredentialError, match="cannot be looked up for user"):
        env.get(for_user=user)
    (tmp_path / "b").write_text("sek-other-user")
    files = FileCredentials(tmp_path / "t", per_user_dir=tmp_path / "users")
    with pytest.raises(CredentialError, match="cannot be looked up for user"):
        files.get(for_user=user)


# --- files ------------------------------------------------------------------------


def test_file_strips_the_trailing_newline(tmp_path: Path) -> None:
    """The newline that `echo` or a template leaves at the end is not part of the secret."""
    path = tmp_path / "crm_token"
    path.write_text("sek-file-1\r\n")
    credential = FileCredentials(path).get()
    assert credential.secret.get_secret_value() == "sek-file-1"
    assert credential.kind == "bearer"


def test_file_rewritten_in_place_is_reread(tmp_path: Path) -> None:
    """A secret rewritten in place, even at once to the same length, is used by the next get."""
    path = tmp_path / "crm_token"
    path.write_text("sek-old-1\n")
    provider = FileCredentials(path)
    assert provider.get().secret.get_secret_value() == "sek-old-1"
    path.write_text("sek-new-2\n")
    assert provider.get().secret.get_secret_value() == "sek-new-2"
    # A coarse file-system clock can stamp both writes alike; a recent file is re-read anyway.
    stamp = os.stat(path).st_mtime_ns
    path.write_text("sek-new-3\n")
    os.utime(path, ns=(stamp, stamp))
    assert provider.get().secret.get_secret_value() == "sek-new-3"


def test_file_replaced_by_rename_is_reread(tmp_path: Path) -> None:
    """A secret swapped in atomically (a new inode, as Kubernetes does) is picked up."""
    path = tmp_path / "crm_token"
    path.write_text("sek-old-1")
    old = os.stat(path).st_mtime - 60
    os.utime(path, (old, old))
    provider = FileCredentials(path)
    assert provider.get().secret.get_secret_value() == "sek-old-1"
    staged = tmp_path / ".staged"
    staged.write_text("sek-rotated-2")
    os.utime(staged, (old, old))  # same mtime and size: only the inode tells them apart
    os.replace(staged, path)
    assert provider.get().secret.get_secret_value() == "sek-rotated-2"


def test_unchanged_file_is_not_reread(tmp_path: Path) -> None:
    """An old file whose stat is unchanged is served from the cache (only os.stat runs)."""
    path = tmp_path / "crm_token"
    path.write_text("sek-aaaa-1")
    old = os.stat(path).st_mtime_ns - 60_000_000_000
    os.utime(path, ns=(old, old))
    provider = FileCredentials(path)
    assert provider.get().secret.get_secret_value() == "sek-aaaa-1"
    # Same inode, size and mtime: indistinguishable by stat, so the cached value stands.
    path.write_text("sek-bbbb-2")
    os.utime(path, ns=(old, old))
    assert provider.get().secret.get_secret_value() == "sek-aaaa-1"
    os.utime(path, ns=(old + 1_000, old + 1_000))
    assert provider.get().secret.get_secret_value() == "sek-bbbb-2"


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    """Missing, empty, undecodable or a directory: each a CredentialError naming the file."""
    path = tmp_path / "crm_token"
    provider = FileCredentials(path, name="crm")
    with pytest.raises(CredentialError) as caught:
        provider.get()
    assert str(caught.value) == f"credential 'crm' missing: file {path} does not exist"
    assert caught.value.where == f"file {path}"
    path.write_text("\n")
    with pytest.raises(CredentialError, match=r"empty: file .* is empty"):
        provider.get()
    path.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(CredentialError, match=r"cannot be read \(UnicodeDecodeError\)"):
        provider.get()
    with pytest.raises(CredentialError, match="is not a regular file"):
        FileCredentials(tmp_path).get()


def test_file_per_user_directory(tmp_path: Path) -> None:
    """With per_user_dir, each user's token is the file named by their id; none means an error."""
    users = tmp_path / "users"
    users.mkdir()
    (users / "alice").write_text("sek-alice-1\n")
    (tmp_path / "service").write_text("sek-service-1\n")
    provider = FileCredentials(tmp_path / "service", per_user_dir=users, name="crm")
    assert provider.get(for_user="alice").secret.get_secret_value() == "sek-alice-1"
    assert provider.get().secret.get_secret_value() == "sek-service-1"
    with pytest.raises(CredentialError) as caught:
        provider.get(for_user="bob")
    assert str(caught.value) == (
        f"credential 'crm' missing for user 'bob': file {users / 'bob'} does not exist"
    )


def test_file_basic_and_header_kinds(tmp_path: Path) -> None:
    """A file credential carries the configured kind, username and header."""
    path = tmp_path / "key"
    path.write_text("k-1")
    assert FileCredentials(path, kind="api_key").get().header == "X-API-Key"
    assert FileCredentials(path, kind="header", header="X-Token").get().header == "X-Token"
    assert FileCredentials(path, kind="basic", username="svc").get().username == "svc"
    with pytest.raises(ConfigurationError, match="needs a username"):
        FileCredentials(path, kind="basic")


# --- callables --------------------------------------------------------------------


def test_callable_sync_gets_the_user_and_may_return_a_string() -> None:
    """fn receives for_user; a str becomes a credential of the configured kind."""
    seen: list[str | None] = []

    def lookup(user: str | None) -> str:
        seen.append(user)
        return f"sek-{user}-token"

    provider = CallableCredentials(lookup, name="vault", kind="api_key", header="X-Key")
    credential = provider.get(for_user="alice")
    assert credential.secret.get_secret_value() == "sek-alice-token"
    assert credential.header == "X-Key"
    assert asyncio.run(provider.aget()).secret.get_secret_value() == "sek-None-token"
    assert seen == ["alice", None]
    assert "lookup" in provider.where


def test_callable_async_needs_aget() -> None:
    """An async fn is awaited by aget; get refuses it and names the fix."""

    async def lookup(user: str | None) -> Credential:
        return Credential(secret=SecretStr(f"sek-async-{user}"))

    provider = CallableCredentials(lookup, name="vault")
    credential = asyncio.run(provider.aget(for_user="bob"))
    assert credential.secret.get_secret_value() == "sek-async-bob"
    with pytest.raises(TypeError, match=r"await provider\.aget"):
        provider.get()

    # A sync function that returns a coroutine is refused the same way, without a warning.
    def sneaky_lookup(user: str | None) -> Any:
        return lookup(user)

    sneaky = CallableCredentials(sneaky_lookup, name="vault")
    with pytest.raises(TypeError, match=r"await provider\.aget"):
        sneaky.get()


def test_callable_none_is_missing_and_expired_is_refused() -> None:
    """None means no credential; an expired one is an error naming where it came from."""
    clock = FakeClock()
    expires = clock.now() + dt.timedelta(minutes=5)
    tokens: dict[str, Credential] = {
        "alice": Credential(secret=SecretStr("sek-alice-9"), expires_at=expires)
    }

    def lookup(user: str | None) -> Credential | None:
        return tokens.get(user or "")

    provider = CallableCredentials(lookup, name="vault", where="vault path kv/crm", clock=clock)
    assert provider.get(for_user="alice").secret.get_secret_value() == "sek-alice-9"
    with pytest.raises(CredentialError) as caught:
        provider.get(for_user="bob")
    assert str(caught.value) == (
        "credential 'vault' missing for user 'bob': vault path kv/crm returned no credential"
    )
    clock.advance(dt.timedelta(minutes=5))
    with pytest.raises(
        CredentialError, match=r"expired for user 'alice'.*expired at 2025-01-01T00:05"
    ):
        provider.get(for_user="alice")


def test_callable_wrong_result_type_is_a_type_error() -> None:
    """A function returning something else is a bug in it, reported as such."""
    provider = CallableCredentials(lambda user: 42, name="vault")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="returned a int"):
        provider.get()


def test_callable_exceptions_pass_through() -> None:
    """The function's own exception reaches the caller unchanged."""

    def lookup(user: str | None) -> str:
        raise LookupError("vault sealed")

    with pytest.raises(LookupError, match="vault sealed"):
        CallableCredentials(lookup, name="vault").get()


# --- credential_auth --------------------------------------------------------------


def test_credential_auth_sends_each_kind(server: AuthServer, http: httpx.Client) -> None:
    """Bearer, basic and header credentials each land in the right header."""
    environ = {"T": "sek-one-1", "U": "svc"}
    cases = [
        (EnvCredentials("T", environ=environ), "authorization", "Bearer sek-one-1"),
        (
            EnvCredentials("T", kind="basic", username_var="U", environ=environ),
            "authorization",
            "Basic " + base64.b64encode(b"svc:sek-one-1").decode(),
        ),
        (EnvCredentials("T", kind="api_key", environ=environ), "x-api-key", "sek-one-1"),
        (
            EnvCredentials("T", kind="header", header="X-Token", environ=environ),
            "x-token",
            "sek-one-1",
        ),
    ]
    for provider, header, value in cases:
        echoed = http.get(f"{server.url}/headers", auth=credential_auth(provider)).json()
        assert echoed[header] == value


def test_credential_auth_picks_up_rotation(
    tmp_path: Path, server: AuthServer, http: httpx.Client
) -> None:
    """The credential is fetched per request, so a rotated file is sent from the next request."""
    path = tmp_path / "token"
    path.write_text("sek-before-1\n")
    auth = credential_auth(FileCredentials(path))
    assert (
        http.get(f"{server.url}/headers", auth=auth).json()["authorization"]
        == "Bearer sek-before-1"
    )
    path.write_text("sek-after-22\n")
    assert (
        http.get(f"{server.url}/headers", auth=auth).json()["authorization"]
        == "Bearer sek-after-22"
    )


def test_credential_auth_missing_fails_before_sending(
    server: AuthServer, http: httpx.Client
) -> None:
    """A missing credential raises CredentialError and nothing reaches the server."""
    auth = credential_auth(EnvCredentials("NOPE", environ={}))
    with pytest.raises(CredentialError, match="NOPE is not set"):
        http.get(f"{server.url}/resource", auth=auth)
    assert server.resource_hits == 0


def test_credential_auth_per_user_from_a_function(server: AuthServer, http: httpx.Client) -> None:
    """for_user may be a function, read per request (e.g. the acting principal's user)."""
    current = {"user": "alice"}
    provider = EnvCredentials(
        "T", per_user_var="T_{user}", environ={"T_alice": "sek-alice-1", "T_bob": "sek-bob-22"}
    )
    auth = credential_auth(provider, for_user=lambda: current["user"])
    assert (
        http.get(f"{server.url}/headers", auth=auth).json()["authorization"] == "Bearer sek-alice-1"
    )
    current["user"] = "bob"
    assert (
        http.get(f"{server.url}/headers", auth=auth).json()["authorization"] == "Bearer sek-bob-22"
    )


def test_credential_auth_async(server: AuthServer) -> None:
    """An AsyncClient awaits the provider's aget (here an async vault lookup)."""

    async def lookup(user: str | None) -> str:
        return f"sek-async-{user}"

    auth = credential_auth(CallableCredentials(lookup, name="vault"), for_user="carol")

    async def main() -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{server.url}/headers", auth=auth)
            return dict(response.json())

    assert asyncio.run(main())["authorization"] == "Bearer sek-async-carol"


# --- OAuth2 client credentials ----------------------------------------------------


def test_oauth2_fetches_once_and_caches(server: AuthServer, http: httpx.Client) -> None:
    """The token is fetched with the client-credentials grant and reused while fresh."""
    provider = oauth(server, http, scope=["crm.read", "crm.write"], audience="https://crm")
    assert provider.get().secret.get_secret_value() == "tok-1"
    assert provider.get().secret.get_secret_value() == "tok-1"
    for _ in range(3):
        assert http.get(f"{server.url}/resource", auth=provider).status_code == 200
    assert server.fetches == 1
    assert server.token_forms == [
        {
            "grant_type": "client_credentials",
            "scope": "crm.read crm.write",
            "audience": "https://crm",
        }
    ]
    assert server.token_auth[0] is not None
    assert server.token_auth[0].startswith("Basic ")
    assert credential_auth(provider) is provider


def test_oauth2_client_secret_post(server: AuthServer, http: httpx.Client) -> None:
    """auth_method='client_secret_post' sends the client's id and secret in the form."""
    provider = oauth(server, http, auth_method="client_secret_post")
    assert provider.get().secret.get_secret_value() == "tok-1"
    assert server.token_auth == [None]
    assert server.token_forms[0]["client_secret"] == CLIENT_SECRET


def test_oauth2_basic_auth_form_encodes_the_secret(server: AuthServer, http: httpx.Client) -> None:
    """A secret with ':' and other reserved characters survives HTTP Basic (RFC 6749 2.3.1)."""
    server.client_secret = "sek:with/odd+chars%"
    provider = oauth(server, http)
    assert provider.get().secret.get_secret_value() == "tok-1"


def test_oauth2_refreshes_before_expiry(server: AuthServer, http: httpx.Client) -> None:
    """A new token is fetched refresh_margin before the old one expires, not after."""
    clock = FakeClock()
    provider = oauth(server, http, clock=clock, refresh_margin=dt.timedelta(seconds=60))
    first = provider.get()
    assert first.expires_at == clock.now() + dt.timedelta(hours=1)
    clock.advance(dt.timedelta(seconds=3539))
    assert provider.get() is first
    clock.advance(dt.timedelta(seconds=2))
    assert provider.get().secret.get_secret_value() == "tok-2"
    assert server.fetches == 2


def test_oauth2_short_lived_token_refreshes_halfway(server: AuthServer, http: httpx.Client) -> None:
    """A token shorter-lived than the margin is kept for half its life, not refetched every call."""
    server.expires_in = 60
    clock = FakeClock()
    provider = oauth(server, http, clock=clock, refresh_margin=dt.timedelta(minutes=5))
    provider.get()
    clock.advance(dt.timedelta(seconds=29))
    provider.get()
    assert server.fetches == 1
    clock.advance(dt.timedelta(seconds=1))
    provider.get()
    assert server.fetches == 2


def test_oauth2_token_without_expiry_is_kept_until_rejected(
    server: AuthServer, http: httpx.Client
) -> None:
    """No expires_in: the token is kept until the resource rejects it."""
    server.expires_in = None
    clock = FakeClock()
    provider = oauth(server, http, clock=clock)
    assert provider.get().expires_at is None
    clock.advance(dt.timedelta(days=30))
    provider.get()
    assert server.fetches == 1


def test_oauth2_refreshes_once_on_401_and_succeeds(server: AuthServer, http: httpx.Client) -> None:
    """A token the resource rejects is replaced once and the request resent, body and all."""
    provider = oauth(server, http)
    assert http.get(f"{server.url}/resource", auth=provider).status_code == 200
    server.revoke_all()
    with structlog.testing.capture_logs() as logs:
        response = http.post(f"{server.url}/resource", content=b"payload", auth=provider)
    assert response.status_code == 200
    assert response.json() == {"body": "payload"}
    assert server.fetches == 2
    assert [log["event"] for log in logs] == ["handrail.credential.rejected"]


def test_oauth2_second_401_is_returned(server: AuthServer, http: httpx.Client) -> None:
    """If the fresh token is rejected too, the 401 goes to the caller: no loop."""
    provider = oauth(server, http)
    server.resource_statuses.extend([401, 401, 401])
    response = http.get(f"{server.url}/resource", auth=provider)
    assert response.status_code == 401
    assert server.resource_hits == 2
    assert server.fetches == 2


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, b"internal error", "answered 500"),
        (
            400,
            json.dumps({"error": "invalid_scope", "error_description": CLIENT_SECRET}).encode(),
            "answered 400 (invalid_scope)",
        ),
        (200, b"{}", "answered 200 without an access_token"),
        (200, b"not json", "answered 200 without an access_token"),
        (
            200,
            json.dumps({"access_token": "t", "token_type": "mac"}).encode(),
            "issued a 'mac' token",
        ),
    ],
)
def test_oauth2_token_endpoint_failures(
    server: AuthServer, http: httpx.Client, status: int, body: bytes, expected: str
) -> None:
    """A failing token endpoint is a CredentialError with URL and status, never the secret."""
    server.token_replies.append((status, body))
    provider = oauth(server, http, name="crm")
    with structlog.testing.capture_logs() as logs, pytest.raises(CredentialError) as caught:
        http.get(f"{server.url}/resource", auth=provider)
    message = str(caught.value)
    assert message.startswith(f"credential 'crm' unavailable: token endpoint {server.url}/token ")
    assert expected in message
    assert caught.value.where == f"token endpoint {server.url}/token"
    assert CLIENT_SECRET not in message + repr(logs)
    assert logs[0]["event"] == "handrail.credential.unavailable"
    assert server.resource_hits == 0


def test_oauth2_wrong_client_secret(server: AuthServer, http: httpx.Client) -> None:
    """Rejected client authentication reads as such, without the secret that was tried."""
    provider = OAuth2ClientCredentials(
        f"{server.url}/token", CLIENT_ID, "sek-wrong-secret", client=http
    )
    with pytest.raises(CredentialError, match=r"answered 401 \(invalid_client\)") as caught:
        provider.get()
    assert "sek-wrong-secret" not in str(caught.value)


def test_oauth2_unreachable_and_url_credentials_masked(http: httpx.Client) -> None:
    """An unreachable endpoint is a CredentialError; the URL's password and query are masked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://user:sek-url-pass@127.0.0.1:{port}/token?key=sek-query-key"
    provider = OAuth2ClientCredentials(url, CLIENT_ID, CLIENT_SECRET, client=http)
    with pytest.raises(CredentialError, match=r"could not be reached \(ConnectError\)") as caught:
        provider.get()
    text = str(caught.value) + repr(provider) + provider.where
    assert "sek-url-pass" not in text
    assert "sek-query-key" not in text
    assert f"127.0.0.1:{port}/token" in text


def test_oauth2_concurrent_threads_fetch_once(server: AuthServer, http: httpx.Client) -> None:
    """Threads that need a token at the same moment share one fetch."""
    server.hold_tokens = True
    provider = oauth(server, http)
    start = threading.Barrier(9)
    results: list[str] = []

    def work() -> None:
        start.wait()
        results.append(provider.get().secret.get_secret_value())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    start.wait()
    assert server.token_requested.wait(timeout=5)
    server.release.set()
    for thread in threads:
        thread.join(timeout=5)
    assert results == ["tok-1"] * 8
    assert server.fetches == 1


def test_oauth2_async_client(server: AuthServer, http: httpx.Client) -> None:
    """With an AsyncClient: one fetch for concurrent tasks, and a refresh once on a 401."""
    provider = oauth(server, http)

    async def main() -> list[int]:
        async with httpx.AsyncClient(auth=provider) as client:
            first = await asyncio.gather(*(client.get(f"{server.url}/resource") for _ in range(5)))
            server.revoke_all()
            again = await client.post(f"{server.url}/resource", content=b"x")
            server.resource_statuses.extend([401, 401])
            refused = await client.get(f"{server.url}/resource")
            return [r.status_code for r in [*first, again, refused]]

    assert asyncio.run(main()) == [200] * 6 + [401]
    assert server.fetches == 3


def test_oauth2_owned_client_is_closed(server: AuthServer) -> None:
    """Without client=, the provider makes its own HTTP client and close() closes it."""
    provider = OAuth2ClientCredentials(f"{server.url}/token", CLIENT_ID, CLIENT_SECRET)
    assert provider.get().secret.get_secret_value() == "tok-1"
    provider.close()
    provider.close()


def test_oauth2_configuration_is_checked(server: AuthServer) -> None:
    """An unknown client auth method or a negative margin is refused."""
    with pytest.raises(ConfigurationError, match="auth_method"):
        OAuth2ClientCredentials("http://x/token", "c", "s", auth_method="jwt")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="refresh_margin"):
        OAuth2ClientCredentials("http://x/token", "c", "s", refresh_margin=dt.timedelta(seconds=-1))


# --- secrets never leak -----------------------------------------------------------

secrets = st.text(alphabet=string.ascii_letters + string.digits, min_size=4, max_size=40).map(
    lambda tail: f"sek-{tail}"
)


@settings(max_examples=40)
@given(secret=secrets)
def test_generated_secrets_never_leak(
    secret: str,
    shared_server: AuthServer,
    http: httpx.Client,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A secret never shows in a provider's or credential's repr/str, an error, or a log event."""
    shared_server.reset()
    shown: list[str] = []
    with structlog.testing.capture_logs() as logs:
        env = EnvCredentials("T", environ={"T": secret})
        path = tmp_path_factory.mktemp("secret") / "token"
        path.write_text(secret + "\n")
        files = FileCredentials(path)
        clock = FakeClock()
        expired = Credential(secret=SecretStr(secret), expires_at=clock.now())
        vault = CallableCredentials(lambda user: expired, name="vault", clock=clock)
        shared_server.client_secret = secret
        shared_server.token_prefix = secret  # the access token holds it too
        token = OAuth2ClientCredentials(
            f"{shared_server.url}/token", CLIENT_ID, secret, client=http
        )
        for provider in (env, files, vault, token):
            shown += [repr(provider), str(provider)]
        for credential in (env.get(), files.get(), token.get(), expired):
            assert secret in credential.secret.get_secret_value()
            shown += [repr(credential), str(credential), credential.model_dump_json()]
        failures: list[Callable[[], Credential]] = [
            vault.get,
            lambda: EnvCredentials("T", per_user_var="T_{user}", environ={"T": secret}).get(
                for_user="x"
            ),
            lambda: OAuth2ClientCredentials(
                f"{shared_server.url}/token", CLIENT_ID, secret + "x", client=http
            ).get(),
        ]
        for failing in failures:
            with pytest.raises(CredentialError) as caught:
                failing()
            shown += [str(caught.value), repr(caught.value)]
        # The token endpoint echoes the secret back in its error description.
        echo = {"error": "invalid_request", "error_description": f"bad secret {secret}"}
        shared_server.token_replies.append((400, json.dumps(echo).encode()))
        with pytest.raises(CredentialError) as caught:
            token.refresh()
        shown.append(str(caught.value))
        # A 401 from the resource is logged on the way to a refresh.
        shared_server.resource_statuses.append(401)
        assert (
            http.get(f"{shared_server.url}/resource?api_key={secret}", auth=token).status_code
            == 200
        )
    assert logs
    shown.append(repr(logs))
    for text in shown:
        assert secret not in text
