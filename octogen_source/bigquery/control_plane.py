"""Client for the vendor's MCP control plane (Streamable HTTP, bearer access tokens).

The control plane exposes four tools an unattended autosubscribe job calls (see "The control plane" in the
API contract). This module owns everything about talking to it: getting a short-lived access token,
calling a tool, turning its result (structured content or a text part holding JSON) into typed records, and
mapping every failure to one readable :class:`ControlPlaneError`.

Built on the official ``mcp`` SDK, 1.x or 2.x (:mod:`._mcp_compat` holds the differences). It uses
``streamable_http_client(url, http_client=...)`` (the 1.x replacement of the deprecated
``streamablehttp_client(url, headers=...)``, and the only form 2.x keeps) with our own ``AsyncClient`` (of
``httpx``, or of ``httpx2`` under mcp 2.x), whose auth adds the bearer token to each request: the token never
reaches a URL, a log line or an exception message.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from octogen_source.bigquery._mcp_compat import (
    MCPError,
    httpx,  # httpx2 under mcp 2.x: the SDK's HTTP library, same API
    is_error,
    read_timeout,
    structured_content,
)
from octogen_source.bigquery.guarded_transport import (
    GuardedTransport,
    RefusedRequestError,
    UnusableResponseError,
)
from octogen_source.bigquery.oauth import keeps_tokens_private
from octogen_source.errors import OctogenError

DEFAULT_CONTROL_PLANE_URL = "https://mcp.octogen.ai/mcp/"
CONTROL_PLANE_URL_ENV = "OCTOGEN_MCP_URL"
ACCESS_TOKEN_ENV = "OCTOGEN_MCP_ACCESS_TOKEN"
TOKEN_COMMAND_ENV = "OCTOGEN_MCP_TOKEN_COMMAND"

TOKEN_COMMAND_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0

LIST_LISTINGS_TOOL = "list_bigquery_listing_resources"
LIST_SUBSCRIBERS_TOOL = "list_bigquery_subscribers"
REGISTER_SUBSCRIBER_TOOL = "register_bigquery_subscriber"
REFRESH_STATUS_TOOL = "refresh_bigquery_subscription_status"

ModelT = TypeVar("ModelT", bound=BaseModel)

_HTTP_STATUS_MESSAGES = {
    401: "control plane rejected the access token (HTTP 401)",
    403: "control plane refused the request: the access token lacks the required scope (HTTP 403)",
    404: "control plane answered HTTP 404: is the URL the MCP endpoint?",
    422: "control plane rejected the request as invalid (HTTP 422)",
}


class ControlPlaneError(OctogenError):
    """The control plane could not be used: unreachable, token rejected, protocol error or bad result.

    ``status_code`` is the HTTP status when the control plane answered with one (401, 403, 422, ...).
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ControlPlaneTokenError(ControlPlaneError):
    """No access token could be obtained (neither variable set, or the token command failed)."""


class MissingControlPlaneTokenError(ControlPlaneTokenError):
    """No usable credentials are configured: none at all, or a setting that is wrong before any request is
    made (a malformed token, a token command that cannot be parsed or found, a missing file). A usage mistake
    (the CLI's exit status 2), where a configured source that fails when used is the run failing."""


class ControlPlaneToolError(ControlPlaneError):
    """A tool answered with a tool-level failure (``{"error": "catalog_not_granted"}`` and the like).

    ``code`` is the control plane's error code (``catalog_not_granted``, ``not_authorized``,
    ``request_failed``; ``tool_failed`` when the tool failed without one); ``detail`` is its message, if any.
    """

    def __init__(self, tool: str, code: str, detail: str | None = None) -> None:
        message = f"{tool} failed: {code}" + (f" ({detail})" if detail else "")
        super().__init__(message)
        self.tool = tool
        self.code = code
        self.detail = detail


