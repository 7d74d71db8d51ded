"""The sandbox's current generation (today's API, the default): search over real HTTP with plain httpx.

No ``GET /catalogs``; a strict request model with the ``catalogs`` allowlist; pages ``{items, nextCursor?,
requestId, effectiveQuery}`` that repeat a few products across page boundaries; hits with object-valued
brand/rating/images and query-relative scores; ``x-request-id`` on every answer of both generations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import httpx
import pytest

from octogen_source.sandbox import Sandbox
from tests.sandbox_helpers import api_client

SCORES = ("rawScore", "displayMatchScore")
PAGE_KEYS = {"items", "nextCursor", "requestId", "effectiveQuery"}
HIT_KEYS = {
    "uuid",
    "productUrl",
    "title",
    "brand",
    "currentPrice",
    "originalPrice",
    "currency",
    "imageUrl",
    "primaryImage",
    "images",
    "rating",
    "isActive",
    "inStock",
    "colors",
    "sizes",
    "gender",
    "categoryPath",
    "catalogKey",
    "catalogDisplayName",
    "updatedAt",
    *SCORES,
}


def search(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/products/search", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["requestId"] == response.headers["x-request-id"]
    return response.json()


def pages(client: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    """Every page of a search, following nextCursor until a page has none."""
    result: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = search(client, **body, **({"cursor": cursor} if cursor else {}))
        result.append(page)
        if "nextCursor" not in page:
            return result
        cursor = page["nextCursor"]
        assert isinstance(cursor, str) and cursor


def without_scores(hit: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in hit.items() if key not in SCORES}


def walk_items(client: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    return [item for page in pages(client, **body) for item in page["items"]]


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with api_client(sandbox) as http:
        yield http


def test_current_is_the_default_and_get_catalogs_is_retired(sandbox: Sandbox, client: httpx.Client) -> None:
    assert (sandbox.api_generation, sandbox.wire_shape) == ("current", "v2")
    retired, unknown = client.get("/catalogs"), client.get("/no-such-route")
    assert retired.status_code == unknown.status_code == 404
    assert retired.json() == unknown.json() == {"detail": "Not Found"}
    assert sandbox.request_counts["catalogs"] == 1
    assert len(sandbox.truth_catalog_summaries()) == 2  # the truth stays available


def test_every_answer_of_both_generations_carries_a_request_id(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    for generation in ("current", "seed"):
        sandbox.set_api_generation(generation)
        answers = [
            client.get("/catalogs"),
            client.post("/products/search", json={"limit": 1}),
            client.post("/products/search", json={"limit": 0}),
            client.post("/products/lookup", json={"url": "https://nowhere.example/p"}),
            client.get("/me"),
            httpx.get(f"{sandbox.base_url}/me"),
        ]
        ids = [answer.headers["x-request-id"] for answer in answers]
        assert len(set(ids)) == len(ids) and all(len(i) == 36 for i in ids)


def test_page_envelope_and_a_last_page_without_next_cursor(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    walked = pages(client, catalogs=[catalog], limit=25)
    assert len(walked) >= 3
    for page in walked[:-1]:
        assert set(page) == PAGE_KEYS and len(page["items"]) == 25
    assert set(walked[-1]) == PAGE_KEYS - {"nextCursor"}
    assert len({page["requestId"] for page in walked}) == len(walked)
    query = walked[0]["effectiveQuery"]
    assert query["text"] == "" and query["understood"] is False and query["catalogs"] == [catalog]
    assert query["facets"] == [] and query["priceMin"] is None and query["priceMax"] is None


def test_a_walk_sees_every_product_and_repeats_some_across_page_boundaries(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    truth = {hit["uuid"]: hit for hit in sandbox.truth_search_items(catalog)}
    assert len(truth) == 60
    walked = pages(client, catalogs=[catalog], limit=10)
    uuids = [item["uuid"] for page in walked for item in page["items"]]
    assert set(uuids) == set(truth)
    repeated = [uuid for uuid, count in Counter(uuids).items() if count > 1]
    assert repeated and all(count == 2 for count in Counter(uuids).values() if count > 1)
    for previous, page in pairwise(walked):
        tail = [item["uuid"] for item in previous["items"]]
        here = [item["uuid"] for item in page["items"]]
        overlap = len(set(tail) & set(here))
        assert 1 <= overlap <= 3 and here[:overlap] == tail[-overlap:]  # the previous page's tail again
    for item in (item for page in walked for item in page["items"]):
        assert without_scores(item) == truth[item["uuid"]]
    again = [item["uuid"] for page in pages(client, catalogs=[catalog], limit=10) for item in page["items"]]
    assert again == uuids  # deterministic


def test_scores_are_query_relative_and_vary_between_pages_and_requests(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    first = walk_items(client, catalogs=[catalog], limit=10)
    second = walk_items(client, catalogs=[catalog], limit=10)
    for item in first:
        assert isinstance(item["rawScore"], float) and item["rawScore"] > 0
        assert isinstance(item["displayMatchScore"], int) and 0 <= item["displayMatchScore"] <= 100
    scores: dict[str, list[tuple[float, int]]] = {}
    for item in first:
        scores.setdefault(item["uuid"], []).append((item["rawScore"], item["displayMatchScore"]))
    twice = [values for values in scores.values() if len(values) == 2]
    assert twice and all(a != b for a, b in twice)  # one product, two pages, two scores
    assert all(a["rawScore"] != b["rawScore"] for a, b in zip(first, second, strict=True))
    assert [without_scores(a) for a in first] == [without_scores(b) for b in second]


def test_hits_have_the_current_object_shapes_with_realistic_values(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    items = walk_items(client, catalogs=[catalog], limit=100)
    for hit in items:
        assert set(hit) == HIT_KEYS
        assert hit["catalogKey"] == catalog and hit["catalogDisplayName"] == "Northwind Apparel"
        assert hit["currency"] == "USD" and isinstance(hit["inStock"], bool)
        assert hit["gender"] in ("female", "male", "unisex")
        assert hit["categoryPath"][0] == "Apparel & Accessories" and len(hit["categoryPath"]) == 3
        assert hit["colors"] and all(isinstance(color, str) for color in hit["colors"])
        assert hit["sizes"] and all(isinstance(size, str) for size in hit["sizes"])
        if hit["brand"] is not None:
            assert set(hit["brand"]) == {"name", "slug", "url", "description"}
            assert hit["brand"]["url"].startswith("https://www.")
        if hit["rating"] is not None:
            assert set(hit["rating"]) == {"average", "count"} and 3.0 <= hit["rating"]["average"] <= 5.0
        for image in hit["images"]:
            assert set(image) == {"url", "cdnUrl", "width", "height", "sizeBytes", "mimeType"}
        if hit["images"]:
            primary = hit["images"][0]
            assert hit["primaryImage"] == primary
            assert hit["imageUrl"] == (primary["cdnUrl"] or primary["url"])
        else:
            assert hit["primaryImage"] is None and hit["imageUrl"] is None
    assert any(hit["rating"] is None for hit in items) and any(hit["rating"] for hit in items)
    hosted = [image for hit in items for image in hit["images"] if image["cdnUrl"]]
    assert hosted and all(image["mimeType"] == "image/webp" and image["sizeBytes"] > 0 for image in hosted)


def test_catalogs_allowlist(sandbox: Sandbox, client: httpx.Client) -> None:
    granted, ungranted = sandbox.granted_catalogs(), sandbox.all_catalogs()[-1]
    everything = {item["uuid"] for item in walk_items(client, limit=100)}
    expected = {hit["uuid"] for catalog in granted for hit in sandbox.truth_search_items(catalog)}
    assert everything == expected  # omitted: every granted catalog
    both = pages(client, catalogs=list(reversed(granted)), limit=100)
    assert {item["uuid"] for page in both for item in page["items"]} == expected
    assert both[0]["effectiveQuery"]["catalogs"] == list(reversed(granted))
    for catalogs in ([ungranted], [granted[0], ungranted], ["no_such_catalog"]):
        response = client.post("/products/search", json={"catalogs": catalogs})
        assert (response.status_code, response.json()) == (404, {"detail": "catalog_not_found"})
    too_few = client.post("/products/search", json={"catalogs": []}).json()["detail"]
    assert [(e["type"], e["loc"]) for e in too_few] == [("too_short", ["body", "catalogs"])]
    too_many = client.post("/products/search", json={"catalogs": granted * 251}).json()["detail"]
    assert [(e["type"], e["loc"]) for e in too_many] == [("too_long", ["body", "catalogs"])]


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"catalog": "northwind_apparel"}, ["catalog"]),
        ({"catalog": "northwind_apparel", "catalogs": ["northwind_apparel"]}, ["catalog"]),
        ({"text_search_query": {}, "page_size": 5}, ["text_search_query", "page_size"]),
    ],
)
def test_unknown_fields_including_catalog_are_422(client: httpx.Client, body: Any, fields: list[str]) -> None:
    response = client.post("/products/search", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(e["type"], e["loc"], e["msg"]) for e in detail] == [
        ("extra_forbidden", ["body", name], "Extra inputs are not permitted") for name in fields
    ]


def test_every_documented_request_field_is_accepted(sandbox: Sandbox, client: httpx.Client) -> None:
    body = {
        "q": "linen",
        "understand": True,
        "facets": [{"name": "gender", "values": ["female"]}],
        "exclude_facets": [{"name": "brand_name", "values": ["Saltmarsh"]}],
        "omit_generated_facets": ["category_path.depth_0"],
        "price_min": 10,
        "price_max": 400,
        "brand_quality_min": 1,
        "brand_quality_max": 5,
        "similar_to_brands": ["Lumen"],
        "fallback_category": ["apparel & accessories"],
        "catalogs": sandbox.granted_catalogs(),
        "limit": 100,
        "relax": False,
        "diversity": False,
        "debug": False,
    }
    items = walk_items(client, **body)
    for item in items:
        view = sandbox.truth_product_view(item["uuid"])
        assert "linen" in f"{view['title']} {view['description']} {view['brand']}".lower()
    assert all(item["gender"] == "female" for item in items)
    assert not any(item["brand"] and item["brand"]["name"] == "Saltmarsh" for item in items)
    query = search(client, **body)["effectiveQuery"]
    assert query["understood"] is True and query["text"] == "linen"
    assert query["facets"] == [{"name": "gender", "values": ["female"], "source": "caller"}]
    assert query["excludeFacets"] == [{"name": "brand_name", "values": ["saltmarsh"], "source": "caller"}]
    assert (query["priceMin"], query["priceMax"], query["similarToBrands"]) == (10, 400, ["Lumen"])
    wrong = client.post("/products/search", json={"understand": "yes", "debug": 1}).json()["detail"]
    assert [(e["type"], e["loc"]) for e in wrong] == [
        ("bool_type", ["body", "understand"]),
        ("bool_type", ["body", "debug"]),
    ]


def test_filters_match_the_truth(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    truth = sandbox.truth_search_items(catalog)
    cheap = {h["uuid"] for h in truth if h["currentPrice"] <= 60}
    assert cheap
    assert {i["uuid"] for i in walk_items(client, catalogs=[catalog], price_max=60)} == cheap
    men = {h["uuid"] for h in truth if h["gender"] == "male"}
    found = walk_items(client, catalogs=[catalog], facets=[{"name": "gender", "values": ["male"]}])
    assert {i["uuid"] for i in found} == men
    shoes = {h["uuid"] for h in truth if h["categoryPath"][1] == "Shoes"}
    found = walk_items(
        client, catalogs=[catalog], facets=[{"name": "category_path.depth_1", "values": ["shoes"]}]
    )
    assert {i["uuid"] for i in found} == shoes


def test_a_cursor_is_bound_to_its_body(sandbox: Sandbox, client: httpx.Client) -> None:
    granted = sandbox.granted_catalogs()
    cursor = search(client, catalogs=granted[:1], limit=5)["nextCursor"]
    assert search(client, catalogs=granted[:1], limit=7, cursor=cursor)["items"]  # limit may change
    response = client.post("/products/search", json={"catalogs": granted, "limit": 5, "cursor": cursor})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "cursor"]


def test_generation_switches_at_run_time(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    sandbox.set_api_generation("seed")
    assert client.get("/catalogs").status_code == 200
    page = client.post("/products/search", json={"catalog": catalog, "limit": 100}).json()
    assert set(page) == {"items", "nextCursor"} and page["nextCursor"] is None
    assert isinstance(page["items"][0]["images"][0], str)
    assert page["items"] == sandbox.truth_search_items(catalog)
    sandbox.set_api_generation("current")
    assert client.post("/products/search", json={"catalog": catalog}).status_code == 422


def test_seed_generation_on_construction(sandbox_factory: Any) -> None:
    seed = sandbox_factory(catalogs=1, products=5, generation="seed")
    assert seed.api_generation == "seed"
    with api_client(seed) as client:
        assert client.get("/catalogs").json() == seed.truth_catalogs()
        assert client.get("/me").status_code == 404
    with pytest.raises(ValueError, match="unknown API generation"):
        Sandbox(catalogs=1, products=1, generation="v3")
