"""The aiohttp application: the API endpoints under /v1, the error model, fault injection.

Every API request gets an ``x-request-id`` (both generations), is counted, then may be delayed (latency) or
answered by a fault, then authenticated (and, when billed, checked for credit), then validated; error bodies
are ``{"detail": ...}`` as the contract describes. Routes a generation does not have (``GET /catalogs`` in
the current one, ``/me`` and ``/domains/{host}`` in the seed era) answer 404 like an unknown route.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from octogen_source.sandbox.admin import add_admin_routes
from octogen_source.sandbox.answers import ApiError, Reply
from octogen_source.sandbox.faults import Fault
from octogen_source.sandbox.generations import ApiGeneration
from octogen_source.sandbox.state import Caller, SandboxState
from octogen_source.sandbox.validation import RequestValidationError
from octogen_source.sandbox.wire import dumps

HOST = "127.0.0.1"
REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID = web.RequestKey("request_id", str)
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
# today's API names its failures; lookups have their own codes
_CURRENT_FAULT_DETAILS = {**_FAULT_DETAILS, "429": "rate_limit_exceeded"}
_CURRENT_LOOKUP_FAULT_DETAILS = {
    **_CURRENT_FAULT_DETAILS,
    "429": "product_lookup_rate_limited",
    "502": "product_lookup_upstream_failed",
    "504": "product_lookup_timed_out",
}

logger = logging.getLogger(__name__)
Responder = Callable[[Caller, bytes, str], bytes | Reply]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def error_response(status: int, detail: object, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(dumps({"detail": detail}), status, headers)


def request_id_of(request: web.Request) -> str:
    return request.get(REQUEST_ID, "")


def fault_response(
    request: web.Request, fault: Fault, generation: ApiGeneration, endpoint: str, state: SandboxState
) -> web.StreamResponse:
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
    if generation == "seed":
        return error_response(int(fault.kind), _FAULT_DETAILS[fault.kind], headers)
    if fault.kind == "429":
        headers.update(state.rate_limit_headers(exhausted=True))
    details = _CURRENT_LOOKUP_FAULT_DETAILS if endpoint == "lookup" else _CURRENT_FAULT_DETAILS
    return error_response(int(fault.kind), details[fault.kind], headers)


OVERSIZED_PREFIX = b'{"items": [{"uuid": "oversized", "title": "'
_OVERSIZED_CHUNK = b"A" * (1024 * 1024)


async def oversized_response(request: web.Request, size: int) -> web.StreamResponse:
    """200 with ``size`` bytes of a JSON document that never ends, streamed in 1 MiB chunks (no length)."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.headers[REQUEST_ID_HEADER] = request_id_of(request)
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = OVERSIZED_PREFIX[:size]
    await response.write(chunk)
    sent = len(chunk)
    try:
        while sent < size:
            chunk = _OVERSIZED_CHUNK[: size - sent]
            await response.write(chunk)
            sent += len(chunk)
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass  # the client stopped reading, as it should
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer carries ``x-request-id``; unknown routes, wrong methods and crashes answer with a JSON
    ``detail`` like the real API."""
    request_id = str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.empty_body:
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        allow = {k: v for k, v in exc.headers.items() if k == "Allow"}
        response = error_response(exc.status, exc.reason, allow)
    except Exception:
        logger.exception("sandbox handler failed for %s %s", request.method, request.path)
        response = error_response(500, "Internal Server Error")
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _not_found() -> web.Response:
    return error_response(404, "Not Found")


class ApiHandlers:
    def __init__(self, state: SandboxState) -> None:
        self._state = state

    async def _serve(
        self,
        request: web.Request,
        endpoint: str,
        respond: Responder,
        *,
        only: ApiGeneration | None = None,
        billed: bool = True,
    ) -> web.StreamResponse:
        fault, latency, generation = self._state.begin_request(endpoint, only)
        if only is not None and generation != only:
            return _not_found()
        if latency:
            await asyncio.sleep(latency)
        if fault is not None and fault.kind == "oversized":
            return await oversized_response(request, fault.body_bytes)
        if fault is not None:
            return fault_response(request, fault, generation, endpoint, self._state)
        try:
            caller = self._state.authorize(request.headers.get("Authorization"), billed=billed)
            raw = await request.read() if request.can_read_body else b""
            answer = respond(caller, raw, request_id_of(request))
        except ApiError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            return error_response(exc.status, exc.detail, {**headers, **exc.headers})
        except RequestValidationError as exc:
            return error_response(422, exc.errors)
        if isinstance(answer, Reply):
            return web.Response(
                body=answer.body, headers=answer.headers, content_type=answer.content_type, charset="utf-8"
            )
        return json_response(answer)

    async def catalogs(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "catalogs", self._state.catalogs_body, only="seed")

    async def search(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "search", self._state.search_body)

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "lookup", self._state.lookup_body)

    async def me(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "me", self._state.me_body, only="current", billed=False)

    async def domain(self, request: web.Request) -> web.StreamResponse:
        host = request.match_info["host"]
        return await self._serve(
            request,
            "domains",
            lambda caller, _raw, _rid: self._state.domain_body(caller, host),
            only="current",
        )


def create_app(state: SandboxState) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    api = ApiHandlers(state)
    app.router.add_get("/v1/catalogs", api.catalogs)
    app.router.add_post("/v1/products/search", api.search)
    app.router.add_post("/v1/products/lookup", api.lookup)
    app.router.add_get("/v1/me", api.me)
    app.router.add_get("/v1/domains/{host}", api.domain)
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
