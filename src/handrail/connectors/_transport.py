"""The transports: the host's rate limit and breaker, and the attempt count.

``HTTPConnector``'s clients wrap httpx's transport (or a test's) in these:
every request on its way to the network waits for its host's token bucket,
goes through its host's circuit breaker and counts as one attempt of the
guarded call in progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from .._retry_after import parse_retry_after
from ..guard import current_call
from ..resilience import CircuitBreaker
from ._ratelimit import TokenBucket

if TYPE_CHECKING:
    from ._http import HTTPConnector

__all__ = ["AsyncHostTransport", "HostTransport", "host_key"]


class HostTransport(httpx.BaseTransport):
    """Every request on its way to the network: the host's token bucket, then its breaker.

    Each request that gets through is one attempt of the guarded call in
    progress (``current_call().attempted()``).  A 429 or 503 with
    ``Retry-After`` holds the host's bucket for everyone sharing it.
    """

    def __init__(self, inner: httpx.BaseTransport, connector: HTTPConnector) -> None:
        self._inner = inner
        self._connector = connector

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        bucket = self._connector.bucket_for(request.url)
        breaker = self._connector.breaker_for(request.url)
        bucket.acquire()
        if breaker is not None:
            breaker.before_call()
        _attempted()
        try:
            response = self._inner.handle_request(request)
        except BaseException as exc:
            if breaker is not None:
                breaker.record_failure(exc)
            raise
        _answered(request, response, bucket, breaker)
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncHostTransport(httpx.AsyncBaseTransport):
    """``HostTransport`` for the async client."""

    def __init__(self, inner: httpx.AsyncBaseTransport, connector: HTTPConnector) -> None:
        self._inner = inner
        self._connector = connector

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        bucket = self._connector.bucket_for(request.url)
        breaker = self._connector.breaker_for(request.url)
        await bucket.aacquire()
        if breaker is not None:
            breaker.before_call()
        _attempted()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            if breaker is not None:
                breaker.record_failure(exc)
            raise
        _answered(request, response, bucket, breaker)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _attempted() -> None:
    progress = current_call()
    if progress is not None:
        progress.attempted()


def _answered(
    request: httpx.Request,
    response: httpx.Response,
    bucket: TokenBucket,
    breaker: CircuitBreaker | None,
) -> None:
    """Tell the bucket about a server's Retry-After, and the breaker how the host answered."""
    if response.status_code in (429, 503):
        value = response.headers.get("retry-after")
        wait = parse_retry_after(value, now=bucket.clock.now()) if value else None
        if wait is not None:
            bucket.penalize(wait)
    if breaker is None:
        return
    if response.status_code >= 400:
        # Classified as the error the caller will see: only transient statuses count against it.
        error = httpx.HTTPStatusError(f"{response.status_code}", request=request, response=response)
        breaker.record_failure(error)
    else:
        breaker.record_success()


def host_key(url: httpx.URL) -> str:
    """``host``, or ``host:port`` for a port not the scheme's: the key of limits and breakers."""
    return url.host if url.port is None else f"{url.host}:{url.port}"