class _WireModel(BaseModel):
    """Control-plane records: camelCase on the wire, snake_case here, unknown fields kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class ListingResource(_WireModel):
    catalog_key: str = Field(alias="catalogKey")
    status: str | None = None
    location: str | None = None
    listing_resource: str | None = Field(default=None, alias="listingResource")
    linked_dataset_suggestion: str | dict[str, Any] | None = Field(
        default=None, alias="linkedDatasetSuggestion"
    )
    sample_query: str | None = Field(default=None, alias="sampleQuery")


class Subscriber(_WireModel):
    subscriber_id: str | None = Field(default=None, alias="subscriberId")
    subscriber_project_id: str | None = Field(default=None, alias="subscriberProjectId")
    subscriber_principal: str | None = Field(default=None, alias="subscriberPrincipal")
    desired_state: str | None = Field(default=None, alias="desiredState")


class SubscriptionCell(_WireModel):
    """One (subscriber, catalog) pair and where its subscription stands."""

    subscriber_id: str | None = Field(default=None, alias="subscriberId")
    catalog_key: str = Field(alias="catalogKey")
    status: str | None = None
    reason_code: str | None = Field(default=None, alias="reasonCode")
    listing_resource: str | None = Field(default=None, alias="listingResource")
    location: str | None = None
    linked_dataset_suggestion: str | dict[str, Any] | None = Field(
        default=None, alias="linkedDatasetSuggestion"
    )
    share_schema: str | None = Field(default=None, alias="shareSchema")
    schema_version: str | int | None = Field(default=None, alias="schemaVersion")


class SubscribersView(_WireModel):
    subscribers: list[Subscriber] = Field(default_factory=list)
    cells: list[SubscriptionCell] = Field(default_factory=list)


class Registration(_WireModel):
    subscriber: Subscriber | None = None
    cells: list[SubscriptionCell] = Field(default_factory=list)


class StatusRefresh(_WireModel):
    status: str | None = None


def suggested_dataset_id(suggestion: str | Mapping[str, Any] | None) -> str | None:
    """The dataset id out of a ``linkedDatasetSuggestion`` (a bare id, ``project.dataset``, or an object)."""
    if suggestion is None:
        return None
    if isinstance(suggestion, Mapping):
        for key in ("datasetId", "dataset_id", "dataset"):
            value = suggestion.get(key)
            if isinstance(value, str) and value:
                return value
        return None
    text = suggestion.strip()
    return text.rsplit(".", 1)[-1].rsplit(":", 1)[-1] or None


def resolve_control_plane_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The URL given, else ``OCTOGEN_MCP_URL``, else the default; see :func:`check_control_plane_url`."""
    environ = os.environ if env is None else env
    return check_control_plane_url(
        explicit or environ.get(CONTROL_PLANE_URL_ENV) or DEFAULT_CONTROL_PLANE_URL
    )


def check_control_plane_url(url: str) -> str:
    """``url`` if it is https with a host, or http to a loopback host (a local server): the access token
    goes to it in a header, so it never travels in clear text (:func:`keeps_tokens_private`, the rule of the
    OAuth endpoints). Else :class:`ControlPlaneError`."""
    if keeps_tokens_private(url):
        return url
    raise ControlPlaneError(
        f"control-plane URL must be an https URL (http only on 127.0.0.1/localhost), got {redact_url(url)!r}"
    )


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment: safe to print."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:  # unparsable: show its start, up to any user info, query or fragment
        return url.split("@")[-1].split("?")[0].split("#")[0][:100]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def resolve_access_token(env: Mapping[str, str] | None = None) -> str:
    """A fresh access token: ``OCTOGEN_MCP_ACCESS_TOKEN``, else the output of ``OCTOGEN_MCP_TOKEN_COMMAND``.

    Tokens live about five minutes, so call this once per pass rather than caching. The command is split
    with :func:`shlex.split` and run without a shell; its stdout is the token (or a JSON object with an
    ``access_token`` field). Neither its output nor its stderr ever appears in an error message.
    """
    environ = os.environ if env is None else env
    token = environ.get(ACCESS_TOKEN_ENV, "").strip()
    if token:
        return checked_token(token, source=ACCESS_TOKEN_ENV)
    command = environ.get(TOKEN_COMMAND_ENV, "").strip()
    if not command:
        raise MissingControlPlaneTokenError(
            f"no control-plane access token: set {ACCESS_TOKEN_ENV} or {TOKEN_COMMAND_ENV}"
        )
    return checked_token(run_token_command(command), source=TOKEN_COMMAND_ENV)


