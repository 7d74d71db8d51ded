"""A walk asks for the next page as soon as the page it waits for has arrived, by the cursor read from the
body's bytes, before the page is parsed; the parsed page then says whether that was its cursor. Against a raw
HTTP server on 127.0.0.1 (tests/test_aiohttp_transport.py's), nothing mocked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from octogen_source.client import _cursor_in
from octogen_source.models import WireSearchPage
from tests.raw_server import RawServer, answer, client_for, raw_server, read_request

PAGES = 5


@pytest.mark.parametrize(
    ("body", "cursor"),
    [
        (b'{"items": [], "nextCursor": "c2"}', "c2"),
        (b'{"items":[],"nextCursor" : "a\\"b\\\\c"}', 'a"b\\c'),
        (b'{"items": [], "nextCursor": null}', None),
        (b'{"items": [], "requestId": "r"}', None),
        (b'{"items": [{"nextCursor": "hit"}], "nextCursor": "page"}', "page"),
        (b'{"items": [], "nextCursor": "unterminated', None),
        (b'{"items": [], "nextCursor": 7}', None),
    ],
)
def test_the_cursor_read_from_the_bytes(body: bytes, cursor: str | None) -> None:
    assert _cursor_in(body) == cursor


def page_body(number: int, *, hit_key_after: bool) -> bytes:
    """Page ``number`` of the current API (1-based); with ``hit_key_after`` a hit carries a ``nextCursor`` of
    its own after the envelope's, so the bytes' last ``nextCursor`` is not the page's."""
    envelope: dict[str, Any] = {"requestId": f"r{number}", "effectiveQuery": {"text": ""}}
    if number < PAGES:
        envelope["nextCursor"] = f"c{number + 1}"
    hit: dict[str, Any] = {"uuid": f"u{number}", "title": f"Hit {number}"}
    if hit_key_after:
        hit["nextCursor"] = f"not-a-cursor-{number}"
    envelope["items"] = [hit]
    return json.dumps(envelope).encode()


async def walk_against(hit_key_after: bool) -> tuple[list[WireSearchPage], list[str | None]]:
    async def pages(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer) -> None:
        while await read_request(reader, server):
            cursor = json.loads(server.requests[-1][2]).get("cursor")
            number = int(cursor[1:]) if cursor and cursor.startswith("c") else 1
            writer.write(answer(page_body(number, hit_key_after=hit_key_after)))
            await writer.drain()

    async with raw_server(pages) as server, client_for(server) as client:
        walked = [page async for page in client.iter_wire_search_pages(catalogs=["alpha"], limit=1)]
    return walked, [json.loads(body).get("cursor") for _, _, body in server.requests]


async def test_a_right_guess_is_the_next_request_and_no_request_is_made_twice() -> None:
    walked, cursors = await walk_against(hit_key_after=False)
    assert [page["items"][0]["uuid"] for page in walked] == [f"u{n}" for n in range(1, PAGES + 1)]
    assert cursors == [None, *(f"c{n}" for n in range(2, PAGES + 1))]


async def test_a_wrong_guess_is_dropped_and_the_page_s_own_cursor_followed() -> None:
    walked, cursors = await walk_against(hit_key_after=True)
    assert [page["items"][0]["uuid"] for page in walked] == [f"u{n}" for n in range(1, PAGES + 1)]
    assert [page["nextCursor"] for page in walked] == [*(f"c{n}" for n in range(2, PAGES + 1)), None]
    # every page's own cursor asked for once, in order; the guesses (a hit's key) at most once each beside
    # them
    real = [cursor for cursor in cursors if cursor is None or cursor.startswith("c")]
    assert real == [None, *(f"c{n}" for n in range(2, PAGES + 1))]
    guesses = [cursor for cursor in cursors if cursor not in real]
    assert guesses and all(str(cursor).startswith("not-a-cursor-") for cursor in guesses)
