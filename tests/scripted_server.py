"""A scripted HTTP server for the client tests: an aiohttp app on 127.0.0.1, in the test's own event loop,
that answers from a script and records every request it sees (``time.monotonic()`` and ``time.time()``
stamps, headers, JSON body). The ``server`` fixture starts one per test."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from octogen_source.client import OctogenClient
from octogen_source.retries import RetryPolicy

KEY = "octo_live_00112233445566778899aabbccddeeff_c2VjcmV0LXNlY3JldA"
FAST_RETRIES = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
HIT = {"uuid": "u1", "productUrl": "https://shop.example/p/1", "title": "Linen Dress", "updatedAt": None}


def page(items: list[dict[str, Any]], next_cursor: str | None) -> Reply:
    """A page of the seed-era API: ``nextCursor`` always present, no ``requestId``."""
    return Reply(200, json.dumps({"items": items, "nextCursor": next_cursor}).encode())


def current_page(items: list[dict[str, Any]], next_cursor: str | None) -> Reply:
    """A page of the current API: ``requestId``/``effectiveQuery``, no ``nextCursor`` on the last page."""
    body: dict[str, Any] = {
        "items": items,
        "requestId": "r-1",
        "effectiveQuery": {"text": "", "understood": False},
    }
    if next_cursor is not None:
        body["nextCursor"] = next_cursor
    return Reply(200, json.dumps(body).encode())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"items": [], "nextCursor": null, "product": null}'  # an empty page or lookup
    headers: dict[str, str] | None = None
    hang: bool = False


@dataclass
class Seen:
    monotonic: float
    wall: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.base_url = ""

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.seen.append(
            Seen(
                time.monotonic(),
                time.time(),
                request.method,
                request.path,
                dict(request.headers),
                json.loads(raw) if raw else None,
            )
        )
        reply = self.replies.popleft() if self.replies else Reply()
        if reply.hang:
            await asyncio.sleep(30)
        return web.Response(
            status=reply.status,
            body=reply.body,
            headers={"Content-Type": "application/json", **(reply.headers or {})},
        )


@asynccontextmanager
async def loopback_app(handle: Handler) -> AsyncIterator[str]:
    """An aiohttp app answering every request with ``handle``, served on 127.0.0.1 in the running event
    loop; yields its base URL (ending in ``/v1``)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/v1"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def scripted_server() -> AsyncIterator[ScriptedServer]:
    """A running :class:`ScriptedServer` (a test module's ``server`` fixture yields one)."""
    scripted = ScriptedServer()
    async with loopback_app(scripted.handle) as base_url:
        scripted.base_url = base_url
        yield scripted


def make_client(server: ScriptedServer, **options: Any) -> OctogenClient:
    options.setdefault("retry", FAST_RETRIES)
    return OctogenClient(api_key=KEY, base_url=server.base_url + "/", **options)
