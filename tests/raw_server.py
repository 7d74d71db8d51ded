"""A raw HTTP server on 127.0.0.1 for the client's transport tests: each connection scripted byte for byte
(``raw_server(script)``), every request recorded (request line, headers, body)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from octogen_source.client import OctogenClient
from octogen_source.retries import RetryPolicy

KEY = "octo_live_00112233445566778899aabbccddeeff_dHJhbnNwb3J0LXNlY3JldA"
NO_RETRIES = RetryPolicy(max_attempts=1)
PAGE: dict[str, Any] = {"items": [], "nextCursor": None}

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]


@dataclass
class RawServer:
    base_url: str
    port: int
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[tuple[bytes, dict[str, str], bytes]] = field(default_factory=list)


async def read_request(reader: asyncio.StreamReader, server: RawServer) -> bool:
    """Reads one request (head and Content-Length body) into ``server.requests``; False at end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False
    line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (h.partition(":") for h in header_lines if h)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    server.requests.append((line.encode(), headers, body))
    return True


def answer(body: bytes, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


async def answer_every_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    while await read_request(reader, server):
        writer.write(answer(json.dumps(PAGE).encode()))
        await writer.drain()


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[RawServer]:
    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        try:
            await script(reader, writer, state)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            state.open_now -= 1
            writer.close()

    listener = await asyncio.start_server(connected, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    state = RawServer(base_url=f"http://127.0.0.1:{port}/v1", port=port)
    try:
        yield state
    finally:
        listener.close()
        await listener.wait_closed()


def client_for(server: RawServer, **kwargs: Any) -> OctogenClient:
    return OctogenClient(api_key=KEY, base_url=server.base_url, retry=NO_RETRIES, **kwargs)
