"""Credential providers that read a secret: the environment, a mounted file, your callable.

Each names where it looks (``environment variable CRM_TOKEN``, ``file
/run/secrets/crm_token``), so a ``CredentialError`` says what to fix.  Per-user
secrets (``for_user=``) are looked up by a name the user id fills in, after
the id is checked to be a plain name (it may come from an agent).
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import stat
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from pydantic import SecretStr

from .._errors import ConfigurationError, CredentialError
from ..clock import Clock, SystemClock
from ._credentials import Credential, CredentialKind, check_kind, checked_user, for_user_note

__all__ = ["CallableCredentials", "EnvCredentials", "FileCredentials"]

# A file changed within this many nanoseconds of being read may change again
# without its mtime moving (file systems stamp times from a coarse clock), so
# it is re-read until it is older than that: the "racy git" problem.
_RACY_NS = 2_000_000_000


class EnvCredentials:
    """A credential in an environment variable, read on every ``get`` (so a restart-free
    change of ``os.environ`` is seen).

    ``username_var`` names the variable holding the username (``kind="basic"``).
    ``per_user_var`` is a template such as ``"CRM_TOKEN_{user}"``: with
    ``for_user``, ``{user}`` is replaced by the user id, verbatim (no case
    folding, so two users never share a variable), and a missing variable
    raises ``CredentialError`` instead of falling back to ``var``.
    ``environ`` replaces ``os.environ`` (tests).  Thread-safe.
    """

    __slots__ = ("_environ", "header", "kind", "name", "per_user_var", "username_var", "var")

    def __init__(
        self,
        var: str,
        *,
        kind: CredentialKind = "bearer",
        header: str | None = None,
        username_var: str | None = None,
        per_user_var: str | None = None,
        environ: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        if not var:
            raise ConfigurationError("EnvCredentials: var must name an environment variable")
        if per_user_var is not None and "{user}" not in per_user_var:
            raise ConfigurationError(
                f"EnvCredentials: per_user_var must contain '{{user}}', got {per_user_var!r}"
            )
        check_kind(kind, header, username_var is not None, f"EnvCredentials({var!r})")
        self.var = var
        self.kind: CredentialKind = kind
        self.header = header
        self.username_var = username_var
        self.per_user_var = per_user_var
        self.name = name or var
        self._environ = environ

    @property
    def where(self) -> str:
        """``environment variable VAR``."""
        return f"environment variable {self.var}"

    def get(self, *, for_user: str | None = None) -> Credential:
        """The credential from the environment; ``CredentialError`` if it is unset or empty."""
        environ = os.environ if self._environ is None else self._environ
        var, user = self.var, None
        if for_user is not None and self.per_user_var is not None:
            where = f"environment variable {self.per_user_var}"
            user = checked_user(self.name, where, for_user)
            # str.replace, not format: a user id may contain braces.
            var = self.per_user_var.replace("{user}", user)
        secret = self._read(environ, var, user)
        username = None
        if self.username_var is not None:
            username = self._read(environ, self.username_var, None)
        return Credential(
            secret=SecretStr(secret), username=username, kind=self.kind, header=self.header
        )

    async def aget(self, *, for_user: str | None = None) -> Credential:
        """As ``get``; reading the environment does not block."""
        return self.get(for_user=for_user)

    def _read(self, environ: Mapping[str, str], var: str, user: str | None) -> str:
        where = f"environment variable {var}"
        value = environ.get(var)
        if value is None:
            raise CredentialError(
                self.name, where, f"missing{for_user_note(user)}: {where} is not set"
            )
        if not value:
            raise CredentialError(self.name, where, f"empty{for_user_note(user)}: {where} is empty")
        return value

    def __repr__(self) -> str:
        per_user = f", per_user_var={self.per_user_var!r}" if self.per_user_var else ""
        return f"EnvCredentials({self.var!r}, kind={self.kind!r}, name={self.name!r}{per_user})"


@dataclass(frozen=True, slots=True)
class _FileStamp:
    """What identifies one version of a file without reading it."""

    device: int
    inode: int
    size: int
    mtime_ns: int


class FileCredentials:
    """A credential in a file, such as a mounted Kubernetes or Docker secret.

    The file is ``os.stat``-ed on every ``get`` and re-read when its inode,
    size or modification time changed, so a rotated secret (a rewritten
    file, or a symlink swapped by Kubernetes) is picked up without a restart.
    A trailing newline is stripped.  ``per_user_dir`` holds one file per user,
    named by the user id: with ``for_user``, that file is read and a missing
    one raises ``CredentialError`` instead of falling back to ``path``.
    ``username`` is the username for ``kind="basic"``.  Thread-safe.
    """

    __slots__ = ("_cache", "_lock", "header", "kind", "name", "path", "per_user_dir", "username")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: CredentialKind = "bearer",
        header: str | None = None,
        username: str | None = None,
        per_user_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        check_kind(kind, header, username is not None, f"FileCredentials({str(self.path)!r})")
        self.kind: CredentialKind = kind
        self.header = header
        self.username = username
        self.per_user_dir = Path(per_user_dir) if per_user_dir is not None else None
        self.name = name or self.path.name
        self._cache: dict[Path, tuple[_FileStamp, Credential]] = {}
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """``file PATH``."""
        return f"file {self.path}"

    def get(self, *, for_user: str | None = None) -> Credential:
        """The credential in the file, re-read if it changed; ``CredentialError`` if it
        is missing, empty or unreadable."""
        path, user = self.path, None
        if for_user is not None and self.per_user_dir is not None:
            user = checked_user(self.name, f"directory {self.per_user_dir}", for_user)
            path = self.per_user_dir / user
        where = f"file {path}"
        note = for_user_note(user)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise CredentialError(
                self.name, where, f"missing{note}: {where} does not exist"
            ) from None
        except OSError as exc:
            raise self._unreadable(where, note, exc) from exc
        if not stat.S_ISREG(info.st_mode):
            raise CredentialError(
                self.name, where, f"unreadable{note}: {where} is not a regular file"
            )
        stamp = _FileStamp(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        read_at = time.time_ns()
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise CredentialError(
                self.name, where, f"missing{note}: {where} does not exist"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unreadable(where, note, exc) from exc
        secret = text.rstrip("\r\n")
        if not secret:
            raise CredentialError(self.name, where, f"empty{note}: {where} is empty")
        credential = Credential(
            secret=SecretStr(secret), username=self.username, kind=self.kind, header=self.header
        )
        with self._lock:
            if stamp.mtime_ns < read_at - _RACY_NS:
                self._cache[path] = (stamp, credential)
            else:
                # Written moments ago: a rewrite within the same clock tick would
                # keep this stamp, so this read is not trusted for the next one.
                self._cache.pop(path, None)
        return credential

    async def aget(self, *, for_user: str | None = None) -> Credential:
        """As ``get``; reading a small local file does not block for long."""
        return self.get(for_user=for_user)

    def _unreadable(self, where: str, note: str, exc: BaseException) -> CredentialError:
        return CredentialError(
            self.name, where, f"unreadable{note}: {where} cannot be read ({type(exc).__name__})"
        )

    def __repr__(self) -> str:
        per_user = f", per_user_dir={str(self.per_user_dir)!r}" if self.per_user_dir else ""
        return (
            f"FileCredentials({str(self.path)!r}, kind={self.kind!r}, name={self.name!r}{per_user})"
        )


CredentialResult: TypeAlias = Credential | SecretStr | str | None
"""What a ``CallableCredentials`` function returns; ``None`` means it has no credential."""


class CallableCredentials:
    """A credential from your own function: a vault client, a secrets manager, a cache.

    ``fn(for_user)`` returns a ``Credential``, a ``SecretStr`` or ``str`` (sent
    as ``kind``/``header``/``username`` say), or ``None`` when it has no
    credential (raised as ``CredentialError``); it may be ``async def``, and
    then only ``aget`` can call it.  An expired ``Credential`` raises
    ``CredentialError``.  A sync ``fn`` runs on the event loop in ``aget``:
    keep it fast (cache inside it) or make it async.  Exceptions ``fn`` raises
    pass through unchanged.
    """

    __slots__ = ("_clock", "_fn", "_is_async", "header", "kind", "name", "username", "where")

    def __init__(
        self,
        fn: Callable[[str | None], CredentialResult | Awaitable[CredentialResult]],
        *,
        name: str,
        where: str | None = None,
        kind: CredentialKind = "bearer",
        header: str | None = None,
        username: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not name:
            raise ConfigurationError("CallableCredentials: name= must name the credential")
        check_kind(kind, header, username is not None, f"CallableCredentials({name!r})")
        self._fn = fn
        self._is_async = inspect.iscoroutinefunction(fn)
        self.name = name
        self.where = where or f"callable {getattr(fn, '__qualname__', type(fn).__name__)}"
        self.kind: CredentialKind = kind
        self.header = header
        self.username = username
        self._clock: Clock = clock or SystemClock()

    def get(self, *, for_user: str | None = None) -> Credential:
        """Call ``fn(for_user)``; ``TypeError`` if ``fn`` is async (use ``aget``)."""
        if self._is_async:
            raise self._async_only()
        result = self._fn(for_user)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: close it so it does not warn
            raise self._async_only()
        return self._accept(result, for_user)

    async def aget(self, *, for_user: str | None = None) -> Credential:
        """Call ``fn(for_user)`` and await it if it is async."""
        result = self._fn(for_user)
        if inspect.isawaitable(result):
            result = await result
        return self._accept(result, for_user)

    def _async_only(self) -> TypeError:
        return TypeError(
            f"CallableCredentials({self.name!r}) wraps an async function: "
            "use `await provider.aget()` (an httpx.AsyncClient does)"
        )

    def _accept(self, result: object, for_user: str | None) -> Credential:
        note = for_user_note(for_user)
        if result is None:
            raise CredentialError(
                self.name, self.where, f"missing{note}: {self.where} returned no credential"
            )
        if isinstance(result, str | SecretStr):
            secret = result if isinstance(result, SecretStr) else SecretStr(result)
            if not secret.get_secret_value():
                raise CredentialError(
                    self.name, self.where, f"empty{note}: {self.where} returned an empty secret"
                )
            return Credential(
                secret=secret, username=self.username, kind=self.kind, header=self.header
            )
        if isinstance(result, Credential):
            return _unexpired(result, self.name, self.where, self._clock.now(), note)
        raise TypeError(
            f"CallableCredentials({self.name!r}): {self.where} returned a "
            f"{type(result).__name__}; expected a Credential, a SecretStr, a str or None"
        )

    def __repr__(self) -> str:
        return f"CallableCredentials(name={self.name!r}, where={self.where!r})"


def _unexpired(
    credential: Credential, name: str, where: str, now: dt.datetime, note: str = ""
) -> Credential:
    if credential.is_expired(now):
        assert credential.expires_at is not None
        raise CredentialError(
            name,
            where,
            f"expired{note}: the credential from {where} expired at "
            f"{credential.expires_at.isoformat()}",
        )
    return credential
