"""HTTP delivery for the webhook channels: one POST, retried by a policy, errors masked.

httpx errors are re-raised as the same type with the URL masked, so
``is_transient`` classifies them as before; the original is dropped because
its message holds the URL (a Slack webhook's URL is its secret).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from .._version import __version__
from ..clock import Clock
from ..redaction import Redactor
from ..resilience import RetryPolicy
from ._message import one_line

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["DEFAULT_RETRY", "Poster"]

# Short: the router retries a failed delivery on its next tick anyway.
DEFAULT_RETRY = RetryPolicy(
    attempts=3,
    timeout=timedelta(seconds=30),
    wait_initial=timedelta(milliseconds=500),
    wait_max=timedelta(seconds=5),
)
_REDACTOR = Redactor()


class Poster:
    """POSTs bytes to one URL, retried by a policy; the shared shell of the HTTP channels."""

    __slots__ = (
        "_client",
        "_secrets",
        "_tls",
        "clock",
        "display_url",
        "name",
        "owner",
        "retry",
        "timeout",
        "url",
    )

    def __init__(
        self,
        *,
        owner: str,
        name: str,
        url: str,
        display_url: str,
        secrets: Iterable[str],
        timeout: float,
        retry: RetryPolicy | None,
        client: httpx.AsyncClient | None,
        clock: Clock,
    ) -> None:
        self.owner = owner
        self.name = name
        self.url = url
        self.display_url = display_url
        self._secrets = tuple(s for s in secrets if s)
        self.timeout = timeout
        self.retry = retry
        self._client = client
        self.clock = clock
        self._tls: ssl.SSLContext | None = None

    async def post(self, body: bytes, headers: Callable[[], dict[str, str]], key: str) -> None:
        if self.retry is None:
            await self._attempt(body, headers)
            return
        await self.retry.acall(
            self._attempt,
            body,
            headers,
            action=f"escalation.channel.{self.name}",
            is_write=True,
            idempotency_key=key,
        )

    async def _attempt(self, body: bytes, headers: Callable[[], dict[str, str]]) -> None:
        import httpx

        sent = {**headers(), "User-Agent": f"handrail/{__version__}"}
        try:
            if self._client is not None:
                response = await self._client.post(
                    self.url, content=body, headers=sent, timeout=self.timeout
                )
            else:
                async with httpx.AsyncClient(
                    timeout=self.timeout, verify=self._tls_context(), follow_redirects=False
                ) as client:
                    response = await client.post(self.url, content=body, headers=sent)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            # Not chained: the original's message (and request) hold the URL.
            raise self._masked(exc) from None

    def _tls_context(self) -> ssl.SSLContext | bool:
        # Building a TLS context costs ~40 ms; one per channel, not one per send.
        if self._tls is None:
            import httpx

            create = getattr(httpx, "create_ssl_context", None)  # httpx >= 0.28
            if create is None:
                return True
            self._tls = create()
        return self._tls

    def _scrub(self, text: str) -> str:
        return _REDACTOR.scrub(text, self._secrets)

    def _masked(self, error: httpx.HTTPError) -> httpx.HTTPError:
        """The same kind of error, saying what failed, with no secret in it or on it."""
        import httpx

        request = httpx.Request("POST", self.display_url)
        where = f"{self.owner} {self.name!r}: POST {self.display_url}"
        if isinstance(error, httpx.HTTPStatusError):
            original = error.response
            excerpt = one_line(original.text)[:200].strip()
            detail = f": {self._scrub(excerpt)}" if excerpt else ""
            # Decoded content, so the encoding headers no longer apply.
            skip = {"content-encoding", "content-length", "transfer-encoding"}
            response = httpx.Response(
                original.status_code,
                headers=[(k, v) for k, v in original.headers.multi_items() if k not in skip],
                content=original.content,
                request=request,
            )
            message = f"{where} answered {original.status_code} {original.reason_phrase}{detail}"
            return httpx.HTTPStatusError(message, request=request, response=response)
        cause = self._scrub(str(error)) or "no detail"
        message = f"{where} failed: {type(error).__name__}: {cause}"
        if isinstance(error, httpx.RequestError):
            try:
                return type(error)(message, request=request)
            except TypeError:  # a subclass with its own constructor: keep it transient
                return httpx.TransportError(message, request=request)
        return httpx.HTTPError(message)
