"""Current-generation lookups over real HTTP: the request model, URL checks, matchMode, resolutionMode and the
on-demand fallback, and the MerchantProductView they return. The seed era's lookup is in test_sandbox_api."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from octogen_source.sandbox import Sandbox
from tests.sandbox_helpers import api_client

VIEW_OBJECT_LISTS = ("categories", "breadcrumbs", "reviews", "promotions", "videos", "variants", "colors")


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with api_client(sandbox) as http:
        yield http


def lookup(client: httpx.Client, url: str, **options: Any) -> httpx.Response:
    return client.post("/products/lookup", json={"url": url, **options})


def answer(client: httpx.Client, url: str, **options: Any) -> dict[str, Any]:
    response = lookup(client, url, **options)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def first_hit(sandbox: Sandbox, index: int = 0) -> dict[str, Any]:
    return sandbox.truth_search_items(sandbox.granted_catalogs()[0])[index]


def test_an_indexed_lookup_is_the_truth(sandbox: Sandbox, client: httpx.Client) -> None:
    hit = first_hit(sandbox)
    body = answer(client, hit["productUrl"])
    assert {k: v for k, v in body.items() if k != "requestId"} == sandbox.truth_lookup(hit["uuid"])
    assert body["source"] == "indexed" and body["matchedVia"] == "exact"
    assert body["requestedUrl"] == body["normalizedUrl"] == hit["productUrl"]
    assert body["catalogKey"] == hit["catalogKey"] and body["sourceBaseUrl"].startswith("https://shop.")
    product = body["product"]
    assert product == sandbox.truth_product_view(hit["uuid"])
    assert {k: product[k] for k in hit if k != "colors"} == {k: v for k, v in hit.items() if k != "colors"}
    assert [color["label"] for color in product["colors"]] == hit["colors"]  # ColorView in a view
    assert all(isinstance(product[name], list) for name in VIEW_OBJECT_LISTS)
    assert all(set(color) == {"label", "hexCode", "swatchUrl"} for color in product["colors"])
    assert all(isinstance(variant["color"], dict) for variant in product["variants"])
    assert all(set(item) == {"name", "url"} for item in product["breadcrumbs"] + product["categories"])
    assert set(product["identifiers"]) == {"productId", "gtin", "productGroupId"}
    assert set(product["details"]) == {"dimensions", "fit", "materials", "patterns"}
    assert product["audience"] == {"ageGroups": ["adult"], "genders": [hit["gender"]]}


def test_enrichment_attributes_are_keyed_by_many_human_names(sandbox: Sandbox) -> None:
    names: set[str] = set()
    enriched = 0
    for catalog in sandbox.granted_catalogs():
        for hit in sandbox.truth_search_items(catalog):
            enrichment = sandbox.truth_product_view(hit["uuid"])["enrichment"]
            if enrichment is None:
                continue
            enriched += 1
            assert {"age_groups", "gender", "classification", "attribute_handles"} <= set(enrichment)
            attributes = enrichment["attributes"]
            assert all(
                isinstance(v, list) and all(isinstance(s, str) for s in v) for v in attributes.values()
            )
            names.update(attributes)
    assert enriched > 60 and len(names) >= 25
    assert {"Sleeve length type", "Neckline", "Heel height", "Care instructions"} <= names


@pytest.mark.parametrize(
    "variant, matched_via",
    [
        (lambda url: url.upper().replace("HTTPS://", "https://"), "loose"),
        (lambda url: url + "?utm_source=newsletter&variant=12", "loose"),
        (lambda url: url.replace("https://", "http://www.") + "/", "normalized_exact"),
    ],
)
def test_loose_matching_ignores_case_query_and_www(
    sandbox: Sandbox, client: httpx.Client, variant: Any, matched_via: str
) -> None:
    hit = first_hit(sandbox)
    url = variant(hit["productUrl"])
    body = answer(client, url)
    assert (body["source"], body["matchedVia"], body["product"]["uuid"]) == (
        "indexed",
        matched_via,
        hit["uuid"],
    )
    assert body["requestedUrl"] == url and body["normalizedUrl"] == hit["productUrl"]
    strict = lookup(client, url, matchMode="strict", resolutionMode="index_only")
    assert (strict.status_code, strict.json()) == (404, {"detail": "product_not_found"})
    assert answer(client, hit["productUrl"], matchMode="strict")["source"] == "indexed"


def test_a_removed_product_is_resolved_on_demand_unless_index_only(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    before = {hit["uuid"]: hit for hit in sandbox.truth_search_items(catalog)}
    [uuid] = sandbox.remove_products(catalog, 1)
    url = before[uuid]["productUrl"]
    body = answer(client, url)  # resolutionMode auto (the default)
    assert body["source"] == "on_demand" and body["catalogKey"] is None and body["catalogDisplayName"] is None
    assert "matchedVia" not in body and body["normalizedUrl"] is None
    assert body["resolvedUrl"] == body["canonicalUrl"] == url and body["cacheStatus"] == "miss"
    assert body["resolution"]["completeness"] == "partial"
    product = body["product"]
    assert product["uuid"] is None and product["catalogKey"] is None and product["enrichment"] is None
    assert product["title"] == before[uuid]["title"] and product["productUrl"] == url
    assert product["images"] == [] or product["images"][0]["cdnUrl"] is None
    gone = lookup(client, url, resolutionMode="index_only")
    assert (gone.status_code, gone.json()) == (404, {"detail": "product_not_found"})
    assert answer(client, url)["cacheStatus"] == "hit"
    assert answer(client, url, onDemandCachePolicy="refresh")["cacheStatus"] == "refresh"
    sandbox.restore_products([uuid])
    assert answer(client, url)["source"] == "indexed"


def test_on_demand_only_and_urls_outside_the_index(sandbox: Sandbox, client: httpx.Client) -> None:
    hit = first_hit(sandbox)
    body = answer(client, hit["productUrl"], resolutionMode="on_demand_only")
    assert body["source"] == "on_demand" and body["product"]["uuid"] is None
    host = sandbox.store_host(sandbox.granted_catalogs()[0])
    other = answer(client, f"https://{host}/products/merino-crew-sweater-lx20931?color=navy")
    assert other["source"] == "on_demand" and other["product"]["title"] == "Merino Crew Sweater"
    assert other["warnings"] == ["variant_url_no_match"] and other["product"]["currency"] == "USD"
    assert other["sourceBaseUrl"] == f"https://{host}"
    unknown = lookup(client, "https://www.some-other-shop.example/products/dress")
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "product_not_found"})


def test_a_product_the_key_cannot_see_is_not_answered_from_the_index(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    ungranted = sandbox.all_catalogs()[-1]
    with api_client(sandbox, sandbox.add_key([ungranted])) as other:
        hidden = other.post("/products/search", json={"limit": 1}).json()["items"][0]["productUrl"]
    assert lookup(client, hidden, resolutionMode="index_only").status_code == 404
    body = answer(client, hidden)
    assert body["source"] == "on_demand" and body["catalogKey"] is None


@pytest.mark.parametrize(
    "url, detail",
    [
        ("not a url", "invalid_product_url"),
        ("ftp://shop.northwind-apparel.example/p", "invalid_product_url"),
        ("https:///products/x", "invalid_product_url"),
        ("https://shop.example:99999/p", "invalid_product_url"),
        ("http://127.0.0.1:8080/products/x", "unsafe_url"),
        ("http://localhost/products/x", "unsafe_url"),
        ("https://10.1.2.3/products/x", "unsafe_url"),
        ("https://192.168.0.10/p", "unsafe_url"),
        ("http://[::1]/p", "unsafe_url"),
        ("https://metadata.internal/p", "unsafe_url"),
    ],
)
def test_malformed_and_unsafe_urls_are_422(client: httpx.Client, url: str, detail: str) -> None:
    response = lookup(client, url)
    assert (response.status_code, response.json()) == (422, {"detail": detail})


def test_the_lookup_request_model_is_strict(client: httpx.Client) -> None:
    extra = client.post("/products/lookup", json={"url": "https://x.example/p", "catalog": "a"}).json()
    assert [(e["type"], e["loc"]) for e in extra["detail"]] == [("extra_forbidden", ["body", "catalog"])]
    bad = client.post(
        "/products/lookup", json={"url": "https://x.example/p", "matchMode": "fuzzy", "resolutionMode": "x"}
    ).json()["detail"]
    assert [(e["type"], e["loc"]) for e in bad] == [
        ("literal_error", ["body", "matchMode"]),
        ("literal_error", ["body", "resolutionMode"]),
    ]
    assert bad[0]["msg"] == "Input should be 'loose' or 'strict'"
    missing = client.post("/products/lookup", json={}).json()["detail"]
    assert [(e["type"], e["loc"]) for e in missing] == [("missing", ["body", "url"])]


def test_markdown_format(sandbox: Sandbox, client: httpx.Client) -> None:
    hit = first_hit(sandbox)
    response = lookup(client, hit["productUrl"], format="md")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/markdown")
    assert response.text.startswith(f"# {hit['title']}\n")
    assert response.headers["x-octogen-product-uuid"] == hit["uuid"]
    assert response.headers["x-octogen-catalog"] == hit["catalogKey"]
