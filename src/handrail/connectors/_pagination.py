"""Lazy pagination: the records of a paginated read, fetched one page at a time as they are used.

Three schemes, each with a sync and an async driver:

- ``cursor_pages(fetch)``: ``fetch(cursor)`` returns a ``Page`` with the
  next cursor (``None`` for the first page; the read ends at a page with
  no next cursor);
- ``offset_pages(fetch, limit=)``: ``fetch(offset, limit)``; the read ends
  at a page shorter than ``limit``;
- ``link_pages(first_url, fetch)``: ``fetch(url)`` returns an
  ``httpx.Response`` whose RFC 8288 ``Link: <...>; rel="next"`` header
  names the next page.

Each returns a ``Pages`` (``AsyncPages``) iterator of raw records that
holds one page at a time and knows where each record came from:
``pages.source_of(index)`` is what ``validate_records(..., source=)`` takes,
so a quarantined record says which page it was on.  Nothing is fetched
before the first record is asked for.  Under a guarded list read, each page
fetched is counted in the read's audit record (``pages``).
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

from .._errors import ConnectorError
from ..guard import current_call
from ..redaction import MASK, Redactor

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AsyncPages",
    "Page",
    "Pages",
    "acursor_pages",
    "alink_pages",
    "aoffset_pages",
    "current_page_source",
    "cursor_pages",
    "link_pages",
    "offset_pages",
    "shown_url",
]

T = TypeVar("T")

# How many pages back `source_of` can still answer for; a validator asks at once.
_REMEMBERED_PAGES = 32

_page_source: ContextVar[str | None] = ContextVar("handrail_page_source", default=None)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One fetched page: its ``records``, the cursor of the next page, and where it came from.

    ``next_cursor`` is ``None`` on the last page (cursor pagination only);
    ``source`` (a URL with secrets masked, say) names the page in quarantine
    entries; without it the drivers name the page by its cursor or offset.
    """

    records: Sequence[T]
    next_cursor: str | None = None
    source: str | None = None


def current_page_source() -> str | None:
    """The source of the page the innermost running pagination is yielding from, or None.

    For code that sees records through a generator of its own (an async list
    read written as ``async for ...: yield``), where ``source_of`` is out of
    reach.  Set when a page starts, cleared when the pagination ends.
    """
    return _page_source.get()


class _Sources:
    """Which page each record index came from, for the last few pages."""

    __slots__ = ("_next_index", "_pages", "current", "pages")

    def __init__(self) -> None:
        self._pages: collections.deque[tuple[int, str]] = collections.deque(
            maxlen=_REMEMBERED_PAGES
        )
        self._next_index = 0
        self.current: str | None = None
        self.pages = 0

    def page(self, source: str, count: int) -> None:
        self._pages.append((self._next_index, source))
        self._next_index += count
        self.current = source
        self.pages += 1
        _page_source.set(source)
        progress = current_call()
        if progress is not None:  # a list read under the guard: its record counts the pages
            progress.count(pages=1)

    def source_of(self, index: int) -> str:
        for start, source in reversed(self._pages):
            if index >= start:
                return source
        return self.current or ""


class Pages(Iterator[T], Generic[T]):
    """The records of a paginated read, fetched a page at a time as they are iterated.

    ``source`` is the current page's source; ``source_of(index)`` the source
    of the record at 0-based ``index`` (one of the last 32 pages); ``pages``
    counts the pages fetched.  ``close()`` stops the read (no further page
    is fetched).  Not thread-safe (it is an iterator).
    """

    __slots__ = ("_page", "_sources", "_walk")

    def __init__(self, walk: Iterator[tuple[str, Sequence[T]]]) -> None:
        self._walk = walk
        self._page: Iterator[T] = iter(())
        self._sources = _Sources()

    @property
    def source(self) -> str | None:
        """The source of the page being read (None before the first)."""
        return self._sources.current

    @property
    def pages(self) -> int:
        """How many pages have been fetched so far."""
        return self._sources.pages

    def source_of(self, index: int) -> str:
        """The source of the page the record at ``index`` (0-based, in read order) was on."""
        return self._sources.source_of(index)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        while True:
            for record in self._page:
                return record
            try:
                source, records = next(self._walk)
            except StopIteration:
                _page_source.set(None)
                raise
            self._sources.page(source, len(records))
            self._page = iter(records)

    def close(self) -> None:
        """Stop reading: no further page is fetched."""
        close = getattr(self._walk, "close", None)
        if close is not None:
            close()
        self._page = iter(())

    def __repr__(self) -> str:
        return f"<Pages: {self.pages} fetched, at {self.source!r}>"