def split_token_command(command: str, *, origin: str = TOKEN_COMMAND_ENV) -> list[str]:
    """``command`` split with :func:`shlex.split`; :class:`MissingControlPlaneTokenError` naming ``origin``
    (the option or variable it came from) when it cannot be parsed or is empty."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise MissingControlPlaneTokenError(f"{origin} cannot be parsed: {exc}") from None
    if not argv or not argv[0]:
        raise MissingControlPlaneTokenError(f"{origin} is empty")
    return argv


def check_token_program(program: str, *, origin: str = TOKEN_COMMAND_ENV) -> None:
    """:class:`MissingControlPlaneTokenError` naming ``program`` as given (a path, or a name looked up on
    ``PATH`` as running it would) when it cannot be run."""
    if shutil.which(program) is not None:
        return
    if os.path.isdir(program) or (os.path.dirname(program) and os.path.exists(program)):
        raise MissingControlPlaneTokenError(f"token command is not executable: {program} ({origin})")
    raise MissingControlPlaneTokenError(f"token command not found: {program} ({origin})")


def run_token_command(command: str, *, origin: str = TOKEN_COMMAND_ENV) -> str:
    argv = split_token_command(command, origin=origin)
    program = argv[0]
    try:
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=TOKEN_COMMAND_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ControlPlaneTokenError(f"token command not found: {program}") from None
    except PermissionError:
        raise ControlPlaneTokenError(f"token command is not executable: {program}") from None
    except subprocess.TimeoutExpired:
        raise ControlPlaneTokenError(
            f"token command {program} did not finish within {TOKEN_COMMAND_TIMEOUT_SECONDS:.0f} s"
        ) from None
    if completed.returncode != 0:
        raise ControlPlaneTokenError(f"token command {program} exited with status {completed.returncode}")
    output = completed.stdout.strip()
    if output.startswith("{"):
        try:
            document = json.loads(output)
        except json.JSONDecodeError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("access_token"), str):
            return cast(str, document["access_token"]).strip()
        raise ControlPlaneTokenError(f"token command {program} printed JSON without an access_token field")
    return output


def checked_token(token: str, *, source: str) -> str:
    if not token:
        raise ControlPlaneTokenError(f"{source} gave an empty access token")
    if any(character.isspace() for character in token) or not token.isprintable():
        raise ControlPlaneTokenError(
            f"{source} gave a malformed access token (whitespace or control characters)"
        )
    return token


AccessTokenProvider = Callable[[], str]
"""Returns a valid access token each time it is called (it may cache, refresh, or block briefly)."""


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` from a provider asked on every request (in a worker thread when
    async, since a refresh may wait for a file lock and an HTTP exchange). The token never reaches a URL."""

    def __init__(self, provider: AccessTokenProvider) -> None:
        self._provider = provider

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._provider()}"
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await anyio.to_thread.run_sync(self._provider)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class ControlPlaneClient:
    """The control plane's four tools; use as ``async with ControlPlaneClient(url, token) as control_plane``.

    Each tool call opens its own short MCP session (initialize, call, close) on a shared HTTP connection
    pool. The control plane is stateless, so this costs a round trip or two per call, and it keeps the SDK's
    task groups (and the ExceptionGroups they raise) inside :meth:`call_tool`: the caller only ever sees
    :class:`ControlPlaneToolError` for a tool-level failure and :class:`ControlPlaneError` for anything
    else (HTTP 401/403/422, unreachable, malformed result).
    """

    def __init__(
        self,
        url: str,
        access_token: str | AccessTokenProvider,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        http_client: httpx.AsyncClient | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        self.url = check_control_plane_url(url)
        self._access_token = access_token
        self._max_response_bytes = max_response_bytes
        self._timeout = timeout
        self._http_client = http_client
        self._owns_http_client = http_client is None

    def __repr__(self) -> str:
        return f"ControlPlaneClient(url={redact_url(self.url)!r})"

    async def __aenter__(self) -> ControlPlaneClient:
        if self._http_client is None:
            token = self._access_token
            self._http_client = httpx.AsyncClient(
                auth=BearerAuth(token if callable(token) else lambda: token),
                # identity: the size limit applies to what is decoded, not to a compressed body
                headers={"Accept-Encoding": "identity"},
                timeout=httpx.Timeout(self._timeout),
                transport=GuardedTransport(max_response_bytes=self._max_response_bytes),
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http_client and self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Call one tool and return its JSON result (a dict or a list); tool-level failures raise."""
        if self._http_client is None:
            raise ControlPlaneError("control-plane client used outside 'async with'")
        try:
            async with (
                streamable_http_client(self.url, http_client=self._http_client) as streams,
                ClientSession(
                    streams[0], streams[1], read_timeout_seconds=read_timeout(self._timeout)
                ) as session,
            ):
                await session.initialize()
                result = await session.call_tool(name, dict(arguments or {}))
        except Exception as exc:
            raise translate_transport_error(exc, url=self.url) from None
        return parse_tool_result(name, result)

    async def list_listing_resources(self, catalogs: Sequence[str] | None = None) -> list[ListingResource]:
        arguments: dict[str, Any] = {"catalogs": list(catalogs)} if catalogs else {}
        payload = await self.call_tool(LIST_LISTINGS_TOOL, arguments)
        return _validated_list(LIST_LISTINGS_TOOL, ListingResource, _unwrap_list(payload))

    async def list_subscribers(self) -> SubscribersView:
        payload = await self.call_tool(LIST_SUBSCRIBERS_TOOL)
        return _validated(LIST_SUBSCRIBERS_TOOL, SubscribersView, payload)

    async def register_subscriber(
        self,
        *,
        project_id: str,
        principal: str,
        share_schema: str | None = None,
        schema_version: str | int | None = None,
    ) -> Registration:
        request: dict[str, Any] = {"subscriberProjectId": project_id, "subscriberPrincipal": principal}
        if share_schema is not None:
            request["shareSchema"] = share_schema
        if schema_version is not None:
            request["schemaVersion"] = schema_version
        payload = await self.call_tool(REGISTER_SUBSCRIBER_TOOL, {"request": request})
        return _validated(REGISTER_SUBSCRIBER_TOOL, Registration, payload)

    async def refresh_subscription_status(
        self,
        *,
        catalog_key: str,
        subscriber_principal: str,
        share_schema: str | None = None,
        schema_version: str | int | None = None,
    ) -> StatusRefresh:
        arguments: dict[str, Any] = {"catalog_key": catalog_key, "subscriber_principal": subscriber_principal}
        if share_schema is not None:
            arguments["share_schema"] = share_schema
        if schema_version is not None:
            arguments["schema_version"] = schema_version
        payload = await self.call_tool(REFRESH_STATUS_TOOL, arguments)
        return _validated(REFRESH_STATUS_TOOL, StatusRefresh, payload)


def translate_transport_error(exc: BaseException, *, url: str) -> ControlPlaneError:
    """One readable :class:`ControlPlaneError` for whatever the SDK raised (often a nested ExceptionGroup)."""
    leaves = list(_leaf_exceptions(exc))
    for leaf in leaves:
        if isinstance(leaf, ControlPlaneError):
            return leaf
    where = redact_url(url)
    for leaf in leaves:
        if isinstance(leaf, UnusableResponseError):
            return ControlPlaneError(f"control plane at {where} {leaf}")
    for leaf in leaves:
        if isinstance(leaf, RefusedRequestError | httpx.HTTPStatusError):
            status = leaf.status_code if isinstance(leaf, RefusedRequestError) else leaf.response.status_code
            message = _HTTP_STATUS_MESSAGES.get(status, f"control plane answered HTTP {status}")
            return ControlPlaneError(message, status_code=status)
    for leaf in leaves:
        if isinstance(leaf, httpx.TimeoutException):
            return ControlPlaneError(f"control plane at {where} did not answer in time")
        if isinstance(leaf, httpx.ConnectError):
            return ControlPlaneError(f"cannot reach the control plane at {where}: connection failed")
        # an incomplete body surfaces as a protocol error, or as a read error when the peer resets the
        # connection first: the same answer broken off
        if isinstance(leaf, httpx.RemoteProtocolError | httpx.ReadError):
            return ControlPlaneError(
                f"control plane at {where} broke off its answer (the body was shorter than announced, or the "
                "connection closed early)"
            )
        if isinstance(leaf, httpx.TransportError):
            return ControlPlaneError(
                f"connection to the control plane at {where} failed: {type(leaf).__name__}"
            )
    for leaf in leaves:
        if isinstance(leaf, ValidationError):
            return ControlPlaneError(f"control plane at {where} returned a malformed MCP result")
    for leaf in leaves:
        if isinstance(leaf, MCPError):
            return ControlPlaneError(f"control plane returned a protocol error: {leaf.error.message}")
    first = leaves[0] if leaves else exc
    return ControlPlaneError(f"control-plane call failed: {type(first).__name__}: {_one_line(str(first))}")


def _leaf_exceptions(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = []
        for inner in exc.exceptions:
            leaves.extend(_leaf_exceptions(inner))
        return leaves
    return [exc]


def parse_tool_result(tool: str, result: CallToolResult) -> Any:
    """The JSON a tool returned: its structured content, else the JSON held by its text part(s).

    A result carrying an ``error`` field, or flagged ``isError``, raises :class:`ControlPlaneToolError`.
    """
    texts = [part.text for part in result.content if isinstance(part, TextContent)]
    structured = _unwrapped(structured_content(result))
    if is_error(result):
        payload = structured or _json_from_texts(texts)
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            raise ControlPlaneToolError(tool, payload["error"], _error_detail(payload))
        detail = _one_line(" ".join(texts)) if texts else None
        raise ControlPlaneToolError(tool, "tool_failed", detail)
    payload = structured if structured is not None else _json_from_texts(texts)
    if payload is None:
        raise ControlPlaneError(f"{tool} returned no JSON result")
    if isinstance(payload, dict) and isinstance(payload.get("error"), str) and payload["error"]:
        raise ControlPlaneToolError(tool, payload["error"], _error_detail(payload))
    return payload


def _unwrapped(structured: dict[str, Any] | None) -> Any:
    """Current servers wrap every tool value as ``{"result": <value>}``; older ones send the value itself."""
    if isinstance(structured, dict) and "result" in structured:
        return structured["result"]
    return structured


def _json_from_texts(texts: list[str]) -> Any:
    """The JSON held by the text parts: all of them when each holds JSON (FastMCP-style servers put each
    list item in its own part), else the first one holding JSON."""
    decoded: list[Any] = []
    for text in texts:
        try:
            decoded.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    if not decoded:
        return None
    if len(decoded) == len(texts) and len(decoded) > 1:
        return decoded
    return decoded[0]


def _error_detail(payload: Mapping[str, Any]) -> str | None:
    for key in ("detail", "message", "error_description"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return _one_line(value)
    return None


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _unwrap_list(payload: Any) -> Any:
    """A list result as such; structured content must be an object, so servers wrap lists in one key."""
    if isinstance(payload, dict):
        for key in ("result", "listings", "listingResources", "items", "resources"):
            if isinstance(payload.get(key), list):
                return payload[key]
        if "catalogKey" in payload:
            return [payload]
    return payload


def _validated(tool: str, model: type[ModelT], payload: Any) -> ModelT:
    if not isinstance(payload, dict):
        raise ControlPlaneError(f"{tool} returned {type(payload).__name__}, expected a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ControlPlaneError(f"{tool} returned an unexpected result: {_first_problem(exc)}") from None


def _validated_list(tool: str, model: type[ModelT], payload: Any) -> list[ModelT]:
    if not isinstance(payload, list):
        raise ControlPlaneError(f"{tool} returned {type(payload).__name__}, expected a JSON list")
    records: list[ModelT] = []
    for item in payload:
        if not isinstance(item, dict):
            raise ControlPlaneError(f"{tool} returned a list item that is not an object")
        try:
            records.append(model.model_validate(item))
        except ValidationError as exc:
            raise ControlPlaneError(f"{tool} returned an unexpected result: {_first_problem(exc)}") from None
    return records


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error.get("loc", ()))
    return f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg", "invalid"))
