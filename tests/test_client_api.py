"""OctogenClient against the sandbox over real HTTP: every method, the error model, keys, facets, limits.

The ``sandbox`` fixture speaks the current API; ``any_sandbox`` runs a test against both generations and
``seed_sandbox`` against the seed era (May 2026) only, for what only it has (``GET /catalogs``).
"""

from __future__ import annotations

import math
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from octogen_source.client import OctogenClient, RequestStats, SearchQuery
from octogen_source.errors import (
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenAuthenticationError,
    OctogenConnectionError,
    OctogenEndpointRetiredError,
    OctogenError,
    OctogenForbiddenError,
    OctogenInsufficientCreditError,
    OctogenNotFoundError,
    OctogenRateLimitError,
    OctogenRequestError,
    OctogenScopeError,
    OctogenValidationError,
)
from octogen_source.models import (
    Brand,
    Facet,
    MerchantCatalogSummary,
    MerchantProductListItem,
    MerchantProductListPage,
    MerchantProductView,
    Rating,
)
from octogen_source.retries import RetryPolicy
from octogen_source.sandbox import Sandbox
from tests.client_helpers import wire

FAST_RETRIES = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


def make_client(sandbox: Sandbox, **options: Any) -> OctogenClient:
    options.setdefault("api_key", sandbox.api_key)
    options.setdefault("retry", FAST_RETRIES)
    return OctogenClient(base_url=sandbox.base_url, **options)


@pytest.fixture(params=["current", "seed"])
def any_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with Sandbox(catalogs=3, products=60, ungranted=1, generation=request.param) as running:
        yield running


@pytest.fixture
def seed_sandbox() -> Iterator[Sandbox]:
    with Sandbox(catalogs=3, products=60, ungranted=1, generation="seed") as running:
        yield running


VOLATILE = ("rawScore", "displayMatchScore")  # query-relative: they vary between requests and pages


def stable(record: dict[str, Any]) -> dict[str, Any]:
    """A hit without its query-relative scores (the sandbox's truth leaves them out)."""
    return {key: value for key, value in record.items() if key not in VOLATILE}


def by_uuid(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record once (current pages may repeat a product), scores left out, in uuid order."""
    unique = {record["uuid"]: stable(record) for record in records}
    return [unique[uuid] for uuid in sorted(unique)]


def with_id(text: str, error: OctogenAPIError) -> str:
    """An error's expected message: ``text`` and the request id the API gave, if any."""
    return f"{text} (request id {error.request_id})" if error.request_id else text


def nothing_sent(sandbox: Sandbox) -> bool:
    return not any(sandbox.request_counts.values())


def assert_key_hidden(error: BaseException, key: str) -> None:
    rendered = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, OctogenAPIError):
        rendered += [str(error.detail), repr(error.detail), repr(error.response)]
        if error.response is not None:
            rendered.append(repr(error.response.request.headers))
    assert "\n" not in str(error)
    for text in rendered:
        assert key not in text


# ---- methods -----------------------------------------------------------------------------------------


async def test_list_catalogs_returns_the_granted_catalogs(seed_sandbox: Sandbox) -> None:
    sandbox = seed_sandbox
    async with make_client(sandbox) as client:
        catalogs = await client.list_catalogs()

    assert all(isinstance(catalog, MerchantCatalogSummary) for catalog in catalogs)
    assert [wire(catalog) for catalog in catalogs] == sandbox.truth_catalogs()
    assert [catalog.catalog for catalog in catalogs] == sandbox.granted_catalogs()
    assert all(catalog.last_indexed_at is not None for catalog in catalogs)
    assert client.api_generation == "seed"


async def test_list_catalogs_is_empty_for_an_org_without_grants(seed_sandbox: Sandbox) -> None:
    async with make_client(seed_sandbox, api_key=seed_sandbox.add_key([])) as client:
        assert await client.list_catalogs() == []