class AsyncPages(AsyncIterator[T], Generic[T]):
    """``Pages`` for async code: ``async for record in pages``; ``await aclose()`` stops it."""

    __slots__ = ("_page", "_sources", "_walk")

    def __init__(self, walk: AsyncIterator[tuple[str, Sequence[T]]]) -> None:
        self._walk = walk
        self._page: Iterator[T] = iter(())
        self._sources = _Sources()

    @property
    def source(self) -> str | None:
        """The source of the page being read (None before the first)."""
        return self._sources.current

    @property
    def pages(self) -> int:
        """How many pages have been fetched so far."""
        return self._sources.pages

    def source_of(self, index: int) -> str:
        """The source of the page the record at ``index`` (0-based, in read order) was on."""
        return self._sources.source_of(index)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while True:
            for record in self._page:
                return record
            try:
                source, records = await anext(self._walk)
            except StopAsyncIteration:
                _page_source.set(None)
                raise
            self._sources.page(source, len(records))
            self._page = iter(records)

    async def aclose(self) -> None:
        """Stop reading: no further page is fetched."""
        aclose = getattr(self._walk, "aclose", None)
        if aclose is not None:
            await aclose()
        self._page = iter(())

    def __repr__(self) -> str:
        return f"<AsyncPages: {self.pages} fetched, at {self.source!r}>"


# -- the schemes: what page comes next (no I/O), and a sync and an async driver each ---------


def _cursor_source(cursor: str | None) -> str:
    return "first page" if cursor is None else f"cursor {cursor}"


def _next_cursor(page: Page[Any], cursor: str | None) -> str | None:
    """The cursor to fetch next, or None at the end; refuses a cursor that loops."""
    if not isinstance(page, Page):
        raise TypeError(f"cursor_pages: fetch must return a Page, got {type(page).__name__}")
    following = page.next_cursor
    if following is None or following == "":
        return None
    if following == cursor:
        raise ConnectorError(
            "pagination",
            f"the server answered cursor {cursor!r} with the same cursor as the next: "
            "following it would fetch the same page forever",
        )
    return following


def cursor_pages(fetch: Callable[[str | None], Page[T]]) -> Pages[T]:
    """Page through ``fetch(cursor)`` (``None`` first) until a page has no ``next_cursor``.

    Raises ``ConnectorError`` if a page's next cursor is its own cursor.
    """

    def walk() -> Iterator[tuple[str, Sequence[T]]]:
        cursor: str | None = None
        while True:
            page = fetch(cursor)
            following = _next_cursor(page, cursor)
            yield page.source or _cursor_source(cursor), _records(page.records)
            if following is None:
                return
            cursor = following

    return Pages(walk())


def acursor_pages(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncPages[T]:
    """``cursor_pages`` for async code: ``fetch`` is awaited."""

    async def walk() -> AsyncIterator[tuple[str, Sequence[T]]]:
        cursor: str | None = None
        while True:
            page = await fetch(cursor)
            following = _next_cursor(page, cursor)
            yield page.source or _cursor_source(cursor), _records(page.records)
            if following is None:
                return
            cursor = following

    return AsyncPages(walk())


def _check_limit(limit: int, start: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"offset_pages: limit={limit!r} must be an int >= 1")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"offset_pages: start={start!r} must be an int >= 0")


def _offset_page(result: Sequence[T] | Page[T], offset: int, limit: int) -> tuple[str, Sequence[T]]:
    if isinstance(result, Page):
        return result.source or f"offset {offset} limit {limit}", _records(result.records)
    return f"offset {offset} limit {limit}", _records(result)


def offset_pages(
    fetch: Callable[[int, int], Sequence[T] | Page[T]], *, limit: int = 100, start: int = 0
) -> Pages[T]:
    """Page through ``fetch(offset, limit)`` from ``start`` until a page is shorter than ``limit``.

    ``fetch`` returns the page's records, or a ``Page`` to name its source.
    A server that caps the page size below ``limit`` ends the read early:
    ask for no more than its cap.
    """
    _check_limit(limit, start)

    def walk() -> Iterator[tuple[str, Sequence[T]]]:
        offset = start
        while True:
            source, records = _offset_page(fetch(offset, limit), offset, limit)
            yield source, records
            if len(records) < limit:
                return
            offset += len(records)

    return Pages(walk())


def aoffset_pages(
    fetch: Callable[[int, int], Awaitable[Sequence[T] | Page[T]]],
    *,
    limit: int = 100,
    start: int = 0,
) -> AsyncPages[T]:
    """``offset_pages`` for async code: ``fetch`` is awaited."""
    _check_limit(limit, start)

    async def walk() -> AsyncIterator[tuple[str, Sequence[T]]]:
        offset = start
        while True:
            source, records = _offset_page(await fetch(offset, limit), offset, limit)
            yield source, records
            if len(records) < limit:
                return
            offset += len(records)

    return AsyncPages(walk())


def _json_list(response: httpx.Response) -> Sequence[Any]:
    body = response.json()
    if not isinstance(body, list):
        raise ConnectorError(
            "pagination",
            f"{shown_url(response.url)} answered a JSON {type(body).__name__}, not a list: "
            "pass records= to say where the records are",
        )
    return body


