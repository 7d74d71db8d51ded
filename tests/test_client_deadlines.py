"""Every attempt of a request is bounded as a whole (headers and body), and the whole request, retries
included, by the retry time budget (``RetryPolicy.max_total_seconds``, ``retry_max_seconds``).

httpx's read timeout applies to each read, so a body trickled a few bytes at a time, a body without
``Content-Length`` on a connection kept open, or a ``Content-Length`` longer than the body sent would each
hold an attempt far past the client's timeout. A raw HTTP/1.1 server on 127.0.0.1 (asyncio streams: the
malformed framings cannot be sent through aiohttp) plays each of them; every case must fail within the
budget plus a small slack, with the client's one-line error naming the endpoint and the budget.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from octogen_source.client import OctogenClient
from octogen_source.errors import OctogenConnectionError
from octogen_source.retries import RetryPolicy
from tests.scripted_server import KEY

# a valid page of the current API (so a scoped search is not sent again), ≈ 2 KB
BODY = json.dumps(
    {"items": [], "requestId": "r-1", "effectiveQuery": {"text": "x" * 2000, "understood": False}}
).encode()
SLACK = 1.0
"""How far past its budget a request may end: the scheduling of a loaded 2-CPU machine, never the design."""

Behaviour = Callable[[asyncio.StreamWriter, int], Awaitable[None]]
"""Answers the ``n``-th request (from 0) on ``writer``; returns when the connection may serve another."""


@dataclass
class RawServer:
    base_url: str = ""
    seen: list[float] = field(default_factory=list)
    """``time.monotonic()`` of every request received."""


@asynccontextmanager
async def raw_server(behaviour: Behaviour) -> AsyncIterator[RawServer]:
    """An HTTP/1.1 server on 127.0.0.1 reading requests (head and ``Content-Length`` body) and answering
    each with ``behaviour``; its handlers are cancelled on exit."""
    state = RawServer()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                number = len(state.seen)
                state.seen.append(time.monotonic())
                await behaviour(writer, number)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the server is closing: a handler that ends quietly
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers)
        await server.wait_closed()


def head(length: int | None = None) -> bytes:
    framing = "" if length is None else f"Content-Length: {length}\r\n"
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{framing}\r\n".encode()


async def trickle(writer: asyncio.StreamWriter, body: bytes, size: int, every: float) -> None:
    for start in range(0, len(body), size):
        writer.write(body[start : start + size])
        await writer.drain()
        await asyncio.sleep(every)


async def trickled_body(writer: asyncio.StreamWriter, number: int) -> None:
    """A valid 2 KB body at 100 bytes/s (10 bytes every 0.1 s): 20 s, each read well within the timeout."""
    writer.write(head(len(BODY)))
    await trickle(writer, BODY, 10, 0.1)


async def no_answer(writer: asyncio.StreamWriter, number: int) -> None:
    await asyncio.Event().wait()


async def open_without_length(writer: asyncio.StreamWriter, number: int) -> None:
    """A whole JSON body with no ``Content-Length`` (so it ends when the connection does), kept open."""
    writer.write(head() + b'{"items": []}')
    await writer.drain()
    await asyncio.Event().wait()


async def length_too_long(writer: asyncio.StreamWriter, number: int) -> None:
    """A ``Content-Length`` 100 bytes more than the body sent, the connection kept open."""
    body = b'{"items": [], "nextCursor": null}'
    writer.write(head(len(body) + 100) + body)
    await writer.drain()
    await asyncio.Event().wait()


def client(base_url: str, *, timeout: float | httpx.Timeout, budget: float) -> OctogenClient:
    policy = RetryPolicy(max_attempts=6, max_total_seconds=budget, initial_backoff=0.01, max_backoff=0.02)
    return OctogenClient(api_key=KEY, base_url=base_url, timeout=timeout, retry=policy)


@pytest.mark.parametrize(
    "behaviour",
    [trickled_body, no_answer, open_without_length, length_too_long],
    ids=["trickled_body", "no_answer", "open_without_length", "length_too_long"],
)
async def test_a_request_never_runs_past_its_time_budget(behaviour: Behaviour) -> None:
    # a 1 s timeout in a 2.5 s budget: attempts cut at 1 s and 2 s, a third one started late gets the rest
    budget = 2.5
    async with raw_server(behaviour) as server, client(server.base_url, timeout=1.0, budget=budget) as api:
        started = time.monotonic()
        with pytest.raises(OctogenConnectionError) as raised:
            await api.search_products(catalogs=["x"])
        elapsed = time.monotonic() - started

    assert budget - 0.05 <= elapsed < budget + SLACK
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("Could not reach the Octogen API on POST /products/search: ")
    assert "no complete answer within 2.5 s, the time budget of the request" in message
    assert raised.value.retryable
    # retried within the budget, every attempt cut at its own 1 s: the third one only got the rest
    assert len(server.seen) == 3
    assert (api.stats.requests, api.stats.retries) == (3, 2)
    assert server.seen[-1] - started < budget - 0.3


async def test_the_budget_alone_bounds_a_request_without_timeouts() -> None:
    async with (
        raw_server(trickled_body) as server,
        client(server.base_url, timeout=httpx.Timeout(None), budget=1.0) as api,
    ):
        started = time.monotonic()
        with pytest.raises(OctogenConnectionError, match="GET /me: no complete answer within 1 s, the time"):
            await api.get_me()
        elapsed = time.monotonic() - started

    assert 0.95 <= elapsed < 1.0 + SLACK
    assert len(server.seen) == 1


async def test_a_budget_shorter_than_the_timeout_cuts_the_first_attempt() -> None:
    async with raw_server(no_answer) as server, client(server.base_url, timeout=30.0, budget=0.5) as api:
        started = time.monotonic()
        with pytest.raises(
            OctogenConnectionError, match=r"no complete answer within 0\.5 s, the time budget"
        ):
            await api.get_me()
        assert time.monotonic() - started < 0.5 + SLACK
    assert len(server.seen) == 1


async def test_a_trickled_body_is_a_timeout_and_retried() -> None:
    async def first_trickles(writer: asyncio.StreamWriter, number: int) -> None:
        if number == 0:
            await trickled_body(writer, number)
        else:
            writer.write(head(len(BODY)) + BODY)
            await writer.drain()

    async with raw_server(first_trickles) as server, client(server.base_url, timeout=0.5, budget=10) as api:
        started = time.monotonic()
        page = await api.search_products(catalogs=["x"])
        elapsed = time.monotonic() - started

    assert page.items == []
    assert len(server.seen) == 2
    assert 0.5 <= server.seen[1] - started < 0.5 + SLACK
    assert elapsed < 0.5 + SLACK
    assert (api.stats.requests, api.stats.retries) == (2, 1)


async def test_the_attempt_timeout_is_one_line_naming_it() -> None:
    async with raw_server(no_answer) as server:
        policy = RetryPolicy(max_attempts=1, max_total_seconds=10)
        async with OctogenClient(api_key=KEY, base_url=server.base_url, timeout=0.3, retry=policy) as api:
            with pytest.raises(OctogenConnectionError) as raised:
                await api.get_me()

    assert str(raised.value) == (
        "Could not reach the Octogen API on GET /me: no complete answer within 0.3 s (the request timeout)"
    )


async def test_a_slow_answer_within_the_timeout_and_budget_succeeds() -> None:
    async def slow(writer: asyncio.StreamWriter, number: int) -> None:
        await asyncio.sleep(0.3)  # the head late,
        writer.write(head(len(BODY)))
        await trickle(writer, BODY, 700, 0.2)  # and the body in three chunks 0.2 s apart: 0.7 s in all

    async with raw_server(slow) as server, client(server.base_url, timeout=3.0, budget=5.0) as api:
        started = time.monotonic()
        page = await api.search_products(catalogs=["x"])
        elapsed = time.monotonic() - started

    assert page.items == []
    assert 0.65 <= elapsed < 3.0
    assert len(server.seen) == 1
    assert (api.stats.requests, api.stats.retries) == (1, 0)


async def test_the_per_attempt_bound_is_the_longest_of_an_httpx_timeout() -> None:
    # connect 0.2 s, read 1.5 s: an attempt may last 1.5 s in all, so a 0.9 s answer is not cut
    async def slow(writer: asyncio.StreamWriter, number: int) -> None:
        writer.write(head(len(BODY)))
        await trickle(writer, BODY, 700, 0.3)

    timeout = httpx.Timeout(0.2, read=1.5)
    async with raw_server(slow) as server, client(server.base_url, timeout=timeout, budget=5.0) as api:
        await api.search_products(catalogs=["x"])
    assert len(server.seen) == 1
