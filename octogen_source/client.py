"""OctogenClient: the typed async client of the Octogen Platform Catalog API v1."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Self, TypeVar

import httpx
from pydantic import ValidationError

from octogen_source.errors import (
    ERRORS_BY_STATUS,
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenConnectionError,
    OctogenError,
    OctogenValidationError,
)
from octogen_source.models import (
    Facet,
    MerchantCatalogSummary,
    MerchantProductListItem,
    MerchantProductListPage,
    MerchantProductUrlLookupResponse,
    WireSearchPage,
    parse_catalog_list,
    parse_wire_search_page,
)
from octogen_source.retries import RateLimitGate, RetryPolicy, build_retrying

__all__ = ["DEFAULT_BASE_URL", "OctogenClient", "RequestStats"]

DEFAULT_BASE_URL: Final = "https://api.octogen.ai/v1"
API_KEY_ENV: Final = "OCTO_API_KEY"
MAX_LIMIT: Final = 100

_Parsed = TypeVar("_Parsed")
_Page = TypeVar("_Page", MerchantProductListPage, WireSearchPage)


@dataclass
class RequestStats:
    """Requests sent (every attempt counts) and how many of them were retries, per operation too."""

    requests: int = 0
    retries: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def record(self, operation: str, *, retry: bool) -> None:
        self.requests += 1
        if retry:
            self.retries += 1
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1


_tracked_stats: ContextVar[tuple[tuple[OctogenClient, RequestStats], ...]] = ContextVar(
    "octogen_tracked_stats", default=()
)


class OctogenClient:
    """Async client of the Octogen Platform Catalog API v1.

    The key is the ``api_key`` argument, else ``OCTO_API_KEY``; with neither, :class:`MissingAPIKeyError`
    is raised here, before any request. ``timeout`` applies to every request, also through a caller's
    ``http_client`` (which the client never closes). Transport errors, 429 and 5xx are retried per
    ``retry``; a 429 holds every request of this client until its ``Retry-After`` has passed.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = 30.0,
        http_client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 20,
    ) -> None:
        key = _resolve_api_key(api_key)
        if httpx.URL(base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self._api_key = key
        self._base_url = base_url.rstrip("/")
        self._retrying = build_retrying(retry if retry is not None else RetryPolicy(), RateLimitGate())
        self.stats = RequestStats()

        headers = {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "User-Agent": "octogen-dlt",
        }
        request_timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._owns_http = http_client is None
        if http_client is None:
            limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            self._http = httpx.AsyncClient(headers=headers, timeout=request_timeout, limits=limits)
            self._request_headers: dict[str, str] | None = None
            self._request_timeout: httpx.Timeout | Any = httpx.USE_CLIENT_DEFAULT
        else:
            self._http = http_client
            self._request_headers = headers
            self._request_timeout = request_timeout

    def __repr__(self) -> str:
        return f"OctogenClient(base_url={self._base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool the client created; a caller's ``http_client`` stays open."""
        if self._owns_http:
            await self._http.aclose()

    @contextlib.contextmanager
    def track(self, stats: RequestStats) -> Iterator[RequestStats]:
        """Also count into ``stats`` every request this client makes in this context.

        The context is the current task and the tasks it spawns while inside the ``with`` block.
        """
        token = _tracked_stats.set((*_tracked_stats.get(), (self, stats)))
        try:
            yield stats
        finally:
            _tracked_stats.reset(token)

    async def list_catalogs(self) -> list[MerchantCatalogSummary]:
        """The catalogs granted to the key (an empty list when there are none)."""
        return await self._call("list_catalogs", "GET", "/catalogs", None, parse_catalog_list)

    async def search_products(
        self,
        *,
        catalog: str | None = None,
        q: str | None = None,
        facets: Sequence[Facet | Mapping[str, Any]] | None = None,
        price_min: float | None = None,
        price_max: float | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> MerchantProductListPage:
        """One page of a search; pass its ``next_cursor`` as ``cursor`` (same filters) for the next one.

        ``limit`` outside 1..100 or a malformed facet raises :class:`OctogenValidationError` (status 422,
        ``response`` None) without sending anything.
        """
        body = _search_body(catalog, q, facets, price_min, price_max, limit)
        if cursor is not None:
            body["cursor"] = cursor
        return await self._search(body)

    def iter_search_pages(
        self,
        *,
        catalog: str | None = None,
        q: str | None = None,
        facets: Sequence[Facet | Mapping[str, Any]] | None = None,
        price_min: float | None = None,
        price_max: float | None = None,
        limit: int = 50,
    ) -> AsyncIterator[MerchantProductListPage]:
        """Every page of a search, resending the same filters with each cursor until it is null.

        The filters are checked here, at the call, before any page is requested.
        """
        return self._walk_pages(_search_body(catalog, q, facets, price_min, price_max, limit), self._search)

    def iter_wire_search_pages(
        self,
        *,
        catalog: str | None = None,
        q: str | None = None,
        facets: Sequence[Facet | Mapping[str, Any]] | None = None,
        price_min: float | None = None,
        price_max: float | None = None,
        limit: int = 50,
    ) -> AsyncIterator[WireSearchPage]:
        """:meth:`iter_search_pages` for bulk consumers: each page as the API sent it (hits as plain dicts
        with wire names), only its shape checked. Same retries, errors and end-of-walk checks."""
        return self._walk_pages(
            _search_body(catalog, q, facets, price_min, price_max, limit), self._search_wire
        )

    def iter_products(
        self,
        *,
        catalog: str | None = None,
        q: str | None = None,
        facets: Sequence[Facet | Mapping[str, Any]] | None = None,
        price_min: float | None = None,
        price_max: float | None = None,
        limit: int = 50,
    ) -> AsyncIterator[MerchantProductListItem]:
        """Every search hit of every page (see :meth:`iter_search_pages`)."""
        return _items_of(
            self.iter_search_pages(
                catalog=catalog, q=q, facets=facets, price_min=price_min, price_max=price_max, limit=limit
            )
        )

    async def lookup_product(self, url: str) -> MerchantProductUrlLookupResponse:
        """The full record of the product at ``url`` and the catalog it belongs to."""
        return await self._call(
            "lookup_product",
            "POST",
            "/products/lookup",
            {"url": url},
            MerchantProductUrlLookupResponse.model_validate_json,
        )

    async def _walk_pages(
        self, body: dict[str, Any], search: Callable[[dict[str, Any]], Awaitable[_Page]]
    ) -> AsyncIterator[_Page]:
        while True:
            page = await search(body)
            yield page
            next_cursor = page["nextCursor"] if isinstance(page, dict) else page.next_cursor
            if next_cursor is None:
                return
            if next_cursor == body.get("cursor"):
                raise OctogenAPIError(
                    "Octogen API 200 on POST /products/search: the API sent back the cursor it was given;"
                    " stopping a walk that would never end",
                    status_code=200,
                    detail="repeated cursor",
                )
            body = {**body, "cursor": next_cursor}

    async def _search(self, body: dict[str, Any]) -> MerchantProductListPage:
        return await self._call(
            "search_products",
            "POST",
            "/products/search",
            body,
            MerchantProductListPage.model_validate_json,
        )

    async def _search_wire(self, body: dict[str, Any]) -> WireSearchPage:
        return await self._call("search_products", "POST", "/products/search", body, parse_wire_search_page)

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        parse: Callable[[bytes], _Parsed],
    ) -> _Parsed:
        response = await self._send_with_retries(operation, method, path, body)
        try:
            return parse(response.content)
        except ValidationError as error:
            problem = _describe_bad_body(error, response.content)
        raise OctogenAPIError(
            f"Octogen API {response.status_code} on {method} {path}: {problem}",
            status_code=response.status_code,
            detail=problem,
            response=response,
        )

    async def _send_with_retries(
        self, operation: str, method: str, path: str, body: dict[str, Any] | None
    ) -> httpx.Response:
        url = self._base_url + path
        response: httpx.Response | None = None
        # tenacity keeps the state of a run on the controller: one copy per request
        async for attempt in self._retrying.copy():
            with attempt:
                self._count(operation, retry=attempt.retry_state.attempt_number > 1)
                response = await self._send_once(method, url, path, body)
        assert response is not None  # the loop ends only after an attempt returned
        return response

    async def _send_once(
        self, method: str, url: str, path: str, body: dict[str, Any] | None
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method, url, json=body, headers=self._request_headers, timeout=self._request_timeout
            )
        except httpx.TransportError as error:
            # Raised outside this block, so the new error does not carry httpx's (whose request holds the
            # Authorization header) as its context.
            failure = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        else:
            if response.is_success:
                return response
            raise self._api_error(method, path, response)
        raise OctogenConnectionError(
            f"Could not reach the Octogen API on {method} {path}: {self._redact(failure)}"
        )

    def _api_error(self, method: str, path: str, response: httpx.Response) -> OctogenAPIError:
        detail = _error_detail(response)
        if isinstance(detail, str):
            detail = self._redact(detail)
        summary = _summarize(detail) or response.reason_phrase or "error"
        error_type = ERRORS_BY_STATUS.get(response.status_code, OctogenAPIError)
        return error_type(
            self._redact(f"Octogen API {response.status_code} on {method} {path}: {summary}"),
            status_code=response.status_code,
            detail=detail,
            response=response,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]")

    def _count(self, operation: str, *, retry: bool) -> None:
        self.stats.record(operation, retry=retry)
        for owner, stats in _tracked_stats.get():
            if owner is self:
                stats.record(operation, retry=retry)


async def _items_of(pages: AsyncIterator[MerchantProductListPage]) -> AsyncIterator[MerchantProductListItem]:
    async for page in pages:
        for item in page.items:
            yield item


def _resolve_api_key(api_key: str | None) -> str:
    key = (api_key or os.environ.get(API_KEY_ENV) or "").strip()
    if not key:
        raise MissingAPIKeyError(f"No Octogen API key: pass api_key= or set {API_KEY_ENV}")
    if not key.isascii() or not key.isprintable():
        raise OctogenError("The Octogen API key contains characters that cannot be sent in an HTTP header")
    return key


def _search_body(
    catalog: str | None,
    q: str | None,
    facets: Sequence[Facet | Mapping[str, Any]] | None,
    price_min: float | None,
    price_max: float | None,
    limit: int,
) -> dict[str, Any]:
    """The search request body (snake_case, ``None`` filters left out), checked before anything is sent."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise _not_sent(
            [
                {
                    "loc": ["body", "limit"],
                    "msg": f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}",
                    "type": "local_validation",
                    "input": limit,
                }
            ]
        )
    body: dict[str, Any] = {}
    if catalog is not None:
        body["catalog"] = catalog
    if q is not None:
        body["q"] = q
    if facets is not None:
        body["facets"] = _facets_on_the_wire(facets)
    if price_min is not None:
        body["price_min"] = price_min
    if price_max is not None:
        body["price_max"] = price_max
    body["limit"] = limit
    return body


def _facets_on_the_wire(facets: Sequence[Facet | Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(facets, str | bytes | Mapping):
        raise _not_sent(
            [
                {
                    "loc": ["body", "facets"],
                    "msg": "facets must be a list of Facet objects or dicts, not a single one",
                    "type": "local_validation",
                }
            ]
        )
    wire: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for index, facet in enumerate(facets):
        try:
            checked = facet if isinstance(facet, Facet) else Facet.model_validate(facet)
        except ValidationError as error:
            problems.extend(
                {
                    "loc": ["body", "facets", index, *problem["loc"]],
                    "msg": problem["msg"],
                    "type": "local_validation",
                }
                for problem in error.errors(include_url=False)
            )
            continue
        wire.append({"name": checked.name, "values": list(checked.values)})
    if problems:
        raise _not_sent(problems)
    return wire


def _not_sent(problems: list[dict[str, Any]]) -> OctogenValidationError:
    return OctogenValidationError(
        f"Octogen API request not sent: {_summarize(problems)}",
        status_code=422,
        detail=problems,
        response=None,
    )


def _error_detail(response: httpx.Response) -> Any:
    """The ``detail`` of an error body; the whole body if it has none; the start of the text if not JSON."""
    try:
        body = response.json()
    except ValueError:
        return _snippet(response.content)
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


_WHITESPACE = re.compile(r"\s+")
_MAX_SUMMARY = 300


def _summarize(detail: Any) -> str:
    """A short single line for a ``detail`` (the 422 list becomes ``body.limit: msg; ...``)."""
    if detail is None:
        return ""
    if isinstance(detail, list) and all(isinstance(problem, dict) for problem in detail):
        text = "; ".join(
            ".".join(str(part) for part in problem.get("loc") or ()) + f": {problem.get('msg', '')}"
            for problem in detail
        )
    else:
        text = str(detail)
    text = _WHITESPACE.sub(" ", text).strip()
    return text if len(text) <= _MAX_SUMMARY else text[: _MAX_SUMMARY - 3] + "..."


def _snippet(content: bytes, size: int = 120) -> str:
    text = content[:size].decode("utf-8", errors="replace")
    return _WHITESPACE.sub(" ", text).strip() + ("..." if len(content) > size else "")


def _describe_bad_body(error: ValidationError, content: bytes) -> str:
    problems = error.errors(include_url=False, include_input=False)
    if any(problem["type"] == "json_invalid" for problem in problems):
        return f"invalid JSON response ({len(content)} bytes): {_snippet(content)!r}"
    return "unexpected response shape: " + _summarize(problems)
