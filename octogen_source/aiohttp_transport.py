"""httpx's transport over aiohttp's client: the client keeps httpx's API (requests, responses, errors, event
hooks, timeouts) and sends through aiohttp, whose HTTP/1.1 parser is compiled.

Measured on loopback (1,500 small POSTs one after another, 2 ms server delay): 1.16-1.28 ms of the client's
CPU a request through httpx's own transport (httpcore, h11, anyio), 0.65-0.70 ms through this one (aiohttp
alone: 0.31-0.34). A sync's walk makes one request per page and one per lookup on one core
(docs/performance.md, nineteenth round).

What differs from httpx's transport is kept out of sight: aiohttp's errors become httpx's
(:class:`httpx.TransportError` subclasses, their messages without headers), proxies and CA certificates come
stay httpx's (it sends a request that ``HTTP(S)_PROXY`` routes through a proxy by a transport of its own),
CA certificates come from httpx's bundle, cookies stay httpx's business, and the trace
extension the walk uses to know that a request's body is on the wire is honoured
(``send_request_body.complete``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
from yarl import URL

_CHUNK_BYTES = 64 * 1024

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]
"""httpcore's ``trace`` request extension: called with an event name and its details."""

BODY_SENT = "http11.send_request_body.complete"


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one aiohttp session (opened on the first request, in its event loop), at
    most ``max_connections`` connections at once, idle ones kept ``keepalive_expiry`` seconds."""

    def __init__(self, *, max_connections: int, keepalive_expiry: float = 5.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        tracing = aiohttp.TraceConfig()
        tracing.on_request_chunk_sent.append(_body_sent)
        tracing.on_request_headers_sent.append(_headers_sent)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=self._max_connections,
            keepalive_timeout=self._keepalive_expiry,
            # the CA bundle httpx verifies with (certifi, or SSL_CERT_FILE / SSL_CERT_DIR)
            ssl=httpx.create_ssl_context(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # httpx decodes the body (and counts the decoded bytes)
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            trace_configs=[tracing],
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        trace: Trace | None = request.extensions.get("trace")
        content = await request.aread()
        headers = [(name, value) for name, value in request.headers.multi_items() if name != "host"]
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=content or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeouts.get("pool"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
                trace_request_ctx=SimpleNamespace(trace=trace, has_body=bool(content)),
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _httpx_error(error, request) from None
        return httpx.Response(
            status_code=response.status,
            headers=[
                (name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers
            ],
            stream=_ResponseBody(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK_BYTES):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _httpx_error(error, self._request) from None

    async def aclose(self) -> None:
        # a body read to its end leaves the connection for the next request; any other is closed
        self._response.release()


async def _headers_sent(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestHeadersSentParams
) -> None:
    wanted = context.trace_request_ctx
    if wanted is not None and wanted.trace is not None and not wanted.has_body:
        await wanted.trace(BODY_SENT, {})


async def _body_sent(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestChunkSentParams
) -> None:
    wanted = context.trace_request_ctx
    if wanted is not None and wanted.trace is not None:
        await wanted.trace(BODY_SENT, {})


def _httpx_error(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for an aiohttp one; its message names what failed, never the request's headers."""
    message = _describe(error)
    kind: type[httpx.TransportError]
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(error, (aiohttp.SocketTimeoutError, TimeoutError, asyncio.TimeoutError)):
        kind = httpx.ReadTimeout
    elif isinstance(error, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(
        error, (aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError, aiohttp.ClientPayloadError)
    ):
        kind = httpx.RemoteProtocolError
    elif isinstance(error, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    elif isinstance(error, aiohttp.ClientOSError):
        kind = httpx.ReadError
    else:
        kind = httpx.NetworkError
    return kind(message, request=request)


def _describe(error: BaseException) -> str:
    """One line: aiohttp's parser draws a caret under the bad bytes on lines of their own."""
    if isinstance(error, aiohttp.ServerDisconnectedError):
        text = "Server disconnected without sending a complete response."
    elif isinstance(error, aiohttp.ClientResponseError):
        # its str() carries the request's info, headers included; its status is the parser's 400 (no
        # status came)
        text = error.message
    elif isinstance(error, aiohttp.ClientConnectorError):
        text = f"Cannot connect to {error.host}:{error.port}: {error.os_error.strerror or error.os_error}"
    else:
        text = str(error) or type(error).__name__
    lines = (line.strip() for line in text.splitlines())
    return " ".join(line for line in lines if line.strip("^ "))
