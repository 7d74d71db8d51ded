"""The sandbox speaks the API contract: auth, grants, errors, search filters and keyset pagination.

Everything goes over real HTTP to the sandbox on 127.0.0.1 with plain httpx (not the project's client).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from octogen_source.sandbox import Sandbox
from tests.sandbox_helpers import api_client, by_uuid, search, walk

ENDPOINTS = [
    ("GET", "/catalogs", None),
    ("POST", "/products/search", {}),
    ("POST", "/products/lookup", {"url": "x"}),
]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The seed-era API (May 2026): this module pins that generation's behaviour byte for byte."""
    with Sandbox(catalogs=3, products=60, ungranted=1, generation="seed") as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with api_client(sandbox) as http:
        yield http


def test_catalogs_lists_the_granted_catalogs_as_truth_says(sandbox: Sandbox, client: httpx.Client) -> None:
    response = client.get("/catalogs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body == sandbox.truth_catalogs()
    assert [c["catalog"] for c in body] == sandbox.granted_catalogs() == sandbox.all_catalogs()[:2]
    for summary in body:
        assert set(summary) == {"catalog", "displayName", "sourceBaseUrl", "productCount", "lastIndexedAt"}
        assert summary["productCount"] == 60
        assert summary["lastIndexedAt"].endswith("Z")


@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer", "token"])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_missing_or_malformed_authorization_is_401(
    sandbox: Sandbox, authorization: str | None, method: str, path: str, body: Any
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = httpx.request(method, sandbox.base_url + path, headers=headers, json=body)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authorization Bearer token required"}


def test_unknown_and_revoked_keys_are_401_and_forbidden_keys_403(sandbox: Sandbox) -> None:
    revoked = sandbox.add_key()
    forbidden = sandbox.add_key(forbidden=True)
    with api_client(sandbox, revoked) as client:
        assert client.get("/catalogs").status_code == 200
        sandbox.revoke_key(revoked)
        response = client.get("/catalogs")
        assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key"})
    for method, path, body in ENDPOINTS:
        with api_client(sandbox, "octo_live_" + "0" * 32 + "_nope") as client:
            response = client.request(method, path, json=body)
            assert (response.status_code, response.json()) == (401, {"detail": "Invalid API key"})
        with api_client(sandbox, forbidden) as client:
            response = client.request(method, path, json=body)
            assert (response.status_code, response.json()) == (403, {"detail": "api_key_org_type_forbidden"})
    with pytest.raises(KeyError):
        sandbox.revoke_key("octo_live_unknown")


def test_key_shape_and_an_org_without_grants(sandbox: Sandbox) -> None:
    assert sandbox.api_key.startswith("octo_live_")
    _, _, hex_part, secret = sandbox.api_key.split("_", 3)
    assert len(hex_part) == 32 and int(hex_part, 16) >= 0 and secret
    with api_client(sandbox, sandbox.add_key([])) as client:
        assert client.get("/catalogs").json() == []
        assert search(client) == {"items": [], "nextCursor": None}
        response = client.post("/products/search", json={"catalog": sandbox.granted_catalogs()[0]})
        assert (response.status_code, response.json()) == (404, {"detail": "catalog_not_found"})


def test_ungranted_or_unknown_catalog_is_404(sandbox: Sandbox, client: httpx.Client) -> None:
    ungranted = sandbox.all_catalogs()[-1]
    assert ungranted not in sandbox.granted_catalogs()
    for catalog in (ungranted, "no_such_catalog"):
        response = client.post("/products/search", json={"catalog": catalog})
        assert (response.status_code, response.json()) == (404, {"detail": "catalog_not_found"})
    with pytest.raises(ValueError):
        sandbox.truth_search_items(ungranted)
    # a key granted every catalog sees the third one
    with api_client(sandbox, sandbox.add_key(sandbox.all_catalogs())) as everything:
        assert [c["catalog"] for c in everything.get("/catalogs").json()] == sandbox.all_catalogs()
        assert len(walk(everything, catalog=ungranted, limit=100)) == 60


def test_lookup_returns_the_fuller_view_and_404s_what_the_key_cannot_see(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    hit = sandbox.truth_search_items(sandbox.granted_catalogs()[1])[5]
    response = client.post("/products/lookup", json={"url": hit["productUrl"]})
    assert response.status_code == 200
    body = response.json()
    assert body == sandbox.truth_lookup(hit["uuid"])
    assert body["catalogKey"] == sandbox.granted_catalogs()[1]
    assert {"catalogDisplayName", "sourceBaseUrl"} <= set(body)
    view = body["product"]
    assert view == sandbox.truth_product_view(hit["uuid"])
    assert {k: view[k] for k in hit} == hit  # the view is a superset of the search hit
    for field in (
        "description",
        "inStock",
        "sizes",
        "colors",
        "tags",
        "identifiers",
        "variants",
        "categories",
    ):
        assert field in view
    assert set(view["identifiers"]) == {"productId", "gtin", "productGroupId"}
    assert all(set(color) == {"label", "hexCode"} for color in view["colors"])

    with api_client(sandbox, sandbox.add_key(sandbox.all_catalogs())) as everything:
        hidden_url = walk(everything, catalog=sandbox.all_catalogs()[-1], limit=100)[0]["productUrl"]
    for url in (hidden_url, "https://shop.example/products/nothing-here"):
        response = client.post("/products/lookup", json={"url": url})
        assert (response.status_code, response.json()) == (404, {"detail": "product_not_found"})


@pytest.mark.parametrize(
    ("content", "loc", "error_type"),
    [
        (b'{"limit": 0}', ["body", "limit"], "greater_than_equal"),
        (b'{"limit": 101}', ["body", "limit"], "less_than_equal"),
        (b'{"limit": "many"}', ["body", "limit"], "int_parsing"),
        (b'{"limit": 2.5}', ["body", "limit"], "int_from_float"),
        (b'{"price_min": "cheap"}', ["body", "price_min"], "float_parsing"),
        (b'{"price_max": [1]}', ["body", "price_max"], "float_type"),
        (b'{"q": 5}', ["body", "q"], "string_type"),
        (b'{"facets": {"name": "brand"}}', ["body", "facets"], "list_type"),
        (
            b'{"facets": [{"name": "shoe_size", "values": ["9"]}]}',
            ["body", "facets", 0, "name"],
            "value_error",
        ),
        (b'{"facets": [{"name": "brand"}]}', ["body", "facets", 0, "values"], "missing"),
        (b'{"cursor": "not-a-cursor"}', ["body", "cursor"], "value_error"),
        (b'{"catalog": ', ["body", 12], "json_invalid"),
        (b"[1, 2]", ["body"], "model_attributes_type"),
    ],
)
def test_invalid_search_bodies_are_422_with_fastapi_style_detail(
    client: httpx.Client, content: bytes, loc: list[Any], error_type: str
) -> None:
    response = client.post("/products/search", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list) and len(detail) == 1
    assert (detail[0]["loc"], detail[0]["type"]) == (loc, error_type)
    assert isinstance(detail[0]["msg"], str) and detail[0]["msg"]


def test_limit_error_message_and_all_errors_reported(client: httpx.Client) -> None:
    response = client.post("/products/search", json={"limit": 500, "q": 1})
    detail = response.json()["detail"]
    assert response.status_code == 422
    assert {tuple(error["loc"]) for error in detail} == {("body", "limit"), ("body", "q")}
    limit_error = next(error for error in detail if error["loc"] == ["body", "limit"])
    assert limit_error["msg"] == "Input should be less than or equal to 100"
    assert limit_error["ctx"] == {"le": 100} and limit_error["input"] == 500
    response = client.post("/products/lookup", json={})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "url"]


def test_full_pagination_equals_truth_for_each_granted_catalog(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    everything: dict[str, dict[str, Any]] = {}
    for catalog in sandbox.granted_catalogs():
        walked = walk(client, catalog=catalog, limit=7)
        assert by_uuid(walked) == by_uuid(sandbox.truth_search_items(catalog))
        everything.update(by_uuid(walked))
        updated = [item["updatedAt"] for item in walked]
        assert updated != sorted(updated) and updated != sorted(updated, reverse=True)
    # catalog omitted: every granted catalog, once each
    assert by_uuid(walk(client, limit=13)) == everything


def test_default_limit_and_last_page(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    first = search(client, catalog=catalog)
    assert len(first["items"]) == 50 and first["nextCursor"]
    rest = search(client, catalog=catalog, cursor=first["nextCursor"])
    assert len(rest["items"]) == 10 and rest["nextCursor"] is None
    exact = search(client, catalog=catalog, limit=60)
    assert len(exact["items"]) == 60 and exact["nextCursor"] is None


def test_cursor_is_bound_to_the_filters(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog, other = sandbox.granted_catalogs()
    filters = {"catalog": catalog, "limit": 2}
    cursor = search(client, **filters)["nextCursor"]
    assert cursor
    # same filters, other page size: fine
    assert search(client, catalog=catalog, cursor=cursor, limit=5)["items"]
    for changed in (
        {"catalog": other},
        {"catalog": catalog, "q": "linen"},
        {"catalog": catalog, "price_max": 100},
        {"catalog": catalog, "facets": [{"name": "gender", "values": ["women"]}]},
        {},
    ):
        response = client.post("/products/search", json={**changed, "cursor": cursor})
        assert response.status_code == 422, changed
        assert response.json()["detail"][0]["loc"] == ["body", "cursor"]


def _expected(sandbox: Sandbox, keep: Any) -> set[str]:
    uuids = set()
    for catalog in sandbox.granted_catalogs():
        for hit in sandbox.truth_search_items(catalog):
            if keep(sandbox.truth_product_view(hit["uuid"])):
                uuids.add(hit["uuid"])
    return uuids


def test_q_matches_title_brand_and_description_case_insensitively(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    def words(view: dict[str, Any]) -> str:
        return f"{view['title']} {view['brand']} {view['description']}".lower()

    for q in ("LINEN", "wrap dress", "Harbor & Pine", "all-day comfort"):
        expected = _expected(
            sandbox, lambda view, q=q: all(term in words(view) for term in q.lower().split())
        )
        assert expected, q
        assert set(by_uuid(walk(client, q=q, limit=100))) == expected


@pytest.mark.parametrize(
    ("facets", "keep"),
    [
        (
            [{"name": "brand", "values": ["northwind basics", "saltmarsh"]}],
            lambda v: v["brand"] in {"Northwind Basics", "Saltmarsh"},
        ),
        ([{"name": "gender", "values": ["men"]}], lambda v: v["gender"] == "men"),
        (
            [{"name": "color", "values": ["navy blue", "off white"]}],
            lambda v: any(c["label"] in {"Navy Blue", "Off White"} for c in v["colors"]),
        ),
        ([{"name": "category", "values": ["outerwear"]}], lambda v: "Outerwear" in v["categories"]),
        ([{"name": "category", "values": ["t-shirts"]}], lambda v: "T-Shirts" in v["categories"]),
        ([{"name": "fit", "values": ["relaxed"]}], lambda v: v["attributes"].get("fit") == "relaxed"),
        (
            [{"name": "attribute_facets.material", "values": ["organic cotton", "merino wool"]}],
            lambda v: v["attributes"]["material"] in {"organic cotton", "merino wool"},
        ),
        (
            [
                {"name": "gender", "values": ["women"]},
                {"name": "attribute_facets.pattern", "values": ["floral print"]},
            ],
            lambda v: v["gender"] == "women" and v["attributes"]["pattern"] == "floral print",
        ),
    ],
)
def test_facets_filter_exactly(sandbox: Sandbox, client: httpx.Client, facets: Any, keep: Any) -> None:
    expected = _expected(sandbox, keep)
    assert expected
    assert set(by_uuid(walk(client, facets=facets, limit=9))) == expected


def test_price_bounds_are_inclusive_on_current_price(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    truth = sandbox.truth_search_items(catalog)
    prices = sorted({hit["currentPrice"] for hit in truth})
    low, high = prices[5], prices[-5]
    expected = {hit["uuid"] for hit in truth if low <= hit["currentPrice"] <= high}
    assert set(by_uuid(walk(client, catalog=catalog, price_min=low, price_max=high))) == expected
    exact = {hit["uuid"] for hit in truth if hit["currentPrice"] == low}
    assert set(by_uuid(walk(client, catalog=catalog, price_min=low, price_max=low))) == exact
    assert search(client, catalog=catalog, price_min=high, price_max=low)["items"] == []


def test_keyset_pages_are_stable_when_products_change_between_pages(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    before = set(by_uuid(sandbox.truth_search_items(catalog)))
    first = search(client, catalog=catalog, limit=20)
    seen = [item["uuid"] for item in first["items"]]
    removed = set(sandbox.remove_products(catalog, 15))
    added = set(sandbox.add_products(catalog, 15))
    sandbox.update_prices(catalog, 10)
    cursor = first["nextCursor"]
    while cursor:
        page = search(client, catalog=catalog, limit=20, cursor=cursor)
        seen.extend(item["uuid"] for item in page["items"])
        cursor = page["nextCursor"]
    assert len(seen) == len(set(seen)), "a product was served twice"
    last_of_first_page = first["items"][-1]["uuid"]
    survivors = before - removed
    assert survivors <= set(seen), "a product present throughout was skipped"
    assert set(seen) <= before | added
    # additions after the cursor position show up, removals after it do not
    assert {u for u in added if u > last_of_first_page} <= set(seen)
    assert not {u for u in removed if u > last_of_first_page} & set(seen)
