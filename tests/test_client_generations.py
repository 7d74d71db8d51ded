"""The client against both API generations over real HTTP (a small fake of the API, tests/client_helpers.py).

Catalog scoping (``catalog`` vs ``catalogs``), the last page without ``nextCursor``, lookups' modes and wire
form, ``/me``, ``/domains/{host}``, the retired ``/catalogs``, and the errors of the current API (402, 429,
request ids).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from octogen_source import models
from octogen_source.client import OctogenClient
from octogen_source.errors import (
    OctogenAPIError,
    OctogenEndpointRetiredError,
    OctogenInsufficientCreditError,
    OctogenNotFoundError,
    OctogenRateLimitError,
    OctogenRequestError,
    OctogenResponseError,
    OctogenScopeError,
)
from octogen_source.models import (
    Brand,
    DomainCoverageResponse,
    MerchantProductListPage,
    MerchantProductUrlLookupResponse,
    MeResponse,
    Rating,
    VariantColor,
)
from octogen_source.retries import RetryPolicy
from tests.client_helpers import FakeApi, Scripted, current_hit, seed_hit, serving, wire

KEY = "octo_live_00112233445566778899aabbccddeeff_c2VjcmV0LXNlY3JldA"
FAST_RETRIES = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


def catalogs_of(generation: str) -> list[dict[str, Any]]:
    make = current_hit if generation == "current" else seed_hit
    return [make("alpha", index) for index in range(5)] + [make("beta", 100 + index) for index in range(3)]


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    async with serving(FakeApi(hits=catalogs_of("current"))) as running:
        yield running


@pytest.fixture
async def seed_api() -> AsyncIterator[FakeApi]:
    async with serving(FakeApi(generation="seed", hits=catalogs_of("seed"))) as running:
        yield running


def make_client(api: FakeApi, **options: Any) -> OctogenClient:
    options.setdefault("retry", FAST_RETRIES)
    return OctogenClient(api_key=KEY, base_url=api.base_url, **options)


def uuids(records: list[Any]) -> list[str]:
    return [record["uuid"] if isinstance(record, dict) else record.uuid for record in records]


# ---- catalog scoping -------------------------------------------------------------------------------------


async def test_the_current_api_is_sent_catalogs_and_its_last_page_has_no_next_cursor(api: FakeApi) -> None:
    async with make_client(api) as client:
        pages = [page async for page in client.iter_search_pages(catalog="alpha", limit=2)]

    assert api.bodies() == [
        {"catalogs": ["alpha"], "limit": 2},
        {"catalogs": ["alpha"], "limit": 2, "cursor": "2"},
        {"catalogs": ["alpha"], "limit": 2, "cursor": "4"},
    ]
    assert [page.next_cursor for page in pages] == ["2", "4", None]
    assert all(page.request_id and page.effective_query for page in pages)
    assert uuids([item for page in pages for item in page.items]) == uuids(api.hits[:5])
    assert client.api_generation == "current"


@pytest.mark.parametrize("scope", [{"catalog": "alpha"}, {"catalogs": ["alpha"]}])
async def test_a_seed_era_api_is_asked_again_with_catalog_and_never_answers_other_catalogs(
    seed_api: FakeApi, scope: dict[str, Any]
) -> None:
    async with make_client(seed_api) as client:
        first = [item async for item in client.iter_products(limit=3, **scope)]
        again = [item async for item in client.iter_products(limit=3, **scope)]

    truth = uuids(seed_api.hits[:5])
    assert uuids(first) == uuids(again) == truth
    # the seed era ignored `catalogs` (its answer held beta's products too): that page was discarded, the
    # search sent again with `catalog`, and the client remembers the generation for the next walk
    assert seed_api.bodies() == [
        {"catalogs": ["alpha"], "limit": 3},
        {"catalog": "alpha", "limit": 3},
        {"catalog": "alpha", "limit": 3, "cursor": "3"},
        {"catalog": "alpha", "limit": 3},
        {"catalog": "alpha", "limit": 3, "cursor": "3"},
    ]
    assert client.api_generation == "seed"


async def test_wire_pages_are_scoped_the_same_way_on_a_seed_era_api(seed_api: FakeApi) -> None:
    async with make_client(seed_api) as client:
        pages = [page async for page in client.iter_wire_search_pages(catalog="beta", limit=2)]
    assert [hit["catalogKey"] for page in pages for hit in page["items"]] == ["beta"] * 3
    assert [page["nextCursor"] for page in pages] == ["2", None]


async def test_several_catalogs_on_a_seed_era_api_are_an_error_not_every_catalogs_products(
    seed_api: FakeApi,
) -> None:
    async with make_client(seed_api) as client:
        with pytest.raises(OctogenScopeError, match="searches one catalog per request") as raised:
            [page async for page in client.iter_search_pages(catalogs=["alpha", "beta"])]
        # known to be seed-era now: refused before anything is sent
        with pytest.raises(OctogenScopeError):
            await client.search_products(catalogs=["alpha", "beta"])

    assert "\n" not in str(raised.value)
    assert seed_api.bodies() == [{"catalogs": ["alpha", "beta"], "limit": 50}]


async def test_several_catalogs_on_the_current_api(api: FakeApi) -> None:
    async with make_client(api) as client:
        page = await client.search_products(catalogs=("beta", "alpha"), limit=100)
    assert sorted(uuids(page.items)) == sorted(uuids(api.hits))
    assert api.bodies() == [{"catalogs": ["beta", "alpha"], "limit": 100}]


async def test_an_unscoped_search_is_sent_once_to_either_generation(api: FakeApi, seed_api: FakeApi) -> None:
    for served in (api, seed_api):
        async with make_client(served) as client:
            page = await client.search_products(q="dress", limit=100)
        assert len(page.items) == 8
        assert served.bodies() == [{"q": "dress", "limit": 100}]


async def test_a_client_that_saw_the_seed_era_follows_an_api_that_moved_on(seed_api: FakeApi) -> None:
    async with make_client(seed_api) as client:
        await client.search_products(catalog="alpha")
        assert client.api_generation == "seed"
        seed_api.generation = "current"
        seed_api.hits = catalogs_of("current")
        seed_api.seen.clear()
        page = await client.search_products(catalog="alpha", limit=100)

    assert uuids(page.items) == uuids(seed_api.hits[:5])
    assert seed_api.bodies() == [{"catalog": "alpha", "limit": 100}, {"catalogs": ["alpha"], "limit": 100}]
    assert client.api_generation == "current"


@pytest.mark.parametrize(
    ("scope", "field_name"),
    [
        ({"catalog": "alpha", "catalogs": ["beta"]}, "catalog"),
        ({"catalogs": []}, "catalogs"),
        ({"catalogs": [f"c{index}" for index in range(501)]}, "catalogs"),
        ({"catalogs": "alpha"}, "catalogs"),
        ({"catalogs": ["alpha", ""]}, "catalogs"),
        ({"catalog": ""}, "catalog"),
    ],
)
async def test_a_scope_the_api_cannot_take_is_refused_before_sending(
    api: FakeApi, scope: dict[str, Any], field_name: str
) -> None:
    async with make_client(api) as client:
        with pytest.raises(OctogenRequestError) as raised:
            await client.search_products(**scope)
        with pytest.raises(OctogenRequestError):
            client.iter_wire_search_pages(**scope)

    error = raised.value
    assert error.response is None and error.status_code is None
    assert error.detail[0]["loc"] == ["body", field_name]
    assert str(error).startswith("Octogen API request not sent: body.")
    assert api.seen == []


async def test_500_catalog_keys_are_accepted(api: FakeApi) -> None:
    async with make_client(api) as client:
        await client.search_products(catalogs=[f"c{index}" for index in range(500)])
    assert len(api.bodies()[0]["catalogs"]) == 500


# ---- the end of a walk -----------------------------------------------------------------------------------


async def test_a_last_page_without_next_cursor_ends_the_walk_and_keeps_every_page(api: FakeApi) -> None:
    async with make_client(api) as client:
        items = [item async for item in client.iter_products(catalog="alpha", limit=3)]
        wire_pages = [page async for page in client.iter_wire_search_pages(catalog="alpha", limit=3)]

    assert uuids(items) == uuids(api.hits[:5])
    assert [wire(item) for item in items] == api.hits[:5]
    assert [hit for page in wire_pages for hit in page["items"]] == api.hits[:5]
    assert [page["nextCursor"] for page in wire_pages] == ["3", None]
    assert "nextCursor" not in json.dumps(api.hits)  # the fake really left it out


async def test_wire_pages_of_the_current_api_take_the_fast_path(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pydantic_fallback(content: bytes) -> Any:
        raise AssertionError("a current page went through pydantic")

    monkeypatch.setattr(models._WIRE_SEARCH_PAGE, "validate_json", pydantic_fallback)
    async with make_client(api) as client:
        pages = [page async for page in client.iter_wire_search_pages(limit=3)]
    assert len(pages) == 3
    assert all(page["requestId"] and page["effectiveQuery"] for page in pages)


@pytest.mark.parametrize(
    "body",
    [
        {"items": [current_hit("alpha", 1)]},  # neither nextCursor nor the current envelope
        {"items": [], "requestId": "r1", "nextCursor": {"page": 2}},
        {"items": "nope", "requestId": "r1", "effectiveQuery": {}},
    ],
)
async def test_a_page_that_cannot_say_where_the_walk_ends_is_refused(api: FakeApi, body: Any) -> None:
    api.script.extend([Scripted(body=body), Scripted(body=body)])
    async with make_client(api) as client:
        with pytest.raises(OctogenResponseError, match="unexpected response shape") as raised:
            await client.search_products()
        with pytest.raises(OctogenResponseError, match="unexpected response shape"):
            [page async for page in client.iter_wire_search_pages()]
    assert raised.value.request_id is not None
    assert f"(request id {raised.value.request_id})" in str(raised.value)


def test_page_model_end_markers() -> None:
    current_last = MerchantProductListPage.model_validate({"items": [], "requestId": "r"})
    seed_last = MerchantProductListPage.model_validate({"items": [], "nextCursor": None})
    assert current_last.next_cursor is None and current_last.from_current_api
    assert seed_last.next_cursor is None and not seed_last.from_current_api
    assert (
        models.parse_wire_search_page(b'{"items": [], "effectiveQuery": {"text": ""}}')["nextCursor"] is None
    )


# ---- lookups ----------------------------------------------------------------------------------------------


LOOKUP: dict[str, Any] = {
    "catalogKey": "alpha",
    "catalogDisplayName": "Alpha",
    "sourceBaseUrl": "https://www.alpha.example",
    "source": "indexed",
    "requestId": "8d0d2c7e-8f2b-4a53-9f4b-1e1f0c9e6a10",
    "requestedUrl": "https://alpha.example/products/linen-dress-1?utm_source=x",
    "normalizedUrl": "https://alpha.example/products/linen-dress-1",
    "canonicalUrl": None,
    "resolvedUrl": None,
    "matchedVia": "normalized_exact",
    "cacheStatus": None,
    "resolution": None,
    "warnings": [],
    "product": {
        **current_hit("alpha", 1),
        "description": "A midi dress in washed European linen.",
        "colors": [
            {"label": "Ivory", "hexCode": "#FFFFF0", "swatchUrl": "https://cdn.alpha.example/sw/ivory.png"},
            {"label": "Black", "hexCode": "#000000"},
        ],
        "variants": [
            {
                "sku": "ALP-1-IV-S",
                "productUrl": "https://www.alpha.example/products/linen-dress-1?variant=1",
                "color": {"label": "Ivory", "hexCode": "#FFFFF0"},
                "size": "S",
                "inStock": True,
            }
        ],
        "categories": [{"name": "Dresses", "url": "https://www.alpha.example/collections/dresses"}],
        "breadcrumbs": [{"name": "Women", "url": None}],
        "identifiers": {"productId": "ALP-000001", "gtin": None, "productGroupId": "ALPG-00001"},
        "enrichment": {"attributes": {"Sleeve length type": ["Short"]}},
        "reviews": [],
    },
}


async def test_lookup_modes_are_sent_under_their_wire_names_only_when_given(api: FakeApi) -> None:
    api.lookup = LOOKUP
    url = "https://alpha.example/products/linen-dress-1"
    async with make_client(api) as client:
        typed = await client.lookup_product(url)
        indexed = await client.lookup_product(url, resolution_mode="index_only", match_mode="strict")
        as_sent = await client.lookup_product_wire(url, resolution_mode="index_only")

    assert api.bodies("/v1/products/lookup") == [
        {"url": url},
        {"url": url, "resolutionMode": "index_only", "matchMode": "strict"},
        {"url": url, "resolutionMode": "index_only"},
    ]
    assert as_sent == LOOKUP
    assert wire(typed) == wire(indexed) == LOOKUP
    assert isinstance(typed, MerchantProductUrlLookupResponse)
    assert (typed.source, typed.request_id, typed.matched_via) == (
        "indexed",
        LOOKUP["requestId"],
        "normalized_exact",
    )
    assert typed.normalized_url == LOOKUP["normalizedUrl"] and typed.warnings == []
    view = typed.product
    assert view is not None and view.brand is not None and view.rating is not None
    assert (view.brand.name, view.brand.slug, view.rating.average, view.rating.count) == (
        "Reformation",
        "reformation",
        4.6,
        212,
    )
    assert view.colors is not None and view.colors[0].swatch_url == "https://cdn.alpha.example/sw/ivory.png"
    assert view.variants is not None and isinstance(view.variants[0].color, VariantColor)
    assert view.variants[0].color.label == "Ivory" and view.variants[0].color.hex_code == "#FFFFF0"
    assert view.variants[0].product_url == LOOKUP["product"]["variants"][0]["productUrl"]
    assert view.primary_image == LOOKUP["product"]["primaryImage"]


async def test_an_on_demand_answer_is_typed_too(api: FakeApi) -> None:
    product = {**LOOKUP["product"], "uuid": None, "catalogKey": None}
    api.lookup = {
        **LOOKUP,
        "source": "on_demand",
        "catalogKey": None,
        "resolvedUrl": "https://x/p",
        "product": product,
    }
    async with make_client(api) as client:
        lookup = await client.lookup_product("https://x/p")
    assert (lookup.source, lookup.catalog_key, lookup.resolved_url) == ("on_demand", None, "https://x/p")
    assert lookup.product is not None and lookup.product.uuid is None


@pytest.mark.parametrize(
    ("options", "field_name"),
    [({"resolution_mode": "index"}, "resolutionMode"), ({"match_mode": "STRICT"}, "matchMode")],
)
async def test_unknown_lookup_modes_are_refused_before_sending(
    api: FakeApi, options: dict[str, Any], field_name: str
) -> None:
    async with make_client(api) as client:
        with pytest.raises(OctogenRequestError) as raised:
            await client.lookup_product("https://x/p", **options)
        with pytest.raises(OctogenRequestError):
            await client.lookup_product_wire("https://x/p", **options)
    assert raised.value.detail[0]["loc"] == ["body", field_name]
    assert api.seen == []


async def test_a_seed_era_lookup_ignores_the_modes_and_still_parses(seed_api: FakeApi) -> None:
    seed_api.lookup = {
        "catalogKey": "alpha",
        "catalogDisplayName": "Alpha",
        "sourceBaseUrl": "https://www.alpha.example",
        "product": {**seed_hit("alpha", 1), "colors": [{"label": "Red", "hexCode": "#f00"}]},
    }
    async with make_client(seed_api) as client:
        lookup = await client.lookup_product("https://x/p", resolution_mode="index_only")
        as_sent = await client.lookup_product_wire("https://x/p", resolution_mode="index_only")
    assert wire(lookup) == as_sent == seed_api.lookup
    assert lookup.source is None
    # read from the seed era's string, equal to the record built from the name
    assert lookup.product is not None and lookup.product.brand == Brand(name="Reformation")


async def test_a_wire_lookup_without_a_product_is_an_api_error(api: FakeApi) -> None:
    api.lookup = {"catalogKey": "alpha", "product": "gone"}
    async with make_client(api) as client:
        with pytest.raises(OctogenResponseError, match="unexpected response shape: product"):
            await client.lookup_product_wire("https://x/p")


# ---- /me, /domains, /catalogs ---------------------------------------------------------------------------


async def test_get_me(api: FakeApi) -> None:
    async with make_client(api) as client:
        me = await client.get_me()
    assert isinstance(me, MeResponse)
    assert me.organization is not None and me.organization.type == "catalog_partner"
    assert me.key is not None and me.key.prefix == "octo_live_3f9c1a2b4d"
    assert me.rate_limit is not None and (me.rate_limit.limit, me.rate_limit.remaining) == (600, 598)
    assert api.seen[0][:2] == ("GET", "/v1/me")


DOMAIN = {
    "host": "alpha.example",
    "catalogs": [
        {
            "catalog": "alpha",
            "catalogDisplayName": "Alpha",
            "productCount": 5,
            "computedAt": "2026-12-01T04:00:00Z",
            "fields": [{"name": "brand", "displayName": "Brand", "coverage": 1.0}],
            "price": None,
        }
    ],
}


@pytest.mark.parametrize(
    "given",
    [
        "alpha.example",
        "https://www.Alpha.Example:443/products/x?y=1",
        " WWW.alpha.example. ",
        "alpha.example:8443",
    ],
)
async def test_get_domain_takes_a_host_or_url_and_asks_for_the_normalised_host(
    api: FakeApi, given: str
) -> None:
    api.domains["alpha.example"] = DOMAIN
    async with make_client(api) as client:
        coverage = await client.get_domain(given)
    assert isinstance(coverage, DomainCoverageResponse)
    assert [(c.catalog, c.catalog_display_name, c.product_count) for c in coverage.catalogs] == [
        ("alpha", "Alpha", 5)
    ]
    assert api.seen[0][:2] == ("GET", "/v1/domains/alpha.example")


async def test_a_domain_no_catalog_serves_is_not_found(api: FakeApi) -> None:
    async with make_client(api) as client:
        with pytest.raises(OctogenNotFoundError) as raised:
            await client.get_domain("nowhere.example")
        with pytest.raises(OctogenRequestError):
            await client.get_domain("https:///no-host")
    assert raised.value.detail == "domain_not_covered"
    assert str(raised.value).startswith("Octogen API 404 on GET /domains/nowhere.example: domain_not_covered")
    assert len(api.seen) == 1


async def test_list_catalogs_where_it_is_retired_says_how_to_name_catalogs(api: FakeApi) -> None:
    async with make_client(api) as client:
        with pytest.raises(OctogenEndpointRetiredError) as raised:
            await client.list_catalogs()

    error = raised.value
    assert isinstance(error, OctogenNotFoundError) and error.status_code == 404
    message = str(error)
    assert "\n" not in message
    for needed in (
        "retired on 2026-07-09",
        "sources.octogen.catalogs",
        "--catalog",
        "GET /domains/{host}",
        "client.get_domain(host)",
        "--discover",
        f"(request id {error.request_id})",
    ):
        assert needed in message
    assert error.request_id is not None and len(api.seen) == 1


async def test_list_catalogs_on_a_seed_era_api(seed_api: FakeApi) -> None:
    async with make_client(seed_api) as client:
        catalogs = await client.list_catalogs()
        await client.search_products(catalog="alpha")
    assert [catalog.catalog for catalog in catalogs] == ["alpha", "beta"]
    # the catalog list told the generation: the search goes out with `catalog` at once
    assert seed_api.bodies() == [{"catalog": "alpha", "limit": 50}]


# ---- errors -----------------------------------------------------------------------------------------------


CREDIT = {
    "code": "insufficient_credit",
    "message": "Prepaid credit exhausted",
    "top_up_url": "https://platform.octogen.ai/billing/top-up",
    "balance_micros": 0,
}


@pytest.mark.parametrize(
    ("detail", "top_up"),
    [(CREDIT, "https://platform.octogen.ai/billing/top-up"), ("insufficient_credit", None)],
)
async def test_a_402_is_never_retried_and_names_the_top_up(
    api: FakeApi, detail: Any, top_up: str | None
) -> None:
    api.script.append(Scripted(402, {"detail": detail}))
    async with make_client(api, retry=RetryPolicy(max_attempts=5, initial_backoff=0.01)) as client:
        with pytest.raises(OctogenInsufficientCreditError) as raised:
            [page async for page in client.iter_wire_search_pages(catalog="alpha")]

    error = raised.value
    assert len(api.seen) == 1 and client.stats.requests == 1
    assert (error.status_code, error.detail, error.top_up_url) == (402, detail, top_up)
    message = str(error)
    assert message.startswith("Octogen API 402 on POST /products/search: insufficient_credit: ")
    assert f"top up at {top_up or 'the Octogen Platform (billing)'}" in message
    assert message.endswith(f"(request id {error.request_id})") and error.request_id
    assert KEY not in message and "\n" not in message


async def test_a_429_carries_retry_after_and_the_rate_limit_headers(api: FakeApi) -> None:
    limited = Scripted(
        429,
        {"detail": "rate_limit_exceeded"},
        {
            "Retry-After": "2",
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1764867660",
        },
    )
    api.script.append(limited)
    async with make_client(api, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(OctogenRateLimitError) as raised:
            await client.search_products()

    error = raised.value
    assert (error.retry_after, error.limit, error.remaining, error.reset) == (2.0, "600", "0", "1764867660")
    assert (
        str(error)
        == f"Octogen API 429 on POST /products/search: rate_limit_exceeded (request id {error.request_id})"
    )


async def test_a_429_past_the_time_budget_keeps_its_class_and_fields(api: FakeApi) -> None:
    api.script.append(Scripted(429, {"detail": "rate_limit_exceeded"}, {"Retry-After": "30"}))
    policy = RetryPolicy(max_attempts=3, max_total_seconds=1.0, initial_backoff=0.01)
    async with make_client(api, retry=policy) as client:
        with pytest.raises(OctogenRateLimitError):
            await client.search_products()
        with pytest.raises(OctogenRateLimitError, match="rate limited for another") as gated:
            await client.get_me()
    assert gated.value.retry_after == 30.0 and gated.value.request_id is not None
    assert len(api.seen) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_failures_are_retried(api: FakeApi, status: int) -> None:
    api.script.extend([Scripted(status, {"detail": "product_lookup_timed_out"})] * 2)
    api.lookup = LOOKUP
    async with make_client(api) as client:
        lookup = await client.lookup_product("https://x/p")
    assert lookup.catalog_key == "alpha"
    assert (client.stats.requests, client.stats.retries) == (3, 2)


async def test_the_request_id_comes_from_the_header_else_the_body(api: FakeApi, seed_api: FakeApi) -> None:
    seed_api.script.append(Scripted(404, {"detail": "product_not_found", "requestId": "body-id-1"}))
    seed_api.script.append(Scripted(404, {"detail": "product_not_found"}))
    async with make_client(seed_api) as client:
        with pytest.raises(OctogenNotFoundError) as from_body:
            await client.lookup_product("https://x/p")
        with pytest.raises(OctogenNotFoundError) as without:
            await client.lookup_product("https://x/p")
    assert from_body.value.request_id == "body-id-1"
    assert (
        str(from_body.value)
        == "Octogen API 404 on POST /products/lookup: product_not_found (request id body-id-1)"
    )
    assert without.value.request_id is None
    assert str(without.value) == "Octogen API 404 on POST /products/lookup: product_not_found"

    api.script.append(Scripted(401, {"detail": f"API key revoked: {KEY}"}, {"x-request-id": "hdr-7"}))
    async with make_client(api) as client:
        with pytest.raises(OctogenAPIError) as revoked:
            await client.get_me()
    assert revoked.value.request_id == "hdr-7"
    assert str(revoked.value) == "Octogen API 401 on GET /me: API key revoked: [redacted] (request id hdr-7)"


# ---- typed models from both shapes -------------------------------------------------------------------------


def test_hits_of_both_generations_type_brand_rating_and_images() -> None:
    current = MerchantProductListPage.model_validate(
        {"items": [current_hit("alpha", 1)], "requestId": "r", "effectiveQuery": {"text": ""}}
    ).items[0]
    seed = MerchantProductListPage.model_validate(
        {"items": [seed_hit("alpha", 1)], "nextCursor": None}
    ).items[0]

    assert current.brand == Brand(
        name="Reformation",
        slug="reformation",
        url="https://www.thereformation.com",
        description="Sustainable women's clothing.",
    )
    assert seed.brand is not None and seed.brand.name == "Reformation" and seed.brand.slug is None
    assert current.rating == Rating(average=4.6, count=212)
    assert seed.rating is not None and (seed.rating.average, seed.rating.count) == (4.6, None)
    assert current.images is not None and current.images[0] == current_hit("alpha", 1)["images"][0]
    assert seed.images == [image["url"] for image in current_hit("alpha", 1)["images"]]
    assert current.primary_image is not None and seed.primary_image is None
    assert (current.currency, current.in_stock, current.gender) == ("USD", True, "female")
    assert (current.colors, current.sizes) == (["Ivory", "Black"], ["XS", "S", "M"])
    assert current.category_path == ["Apparel", "Dresses", "Midi Dresses"]
    assert (current.catalog_key, current.catalog_display_name) == ("alpha", "Alpha")
    assert (current.raw_score, current.display_match_score) == (12.73, 87)
    # typed, yet dumped as the API sent them, and nothing left over as an extra
    assert wire(current) == current_hit("alpha", 1)
    assert wire(seed) == seed_hit("alpha", 1)
    assert current.model_extra == seed.model_extra == {}


def test_a_drifted_brand_or_rating_is_kept_raw() -> None:
    hit = {**current_hit("alpha", 1), "brand": ["Reformation"], "rating": {"average": "n/a", "count": 3}}
    item = MerchantProductListPage.model_validate({"items": [hit], "requestId": "r"}).items[0]
    assert (
        item.brand is None and item.model_extra is not None and item.model_extra["brand"] == ["Reformation"]
    )
    assert item.rating is not None and item.rating.average is None and item.rating.count == 3
    assert wire(item) == hit
    assert models.MerchantProductListItem.model_validate({"rating": True}).rating is None
