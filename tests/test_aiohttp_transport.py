"""The client's transport (httpx over aiohttp): what httpx's own transport did, it still does, against a raw
HTTP server on 127.0.0.1 that scripts each connection byte for byte (nothing mocked)."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
import pytest

from octogen_source.aiohttp_transport import BODY_SENT, AiohttpTransport
from octogen_source.client import OctogenClient
from octogen_source.errors import OctogenConnectionError, OctogenResponseTooLargeError
from tests.raw_server import (
    KEY,
    NO_RETRIES,
    PAGE,
    RawServer,
    Script,
    answer,
    answer_every_request,
    client_for,
    raw_server,
    read_request,
)

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_requests_go_out_as_httpx_built_them_and_reuse_one_connection() -> None:
    async with raw_server(answer_every_request) as server, client_for(server) as client:
        assert isinstance(client._http._transport, AiohttpTransport)
        for _ in range(20):
            page = await client.search_products(q="linen", limit=5)
            assert page.items == [] and page.next_cursor is None
    assert server.connections == 1
    line, headers, body = server.requests[0]
    assert line == b"POST /v1/products/search HTTP/1.1"
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["user-agent"] == "octogen-dlt"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert json.loads(body)["q"] == "linen"
    assert len(server.requests) == 20


async def test_connections_stay_within_max_connections() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer) -> None:
        while await read_request(reader, server):
            await asyncio.sleep(0.05)
            writer.write(answer(json.dumps(PAGE).encode()))
            await writer.drain()

    async with raw_server(slow) as server, client_for(server, max_connections=2) as client:
        await asyncio.gather(*(client.search_products(q=str(n)) for n in range(8)))
    assert (server.most_open, server.connections, len(server.requests)) == (2, 2, 8)


async def test_the_trace_hears_that_the_body_is_on_the_wire_before_the_answer() -> None:
    """The walk asks for the next page and goes on with the current one once the request's body is sent:
    the server here answers only after the trace has said so (a trace that never spoke would time the test
    out)."""
    told = asyncio.Event()

    async def after_the_trace(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server):
            await asyncio.wait_for(told.wait(), 10)
            writer.write(answer(b"{}"))
            await writer.drain()

    events: list[str] = []

    async def trace(event: str, info: dict[str, Any]) -> None:
        events.append(event)
        if event == BODY_SENT:
            told.set()

    async with (
        raw_server(after_the_trace) as server,
        httpx.AsyncClient(transport=AiohttpTransport(max_connections=1)) as http,
    ):
        for body in ({"a": 1}, None):  # a body, then none (GET)
            told.clear()
            method = "POST" if body is not None else "GET"
            request = http.build_request(
                method, server.base_url + "/x", json=body, extensions={"trace": trace}
            )
            response = await http.send(request)
            assert response.status_code == 200 and told.is_set()
    assert events.count(BODY_SENT) >= 2


async def close_without_answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    await read_request(reader, server)


async def garbage_status_line(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    await read_request(reader, server)
    writer.write(b"<html>not http</html>\r\n\r\n")
    await writer.drain()


async def truncated_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    await read_request(reader, server)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b'{"items": [')
    await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer) -> None:
    await read_request(reader, server)
    await reader.read()  # until the client gives up and closes


@pytest.mark.parametrize(
    ("script", "expected", "reason"),
    [
        (close_without_answer, httpx.RemoteProtocolError, "RemoteProtocolError: Server disconnected"),
        (
            garbage_status_line,
            httpx.RemoteProtocolError,
            "RemoteProtocolError: Bad status line: Expected HTTP/, RTSP/ or ICE/: b'<html>not http</html>'",
        ),
        (truncated_body, httpx.RemoteProtocolError, "RemoteProtocolError: Response payload is not completed"),
        # the client's own deadline for the attempt (as long as the longest timeout) ends it first
        (silent, httpx.ReadTimeout, "no complete answer within 0.3 s (the request timeout)"),
    ],
    ids=["closed", "not-http", "truncated", "read-timeout"],
)
async def test_aiohttp_errors_arrive_as_httpx_errors_without_the_headers(
    script: Script, expected: type[httpx.TransportError], reason: str
) -> None:
    async with raw_server(script) as server:
        async with httpx.AsyncClient(
            transport=AiohttpTransport(max_connections=1),
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=httpx.Timeout(0.3),
        ) as http:
            with pytest.raises(expected) as caught:
                response = await http.post(server.base_url + "/products/search", json={})
                await response.aread()
        assert caught.value.request.url == server.base_url + "/products/search"
        assert KEY not in str(caught.value) and KEY not in repr(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__

        # through the client: one line, retryable like any dropped connection, the key nowhere
        async with client_for(server, timeout=0.3) as client:
            with pytest.raises(OctogenConnectionError) as failed:
                await client.search_products(q="x")
        assert str(failed.value).startswith(
            f"Could not reach the Octogen API on POST /products/search: {reason}"
        )
        assert KEY not in str(failed.value) and "\n" not in str(failed.value)


async def test_an_unreachable_host_is_a_connect_error() -> None:
    async with raw_server(answer_every_request) as server:
        port = server.port
    async with OctogenClient(api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", retry=NO_RETRIES) as client:
        with pytest.raises(OctogenConnectionError) as failed:
            await client.search_products(q="x")
    assert str(failed.value).startswith(
        "Could not reach the Octogen API on POST /products/search: ConnectError: Cannot connect to"
        f" 127.0.0.1:{port}"
    )


async def test_a_body_left_unread_is_not_read_by_the_next_request() -> None:
    """An answer refused for its size leaves the rest of its body on its connection: that connection is
    closed, and the next request gets its own answer on a new one."""
    big = json.dumps({"items": [{"uuid": "u", "title": "x" * 200_000}], "nextCursor": None}).encode()
    small = json.dumps(PAGE).encode()

    async def big_then_small(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server):
            writer.write(answer(big if len(server.requests) == 1 else small))
            await writer.drain()

    async with (
        raw_server(big_then_small) as server,
        client_for(server, max_response_bytes=64 * 1024) as client,
    ):
        with pytest.raises(OctogenResponseTooLargeError):
            await client.search_products(q="big")
        page = await client.search_products(q="small")
    assert page.items == []
    assert (server.connections, len(server.requests)) == (2, 2)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "https_proxy", "ALL_PROXY"])
async def test_a_proxy_in_the_environment_is_used_as_before(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx follows the proxy variables only through its own transports: with one set, the client keeps
    httpx's (the fake proxy here sees the absolute URL a proxy is sent)."""
    async with raw_server(answer_every_request) as proxy:
        monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
        async with OctogenClient(
            api_key=KEY, base_url="http://catalog.invalid/v1", retry=NO_RETRIES
        ) as client:
            assert not isinstance(client._http._transport, AiohttpTransport)
            if variable.lower() == "https_proxy":
                return  # an http:// URL does not go through it; the client still left the choice to httpx
            page = await client.search_products(q="x")
    assert page.items == []
    assert proxy.requests[0][0] == b"POST http://catalog.invalid/v1/products/search HTTP/1.1"


async def test_a_compressed_answer_is_decoded_and_counted_decoded() -> None:
    """aiohttp leaves the body as sent; httpx decodes it (``Content-Encoding: gzip``) and the size limit
    counts the decoded bytes: a small gzip body that inflates past it is refused."""
    page = json.dumps({"items": [{"uuid": "u1", "title": "Linen Dress"}], "nextCursor": None}).encode()
    bomb = gzip.compress(json.dumps({"items": [], "nextCursor": None, "pad": " " * 300_000}).encode())

    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer) -> None:
        while await read_request(reader, server):
            body = gzip.compress(page) if len(server.requests) == 1 else bomb
            writer.write(answer(body, extra=b"Content-Encoding: gzip\r\n"))
            await writer.drain()

    async with raw_server(gzipped) as server, client_for(server, max_response_bytes=64 * 1024) as client:
        found = await client.search_products(q="linen")
        assert [item.title for item in found.items] == ["Linen Dress"]
        assert len(bomb) < 64 * 1024
        with pytest.raises(OctogenResponseTooLargeError):
            await client.search_products(q="bomb")
    assert "gzip" in server.requests[0][1]["accept-encoding"]
