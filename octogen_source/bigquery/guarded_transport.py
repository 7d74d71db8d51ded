"""An httpx transport that checks the control plane's answers before the ``mcp`` SDK sees them.

The SDK reads a POST's answer inside a task that, on a body it cannot parse (an HTML page answered with HTTP
200, truncated JSON, JSON that is no JSON-RPC message), logs a pydantic traceback and leaves the request
waiting for its read timeout (30 s) although the whole body has arrived. This transport reads each 2xx POST
answer itself, at most :data:`MAX_CONTROL_PLANE_RESPONSE_BYTES` of it (a larger ``Content-Length`` is refused
before a byte of the body is read; a longer body is cut off as soon as it passes the limit), checks that it
is JSON-RPC (one JSON object, or server-sent events whose data are), and raises
:class:`UnusableResponseError` otherwise: the call fails at once with one line. Good answers are handed on
unchanged. An HTTP error status raises :class:`RefusedRequestError` with the status, on mcp 1.x and 2.x
alike (2.x itself turns it into a JSON-RPC error without the status; both read a 404 as "session terminated",
where each call opens a session of its own and a 404 means a wrong URL).
GET streams (the SDK's optional server-to-client channel) pass untouched.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from octogen_source.bigquery._mcp_compat import (
    httpx,  # httpx2 under mcp 2.x: the SDK's HTTP library, same API
    validate_json_rpc_message,
)

MAX_CONTROL_PLANE_RESPONSE_BYTES = 8 * 1024 * 1024
"""The largest control-plane answer read; the tools' answers are a few kilobytes to a few hundred."""

_JSON = "application/json"
_SSE = "text/event-stream"


class UnusableResponseError(Exception):
    """The control plane answered something that is not a usable JSON-RPC message (message: one line)."""


class RefusedRequestError(Exception):
    """The control plane answered a POST with an HTTP error status (401, 403, 422, 500, ...)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class GuardedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        max_response_bytes: int | None = None,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._max_response_bytes = max_response_bytes

    @property
    def max_response_bytes(self) -> int:
        # Read at call time so the module constant can be changed (tests, unusual deployments).
        return self._max_response_bytes or MAX_CONTROL_PLANE_RESPONSE_BYTES

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.method != "POST":
            return response
        if response.status_code >= 400:
            await response.aclose()
            raise RefusedRequestError(response.status_code)
        if response.status_code not in (200, 201):
            return response
        try:
            body = await self._bounded_body(response)
        finally:
            await response.aclose()
        check_json_rpc_body(response.headers, body)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(body),
            extensions=response.extensions,
        )

    async def _bounded_body(self, response: httpx.Response) -> bytes:
        limit = self.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise UnusableResponseError(
                f"answered with {int(declared):,} bytes, more than the {limit:,} accepted; refused unread"
            )
        chunks: list[bytes] = []
        size = 0
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise UnusableResponseError(f"answered with more than the {limit:,} bytes accepted; cut off")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._inner.aclose()


def check_json_rpc_body(headers: httpx.Headers, raw: bytes) -> None:
    """Raise :class:`UnusableResponseError` unless ``raw`` is a JSON-RPC answer of its content type."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    text = _decoded_text(headers, raw)
    if content_type == _JSON:
        _check_message(_parse_json(text, what="its JSON"))
    elif content_type == _SSE:
        messages = [_parse_json(data, what="an event's data") for data in _sse_data(text) if data.strip()]
        if not messages:
            raise UnusableResponseError("answered with an event stream holding no message")
        for message in messages:
            _check_message(message)
    else:
        shown = content_type or "no content type"
        raise UnusableResponseError(
            f"answered HTTP 200 with {shown}, not JSON-RPC: is the URL the MCP endpoint?"
        )


def _decoded_text(headers: httpx.Headers, raw: bytes) -> str:
    try:
        decoded = httpx.Response(200, headers=headers, content=raw).read()
        return decoded.decode("utf-8")
    except (httpx.DecodingError, UnicodeDecodeError):
        raise UnusableResponseError("answered with a body that is not UTF-8 text") from None


def _parse_json(text: str, *, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        shape = "empty" if not text.strip() else f"truncated or not JSON ({len(text):,} characters)"
        raise UnusableResponseError(f"answered HTTP 200 but {what} is {shape}") from None


def _check_message(document: Any) -> None:
    try:
        validate_json_rpc_message(document)
    except ValidationError:
        raise UnusableResponseError("answered with JSON that is not a JSON-RPC message") from None


def _sse_data(text: str) -> list[str]:
    events: list[str] = []
    data: list[str] = []
    for line in text.splitlines():
        if not line:
            if data:
                events.append("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        events.append("\n".join(data))
    return events