async def test_list_catalogs_on_the_current_api_says_how_to_name_catalogs(sandbox: Sandbox) -> None:
    async with make_client(sandbox) as client:
        with pytest.raises(OctogenEndpointRetiredError) as raised:
            await client.list_catalogs()

    error = raised.value
    assert isinstance(error, OctogenNotFoundError) and error.status_code == 404
    assert str(error) == with_id(
        "Octogen API 404 on GET /catalogs: the catalog list endpoint was retired on 2026-07-09; name the"
        " catalogs to sync instead (configuration sources.octogen.catalogs, or --catalog) and find their keys"
        " with GET /domains/{host} (client.get_domain(host), or the sync's --discover <store URL or host>)",
        error,
    )
    assert error.request_id is not None
    assert sandbox.request_counts["catalogs"] == 1  # not retried


async def test_search_products_returns_one_page(any_sandbox: Sandbox) -> None:
    sandbox = any_sandbox
    catalog = sandbox.granted_catalogs()[0]
    truth = {item["uuid"]: item for item in sandbox.truth_search_items(catalog)}

    async with make_client(sandbox) as client:
        page = await client.search_products(catalog=catalog, limit=10)
        following = await client.search_products(catalog=catalog, limit=10, cursor=page.next_cursor)

    assert isinstance(page, MerchantProductListPage)
    assert len(page.items) == 10 and page.next_cursor is not None
    assert all(isinstance(item, MerchantProductListItem) for item in page.items)
    for item in [*page.items, *following.items]:
        assert stable(wire(item)) == truth[item.uuid or ""]
    assert page.from_current_api == (sandbox.api_generation == "current")
    if sandbox.api_generation == "seed":
        assert {item.uuid for item in page.items}.isdisjoint(item.uuid for item in following.items)


@pytest.mark.parametrize("shape", ["v1", "v2"])
async def test_iter_products_returns_exactly_the_catalogs_truth(sandbox: Sandbox, shape: str) -> None:
    sandbox.set_wire_shape(shape)
    catalog = sandbox.granted_catalogs()[1]

    async with make_client(sandbox) as client:
        pages = [page async for page in client.iter_search_pages(catalog=catalog, limit=7)]
    items = [item for page in pages for item in page.items]

    assert by_uuid([wire(item) for item in items]) == by_uuid(sandbox.truth_search_items(catalog))
    if shape == "v1":
        # the seed era: the first answer (to `catalogs`, which it ignores) was discarded, then asked again
        assert len(pages) == math.ceil(60 / 7)
        assert sandbox.request_counts["search"] == math.ceil(60 / 7) + 1
    else:
        # later pages start with a few products of the previous one again
        assert len(items) > 60 and sandbox.request_counts["search"] == len(pages)
    assert client.stats.by_operation == {"search_products": sandbox.request_counts["search"]}


async def test_iter_search_pages_walks_every_granted_catalog_without_a_catalog(any_sandbox: Sandbox) -> None:
    sandbox = any_sandbox
    truth = [item for catalog in sandbox.granted_catalogs() for item in sandbox.truth_search_items(catalog)]

    async with make_client(sandbox) as client:
        pages = [page async for page in client.iter_search_pages(limit=50)]

    if sandbox.api_generation == "seed":
        assert [len(page.items) for page in pages] == [50, 50, 20]
    assert [page.next_cursor is None for page in pages] == [False] * (len(pages) - 1) + [True]
    assert sandbox.request_counts["search"] == len(pages)  # unscoped: the same body for both generations
    records = [wire(item) for page in pages for item in page.items]
    assert by_uuid(records) == by_uuid(truth)


async def test_iter_search_pages_keeps_the_filters_on_every_page(any_sandbox: Sandbox) -> None:
    # The sandbox binds each cursor to its filters (another filter set gets 422), so a walk that lost a
    # filter after the first page would fail; the hits must also all match the filters.
    sandbox = any_sandbox
    catalog = sandbox.granted_catalogs()[0]
    truth = sandbox.truth_search_items(catalog)
    low, high = sorted(item["currentPrice"] for item in truth)[5], 400.0
    expected = [item for item in truth if low <= item["currentPrice"] <= high]

    async with make_client(sandbox) as client:
        pages = [
            page
            async for page in client.iter_search_pages(
                catalog=catalog, price_min=low, price_max=high, limit=3
            )
        ]

    assert by_uuid([wire(item) for page in pages for item in page.items]) == by_uuid(expected)
    assert len(expected) > 10
    probe = 1 if sandbox.api_generation == "seed" else 0  # the seed era's answer to `catalogs`, discarded
    assert sandbox.request_counts["search"] == len(pages) + probe
    if sandbox.api_generation == "seed":
        assert len(pages) == math.ceil(len(expected) / 3)


