"""The aiohttp application: the three API endpoints under /v1, the error model, fault injection.

Every API request is counted, then may be delayed (latency) or answered by a fault, then authenticated, then
validated; error bodies are ``{"detail": ...}`` as the contract describes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from octogen_source.sandbox.admin import add_admin_routes
from octogen_source.sandbox.faults import Fault
from octogen_source.sandbox.state import ApiError, SandboxState
from octogen_source.sandbox.validation import RequestValidationError
from octogen_source.sandbox.wire import dumps

HOST = "127.0.0.1"
# Handlers still running at stop (e.g. sleeping for injected latency) are cancelled after this long.
SHUTDOWN_TIMEOUT_SECONDS = 0.1
# A truncated JSON document: the body of a "garbage" fault.
GARBAGE_BODY = b'{"items": [{"uuid": "<html><body>upstream returned an unexpected page'
_FAULT_DETAILS = {
    "429": "Too Many Requests",
    "500": "Internal Server Error",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
    "504": "Gateway Timeout",
}

logger = logging.getLogger(__name__)
Responder = Callable[[frozenset[str], bytes], bytes]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def error_response(status: int, detail: object, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(dumps({"detail": detail}), status, headers)


def fault_response(request: web.Request, fault: Fault) -> web.StreamResponse:
    if fault.kind == "drop":
        # Close the connection without answering; writing the response below then fails quietly.
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=500)
    if fault.kind == "garbage":
        return json_response(GARBAGE_BODY)
    headers = {}
    retry_after = fault.retry_after_header()
    if fault.kind == "429" and retry_after is not None:
        headers["Retry-After"] = retry_after
    return error_response(int(fault.kind), _FAULT_DETAILS[fault.kind], headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes, wrong methods and crashes answer with a JSON ``detail`` like the real API."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.empty_body:
            raise
        return error_response(exc.status, exc.reason, {k: v for k, v in exc.headers.items() if k == "Allow"})
    except Exception:
        logger.exception("sandbox handler failed for %s %s", request.method, request.path)
        return error_response(500, "Internal Server Error")


class ApiHandlers:
    def __init__(self, state: SandboxState) -> None:
        self._state = state

    async def _serve(self, request: web.Request, endpoint: str, respond: Responder) -> web.StreamResponse:
        fault, latency = self._state.begin_request(endpoint)
        if latency:
            await asyncio.sleep(latency)
        if fault is not None:
            return fault_response(request, fault)
        try:
            grants = self._state.authorize(request.headers.get("Authorization"))
            raw = await request.read() if request.can_read_body else b""
            return json_response(respond(grants, raw))
        except ApiError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return error_response(exc.status, exc.detail, headers)
        except RequestValidationError as exc:
            return error_response(422, exc.errors)

    async def catalogs(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "catalogs", lambda grants, _raw: self._state.catalogs_body(grants))

    async def search(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "search", self._state.search_body)

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "lookup", self._state.lookup_body)


def create_app(state: SandboxState) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    api = ApiHandlers(state)
    app.router.add_get("/v1/catalogs", api.catalogs)
    app.router.add_post("/v1/products/search", api.search)
    app.router.add_post("/v1/products/lookup", api.lookup)
    add_admin_routes(app, state)
    return app


def bind_socket(port: int) -> socket.socket:
    """A listening-ready TCP socket on 127.0.0.1 (port 0: a free port); OSError when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


async def start_server(state: SandboxState, sock: socket.socket) -> web.AppRunner:
    """Serve ``state`` on ``sock`` in the running loop; stop with ``await runner.cleanup()``."""
    runner = web.AppRunner(create_app(state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}/v1"
