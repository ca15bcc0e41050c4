"""Lazy pagination: records page by page, each knowing the page it came from."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handrail._errors import ConnectorError
from handrail.connectors._pagination import (
    Page,
    acursor_pages,
    alink_pages,
    aoffset_pages,
    current_page_source,
    cursor_pages,
    link_pages,
    offset_pages,
    shown_url,
)

page_lists = st.lists(st.lists(st.integers(), max_size=5), min_size=1, max_size=8)


class CursorAPI:
    """Pages served by cursor: page i's cursor is "c{i}"; records which cursors were asked for."""

    def __init__(self, pages: list[list[int]]) -> None:
        self.pages = pages
        self.asked: list[str | None] = []

    def fetch(self, cursor: str | None) -> Page[int]:
        self.asked.append(cursor)
        index = 0 if cursor is None else int(cursor[1:])
        following = f"c{index + 1}" if index + 1 < len(self.pages) else None
        return Page(self.pages[index], next_cursor=following, source=f"page {index}")

    async def afetch(self, cursor: str | None) -> Page[int]:
        return self.fetch(cursor)


@given(pages=page_lists, taken=st.integers(min_value=0, max_value=40))
def test_cursor_pages_fetch_only_the_pages_needed_so_far(
    pages: list[list[int]], taken: int
) -> None:
    """Taking n records fetches exactly the pages up to the one holding the n-th, in order."""
    api = CursorAPI(pages)
    records = cursor_pages(api.fetch)
    assert api.asked == []  # nothing before the first record is asked for
    got = list(itertools.islice(records, taken))
    flat = [r for page in pages for r in page]
    assert got == flat[:taken]
    needed = len(pages) if taken > len(flat) else _pages_for(pages, taken)
    assert len(api.asked) == needed
    assert api.asked == [None, *[f"c{i}" for i in range(1, needed)]][:needed]


def _pages_for(pages: list[list[int]], taken: int) -> int:
    """How many pages must be fetched to yield ``taken`` records (empty pages are skipped over)."""
    if taken == 0:
        return 0
    seen = 0
    for number, page in enumerate(pages, start=1):
        seen += len(page)
        if seen >= taken:
            return number
    return len(pages)


@given(pages=page_lists)
def test_every_record_knows_its_page(pages: list[list[int]]) -> None:
    """source_of(i) names the page record i was on; the whole read yields every record once."""
    api = CursorAPI(pages)
    records = cursor_pages(api.fetch)
    expected = [f"page {p}" for p, page in enumerate(pages) for _ in page]
    seen = []
    for index, _ in enumerate(records):
        seen.append(records.source_of(index))
        assert records.source == expected[index]
    assert seen == expected
    assert records.pages == len(pages)


def test_a_page_without_a_source_is_named_by_its_cursor() -> None:
    """Without Page.source, the first page is 'first page' and the others 'cursor <c>'."""
    answers = {None: Page([1], "abc"), "abc": Page([2])}
    records = cursor_pages(lambda cursor: answers[cursor])
    assert next(records) == 1
    assert records.source_of(0) == "first page"
    assert next(records) == 2
    assert records.source_of(1) == "cursor abc"
    assert list(records) == []


def test_a_cursor_that_points_to_itself_is_refused() -> None:
    """A server that answers cursor c with next cursor c would be paged forever."""
    records = cursor_pages(lambda cursor: Page([1], next_cursor="same"))
    assert next(records) == 1
    with pytest.raises(ConnectorError, match="forever"):
        list(records)


def test_close_stops_fetching() -> None:
    """After close(), no further page is fetched."""
    api = CursorAPI([[1, 2], [3]])
    records = cursor_pages(api.fetch)
    assert next(records) == 1
    records.close()
    assert list(records) == []
    assert api.asked == [None]


@given(
    total=st.integers(min_value=0, max_value=50),
    limit=st.integers(min_value=1, max_value=10),
    start=st.integers(min_value=0, max_value=5),
)
def test_offset_pages_read_everything_from_start_and_stop_at_a_short_page(
    total: int, limit: int, start: int
) -> None:
    """Offsets advance by the records received; the read ends at the first short page."""
    data = list(range(total))
    asked: list[tuple[int, int]] = []

    def fetch(offset: int, size: int) -> Sequence[int]:
        asked.append((offset, size))
        return data[offset : offset + size]

    records = offset_pages(fetch, limit=limit, start=start)
    assert list(records) == data[start:]
    remaining = max(0, total - start)
    assert len(asked) == remaining // limit + 1
    assert asked == [(start + i * limit, limit) for i in range(len(asked))]
    if remaining:
        assert records.source_of(remaining - 1).startswith("offset ")


def test_offset_pages_accept_pages_with_their_own_source() -> None:
    """fetch may return a Page to name where it came from."""
    records = offset_pages(lambda offset, size: Page([offset], source=f"/x?o={offset}"), limit=2)
    assert list(records) == [0]
    assert records.source_of(0) == "/x?o=0"
    with pytest.raises(ValueError, match="limit"):
        offset_pages(lambda offset, size: [], limit=0)


def _response(url: str, body: object, link: str | None = None) -> httpx.Response:
    headers = {"Link": link} if link else {}
    return httpx.Response(200, json=body, headers=headers, request=httpx.Request("GET", url))


