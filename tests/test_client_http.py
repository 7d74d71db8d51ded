"""What the client puts on the wire and how it treats what the sandbox cannot script.

A small aiohttp server on 127.0.0.1, in the test's own event loop, answers from a script and records every
request it sees (with ``time.monotonic()`` and ``time.time()`` stamps): exact request bodies and headers,
``Retry-After`` as seconds and as an HTTP date, the shared rate-limit gate, a server that never answers,
bodies that are not JSON, and statuses outside the documented ones.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from octogen_source.errors import (
    OctogenAPIError,
    OctogenConnectionError,
    OctogenResponseError,
)
from octogen_source.models import Facet
from octogen_source.retries import RetryPolicy
from tests.scripted_server import (
    HIT,
    KEY,
    Reply,
    ScriptedServer,
    current_page,
    make_client,
    page,
    scripted_server,
)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with scripted_server() as running:
        yield running


# ---- the wire ------------------------------------------------------------------------------------------


async def test_every_request_carries_the_bearer_key(server: ScriptedServer) -> None:
    server.script(Reply(body=b"[]"), page([], None), Reply(body=json.dumps({"product": None}).encode()))
    async with make_client(server) as client:
        await client.list_catalogs()
        await client.search_products()
        await client.lookup_product("https://shop.example/p/1")

    assert [(seen.method, seen.path) for seen in server.seen] == [
        ("GET", "/v1/catalogs"),
        ("POST", "/v1/products/search"),
        ("POST", "/v1/products/lookup"),
    ]
    assert all(seen.headers["Authorization"] == f"Bearer {KEY}" for seen in server.seen)
    assert server.seen[0].body is None
    assert server.seen[1].headers["Content-Type"] == "application/json"
    assert server.seen[2].body == {"url": "https://shop.example/p/1"}


async def test_search_body_is_snake_case_and_leaves_out_none(server: ScriptedServer) -> None:
    server.script(current_page([], None), current_page([], None))
    async with make_client(server) as client:
        await client.search_products()
        await client.search_products(
            catalog="northwind",
            q="linen dress",
            facets=[
                Facet(name="brand", values=["acme", "big co"]),
                {"name": "attribute_facets.fit", "values": ["slim"]},
            ],
            price_min=10,
            price_max=99.5,
            cursor="opaque/+=cursor",
            limit=25,
        )

    assert server.seen[0].body == {"limit": 50}
    assert server.seen[1].body == {
        "catalogs": ["northwind"],
        "q": "linen dress",
        "facets": [
            {"name": "brand", "values": ["acme", "big co"]},
            {"name": "attribute_facets.fit", "values": ["slim"]},
        ],
        "price_min": 10,
        "price_max": 99.5,
        "cursor": "opaque/+=cursor",
        "limit": 25,
    }


async def test_the_page_walk_resends_the_filters_with_each_cursor_verbatim(server: ScriptedServer) -> None:
    cursors = ["c1==", "c2/with spaces+", None]
    server.script(
        *(current_page([{**HIT, "uuid": f"u{index}"}], cursor) for index, cursor in enumerate(cursors))
    )
    async with make_client(server) as client:
        walk = client.iter_search_pages(
            catalog="northwind",
            q="dress",
            facets=[{"name": "color", "values": ["red"]}],
            price_max=50.0,
            limit=1,
        )
        pages = [walked async for walked in walk]

    assert [walked.next_cursor for walked in pages] == cursors
    expected = {
        "catalogs": ["northwind"],
        "q": "dress",
        "facets": [{"name": "color", "values": ["red"]}],
        "price_max": 50.0,
        "limit": 1,
    }
    assert [seen.body for seen in server.seen] == [
        expected,
        {**expected, "cursor": "c1=="},
        {**expected, "cursor": "c2/with spaces+"},
    ]


async def test_a_walk_stops_when_the_api_repeats_a_cursor(server: ScriptedServer) -> None:
    server.script(page([HIT], "same"), page([HIT], "same"))
    async with make_client(server) as client:
        with pytest.raises(OctogenResponseError, match="sent back the cursor it was given"):
            [walked async for walked in client.iter_search_pages()]
    assert len(server.seen) == 2


async def test_the_timeout_applies_through_a_callers_http_client(server: ScriptedServer) -> None:
    server.script(Reply(hang=True))
    async with httpx.AsyncClient(timeout=60) as http:
        client = make_client(server, http_client=http, timeout=0.2, retry=RetryPolicy(max_attempts=1))
        started = time.monotonic()
        with pytest.raises(
            OctogenConnectionError, match=r"no complete answer within 0\.2 s \(the request timeout\)"
        ):
            await client.list_catalogs()
        assert time.monotonic() - started < 30
        assert not http.is_closed


# ---- Retry-After and the rate-limit gate -----------------------------------------------------------------


async def test_a_429_waits_for_retry_after_seconds(server: ScriptedServer) -> None:
    server.script(Reply(429, b'{"detail": "Too Many Requests"}', {"Retry-After": "0.3"}), page([HIT], None))
    async with make_client(server) as client:
        result = await client.search_products()

    assert [item.uuid for item in result.items] == ["u1"]
    assert len(server.seen) == 2
    assert server.seen[1].monotonic - server.seen[0].monotonic >= 0.3
    assert (client.stats.requests, client.stats.retries) == (2, 1)


async def test_a_429_waits_for_retry_after_as_an_http_date(server: ScriptedServer) -> None:
    not_before = math.ceil(time.time()) + 1  # an HTTP date has whole seconds: 1 to 2 s from now
    server.script(
        Reply(
            429, b'{"detail": "slow down"}', {"Retry-After": email.utils.formatdate(not_before, usegmt=True)}
        ),
        Reply(body=b"[]"),
    )
    async with make_client(server) as client:
        assert await client.list_catalogs() == []

    assert len(server.seen) == 2
    assert server.seen[1].wall >= not_before


async def test_a_429_holds_every_request_of_the_client(server: ScriptedServer) -> None:
    server.script(Reply(429, b'{"detail": "Too Many Requests"}', {"Retry-After": "0.4"}))
    retrying = asyncio.Event()

    class OnRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            retrying.set()

    handler = OnRetry()
    logger = logging.getLogger("octogen_source.client")
    level = logger.level
    logger.setLevel(logging.INFO)  # retries are logged at INFO
    logger.addHandler(handler)
    try:
        async with make_client(server) as client:
            first = asyncio.create_task(client.search_products())
            await retrying.wait()  # the 429 has been seen: the gate is closed
            await client.lookup_product("https://shop.example/p/1")
            await first
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    limited, *later = server.seen
    assert len(later) == 2
    assert all(seen.monotonic - limited.monotonic >= 0.4 for seen in later)
    assert {seen.path for seen in later} == {"/v1/products/search", "/v1/products/lookup"}


async def test_a_retry_after_beyond_the_time_budget_gives_up_at_once(server: ScriptedServer) -> None:
    server.script(Reply(429, b'{"detail": "Too Many Requests"}', {"Retry-After": "30"}))
    policy = RetryPolicy(max_attempts=5, max_total_seconds=2.0, initial_backoff=0.01)
    async with make_client(server, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(OctogenAPIError) as raised:
            await client.search_products()
        assert (raised.value.status_code, raised.value.detail) == (429, "Too Many Requests")
        # every other request of the client now fails fast too, without being sent
        with pytest.raises(OctogenAPIError, match="rate limited for another") as gated:
            await client.list_catalogs()
        assert time.monotonic() - started < 2.0

    assert gated.value.status_code == 429
    assert len(server.seen) == 1
    assert client.stats.requests == 1


async def test_requests_refused_by_the_gate_do_not_extend_it(server: ScriptedServer) -> None:
    server.script(Reply(429, b'{"detail": "Too Many Requests"}', {"Retry-After": "0.6"}), Reply(body=b"[]"))
    policy = RetryPolicy(max_attempts=3, max_total_seconds=0.3, initial_backoff=0.01)
    async with make_client(server, retry=policy) as client:
        with pytest.raises(OctogenAPIError):
            await client.list_catalogs()
        for _ in range(3):
            with pytest.raises(OctogenAPIError, match="rate limited for another"):
                await client.list_catalogs()
        await asyncio.sleep(0.6 - (time.monotonic() - server.seen[0].monotonic))
        assert await client.list_catalogs() == []

    assert len(server.seen) == 2
    assert server.seen[1].monotonic - server.seen[0].monotonic >= 0.6


async def test_backoff_stops_within_the_total_time_budget(server: ScriptedServer) -> None:
    server.script(*[Reply(503, b'{"detail": "Service Unavailable"}')] * 100)
    policy = RetryPolicy(max_attempts=100, max_total_seconds=0.5, initial_backoff=0.1, max_backoff=0.1)
    # each attempt's start and end as the client saw them (the server's clock adds the transit, which on a
    # loaded machine is up to a scheduler slice or more)
    sent: list[float] = []
    answered: list[float] = []

    async def on_request(request: httpx.Request) -> None:
        sent.append(time.monotonic())

    async def on_response(response: httpx.Response) -> None:
        answered.append(time.monotonic())

    hooks: dict[str, list[Callable[..., Any]]] = {"request": [on_request], "response": [on_response]}
    http = httpx.AsyncClient(event_hooks=hooks)
    async with http, make_client(server, retry=policy, http_client=http) as client:
        started = time.monotonic()
        with pytest.raises((OctogenAPIError, OctogenConnectionError)) as raised:
            await client.list_catalogs()

    if isinstance(raised.value, OctogenAPIError):  # the last attempt's answer
        assert raised.value.status_code == 503
    else:  # on a loaded machine the budget may run out during the last attempt: said so, in one line
        assert "the time budget of the request, retries included" in str(raised.value)
    assert len(server.seen) <= len(sent)  # one cut short by the budget may not have reached the server
    # waits of 0.1-0.2 s: no attempt starts after 0.5 s (a few ms of slack: the budget's clock starts inside
    # the call), so at most 5 attempts were made
    assert 1 <= len(sent) <= 5
    assert sent[-1] - started < 0.5 + 0.05
    # a second attempt was made unless the first alone took most of the budget (a machine under load)
    if answered and answered[0] - started < 0.3:
        assert len(sent) >= 2


async def test_a_server_that_never_answers_is_a_connection_error_after_the_attempts(
    server: ScriptedServer,
) -> None:
    server.script(Reply(hang=True), Reply(hang=True))
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.01)
    async with make_client(server, timeout=httpx.Timeout(0.2), retry=policy) as client:
        with pytest.raises(OctogenConnectionError) as raised:
            await client.list_catalogs()

    # the attempt as a whole is bounded by the timeout: it ends before httpx's read timeout (started later)
    assert str(raised.value) == (
        "Could not reach the Octogen API on GET /catalogs: no complete answer within 0.2 s"
        " (the request timeout)"
    )
    assert len(server.seen) == 2
    assert (client.stats.requests, client.stats.retries) == (2, 1)


# ---- bodies and statuses the contract does not promise --------------------------------------------------


async def test_an_error_body_that_is_not_json_is_retried_and_reported(server: ScriptedServer) -> None:
    server.script(Reply(502, b"<html><body>Bad gateway</body></html>"), page([HIT], None))
    async with make_client(server) as client:
        assert len((await client.search_products()).items) == 1

    server.script(*[Reply(502, b"<html>\n<body>Bad gateway</body></html>")] * 3)
    async with make_client(server) as client:
        with pytest.raises(OctogenAPIError) as raised:
            await client.search_products()
    assert raised.value.status_code == 502
    assert raised.value.detail == "<html> <body>Bad gateway</body></html>"
    assert (
        str(raised.value)
        == "Octogen API 502 on POST /products/search: <html> <body>Bad gateway</body></html>"
    )
    assert len(server.seen) == 2 + 3


@pytest.mark.parametrize("body", [b"", b"<!doctype html><p>maintenance</p>", b'{"items": [{"uuid": "x"'])
async def test_a_success_body_that_is_not_json_is_a_clear_api_error(
    server: ScriptedServer, body: bytes
) -> None:
    server.script(Reply(200, body))
    async with make_client(server) as client:
        with pytest.raises(OctogenResponseError) as raised:
            await client.search_products()

    error = raised.value
    assert error.status_code == 200
    assert isinstance(error.detail, str) and error.detail.startswith("invalid JSON response")
    assert str(error).startswith("Octogen API 200 on POST /products/search: invalid JSON response")
    assert error.response is not None and error.response.content == body
    assert len(server.seen) == 1


async def test_a_success_body_of_the_wrong_shape_is_a_clear_api_error(server: ScriptedServer) -> None:
    server.script(Reply(200, b'{"results": []}'))
    async with make_client(server) as client:
        with pytest.raises(OctogenResponseError) as raised:
            await client.search_products()
    assert raised.value.status_code == 200
    assert str(raised.value) == (
        "Octogen API 200 on POST /products/search: unexpected response shape: items: Field required"
    )


@pytest.mark.parametrize("status", [400, 409, 418, 451])
async def test_other_4xx_raise_the_base_error_and_are_never_retried(
    server: ScriptedServer, status: int
) -> None:
    server.script(Reply(status, json.dumps({"detail": {"code": "nope", "hint": "ask"}}).encode()))
    async with make_client(server) as client:
        with pytest.raises(OctogenAPIError) as raised:
            await client.list_catalogs()

    assert type(raised.value) is OctogenAPIError
    assert raised.value.status_code == status
    assert raised.value.detail == {"code": "nope", "hint": "ask"}
    assert len(server.seen) == 1


async def test_a_detail_echoing_the_key_is_redacted(server: ScriptedServer) -> None:
    server.script(Reply(401, json.dumps({"detail": f"Invalid API key {KEY}\nrejected"}).encode()))
    async with make_client(server) as client:
        with pytest.raises(OctogenAPIError) as raised:
            await client.list_catalogs()
    assert KEY not in str(raised.value) and KEY not in str(raised.value.detail)
    assert str(raised.value) == "Octogen API 401 on GET /catalogs: Invalid API key [redacted] rejected"