async def test_lookup_product_returns_the_full_view(any_sandbox: Sandbox) -> None:
    sandbox = any_sandbox
    catalog = sandbox.granted_catalogs()[0]
    hit = sandbox.truth_search_items(catalog)[0]

    async with make_client(sandbox) as client:
        lookup = await client.lookup_product(hit["productUrl"], resolution_mode="index_only")
        as_sent = await client.lookup_product_wire(hit["productUrl"], resolution_mode="index_only")

    truth = sandbox.truth_lookup(hit["uuid"])  # without the per-request requestId
    assert {key: value for key, value in wire(lookup).items() if key != "requestId"} == truth
    assert {key: value for key, value in as_sent.items() if key != "requestId"} == truth
    assert lookup.catalog_key == catalog
    assert isinstance(lookup.product, MerchantProductView)
    assert lookup.product.uuid == hit["uuid"]
    assert lookup.source == ("indexed" if sandbox.api_generation == "current" else None)
    assert client.stats.by_operation == {"lookup_product": 2}


async def test_current_hits_and_lookups_are_typed(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    hit = sandbox.truth_search_items(catalog)[0]

    async with make_client(sandbox) as client:
        page = await client.search_products(catalog=catalog, limit=100)
        lookup = await client.lookup_product(hit["productUrl"])

    first = next(item for item in page.items if item.uuid == hit["uuid"])
    assert first.model_extra == {}
    assert stable(wire(first)) == hit
    assert isinstance(first.brand, Brand) and first.brand.name == hit["brand"]["name"]
    assert isinstance(first.rating, Rating) and first.rating.count == hit["rating"]["count"]
    assert first.primary_image == hit["primaryImage"]
    assert (first.catalog_key, first.currency, first.in_stock) == (catalog, hit["currency"], hit["inStock"])
    assert first.raw_score is not None and first.display_match_score is not None
    assert lookup.source == "indexed" and lookup.request_id is not None
    view = lookup.product
    assert view is not None and view.brand is not None and view.brand.name == hit["brand"]["name"]
    assert view.variants and all(variant.color is not None for variant in view.variants)


async def test_an_index_only_lookup_of_a_url_outside_the_index_is_not_found(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    url = f"https://{sandbox.store_host(catalog)}/products/not-in-the-index"
    async with make_client(sandbox) as client:
        on_demand = await client.lookup_product_wire(url)
        with pytest.raises(OctogenNotFoundError) as raised:
            await client.lookup_product(url, resolution_mode="index_only")

    assert on_demand["source"] == "on_demand" and on_demand["product"]["uuid"] is None
    assert raised.value.detail == "product_not_found"


# ---- facets and limits -------------------------------------------------------------------------------


def brand_name(hit: dict[str, Any]) -> str:
    brand = hit["brand"]
    return str(brand["name"] if isinstance(brand, dict) else brand)


async def test_facets_are_coerced_from_facet_objects_and_dicts(any_sandbox: Sandbox) -> None:
    sandbox = any_sandbox
    catalog = sandbox.granted_catalogs()[0]
    truth = sandbox.truth_search_items(catalog)
    brand = brand_name(truth[0])
    expected = [item for item in truth if brand_name(item).lower() == brand.lower()]

    async with make_client(sandbox) as client:
        with_objects = await client.search_products(
            catalog=catalog, facets=[Facet(name="brand", values=[brand.lower()])], limit=100
        )
        with_dicts = await client.search_products(
            catalog=catalog, facets=[{"name": "brand", "values": [brand.lower()]}], limit=100
        )

    assert by_uuid([wire(item) for item in with_objects.items]) == by_uuid(expected)
    assert [item.uuid for item in with_dicts.items] == [item.uuid for item in with_objects.items]
    assert len(expected) < len(truth)


@pytest.mark.parametrize(
    "facets",
    [
        [{"name": "brand"}],
        [{"name": "brand", "values": "acme"}],
        [{"name": "brand", "values": ["acme"], "op": "or"}],
        ["brand"],
        {"name": "brand", "values": ["acme"]},
    ],
)
async def test_malformed_facets_are_refused_before_sending(sandbox: Sandbox, facets: Any) -> None:
    async with make_client(sandbox) as client:
        with pytest.raises(OctogenRequestError) as raised:
            await client.search_products(facets=facets)

    assert raised.value.status_code is None  # nothing was sent: not an API 422
    assert raised.value.response is None
    assert raised.value.detail and raised.value.detail[0]["loc"][:2] == ["body", "facets"]
    assert nothing_sent(sandbox)


@pytest.mark.parametrize("limit", [0, 101, -5, True, 2.5, "10"])
async def test_limit_outside_1_to_100_is_refused_before_sending(sandbox: Sandbox, limit: Any) -> None:
    async with make_client(sandbox) as client:
        with pytest.raises(OctogenRequestError) as raised:
            await client.search_products(limit=limit)
        with pytest.raises(OctogenRequestError):
            client.iter_search_pages(limit=limit)
        with pytest.raises(OctogenRequestError):
            client.iter_products(limit=limit)

    error = raised.value
    assert error.status_code is None and error.response is None
    assert error.detail == [
        {
            "loc": ["body", "limit"],
            "msg": f"limit must be an integer from 1 to 100, got {limit!r}",
            "type": "local_validation",
            "input": limit,
        }
    ]
    assert (
        str(error)
        == f"Octogen API request not sent: body.limit: limit must be an integer from 1 to 100, got {limit!r}"
    )
    assert nothing_sent(sandbox)
    assert client.stats.requests == 0


@pytest.mark.parametrize("limit", [1, 100])
async def test_limit_bounds_are_accepted(sandbox: Sandbox, limit: int) -> None:
    async with make_client(sandbox) as client:
        page = await client.search_products(limit=limit)  # 120 products in the granted catalogs
    assert len(page.items) == limit


# ---- keys ----------------------------------------------------------------------------------------------


async def test_missing_key_raises_in_the_constructor_before_any_request(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OCTO_API_KEY", raising=False)
    for api_key in (None, "", "   "):
        with pytest.raises(MissingAPIKeyError, match="OCTO_API_KEY"):
            OctogenClient(api_key=api_key, base_url=sandbox.base_url)
    monkeypatch.setenv("OCTO_API_KEY", "")
    with pytest.raises(MissingAPIKeyError):
        OctogenClient(base_url=sandbox.base_url)
    assert nothing_sent(sandbox)


async def test_key_is_read_from_the_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTO_API_KEY", sandbox.api_key)
    async with OctogenClient(base_url=sandbox.base_url) as client:
        assert (await client.get_me()).principal == "api_key"


async def test_the_key_argument_wins_over_the_environment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked = sandbox.add_key()
    sandbox.revoke_key(revoked)
    monkeypatch.setenv("OCTO_API_KEY", revoked)
    async with OctogenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        assert (await client.get_me()).principal == "api_key"

    monkeypatch.setenv("OCTO_API_KEY", sandbox.api_key)
    async with OctogenClient(api_key=revoked, base_url=sandbox.base_url, retry=FAST_RETRIES) as client:
        with pytest.raises(OctogenAuthenticationError):
            await client.get_me()


def test_an_unsendable_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(OctogenError) as raised:
        OctogenClient(api_key="octo_live_caf\u00e9_secret")
    assert "secret" not in str(raised.value)


def test_the_client_repr_does_not_show_the_key(sandbox: Sandbox) -> None:
    client = make_client(sandbox)
    assert sandbox.api_key not in repr(client)
    assert repr(client) == f"OctogenClient(base_url={sandbox.base_url!r})"


# ---- errors --------------------------------------------------------------------------------------------


async def test_revoked_key_is_an_authentication_error(any_sandbox: Sandbox) -> None:
    sandbox = any_sandbox
    key = sandbox.add_key()
    sandbox.revoke_key(key)
    async with make_client(sandbox, api_key=key) as client:
        with pytest.raises(OctogenAuthenticationError) as raised:
            await client.search_products(q="dress")

    error = raised.value
    detail = "API key revoked" if sandbox.api_generation == "current" else "Invalid API key"
    assert error.status_code == 401
    assert error.detail == detail
    assert isinstance(error.response, httpx.Response) and error.response.status_code == 401
    assert str(error) == with_id(f"Octogen API 401 on POST /products/search: {detail}", error)
    assert sandbox.request_counts["search"] == 1  # not retried
    assert_key_hidden(error, key)


async def test_forbidden_key_is_a_forbidden_error(sandbox: Sandbox) -> None:
    key = sandbox.add_key(forbidden=True)
    async with make_client(sandbox, api_key=key) as client:
        with pytest.raises(OctogenForbiddenError) as raised:
            await client.search_products(q="dress")

    error = raised.value
    assert (error.status_code, error.detail) == (403, "api_key_org_type_forbidden")
    assert error.response is not None and error.response.status_code == 403
    assert str(error) == with_id(
        "Octogen API 403 on POST /products/search: api_key_org_type_forbidden", error
    )
    assert error.request_id is not None
    assert sandbox.request_counts["search"] == 1
    assert_key_hidden(error, key)


@pytest.mark.parametrize("scope", ["catalog", "catalogs"])
async def test_ungranted_catalog_is_not_found(any_sandbox: Sandbox, scope: str) -> None:
    sandbox = any_sandbox
    ungranted = sandbox.all_catalogs()[-1]
    async with make_client(sandbox) as client:
        with pytest.raises(OctogenNotFoundError) as raised:
            if scope == "catalog":
                await client.search_products(catalog=ungranted)
            else:
                await client.search_products(catalogs=[ungranted])

    error = raised.value
    assert (error.status_code, error.detail) == (404, "catalog_not_found")
    assert error.response is not None and error.response.status_code == 404
    assert str(error) == with_id("Octogen API 404 on POST /products/search: catalog_not_found", error)
    # the seed era answered the first request (`catalogs`, ignored) with every granted catalog: asked again
    assert sandbox.request_counts["search"] == (1 if sandbox.api_generation == "current" else 2)
    assert_key_hidden(error, sandbox.api_key)


async def test_unknown_product_url_is_not_found(sandbox: Sandbox) -> None:
    async with make_client(sandbox) as client:
        with pytest.raises(OctogenNotFoundError) as raised:
            await client.lookup_product("https://nowhere.example/p/1")

    assert (raised.value.status_code, raised.value.detail) == (404, "product_not_found")
    assert str(raised.value) == with_id(
        "Octogen API 404 on POST /products/lookup: product_not_found", raised.value
    )


async def test_api_validation_error_carries_the_validation_list(sandbox: Sandbox) -> None:
    async with make_client(sandbox) as client:
        with pytest.raises(OctogenValidationError) as raised:
            await client.search_products(facets=[Facet(name="no_such_facet", values=["x"])])

    error = raised.value
    assert error.status_code == 422
    assert error.response is not None and error.response.status_code == 422
    assert isinstance(error.detail, list) and error.detail[0]["loc"] == ["body", "facets", 0, "name"]
    assert error.detail == error.response.json()["detail"]
    assert str(error) == with_id(
        "Octogen API 422 on POST /products/search: body.facets.0.name: Value error, unknown facet name "
        "'no_such_facet'",
        error,
    )
    assert sandbox.request_counts["search"] == 1


async def test_one_search_query_serves_every_search_method(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    query = SearchQuery.of(catalogs=[catalog], price_max=80.0, limit=7)
    async with make_client(sandbox) as client:
        first = await client.search_products(query)
        again = await client.search_products(catalogs=[catalog], price_max=80.0, limit=7)
        assert [item.uuid for item in again.items] == [item.uuid for item in first.items]
        pages = [page async for page in client.iter_search_pages(query)]
        items = [item async for item in client.iter_products(query)]
        wire_pages = [page async for page in client.iter_wire_search_pages(query)]
        with pytest.raises(TypeError, match="not both"):
            client.iter_search_pages(query, q="shoes")
        with pytest.raises(TypeError, match="catalg"):
            await client.search_products(catalg=catalog)  # type: ignore[call-arg]

    assert [item.uuid for item in pages[0].items] == [item.uuid for item in first.items]
    assert len(first.items) == 7 and len(pages) == len(wire_pages) > 1
    assert [item.uuid for page in pages for item in page.items] == [item.uuid for item in items]
    assert [hit["uuid"] for page in wire_pages for hit in page["items"]] == [item.uuid for item in items]
    assert all(item.catalog_key == catalog and (item.current_price or 0) <= 80.0 for item in items)


async def test_a_cursor_sent_with_other_filters_is_refused(sandbox: Sandbox) -> None:
    first, second = sandbox.granted_catalogs()
    async with make_client(sandbox) as client:
        page = await client.search_products(catalog=first, limit=5)
        with pytest.raises(OctogenValidationError) as raised:
            await client.search_products(catalog=second, limit=5, cursor=page.next_cursor)
    assert raised.value.detail[0]["loc"] == ["body", "cursor"]


async def test_other_statuses_raise_the_base_api_error_after_retries(sandbox: Sandbox) -> None:
    sandbox.fail_next(5, "500", endpoint="me")
    async with make_client(sandbox, retry=RetryPolicy(max_attempts=2, initial_backoff=0.01)) as client:
        with pytest.raises(OctogenAPIError) as raised:
            await client.get_me()

    error = raised.value
    assert type(error) is OctogenAPIError
    assert (error.status_code, error.detail) == (500, "Internal Server Error")
    assert error.response is not None and error.response.status_code == 500
    assert str(error) == with_id("Octogen API 500 on GET /me: Internal Server Error", error)
    assert sandbox.request_counts["me"] == 2
    assert_key_hidden(error, sandbox.api_key)


async def test_exhausted_credit_stops_at_the_first_402(sandbox: Sandbox) -> None:
    sandbox.exhaust_credit()
    async with make_client(sandbox, retry=RetryPolicy(max_attempts=5, initial_backoff=0.01)) as client:
        with pytest.raises(OctogenInsufficientCreditError) as raised:
            [page async for page in client.iter_wire_search_pages(catalog=sandbox.granted_catalogs()[0])]

    error = raised.value
    assert error.status_code == 402 and error.top_up_url
    assert (
        f"top up at {error.top_up_url}" in str(error) and error.request_id and error.request_id in str(error)
    )
    assert sandbox.request_counts["search"] == 1 and client.stats.requests == 1
    assert_key_hidden(error, sandbox.api_key)


async def test_a_rate_limited_search_reports_retry_after_and_the_limits(sandbox: Sandbox) -> None:
    sandbox.fail_next(1, "429", endpoint="search", retry_after=7)
    async with make_client(sandbox, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(OctogenRateLimitError) as raised:
            await client.search_products()
    assert raised.value.retry_after == 7.0
    assert sandbox.request_counts["search"] == 1


async def test_get_me_and_get_domain(sandbox: Sandbox) -> None:
    first = sandbox.granted_catalogs()[0]
    host = sandbox.store_host(first)
    async with make_client(sandbox) as client:
        me = await client.get_me()
        coverage = await client.get_domain(f"https://www.{host}/products/anything?x=1")
        with pytest.raises(OctogenNotFoundError) as raised:
            await client.get_domain("nowhere.example")

    assert me.organization is not None and me.organization.type == "catalog_partner"
    assert me.key is not None and me.key.prefix and sandbox.api_key.startswith(me.key.prefix)
    assert coverage.host == host
    by_key = {c.catalog: c for c in coverage.catalogs}
    assert first in by_key and by_key[first].product_count == 60
    assert {s["catalog"]: s["displayName"] for s in sandbox.truth_catalog_summaries()}[first] == (
        by_key[first].catalog_display_name
    )
    assert raised.value.detail == "domain_not_covered"
    assert sandbox.request_counts["me"] == 1 and sandbox.request_counts["domains"] == 2


async def test_unreachable_api_is_a_connection_error_without_status(unused_port: int) -> None:
    key = "octo_live_0123456789abcdef0123456789abcdef_c2VjcmV0"
    client = OctogenClient(api_key=key, base_url=f"http://127.0.0.1:{unused_port}/v1", retry=FAST_RETRIES)
    async with client:
        with pytest.raises(OctogenConnectionError) as raised:
            await client.list_catalogs()

    error = raised.value
    assert not isinstance(error, OctogenAPIError)
    assert not hasattr(error, "status_code")
    assert str(error).startswith("Could not reach the Octogen API on GET /catalogs: ConnectError")
    assert error.__context__ is None and error.__cause__ is None
    assert client.stats.requests == 3 and client.stats.retries == 2
    assert_key_hidden(error, key)


# ---- connection pool ownership -------------------------------------------------------------------------


async def test_async_with_and_aclose_close_the_clients_own_pool(sandbox: Sandbox) -> None:
    async with make_client(sandbox) as client:
        await client.get_me()
    with pytest.raises(RuntimeError):
        await client.get_me()

    other = make_client(sandbox)
    await other.get_me()
    await other.aclose()
    with pytest.raises(RuntimeError):
        await other.get_me()


async def test_a_callers_http_client_is_used_and_left_open(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as http:
        async with make_client(sandbox, http_client=http) as client:
            me = await client.get_me()
        await client.aclose()

        assert me.principal == "api_key"
        assert not http.is_closed
        response = await http.get(
            sandbox.base_url + "/me", headers={"Authorization": f"Bearer {sandbox.api_key}"}
        )
        assert response.status_code == 200
        # the client's Authorization header went per request, not onto the caller's client
        assert "authorization" not in http.headers


async def test_requests_are_counted_into_tracked_stats(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    mine, outer = RequestStats(), RequestStats()
    async with make_client(sandbox) as client, make_client(sandbox) as other:
        await client.get_me()
        with client.track(outer):
            with client.track(mine) as returned:
                assert returned is mine
                pages = [page async for page in client.iter_search_pages(catalog=catalog, limit=20)]
                await other.get_me()  # another client: not counted into this client's trackers
            await client.lookup_product(pages[0].items[0].product_url or "")
        await client.get_me()

    walked = len(pages)
    assert mine == RequestStats(requests=walked, retries=0, by_operation={"search_products": walked})
    assert outer == RequestStats(
        requests=walked + 1, retries=0, by_operation={"search_products": walked, "lookup_product": 1}
    )
    assert client.stats == RequestStats(
        requests=walked + 3,
        retries=0,
        by_operation={"get_me": 2, "search_products": walked, "lookup_product": 1},
    )
    assert other.stats.requests == 1


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("shape", ["v1", "v2"])
async def test_wire_pages_hold_the_same_hits_as_the_models(sandbox: Sandbox, shape: str) -> None:
    sandbox.set_wire_shape(shape)
    catalog = sandbox.granted_catalogs()[0]
    async with make_client(sandbox) as client:
        pages = [page async for page in client.iter_wire_search_pages(catalog=catalog, limit=7)]
    hits = [hit for page in pages for hit in page["items"]]
    if shape == "v1":
        assert hits == sandbox.truth_search_items(catalog)
    assert by_uuid(hits) == by_uuid(sandbox.truth_search_items(catalog))
    assert [page["nextCursor"] is None for page in pages] == [False] * (len(pages) - 1) + [True]


async def test_the_next_page_is_requested_before_a_wire_page_is_handed_over(sandbox: Sandbox) -> None:
    """The caller's work on a page (which need not yield to the event loop) overlaps the next round trip:
    that page's request is already sent (its body written) when the page is handed over."""
    catalog = sandbox.granted_catalogs()[0]
    requests_when_handed: list[int] = []
    async with make_client(sandbox) as client:
        async for page in client.iter_wire_search_pages(catalog=catalog, limit=7):
            requests_when_handed.append(client.stats.requests)
            last = page["nextCursor"] is None
    pages = len(requests_when_handed)
    assert last and pages >= 3
    assert requests_when_handed == [*range(2, pages + 1), pages]
    assert sandbox.request_counts["search"] == pages


async def test_several_catalogs_are_searched_together_or_refused_by_the_seed_era(
    any_sandbox: Sandbox,
) -> None:
    sandbox = any_sandbox
    granted = sandbox.granted_catalogs()
    truth = [item for catalog in granted for item in sandbox.truth_search_items(catalog)]
    async with make_client(sandbox) as client:
        walk = client.iter_wire_search_pages(catalogs=granted, limit=50)
        if sandbox.api_generation == "seed":
            with pytest.raises(OctogenScopeError, match="searches one catalog per request"):
                [page async for page in walk]
            assert sandbox.request_counts["search"] == 1  # the answer that ignored `catalogs`, discarded
            return
        pages = [page async for page in walk]

    assert by_uuid([hit for page in pages for hit in page["items"]]) == by_uuid(truth)
    assert pages[-1]["nextCursor"] is None
    effective = pages[-1].get("effectiveQuery")
    assert effective is not None and effective["catalogs"] == granted
