"""A local fake of Octogen's MCP control plane, for tests with the official ``mcp`` client over real HTTP.

A real MCP server (``mcp`` 2.x ``MCPServer`` or 1.x ``FastMCP``, Streamable HTTP, stateless, JSON
responses) served by uvicorn on 127.0.0.1 in a background thread, behind a bearer-token check that answers
HTTP 401 for a missing or wrong token (like the real control plane's OAuth access tokens). Its four tools
read and write a scriptable in-memory state:

    with FakeControlPlane() as control_plane:
        control_plane.url, control_plane.token
        control_plane.add_listing("shoes")
        reader = control_plane.add_subscriber("acme", "serviceAccount:r@acme.iam.gserviceaccount.com")
        control_plane.set_cell(reader, "shoes", "awaiting_subscription")
        control_plane.fail_tool("list_bigquery_subscribers", "not_authorized")   # tool-level error result
        control_plane.fail_http(403)                                             # transport failure
        control_plane.calls, control_plane.mutating_calls                        # what clients called

Behaviour of the tools (the contract's "The control plane" section):
- ``list_bigquery_listing_resources(catalogs?)``: the granted listings (filtered); a filter naming an
  ungranted catalog (:meth:`revoke_catalog`) answers ``{"error": "catalog_not_granted"}``.
- ``list_bigquery_subscribers()``: ``{subscribers, cells}``.
- ``register_bigquery_subscriber(request)``: idempotent on (project, principal); a new subscriber gets one
  cell per granted listing in :attr:`register_cell_status` (``preparing``: the grant is asynchronous).
- ``refresh_bigquery_subscription_status(catalog_key, subscriber_principal, ...)``: an
  ``awaiting_subscription`` cell becomes :attr:`refresh_status` (``active``) when
  :attr:`linked_dataset_exists` (default: always) says the subscriber's linked dataset exists (it gets
  the cell, completed with the listing's resource and location, and the subscriber); answers
  ``{status, ...}``.

How a tool's value travels (``result_style``): ``"wrapped"`` (default, as current servers do it): structured
content ``{"result": <value>}`` plus a text part holding the value's JSON; ``"structured"`` (older servers):
the value itself as structured content (a list wrapped as ``{"result": [...]}``, structured content being an
object); ``"text"``: a text part holding JSON only.

Garbage on the wire (:meth:`answer_raw`): the next HTTP request(s) get a scripted raw answer (status,
content type, body, optionally a declared ``Content-Length`` that does not match, or a streamed body of
``stream_bytes`` bytes without a length); :attr:`raw_bytes_sent` counts what was streamed.
Access tokens minted elsewhere (the fake authorization server) become valid with :meth:`allow_token`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import uvicorn
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict

from octogen_source.bigquery._mcp_compat import MCP_MAJOR

if TYPE_CHECKING or MCP_MAJOR >= 2:
    from mcp.server.mcpserver import MCPServer
else:
    from mcp.server.fastmcp import FastMCP as MCPServer

# Stateless, JSON answers: constructor options in mcp 1.x, streamable_http_app() options in 2.x.
_TRANSPORT_OPTIONS: dict[str, Any] = {"stateless_http": True, "json_response": True}

ResultStyle = Literal["wrapped", "structured", "text"]


def tool_result(
    content: list[TextContent], structured: dict[str, Any] | None = None, *, is_error: bool = False
) -> CallToolResult:
    """A tool result built from its wire form (camelCase), which mcp 1.x and 2.x both read (their field
    names differ: ``structuredContent``/``isError`` in 1.x, ``structured_content``/``is_error`` in 2.x)."""
    wire: dict[str, Any] = {"content": content, "isError": is_error}
    if structured is not None:
        wire["structuredContent"] = structured
    return CallToolResult.model_validate(wire)


LIST_LISTINGS = "list_bigquery_listing_resources"
LIST_SUBSCRIBERS = "list_bigquery_subscribers"
REGISTER = "register_bigquery_subscriber"
REFRESH = "refresh_bigquery_subscription_status"
MUTATING_TOOLS = frozenset({REGISTER, REFRESH})

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


@dataclass(frozen=True)
class ToolCall:
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class RawAnswer:
    status: int
    content_type: str
    body: bytes = b""
    declared_length: int | None = None  # a Content-Length that may lie
    stream_bytes: int = 0  # > 0: stream this many filler bytes (no Content-Length) instead of body


@dataclass
class _ToolFailure:
    error: str
    catalog_key: str | None
    detail: str | None
    remaining: int | None  # None: until clear_failures()


class RegisterRequest(BaseModel):
    """``register_bigquery_subscriber``'s ``request`` argument, validated like a real server would."""

    model_config = ConfigDict(extra="forbid")

    subscriberProjectId: str  # wire names
    subscriberPrincipal: str
    shareSchema: str | None = None
    schemaVersion: str | int | None = None


