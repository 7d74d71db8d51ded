"""OctogenClient: the typed async client of the Octogen Platform Catalog API v1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, Self, TypeVar, get_args
from urllib.parse import quote, urlsplit

import httpx
import orjson
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from tenacity import RetryCallState
from typing_extensions import TypedDict, Unpack

from octogen_source.aiohttp_transport import AiohttpTransport
from octogen_source.bounded_body import clip_long_text, read_bounded
from octogen_source.errors import (
    ERRORS_BY_STATUS,
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenConfigurationError,
    OctogenConnectionError,
    OctogenEndpointRetiredError,
    OctogenNotFoundError,
    OctogenRequestError,
    OctogenResponseError,
    OctogenScopeError,
    OctogenValidationError,
)
from octogen_source.models import (
    DomainCoverageResponse,
    Facet,
    MerchantCatalogSummary,
    MerchantProductListItem,
    MerchantProductListPage,
    MerchantProductUrlLookupResponse,
    MeResponse,
    WireSearchPage,
    is_current_api_page,
    parse_catalog_list,
    parse_wire_search_page,
)
from octogen_source.retries import RateLimitGate, RetryPolicy, build_retrying, retry_after_seconds

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiGeneration",
    "MatchMode",
    "OctogenClient",
    "RequestStats",
    "ResolutionMode",
    "SearchQuery",
]

DEFAULT_BASE_URL: Final = "https://api.octogen.ai/v1"
API_KEY_ENV: Final = "OCTO_API_KEY"
MAX_LIMIT: Final = 100
MAX_CATALOGS: Final = 500
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
"""The largest response body read (decoded). A current 100-hit search page is about 190 KB and a lookup tens
of KB: 16 MiB is ~85 times the largest real page, while 20 connections at the limit stay near 320 MiB."""
CATALOGS_RETIRED_ON: Final = "2026-07-09"

ApiGeneration = Literal["current", "seed"]
"""``seed``: the API of May 2026 (the client guide's); ``current``: the API since July 2026."""
ResolutionMode = Literal["auto", "index_only", "on_demand_only"]
MatchMode = Literal["strict", "loose"]

_Parsed = TypeVar("_Parsed")
_Page = TypeVar("_Page", MerchantProductListPage, WireSearchPage)


@dataclass
class RequestStats:
    """Requests sent (every attempt counts) and how many of them were retries, per operation too."""

    requests: int = 0
    retries: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    clipped_values: int = 0
    """Text values cut to the client's ``max_text_chars`` in wire answers."""

    def record(self, operation: str, *, retry: bool) -> None:
        self.requests += 1
        if retry:
            self.retries += 1
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1


_tracked_stats: ContextVar[tuple[tuple[OctogenClient, RequestStats], ...]] = ContextVar(
    "octogen_tracked_stats", default=()
)
_request_sent: ContextVar[asyncio.Event | None] = ContextVar("octogen_request_sent", default=None)
"""Set by the prefetching walk in the task requesting the next page: told when its body is on the wire."""


class OctogenClient:
    """Async client of the Octogen Platform Catalog API v1.

    The key is the ``api_key`` argument, else ``OCTO_API_KEY``; with neither, :class:`MissingAPIKeyError`
    is raised here, before any request. ``timeout`` applies to every request, also through a caller's
    ``http_client`` (which the client never closes): to each read as httpx applies it, and to each attempt
    as a whole (headers and body: the longest of an ``httpx.Timeout``'s values), so a body trickled a few
    bytes at a time, or never ended, times out like a read. Transport errors, timeouts, 429 and 5xx are
    retried per ``retry``; a 429 holds every request of this client until its ``Retry-After`` has passed.
    A request never runs past ``retry.max_total_seconds`` (retries included): an attempt started late gets
    only what is left of it, and when it runs out the request fails with :class:`OctogenConnectionError`.

    A response body larger than ``max_response_bytes`` (decoded) is refused, as soon as the limit is passed,
    with :class:`OctogenResponseTooLargeError` (not retried). With ``max_text_chars``, the wire answers
    (:meth:`iter_wire_search_pages`, :meth:`lookup_product_wire`) come with every longer text value cut to
    that many characters (counted in ``stats.clipped_values``).
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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_text_chars: int | None = None,
    ) -> None:
        key = _resolve_api_key(api_key)
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int):
            raise OctogenConfigurationError(
                f"max_response_bytes must be a positive integer, got {max_response_bytes!r}"
            )
        if max_response_bytes < 1:
            raise OctogenConfigurationError(
                f"max_response_bytes must be a positive integer, got {max_response_bytes!r}"
            )
        problem = base_url_problem(base_url)
        if problem is not None:
            raise OctogenConfigurationError(
                f"base_url must be an http(s) URL with a host; {base_url!r} {problem}"
            )
        if max_connections < 1:
            raise OctogenConfigurationError(f"max_connections must be at least 1, got {max_connections}")
        self._api_key = key
        self._max_response_bytes = max_response_bytes
        self._max_text_chars = max_text_chars
        self._base_url = base_url.rstrip("/")
        policy = retry if retry is not None else RetryPolicy()
        self._time_budget = policy.max_total_seconds
        self._retrying = build_retrying(policy, RateLimitGate())
        self.stats = RequestStats()
        self._generation: ApiGeneration | None = None

        headers = {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "User-Agent": "octogen-dlt",
        }
        request_timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._attempt_seconds = _longest_of(request_timeout)
        self._owns_http = http_client is None
        if http_client is None:
            self._http = _own_http_client(headers, request_timeout, max_connections)
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

    @property
    def api_generation(self) -> ApiGeneration | None:
        """The API generation the last search answer (or ``list_catalogs``) showed; ``None`` before one."""
        return self._generation

    async def list_catalogs(self) -> list[MerchantCatalogSummary]:
        """The catalogs granted to the key (an empty list when there are none): the seed era's catalog list.

        Where the endpoint is retired (the current API) this raises :class:`OctogenEndpointRetiredError`,
        whose message says how to name catalogs instead.
        """
        try:
            catalogs = await self._call("list_catalogs", "GET", "/catalogs", None, parse_catalog_list)
        except OctogenNotFoundError as error:
            raise _catalogs_retired(error) from None
        self._generation = "seed"
        return catalogs

    async def get_me(self) -> MeResponse:
        """``GET /me``: the calling organization, key (id and printable prefix), quotas and rate limit.

        Side-effect free: the natural "check my credentials" call.
        """
        return await self._call("get_me", "GET", "/me", None, MeResponse.model_validate_json)

    async def get_domain(self, host: str) -> DomainCoverageResponse:
        """``GET /domains/{host}``: every catalog serving a store, with its key, name and product count.

        ``host`` is a host (``www.Shop.example:443``) or any URL on it (``https://shop.example/p/1``),
        normalised the way the API stores hosts: lowercased, port, trailing dot and leading ``www.``
        dropped. A host no catalog serves raises :class:`OctogenNotFoundError` (``detail``
        ``domain_not_covered``).
        """
        path = "/domains/" + quote(_normalise_host(host), safe="")
        return await self._call("get_domain", "GET", path, None, DomainCoverageResponse.model_validate_json)

    async def search_products(
        self,
        query: SearchQuery | None = None,
        *,
        cursor: str | None = None,
        **filters: Unpack[SearchArguments],
    ) -> MerchantProductListPage:
        """One page of a search; pass its ``next_cursor`` as ``cursor`` (same filters) for the next one.

        The filters are the keyword arguments of :class:`SearchArguments` (``catalog`` or ``catalogs``, ``q``,
        ``facets``, ``price_min``, ``price_max``, ``limit``), or one :class:`SearchQuery` built beforehand.
        The scope is ``catalog`` (one key, the guide's) or ``catalogs`` (1 to 500 keys), never both; neither
        searches every catalog the key can access. See :class:`SearchQuery` for how the scope is sent.
        ``limit`` outside 1..100, a malformed facet or scope raises :class:`OctogenRequestError` (a
        configuration error: ``detail`` lists the problems like an API 422) without sending anything.
        """
        return await self._search_page(_query_of(query, filters), cursor, _MODEL_PAGES)

    def iter_search_pages(
        self, query: SearchQuery | None = None, **filters: Unpack[SearchArguments]
    ) -> AsyncIterator[MerchantProductListPage]:
        """Every page of a search, resending the same filters with each cursor until a page has none.

        The filters are checked here, at the call, before any page is requested. Pages may repeat a
        product (the current API ranks page 1 by relevance, later ones by quality): de-duplicate by uuid.
        """
        return self._walk_pages(_query_of(query, filters), _MODEL_PAGES)

    def iter_wire_search_pages(
        self, query: SearchQuery | None = None, **filters: Unpack[SearchArguments]
    ) -> AsyncGenerator[WireSearchPage, None]:
        """:meth:`iter_search_pages` for bulk consumers: each page as the API sent it (hits as plain dicts
        with wire names), only its shape checked, ``nextCursor`` always present (``None`` on the last page).
        Same scope rule, retries, errors and end-of-walk checks. The next page is requested while the
        caller works on the current one: close the iterator when stopping early
        (``contextlib.aclosing``)."""
        return self._walk_pages(_query_of(query, filters), _WIRE_PAGES, prefetch=True)

    def iter_products(
        self, query: SearchQuery | None = None, **filters: Unpack[SearchArguments]
    ) -> AsyncIterator[MerchantProductListItem]:
        """Every search hit of every page (see :meth:`iter_search_pages`)."""
        return _items_of(self.iter_search_pages(_query_of(query, filters)))

    async def lookup_product(
        self, url: str, *, resolution_mode: ResolutionMode | None = None, match_mode: MatchMode | None = None
    ) -> MerchantProductUrlLookupResponse:
        """The full record of the product at ``url`` and the catalog it belongs to.

        ``resolution_mode`` (``auto``, ``index_only``, ``on_demand_only``) and ``match_mode`` (``strict``,
        ``loose``) are sent only when given (``None``: the API's default, ``auto`` and ``loose``). With
        ``auto`` a URL outside the index may be answered on demand (``source == "on_demand"``, no uuid); a
        sync sends ``index_only``. The seed-era API ignores both fields.
        """
        body = _lookup_body(url, resolution_mode, match_mode)
        parse = MerchantProductUrlLookupResponse.model_validate_json
        return await self._call("lookup_product", "POST", "/products/lookup", body, parse)

    async def lookup_product_wire(
        self, url: str, *, resolution_mode: ResolutionMode | None = None, match_mode: MatchMode | None = None
    ) -> dict[str, Any]:
        """:meth:`lookup_product`, answered as the API sent it: a plain dict of wire names and values (only
        its shape checked: a ``product`` object)."""
        body = _lookup_body(url, resolution_mode, match_mode)
        return await self._call("lookup_product", "POST", "/products/lookup", body, _parse_wire_lookup)

    async def _walk_pages(
        self, query: SearchQuery, kind: _PageKind[_Page], *, prefetch: bool = False
    ) -> AsyncGenerator[_Page, None]:
        """The pages of a search, one request per cursor. With ``prefetch`` the next page is requested as
        soon as a page's cursor is read, before that page is handed over, so the consumer's work on it
        overlaps the next round trip; a consumer that stops early should close the iterator
        (``contextlib.aclosing``) so that the request in flight is cancelled at once."""
        cursor: str | None = None
        following: asyncio.Future[_Page] | None = None
        ahead = _Guess()

        async def guess_next(body: bytes) -> None:
            """Asks for the page after the one being waited for as soon as its body is in, by the cursor read
            from the bytes; the page, once parsed, says whether that was its cursor."""
            if not ahead.waited_for or self._generation is None:
                return
            ahead.waited_for = False
            guessed = _cursor_in(body)
            if guessed is None or guessed == cursor:
                return
            sent = asyncio.Event()
            ahead.cursor = guessed
            ahead.page = asyncio.ensure_future(self._prefetch_page(query, guessed, kind, sent, guess_next))
            await sent.wait()

        try:
            page = await self._search_page(query, cursor, kind)
            while True:
                next_cursor = kind.next_cursor(page)
                repeated = next_cursor is not None and next_cursor == cursor
                guessed, ahead.page = ahead.page, None
                if guessed is not None and (ahead.cursor != next_cursor or repeated):
                    # not its cursor (a hit's own "nextCursor" key, a page answered again): dropped
                    _abandon(guessed)
                    guessed = None
                if guessed is not None:
                    following = guessed
                elif prefetch and next_cursor is not None and not repeated:
                    sent = asyncio.Event()
                    following = asyncio.ensure_future(
                        self._prefetch_page(query, next_cursor, kind, sent, guess_next)
                    )
                    # the request goes out before the caller works on this page (its task would otherwise
                    # start only when the caller next awaits, after its work: ≈ 10 ms a page at 20 ms latency)
                    await sent.wait()
                yield page
                if next_cursor is None:
                    return
                if repeated:
                    raise OctogenResponseError(
                        "Octogen API 200 on POST /products/search: the API sent back the cursor it was given;"
                        " stopping a walk that would never end",
                        status_code=200,
                        detail="repeated cursor",
                    )
                cursor = next_cursor
                if following is not None:
                    # the page is waited for: the next one may be asked for before this one is parsed
                    ahead.waited_for = True
                    try:
                        page, following = await following, None
                    finally:
                        ahead.waited_for = False
                else:
                    page = await self._search_page(query, cursor, kind)
        finally:
            for pending in (following, ahead.page):
                if pending is not None:
                    _abandon(pending)

    async def _prefetch_page(
        self,
        query: SearchQuery,
        cursor: str | None,
        kind: _PageKind[_Page],
        sent: asyncio.Event,
        on_body: _BodyHook | None = None,
    ) -> _Page:
        """:meth:`_search_page`, setting ``sent`` once the request's body is sent (or the page is done)."""
        _request_sent.set(sent)
        try:
            return await self._search_page(query, cursor, kind, on_body)
        finally:
            sent.set()

    async def _search_page(
        self,
        query: SearchQuery,
        cursor: str | None,
        kind: _PageKind[_Page],
        on_body: _BodyHook | None = None,
    ) -> _Page:
        """One page, its scope sent the way the answering API generation understands it.

        The body follows the generation last seen (``catalogs`` until one is seen). Every answer shows its
        generation (the current API's envelope has ``requestId``/``effectiveQuery``), so a scoped search
        the seed era answered to ``catalogs`` (which it ignores: that page holds every catalog's products)
        is discarded and sent again with ``catalog``, and a ``catalog`` the current API refuses (422) is
        sent again as ``catalogs``. At most one such switch per page.
        """
        generation: ApiGeneration | None = self._generation
        for _ in range(2):
            body = query.body(generation, cursor)
            try:
                page = await self._call(
                    "search_products", "POST", "/products/search", body, kind.parse, on_body
                )
            except OctogenValidationError as error:
                if "catalog" not in body or not _refuses_field(error, "catalog"):
                    raise
                generation = "current"
                continue
            answered: ApiGeneration = "current" if kind.is_current(page) else "seed"
            self._generation = answered
            if answered == "current" or "catalogs" not in body:
                return page
            generation = "seed"
        raise OctogenResponseError(
            "Octogen API on POST /products/search: the API neither answered `catalogs` (current API) nor"
            " accepted `catalog` (seed-era API); not knowing which catalogs a page holds, the search stops",
            status_code=200,
            detail="search scope not honoured",
        )

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        parse: Callable[[bytes], _Parsed],
        on_body: _BodyHook | None = None,
    ) -> _Parsed:
        response = await self._send_with_retries(operation, method, path, body)
        if on_body is not None:
            await on_body(response.content)
        try:
            parsed = parse(response.content)
        except ValidationError as error:
            problem = _describe_bad_body(error, response.content)
        else:
            limit = self._max_text_chars
            # only a body longer than the limit can hold a longer value: real answers are not scanned
            if limit is not None and isinstance(parsed, dict) and len(response.content) > limit:
                self._count_clipped(clip_long_text(parsed, limit))
            return parsed
        request_id = _request_id(response)
        raise OctogenResponseError(
            f"Octogen API {response.status_code} on {method} {path}: {problem}{_request_id_note(request_id)}",
            status_code=response.status_code,
            detail=problem,
            response=response,
            request_id=request_id,
        )

    async def _send_with_retries(
        self, operation: str, method: str, path: str, body: dict[str, Any] | None
    ) -> httpx.Response:
        url = self._base_url + path
        response: httpx.Response | None = None
        # tenacity keeps the state of a run on the controller: one copy per request
        async for attempt in self._retrying.copy():
            with attempt:
                state = attempt.retry_state
                # the budget runs from the start of the run, on tenacity's clock (time.monotonic)
                budget_left = state.start_time + self._time_budget - time.monotonic()
                response = await self._attempt(operation, method, url, path, body, budget_left, state)
        assert response is not None  # the loop ends only after an attempt returned
        return response

    async def _attempt(
        self,
        operation: str,
        method: str,
        url: str,
        path: str,
        body: dict[str, Any] | None,
        budget_left: float,
        state: RetryCallState,
    ) -> httpx.Response:
        """One attempt, headers and body, ended at the client's timeout or, sooner, when the request's time
        budget runs out (httpx's timeouts are per read: a trickled or never-ending body would outlast both).

        Either end is an :class:`OctogenConnectionError`, retryable like a read timeout; the retry policy's
        own budget check then stops the run once the budget is spent.
        """
        cap = self._attempt_seconds
        by_budget = cap is None or budget_left <= cap
        seconds = budget_left if by_budget or cap is None else cap
        if seconds > 0:
            self._count(operation, retry=state.attempt_number > 1)
            deadline = asyncio.timeout(seconds)
            try:
                async with deadline:
                    return await self._send_once(method, url, path, body)
            except (TimeoutError, OctogenConnectionError):
                # httpx's own timeout may fire together with the deadline: the deadline is the cause
                if not deadline.expired():
                    raise
        if by_budget:
            attempts = state.attempt_number if seconds > 0 else state.attempt_number - 1
            reason = (
                f"no complete answer within {self._time_budget:g} s, the time budget of the request, retries"
                f" included ({attempts} attempt{'' if attempts == 1 else 's'}; raise it with"
                " RetryPolicy.max_total_seconds, sources.octogen.retry_max_seconds or --retry-max-seconds)"
            )
        else:
            reason = f"no complete answer within {seconds:g} s (the request timeout)"
        raise OctogenConnectionError(f"Could not reach the Octogen API on {method} {path}: {reason}")

    async def _send_once(
        self, method: str, url: str, path: str, body: dict[str, Any] | None
    ) -> httpx.Response:
        try:
            sent = _request_sent.get()
            request = self._http.build_request(
                method,
                url,
                json=body,
                headers=self._request_headers,
                timeout=self._request_timeout,
                extensions=None if sent is None else {"trace": _tell_when_sent(sent)},
            )
            response = await read_bounded(
                await self._http.send(request, stream=True), self._max_response_bytes, f"{method} {path}"
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
        status = response.status_code
        request_id = _request_id(response)
        summary = _summarize(detail) or response.reason_phrase or "error"
        fields: dict[str, Any] = {
            "status_code": status,
            "detail": detail,
            "response": response,
            "request_id": request_id,
        }
        if status == 402:
            top_up_url = _top_up_url(detail)
            where = top_up_url or "the Octogen Platform (billing)"
            summary = (
                f"{_detail_code(detail) or summary}: the organization's prepaid credit is exhausted;"
                f" top up at {where} before running again (not retried)"
            )
            fields["top_up_url"] = top_up_url
        elif status == 429:
            headers = response.headers
            fields.update(
                retry_after=retry_after_seconds(headers.get("retry-after")),
                limit=headers.get("x-ratelimit-limit"),
                remaining=headers.get("x-ratelimit-remaining"),
                reset=headers.get("x-ratelimit-reset"),
            )
        error_type = ERRORS_BY_STATUS.get(status, OctogenAPIError)
        message = f"Octogen API {status} on {method} {path}: {summary}{_request_id_note(request_id)}"
        return error_type(self._redact(message), **fields)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]")

    def _count_clipped(self, values: int) -> None:
        self.stats.clipped_values += values
        for owner, stats in _tracked_stats.get():
            if owner is self:
                stats.clipped_values += values

    def _count(self, operation: str, *, retry: bool) -> None:
        self.stats.record(operation, retry=retry)
        for owner, stats in _tracked_stats.get():
            if owner is self:
                stats.record(operation, retry=retry)


async def _items_of(pages: AsyncIterator[MerchantProductListPage]) -> AsyncIterator[MerchantProductListItem]:
    async for page in pages:
        for item in page.items:
            yield item


def base_url_problem(url: Any) -> str | None:
    """What is wrong with ``url`` as the API's base URL, said of it (``has no host``), or None: it must be an
    http(s) URL with a host that holds no whitespace and, when it names a port, a port from 1 to 65535.
    Checked before any request, so that such a URL is a configuration mistake rather than a connection
    retried until it times out."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "is not a URL"
    if parsed.scheme not in ("http", "https"):
        return "is not an http(s) URL"
    try:
        host = urlsplit(str(url)).hostname or ""
    except ValueError:
        return "is not a URL"
    if not host:
        return "has no host"
    if any(character.isspace() for character in host):
        return "has whitespace in its host"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return f"has port {parsed.port}, not one from 1 to 65535"
    return None


def _resolve_api_key(api_key: str | None) -> str:
    key = (api_key or os.environ.get(API_KEY_ENV) or "").strip()
    if not key:
        raise MissingAPIKeyError(f"No Octogen API key: pass api_key= or set {API_KEY_ENV}")
    if not key.isascii() or not key.isprintable():
        raise OctogenConfigurationError(
            "The Octogen API key contains characters that cannot be sent in an HTTP header"
        )
    return key


class SearchArguments(TypedDict, total=False):
    """The search filters every search method takes as keyword arguments (the guide's names)."""

    catalog: str | None
    """One catalog key (the guide's scope)."""
    catalogs: Sequence[str] | None
    """1 to 500 catalog keys (today's scope); never with ``catalog``."""
    q: str | None
    facets: Sequence[Facet | Mapping[str, Any]] | None
    price_min: float | None
    price_max: float | None
    limit: int
    """Hits per page, 1..100 (default 50)."""


def _query_of(query: SearchQuery | None, filters: SearchArguments) -> SearchQuery:
    if query is None:
        return SearchQuery.of(**filters)
    if filters:
        raise TypeError(f"pass a SearchQuery or filters, not both (got {', '.join(sorted(filters))})")
    return query


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search's checked filters (wire names) and scope; the body follows the API generation.

    Scope rule: the current API takes ``catalogs`` (a list) and refuses ``catalog`` (422); the seed-era API
    takes ``catalog`` (one key) and ignores ``catalogs``, which would search every catalog. So the body
    carries ``catalogs`` unless the API is known to be seed-era; then it carries ``catalog`` for a
    one-catalog scope, and a scope of several catalogs raises :class:`OctogenScopeError` instead of being
    sent.
    """

    scope: tuple[str, ...] | None
    filters: dict[str, Any]

    @classmethod
    def of(
        cls,
        *,
        catalog: str | None = None,
        catalogs: Sequence[str] | None = None,
        q: str | None = None,
        facets: Sequence[Facet | Mapping[str, Any]] | None = None,
        price_min: float | None = None,
        price_max: float | None = None,
        limit: int = 50,
    ) -> SearchQuery:
        """Checked here, before anything is sent: :class:`OctogenRequestError`."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise _not_sent("limit", f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}", limit)
        filters: dict[str, Any] = {}
        if q is not None:
            filters["q"] = q
        if facets is not None:
            filters["facets"] = _facets_on_the_wire(facets)
        if price_min is not None:
            filters["price_min"] = price_min
        if price_max is not None:
            filters["price_max"] = price_max
        filters["limit"] = limit
        return cls(_scope(catalog, catalogs), filters)

    def body(self, generation: ApiGeneration | None, cursor: str | None = None) -> dict[str, Any]:
        """The request body for an API of ``generation`` (``None``: not known yet)."""
        body: dict[str, Any] = {}
        if self.scope is not None and generation == "seed":
            if len(self.scope) > 1:
                raise OctogenScopeError(
                    f"This Octogen API (seed era, before {CATALOGS_RETIRED_ON}) searches one catalog per"
                    f" request: a search of {len(self.scope)} catalogs cannot be scoped; search each catalog"
                    " separately"
                )
            body["catalog"] = self.scope[0]
        elif self.scope is not None:
            body["catalogs"] = list(self.scope)
        body.update(self.filters)
        if cursor is not None:
            body["cursor"] = cursor
        return body


def _scope(catalog: str | None, catalogs: Sequence[str] | None) -> tuple[str, ...] | None:
    if catalog is not None and catalogs is not None:
        raise _not_sent("catalog", "pass catalog (one key) or catalogs (a list of keys), not both", catalog)
    if catalog is not None:
        if not isinstance(catalog, str) or not catalog:
            raise _not_sent("catalog", f"catalog must be a catalog key, got {catalog!r}", catalog)
        return (catalog,)
    if catalogs is None:
        return None
    if isinstance(catalogs, str | bytes) or not isinstance(catalogs, Sequence):
        raise _not_sent("catalogs", "catalogs must be a list of catalog keys, not a single one", catalogs)
    keys = tuple(catalogs)
    if not 1 <= len(keys) <= MAX_CATALOGS or not all(isinstance(key, str) and key for key in keys):
        raise _not_sent(
            "catalogs", f"catalogs must be 1 to {MAX_CATALOGS} catalog keys, got {len(keys)} values", keys
        )
    return keys


@dataclass(frozen=True)
class _PageKind(Generic[_Page]):
    """How a search answer is parsed and read: as models or as wire dicts."""

    parse: Callable[[bytes], _Page]
    is_current: Callable[[_Page], bool]
    next_cursor: Callable[[_Page], str | None]


_MODEL_PAGES: Final = _PageKind[MerchantProductListPage](
    MerchantProductListPage.model_validate_json,
    lambda page: page.from_current_api,
    lambda page: page.next_cursor,
)
_WIRE_PAGES: Final = _PageKind[WireSearchPage](
    parse_wire_search_page, is_current_api_page, lambda page: page["nextCursor"]
)


def _longest_of(timeout: httpx.Timeout) -> float | None:
    """The longest of a timeout's values (``None``: none set), the bound of one attempt as a whole."""
    values = [
        value for value in (timeout.connect, timeout.read, timeout.write, timeout.pool) if value is not None
    ]
    return max(values) if values else None


def _own_http_client(
    headers: dict[str, str], timeout: httpx.Timeout, max_connections: int
) -> httpx.AsyncClient:
    """httpx over aiohttp (half the CPU a request: :mod:`octogen_source.aiohttp_transport`), or httpx's own
    transport where the environment names a proxy: httpx routes by ``HTTP(S)_PROXY`` / ``ALL_PROXY`` /
    ``NO_PROXY`` only when it chooses the transports itself."""
    if any(scheme in urllib.request.getproxies() for scheme in ("http", "https", "all")):
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        return httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits)
    transport = AiohttpTransport(max_connections=max_connections)
    return httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport)


def _tell_when_sent(sent: asyncio.Event) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    """An httpcore trace callback that sets ``sent`` when a request's body has been written."""

    async def trace(event_name: str, info: dict[str, Any]) -> None:
        if event_name.endswith("send_request_body.complete"):
            sent.set()

    return trace


_BodyHook = Callable[[bytes], Awaitable[None]]
"""Told a successful answer's body before it is parsed."""

_NEXT_CURSOR = re.compile(rb'"nextCursor"\s*:\s*("(?:[^"\\]|\\.)*")')


@dataclass(slots=True)
class _Guess:
    """A walk's request for the page after the one it waits for, made from a cursor read in the bytes."""

    waited_for: bool = False
    cursor: str | None = None
    page: asyncio.Future[Any] | None = None


def _cursor_in(body: bytes) -> str | None:
    """The ``nextCursor`` a search body's bytes seem to hold (its last occurrence, as the envelope sends it
    after the hits), or None; a guess, checked once the page is parsed."""
    at = body.rfind(b'"nextCursor"')
    found = _NEXT_CURSOR.match(body, at) if at >= 0 else None
    if found is None:
        return None
    try:
        cursor = orjson.loads(found.group(1))
    except orjson.JSONDecodeError:
        return None
    return cursor if isinstance(cursor, str) else None


def _abandon(request: asyncio.Future[Any]) -> None:
    """Cancels a page request nobody will wait for (if still running); its outcome is marked as seen."""
    if not request.done():
        request.cancel()
    request.add_done_callback(_retrieve_outcome)


def _retrieve_outcome(future: asyncio.Future[Any]) -> None:
    """Marks the outcome of a request nobody waits for any more as seen (no "never retrieved" warning)."""
    if not future.cancelled():
        future.exception()


def _refuses_field(error: OctogenValidationError, name: str) -> bool:
    """Whether a 422 says the body's field ``name`` is not accepted (the current API forbids ``catalog``)."""
    problems = error.detail if isinstance(error.detail, list) else []
    return any(isinstance(problem, dict) and problem.get("loc") == ["body", name] for problem in problems)


def _lookup_body(url: str, resolution_mode: str | None, match_mode: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    for wire_name, value, allowed in (
        ("resolutionMode", resolution_mode, get_args(ResolutionMode)),
        ("matchMode", match_mode, get_args(MatchMode)),
    ):
        if value is None:
            continue
        if value not in allowed:
            problem = f"{wire_name} must be one of {', '.join(allowed)}; got {value!r}"
            raise _not_sent(wire_name, problem, value)
        body[wire_name] = value
    return body


@with_config(ConfigDict(extra="allow"))
class _ReceivedWireLookup(TypedDict):
    product: dict[str, Any]


_WIRE_LOOKUP: Final = TypeAdapter(_ReceivedWireLookup)


def _parse_wire_lookup(content: bytes) -> dict[str, Any]:
    """A lookup answer as sent; its one required part, the ``product`` object, checked."""
    try:
        # orjson here, unlike a search page (models.parse_wire_search_page): a lookup body of ≈ 9 KB makes no
        # block big enough to be mapped, and orjson reads it in 19 µs against pydantic-core's 25
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("product"), dict):
        return body
    return dict(_WIRE_LOOKUP.validate_json(content))


_HOST = re.compile(r"[a-z0-9._:-]+")  # a name, or an IPv6 address (urlsplit drops its brackets)


def _normalise_host(url_or_host: str) -> str:
    text = url_or_host.strip() if isinstance(url_or_host, str) else ""
    try:
        host = urlsplit(text if "://" in text else "//" + text).hostname or ""
    except ValueError:
        host = ""
    host = host.rstrip(".").removeprefix("www.")
    if not _HOST.fullmatch(host):
        raise _not_sent("host", f"no store host in {url_or_host!r}", url_or_host)
    return host


def _catalogs_retired(error: OctogenNotFoundError) -> OctogenEndpointRetiredError:
    return OctogenEndpointRetiredError(
        f"Octogen API 404 on GET /catalogs: the catalog list endpoint was retired on {CATALOGS_RETIRED_ON};"
        " name the catalogs to sync instead (configuration sources.octogen.catalogs, or --catalog) and"
        " find their keys with GET /domains/{host} (client.get_domain(host), or the sync's --discover"
        f" <store URL or host>){_request_id_note(error.request_id)}",
        status_code=error.status_code,
        detail=error.detail,
        response=error.response,
        request_id=error.request_id,
    )


def _facets_on_the_wire(facets: Sequence[Facet | Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(facets, str | bytes | Mapping):
        raise _not_sent_problems(
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
        raise _not_sent_problems(problems)
    return wire


def _not_sent(field_name: str, message: str, value: Any) -> OctogenRequestError:
    return _not_sent_problems(
        [{"loc": ["body", field_name], "msg": message, "type": "local_validation", "input": value}]
    )


def _not_sent_problems(problems: list[dict[str, Any]]) -> OctogenRequestError:
    return OctogenRequestError(f"Octogen API request not sent: {_summarize(problems)}", detail=problems)


def _request_id(response: httpx.Response) -> str | None:
    """The ``x-request-id`` header, else a ``requestId`` in a JSON body."""
    header = response.headers.get("x-request-id")
    if header:
        return header
    try:
        body = response.json()
    except ValueError:
        return None
    found = body.get("requestId") if isinstance(body, dict) else None
    return found if isinstance(found, str) and found else None


def _request_id_note(request_id: str | None) -> str:
    return f" (request id {request_id})" if request_id else ""


def _detail_code(detail: Any) -> str | None:
    code = detail.get("code") if isinstance(detail, dict) else None
    return code if isinstance(code, str) else None


def _top_up_url(detail: Any) -> str | None:
    if not isinstance(detail, dict):
        return None
    url = detail.get("top_up_url") or detail.get("topUpUrl")
    return url if isinstance(url, str) and url else None


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