def _next_link(response: httpx.Response, url: httpx.URL) -> httpx.URL | None:
    """The URL of the next page from ``Link: <...>; rel="next"``, resolved against this page's.

    Refuses a link to another origin (the request would carry this host's
    credentials there) and a link back to the same page.
    """
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    following = response.url.join(link)
    here = response.url
    if (following.scheme, following.host, following.port) != (here.scheme, here.host, here.port):
        raise ConnectorError(
            "pagination",
            f"{shown_url(here)} links its next page to another origin "
            f"({following.scheme}://{following.host}): refusing to send this host's "
            "credentials there",
        )
    if following in (url, here):
        raise ConnectorError("pagination", f"{shown_url(here)} links to itself as the next page")
    return following


@overload
def link_pages(
    first_url: str | httpx.URL, fetch: Callable[[str], httpx.Response]
) -> Pages[Any]: ...


@overload
def link_pages(
    first_url: str | httpx.URL,
    fetch: Callable[[str], httpx.Response],
    *,
    records: Callable[[httpx.Response], Sequence[T]],
) -> Pages[T]: ...


def link_pages(
    first_url: str | httpx.URL,
    fetch: Callable[[str], httpx.Response],
    *,
    records: Callable[[httpx.Response], Sequence[Any]] = _json_list,
) -> Pages[Any]:
    """Page through ``fetch(url)`` from ``first_url``, following ``Link: <...>; rel="next"``.

    ``records`` takes a page's response to its records (by default the JSON
    body, which must be a list).  Links are parsed by httpx
    (``response.links``) and resolved against the page's URL; each page's
    source is its URL with secrets masked.  Raises ``ConnectorError`` for a
    next link to another origin or to the same page.
    """
    import httpx

    def walk() -> Iterator[tuple[str, Sequence[Any]]]:
        url: httpx.URL | None = httpx.URL(str(first_url))
        while url is not None:
            response = fetch(str(url))
            following = _next_link(response, url)
            yield shown_url(response.url), _records(records(response))
            url = following

    return Pages(walk())


@overload
def alink_pages(
    first_url: str | httpx.URL, fetch: Callable[[str], Awaitable[httpx.Response]]
) -> AsyncPages[Any]: ...


@overload
def alink_pages(
    first_url: str | httpx.URL,
    fetch: Callable[[str], Awaitable[httpx.Response]],
    *,
    records: Callable[[httpx.Response], Sequence[T]],
) -> AsyncPages[T]: ...


def alink_pages(
    first_url: str | httpx.URL,
    fetch: Callable[[str], Awaitable[httpx.Response]],
    *,
    records: Callable[[httpx.Response], Sequence[Any]] = _json_list,
) -> AsyncPages[Any]:
    """``link_pages`` for async code: ``fetch`` is awaited."""
    import httpx

    async def walk() -> AsyncIterator[tuple[str, Sequence[Any]]]:
        url: httpx.URL | None = httpx.URL(str(first_url))
        while url is not None:
            response = await fetch(str(url))
            following = _next_link(response, url)
            yield shown_url(response.url), _records(records(response))
            url = following

    return AsyncPages(walk())


def _records(records: Any) -> Sequence[Any]:
    if isinstance(records, Sequence) and not isinstance(records, str | bytes):
        return records
    if records is None:
        return ()
    if isinstance(records, str | bytes | dict):
        raise TypeError(f"a page's records must be a list, got {type(records).__name__}")
    return list(records)


# -- URLs as they may be shown ----------------------------------------------------------------

_REDACTOR = Redactor()


def shown_url(url: str | httpx.URL) -> str:
    """``url`` with any ``user:password@`` and the values of secret-looking query parameters masked.

    Other parameters (``page=2``, ``cursor=...``) are kept: they say which
    page a record came from.  Secret-looking means what
    ``Redactor.is_sensitive_parameter`` says: a sensitive key (``token``,
    ``api_key``, ``password``, ...), a name holding ``signature``, or
    ``key``, ``sig``, ``code``, ``auth``, ``pass``, ``pwd``.
    """
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    head, hash_mark, fragment = rest.partition("#")
    head, question, query = head.partition("?")
    authority, slash, path = head.partition("/")
    if "@" in authority:
        authority = f"{MASK}@{authority.rpartition('@')[2]}"
    query = _shown_pairs(query)
    fragment = _shown_pairs(fragment)  # e.g. #access_token=... in OAuth redirects
    shown = f"{authority}{slash}{path}{question}{query}{hash_mark}{fragment}"
    return f"{scheme}://{shown}" if sep else shown


def _shown_pairs(query: str) -> str:
    if "=" not in query:
        return query
    return "&".join(_shown_pair(pair) for pair in query.split("&"))


def _shown_pair(pair: str) -> str:
    name, equals, value = pair.partition("=")
    if value and _REDACTOR.is_sensitive_parameter(name):  # percent-decodes the name itself
        return f"{name}{equals}{MASK}"
    return pair