def listing_resource_name(catalog_key: str, *, project: str = "octogen-share", location: str = "us") -> str:
    return f"projects/{project}/locations/{location}/dataExchanges/octogen_catalogs/listings/{catalog_key}"


class FakeControlPlane:
    def __init__(
        self,
        *,
        token: str | None = None,
        result_style: ResultStyle = "wrapped",
    ) -> None:
        self.token = token or f"cp_{secrets.token_hex(16)}"
        self._initial_result_style: ResultStyle = result_style
        self._lock = threading.RLock()
        self.reset()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> FakeControlPlane:
        app = self._bearer_checked(
            self._mcp_server().streamable_http_app(**(_TRANSPORT_OPTIONS if MCP_MAJOR >= 2 else {}))
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake control plane did not start")
            time.sleep(0.005)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeControlPlane:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    # state and scripting ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to an empty control plane (one valid token: :attr:`token`), e.g. between tests."""
        with self._lock:
            self.result_style = self._initial_result_style
            self.register_cell_status = "preparing"
            self.refresh_status = "active"
            self.linked_dataset_exists: Callable[[dict[str, Any], dict[str, Any]], bool] = lambda cell, sub: (
                True
            )
            self.http_requests = 0
            self.rejected_tokens = 0
            self.raw_bytes_sent = 0
            self._raw_answers: deque[RawAnswer] = deque()
            self._valid_tokens = {self.token}
            self._listings: dict[str, dict[str, Any]] = {}
            self._ungranted: set[str] = set()
            self._subscribers: list[dict[str, Any]] = []
            self._cells: list[dict[str, Any]] = []
            self._calls: list[ToolCall] = []
            self._tool_failures: dict[str, list[_ToolFailure]] = {}
            self._http_failures: deque[int] = deque()
            self._counter = 0

    def add_listing(
        self,
        catalog_key: str,
        *,
        location: str = "us",
        linked_dataset_suggestion: str | None = None,
        status: str = "published",
    ) -> dict[str, Any]:
        listing = {
            "catalogKey": catalog_key,
            "status": status,
            "location": location,
            "listingResource": listing_resource_name(catalog_key, location=location),
            "linkedDatasetSuggestion": linked_dataset_suggestion
            or f"octogen_{catalog_key.replace('-', '_')}",
            "sampleQuery": f"SELECT * FROM `octogen_{catalog_key}.products_current_v1` LIMIT 10",
        }
        with self._lock:
            self._listings[catalog_key] = listing
        return copy.deepcopy(listing)

    def revoke_catalog(self, catalog_key: str) -> None:
        """The caller is no longer granted ``catalog_key``: filtered listings and refreshes of it fail."""
        with self._lock:
            self._ungranted.add(catalog_key)

    def add_subscriber(
        self, project: str, principal: str, *, desired_state: str = "enabled", share_schema: str | None = None
    ) -> str:
        with self._lock:
            return self._new_subscriber(project, principal, desired_state, share_schema)["subscriberId"]

    def set_cell(
        self,
        subscriber_id: str,
        catalog_key: str,
        status: str,
        *,
        reason_code: str | None = None,
        listing_fields: bool = True,
        **wire_fields: Any,
    ) -> dict[str, Any]:
        """Create or replace the (subscriber, catalog) cell; ``listing_fields`` copies the listing's
        resource, location and dataset suggestion into it; ``wire_fields`` (camelCase) override."""
        with self._lock:
            cell: dict[str, Any] = {
                "subscriberId": subscriber_id,
                "catalogKey": catalog_key,
                "status": status,
            }
            if reason_code is not None:
                cell["reasonCode"] = reason_code
            listing = self._listings.get(catalog_key)
            if listing_fields and listing is not None:
                cell["listingResource"] = listing["listingResource"]
                cell["location"] = listing["location"]
                cell["linkedDatasetSuggestion"] = listing["linkedDatasetSuggestion"]
            cell.update({key: value for key, value in wire_fields.items()})
            self._cells = [
                c
                for c in self._cells
                if not (c["subscriberId"] == subscriber_id and c["catalogKey"] == catalog_key)
            ]
            self._cells.append(cell)
            return copy.deepcopy(cell)

    def cell(self, subscriber_id: str, catalog_key: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._find_cell(subscriber_id, catalog_key)
            return copy.deepcopy(found) if found else None

    def cell_status(self, subscriber_id: str, catalog_key: str) -> str | None:
        found = self.cell(subscriber_id, catalog_key)
        return None if found is None else found["status"]

    @property
    def subscribers(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._subscribers)

    @property
    def cells(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._cells)

    def fail_tool(
        self,
        tool: str,
        error: str,
        *,
        catalog_key: str | None = None,
        detail: str | None = None,
        times: int | None = None,
    ) -> None:
        """``tool`` answers ``{"error": error}`` (for ``catalog_key`` only, if given), ``times`` times or
        until :meth:`clear_failures`."""
        with self._lock:
            self._tool_failures.setdefault(tool, []).append(_ToolFailure(error, catalog_key, detail, times))

    def fail_http(self, status: int, *, count: int = 1) -> None:
        """The next ``count`` HTTP requests are answered with ``status`` before reaching the MCP server."""
        with self._lock:
            self._http_failures.extend([status] * count)

    def answer_raw(self, answer: RawAnswer, *, count: int = 1) -> None:
        """The next ``count`` HTTP requests get ``answer`` (garbage, a lying length, a huge stream)."""
        with self._lock:
            self._raw_answers.extend([answer] * count)

    def clear_failures(self) -> None:
        with self._lock:
            self._tool_failures.clear()
            self._http_failures.clear()
            self._raw_answers.clear()

    def set_tokens(self, *tokens: str) -> None:
        with self._lock:
            self._valid_tokens = set(tokens)

    def allow_token(self, token: str) -> None:
        """``token`` (e.g. minted by the fake authorization server) is accepted from now on."""
        with self._lock:
            self._valid_tokens.add(token)

    @property
    def calls(self) -> list[ToolCall]:
        with self._lock:
            return list(self._calls)

    @property
    def mutating_calls(self) -> list[ToolCall]:
        return [call for call in self.calls if call.tool in MUTATING_TOOLS]

    def calls_of(self, tool: str) -> list[dict[str, Any]]:
        return [call.arguments for call in self.calls if call.tool == tool]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # the MCP server --------------------------------------------------------------------------------------
    def _mcp_server(self) -> MCPServer:
        server = MCPServer(
            "fake-octogen-control-plane",
            log_level="WARNING",
            **({} if MCP_MAJOR >= 2 else _TRANSPORT_OPTIONS),
        )

        @server.tool(name=LIST_LISTINGS)
        def list_listings(catalogs: list[str] | None = None) -> CallToolResult:
            with self._lock:
                self._record(LIST_LISTINGS, {"catalogs": catalogs} if catalogs is not None else {})
                failure = self._take_failure(LIST_LISTINGS, catalogs or [])
                if failure:
                    return self._result(failure)
                if catalogs and any(key in self._ungranted for key in catalogs):
                    return self._result({"error": "catalog_not_granted"})
                found = [
                    copy.deepcopy(listing)
                    for key, listing in sorted(self._listings.items())
                    if key not in self._ungranted and (not catalogs or key in catalogs)
                ]
                return self._result(found)

        @server.tool(name=LIST_SUBSCRIBERS)
        def list_subscribers() -> CallToolResult:
            with self._lock:
                self._record(LIST_SUBSCRIBERS, {})
                failure = self._take_failure(LIST_SUBSCRIBERS, [])
                if failure:
                    return self._result(failure)
                return self._result({"subscribers": self.subscribers, "cells": self.cells})

        @server.tool(name=REGISTER)
        def register(request: RegisterRequest) -> CallToolResult:
            with self._lock:
                self._record(REGISTER, {"request": request.model_dump(exclude_none=True)})
                failure = self._take_failure(REGISTER, [])
                if failure:
                    return self._result(failure)
                subscriber = next(
                    (
                        s
                        for s in self._subscribers
                        if s["subscriberProjectId"] == request.subscriberProjectId
                        and s["subscriberPrincipal"] == request.subscriberPrincipal
                    ),
                    None,
                )
                if subscriber is None:
                    subscriber = self._new_subscriber(
                        request.subscriberProjectId,
                        request.subscriberPrincipal,
                        "enabled",
                        request.shareSchema,
                    )
                    for key in sorted(self._listings):
                        if key not in self._ungranted:
                            self.set_cell(subscriber["subscriberId"], key, self.register_cell_status)
                cells = [c for c in self._cells if c["subscriberId"] == subscriber["subscriberId"]]
                return self._result({"subscriber": copy.deepcopy(subscriber), "cells": copy.deepcopy(cells)})

        @server.tool(name=REFRESH)
        def refresh(
            catalog_key: str,
            subscriber_principal: str,
            share_schema: str | None = None,
            schema_version: str | int | None = None,
        ) -> CallToolResult:
            arguments: dict[str, Any] = {
                "catalog_key": catalog_key,
                "subscriber_principal": subscriber_principal,
            }
            if share_schema is not None:
                arguments["share_schema"] = share_schema
            if schema_version is not None:
                arguments["schema_version"] = schema_version
            with self._lock:
                self._record(REFRESH, arguments)
                failure = self._take_failure(REFRESH, [catalog_key])
                if failure:
                    return self._result(failure)
                if catalog_key in self._ungranted:
                    return self._result({"error": "catalog_not_granted"})
                subscriber = next(
                    (s for s in self._subscribers if s["subscriberPrincipal"] == subscriber_principal), None
                )
                if subscriber is None:
                    return self._result({"error": "not_authorized", "detail": "unknown subscriber principal"})
                cell = self._find_cell(subscriber["subscriberId"], catalog_key)
                if cell is None:
                    return self._result({"error": "catalog_not_granted"})
                listing = self._listings.get(catalog_key, {})
                seen = {
                    "listingResource": listing.get("listingResource"),
                    "location": listing.get("location"),
                    **cell,
                }
                if cell["status"] == "awaiting_subscription" and self.linked_dataset_exists(seen, subscriber):
                    cell["status"] = self.refresh_status
                return self._result(
                    {
                        "status": cell["status"],
                        "catalogKey": catalog_key,
                        "subscriberId": subscriber["subscriberId"],
                    }
                )

        return server

    def _bearer_checked(self, app: ASGIApp) -> ASGIApp:
        async def checked(
            scope: MutableMapping[str, Any],
            receive: Callable[[], Awaitable[Any]],
            send: Callable[[Any], Awaitable[None]],
        ) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            with self._lock:
                self.http_requests += 1
                scripted = self._http_failures.popleft() if self._http_failures else None
                raw = self._raw_answers.popleft() if scripted is None and self._raw_answers else None
                authorized = authorization.removeprefix("Bearer ") in self._valid_tokens
                if scripted is None and raw is None and not authorized:
                    self.rejected_tokens += 1
            if raw is not None:
                await self._send_raw(receive, send, raw)
            elif scripted is not None:
                await _respond(send, scripted, {"error": f"scripted_{scripted}"})
            elif not authorized:
                await _respond(
                    send,
                    401,
                    {
                        "error": "invalid_token",
                        "error_description": "access token missing, invalid or expired",
                    },
                    extra_headers=[(b"www-authenticate", b'Bearer error="invalid_token"')],
                )
            else:
                await app(scope, receive, send)

        return checked

    async def _send_raw(
        self,
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
        raw: RawAnswer,
    ) -> None:
        headers = [(b"content-type", raw.content_type.encode())]
        if raw.stream_bytes == 0:
            length = len(raw.body) if raw.declared_length is None else raw.declared_length
            headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": raw.status, "headers": headers})
        if raw.stream_bytes == 0:
            await send({"type": "http.response.body", "body": raw.body})
            return
        chunk = b'{"filler": "' + b"x" * (64 * 1024) + b'"}\n'
        sent = 0
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch())
        try:
            while sent < raw.stream_bytes and not disconnected.is_set():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await asyncio.sleep(0)  # lets the watcher see a hang-up (send to a closed peer never waits)
                sent += len(chunk)
                with self._lock:
                    self.raw_bytes_sent = sent
            await send({"type": "http.response.body", "body": b""})
        except Exception:  # the client hung up: that is the point
            return
        finally:
            watcher.cancel()

    # helpers (called with the lock held) ------------------------------------------------------------------
    def _new_subscriber(
        self, project: str, principal: str, desired_state: str, share_schema: str | None
    ) -> dict[str, Any]:
        self._counter += 1
        subscriber = {
            "subscriberId": f"sub-{self._counter}",
            "subscriberProjectId": project,
            "subscriberPrincipal": principal,
            "desiredState": desired_state,
        }
        if share_schema is not None:
            subscriber["shareSchema"] = share_schema
        self._subscribers.append(subscriber)
        return subscriber

    def _find_cell(self, subscriber_id: str, catalog_key: str) -> dict[str, Any] | None:
        return next(
            (c for c in self._cells if c["subscriberId"] == subscriber_id and c["catalogKey"] == catalog_key),
            None,
        )

    def _record(self, tool: str, arguments: dict[str, Any]) -> None:
        self._calls.append(ToolCall(tool, copy.deepcopy(arguments)))

    def _take_failure(self, tool: str, catalog_keys: list[str]) -> dict[str, Any] | None:
        for failure in self._tool_failures.get(tool, []):
            if failure.remaining == 0:
                continue
            if failure.catalog_key is not None and failure.catalog_key not in catalog_keys:
                continue
            if failure.remaining is not None:
                failure.remaining -= 1
            body: dict[str, Any] = {"error": failure.error}
            if failure.detail:
                body["detail"] = failure.detail
            return body
        return None

    def _result(self, payload: Any) -> CallToolResult:
        text = TextContent(type="text", text=json.dumps(payload))
        if self.result_style == "text":
            return tool_result([text])
        if self.result_style == "wrapped":
            return tool_result([text], {"result": payload})
        # Structured content must be an object: lists travel wrapped, as FastMCP does it.
        structured = payload if isinstance(payload, dict) else {"result": payload}
        return tool_result([text], structured)


async def _respond(
    send: Callable[[Any], Awaitable[None]],
    status: int,
    body: dict[str, Any],
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    encoded = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(encoded)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": encoded})