def test_link_pages_follow_rel_next_resolving_relative_links() -> None:
    """Each page's Link rel=next (absolute or relative) is fetched next; sources are page URLs."""
    base = "https://api.example.com"
    pages = {
        f"{base}/items": _response(
            f"{base}/items", [1, 2], f'<{base}/items?page=2>; rel="next", <{base}/x>; rel="last"'
        ),
        f"{base}/items?page=2": _response(
            f"{base}/items?page=2", [3], '</items?page=3&api_key=s3cr3t>; rel="next"'
        ),
        f"{base}/items?page=3&api_key=s3cr3t": _response(f"{base}/items?page=3&api_key=s3cr3t", []),
    }
    fetched: list[str] = []

    def fetch(url: str) -> httpx.Response:
        fetched.append(url)
        return pages[url]

    records = link_pages(f"{base}/items", fetch)
    assert fetched == []
    assert next(records) == 1
    assert fetched == [f"{base}/items"]
    assert list(records) == [2, 3]
    assert records.source_of(2) == f"{base}/items?page=2"
    assert records.source == f"{base}/items?page=3&api_key=***"
    assert len(fetched) == 3


def test_link_pages_refuse_another_origin_and_self_links() -> None:
    """A next link to another host would carry this host's credentials there: refused."""
    url = "https://api.example.com/items"
    away = link_pages(url, lambda u: _response(u, [1], '<https://evil.example/steal>; rel="next"'))
    with pytest.raises(ConnectorError, match="another origin"):
        list(away)
    loop = link_pages(url, lambda u: _response(u, [1], f'<{url}>; rel="next"'))
    with pytest.raises(ConnectorError, match="itself"):
        list(loop)


def test_link_pages_need_a_list_or_a_records_function() -> None:
    """A JSON object body is not a page of records unless records= says where they are."""
    url = "https://api.example.com/items"
    with pytest.raises(ConnectorError, match="not a list"):
        list(link_pages(url, lambda u: _response(u, {"items": [1]})))
    records = link_pages(
        url, lambda u: _response(u, {"items": [1]}), records=lambda r: r.json()["items"]
    )
    assert list(records) == [1]


def test_async_variants_page_lazily_too() -> None:
    """acursor_pages, aoffset_pages and alink_pages yield the same records, lazily."""
    api = CursorAPI([[1, 2], [], [3]])

    async def offsets(offset: int, size: int) -> Sequence[int]:
        return list(range(5))[offset : offset + size]

    async def links(url: str) -> httpx.Response:
        if url.endswith("/a"):
            return _response(url, ["a"], '</b>; rel="next"')
        return _response(url, ["b"])

    async def main() -> tuple[list[int], list[int], list[str], list[str | None]]:
        cursor = acursor_pages(api.afetch)
        first = await anext(cursor)
        asked_after_first = list(api.asked)
        by_cursor = [first, *[r async for r in cursor]]
        by_offset = [r async for r in aoffset_pages(offsets, limit=2)]
        linked = alink_pages("http://h/a", links)
        by_link = [r async for r in linked]
        assert linked.source_of(1) == "http://h/b"
        return by_cursor, by_offset, by_link, asked_after_first

    by_cursor, by_offset, by_link, asked_after_first = asyncio.run(main())
    assert by_cursor == [1, 2, 3]
    assert asked_after_first == [None]
    assert by_offset == [0, 1, 2, 3, 4]
    assert by_link == ["a", "b"]


def test_current_page_source_follows_the_running_pagination() -> None:
    """Code that sees records through its own generator can still ask which page is being read."""
    api = CursorAPI([[1], [2]])

    def wrapped() -> list[tuple[int, str | None]]:
        return [(record, current_page_source()) for record in cursor_pages(api.fetch)]

    assert wrapped() == [(1, "page 0"), (2, "page 1")]
    assert current_page_source() is None  # cleared when the read ends


def test_current_page_source_reaches_through_an_async_generator() -> None:
    """An async list read written as `async for ...: yield` still lets its consumer ask."""
    api = CursorAPI([[1, 2], [3]])

    async def author_wrote() -> AsyncIterator[int]:
        async for record in acursor_pages(api.afetch):
            yield record

    async def consume() -> list[tuple[int, str | None]]:
        return [(record, current_page_source()) async for record in author_wrote()]

    assert asyncio.run(consume()) == [(1, "page 0"), (2, "page 0"), (3, "page 1")]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@api.example.com/x?page=2", "https://***@api.example.com/x?page=2"),
        ("https://h/x?token=abc&page=2&Api-Key=k", "https://h/x?token=***&page=2&Api-Key=***"),
        ("/relative?secret=1", "/relative?secret=***"),
        ("https://h/cb#access_token=abc", "https://h/cb#access_token=***"),
        ("https://h/plain", "https://h/plain"),
        # credentials under names that are not sensitive keys: Google's key, Azure SAS's sig,
        # OAuth's code, AWS's X-Amz-Signature (Redactor.is_sensitive_parameter's names)
        (
            "https://h/x?key=AIza-k3y&sig=s1g-v4l&code=c0de-1&X-Amz-Signature=abc1&page=2",
            "https://h/x?key=***&sig=***&code=***&X-Amz-Signature=***&page=2",
        ),
    ],
)
def test_shown_urls_keep_the_page_and_mask_the_secrets(url: str, shown: str) -> None:
    """Credentials in the authority and secret-looking query values are masked; the rest stays."""
    assert shown_url(url) == shown
