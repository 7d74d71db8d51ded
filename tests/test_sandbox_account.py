"""``/me``, ``/domains/{host}`` and the current generation's errors (401 revoked, 402, 403, 429, 502/503/504),
over real HTTP with plain httpx; where the seed era differs, both are checked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from octogen_source.sandbox import Sandbox
from tests.sandbox_helpers import api_client


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with api_client(sandbox) as http:
        yield http


def test_me_describes_the_calling_key_and_organization(sandbox: Sandbox, client: httpx.Client) -> None:
    response = client.get("/me")
    assert response.status_code == 200
    body = response.json()
    assert body["principal"] == "api_key"
    organization = body["organization"]
    assert organization["type"] == "catalog_partner" and organization["slug"] == "northbeam-commerce-labs"
    assert len(organization["id"]) == 36
    key_id = sandbox.api_key.split("_")[2]
    assert body["key"] == {"id": key_id, "prefix": f"octo_live_{key_id[:10]}"}
    assert sandbox.api_key.split("_")[3] not in response.text  # never the secret
    assert body["quotas"]["catalogs"] == {"granted": 2}
    rate = body["rateLimit"]
    assert rate["limit"] == 600 and 0 <= rate["remaining"] < 600
    assert datetime.fromisoformat(rate["resetAt"].replace("Z", "+00:00")).timestamp() > time.time() - 1
    sandbox.set_rate_limit(None)
    assert client.get("/me").json()["rateLimit"] is None
    assert sandbox.request_counts["me"] == 2


def test_me_and_domains_do_not_exist_in_the_seed_era(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_api_generation("seed")
    host = sandbox.store_host(sandbox.granted_catalogs()[0])
    for path in ("/me", f"/domains/{host}"):
        response = client.get(path)
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_domains_lists_the_catalogs_serving_a_host(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    host = sandbox.store_host(catalog)
    assert host == "shop.northwind-apparel.example"
    body = client.get(f"/domains/{host}").json()
    assert body["host"] == host
    [coverage] = body["catalogs"]
    summary = sandbox.truth_catalog_summaries()[0]
    assert coverage["catalog"] == catalog and coverage["catalogDisplayName"] == summary["displayName"]
    assert coverage["productCount"] == summary["productCount"] == 60
    assert coverage["computedAt"].endswith("Z")
    fields = {field["name"]: field for field in coverage["fields"]}
    assert {"brand_name", "gender", "color", "category_path.depth_1"} <= set(fields)
    brands = fields["brand_name"]
    assert brands["source"] == "brands" and brands["populated"] <= 60 and 0 < brands["coverage"] <= 1
    assert sum(value["count"] for value in brands["topValues"]) == brands["populated"]
    price = coverage["price"]
    assert sum(bucket["count"] for bucket in price["buckets"]) == price["populated"] == 60
    assert client.get("/domains/WWW.Shop.Northwind-Apparel.example").json() == body  # normalized
    sandbox.add_products(catalog, 2)
    assert client.get(f"/domains/{host}").json()["catalogs"][0]["productCount"] == 62


def test_domains_only_answers_for_hosts_of_visible_catalogs(sandbox: Sandbox, client: httpx.Client) -> None:
    ungranted = sandbox.all_catalogs()[-1]
    for host in (sandbox.store_host(ungranted), "www.unknown-store.example"):
        response = client.get(f"/domains/{host}")
        assert (response.status_code, response.json()) == (404, {"detail": "domain_not_covered"})
    with api_client(sandbox, sandbox.add_key([ungranted])) as other:
        assert other.get(f"/domains/{sandbox.store_host(ungranted)}").status_code == 200


def test_exhausted_credit_is_402_on_billed_requests(sandbox: Sandbox, client: httpx.Client) -> None:
    host = sandbox.store_host(sandbox.granted_catalogs()[0])
    url = sandbox.truth_search_items(sandbox.granted_catalogs()[0])[0]["productUrl"]
    sandbox.exhaust_credit()
    assert sandbox.credit_exhausted
    for response in (
        client.post("/products/search", json={}),
        client.post("/products/lookup", json={"url": url}),
        client.get(f"/domains/{host}"),
    ):
        assert response.status_code == 402
        detail = response.json()["detail"]
        assert detail["code"] == "insufficient_credit" and detail["top_up_url"].startswith("https://")
        assert "credit" in detail["message"]
    assert client.get("/me").status_code == 200  # the credentials check stays free
    bad_key = httpx.post(
        f"{sandbox.base_url}/products/search", json={}, headers={"Authorization": "Bearer x"}
    )
    assert bad_key.status_code == 401  # authentication comes first
    sandbox.restore_credit()
    assert client.post("/products/search", json={}).status_code == 200


def test_revoked_unknown_and_merchant_keys(sandbox: Sandbox) -> None:
    revoked, merchant = sandbox.add_key(), sandbox.add_key(forbidden=True)
    sandbox.revoke_key(revoked)
    for generation, revoked_detail in (("current", "API key revoked"), ("seed", "Invalid API key")):
        sandbox.set_api_generation(generation)
        with api_client(sandbox, revoked) as client:
            response = client.post("/products/search", json={})
            assert (response.status_code, response.json()) == (401, {"detail": revoked_detail})
            assert response.headers["WWW-Authenticate"] == "Bearer"
        with api_client(sandbox, "octo_live_" + "0" * 32 + "_secret") as client:
            assert client.post("/products/search", json={}).json() == {"detail": "Invalid API key"}
        with api_client(sandbox, merchant) as client:
            response = client.post("/products/search", json={})
            assert (response.status_code, response.json()) == (403, {"detail": "api_key_org_type_forbidden"})
    sandbox.set_api_generation("current")
    with api_client(sandbox, merchant) as client:
        assert client.get("/me").status_code == 403


def test_429_carries_retry_after_and_rate_limit_headers(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_rate_limit(120)
    sandbox.fail_next(1, 429, endpoint="search", retry_after=7)
    response = client.post("/products/search", json={})
    assert (response.status_code, response.json()) == (429, {"detail": "rate_limit_exceeded"})
    assert response.headers["Retry-After"] == "7"
    assert (response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"]) == ("120", "0")
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
    sandbox.fail_next(1, "429", endpoint="lookup", retry_after=2)
    response = client.post("/products/lookup", json={"url": "https://x.example/p"})
    assert (
        response.json() == {"detail": "product_lookup_rate_limited"}
        and response.headers["Retry-After"] == "2"
    )
    sandbox.set_api_generation("seed")
    sandbox.fail_next(1, 429, retry_after=3)
    response = client.post("/products/search", json={})
    assert response.json() == {"detail": "Too Many Requests"} and "X-RateLimit-Limit" not in response.headers


@pytest.mark.parametrize(
    "kind, search_detail, lookup_detail",
    [
        ("502", "Bad Gateway", "product_lookup_upstream_failed"),
        ("503", "Service Unavailable", "Service Unavailable"),
        ("504", "Gateway Timeout", "product_lookup_timed_out"),
    ],
)
def test_upstream_failures(
    sandbox: Sandbox, client: httpx.Client, kind: str, search_detail: str, lookup_detail: str
) -> None:
    sandbox.fail_next(1, kind, endpoint="search")
    sandbox.fail_next(1, kind, endpoint="lookup")
    response = client.post("/products/search", json={})
    assert (response.status_code, response.json()) == (int(kind), {"detail": search_detail})
    response = client.post("/products/lookup", json={"url": "https://x.example/p"})
    assert (response.status_code, response.json()) == (int(kind), {"detail": lookup_detail})
    assert "x-request-id" in response.headers
    assert sandbox.faults_injected == {kind: 2}


def test_faults_can_target_me_and_domains(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.fail_next(1, 504, endpoint="me")
    sandbox.fail_next(1, 503, endpoint="get_domain")
    host = sandbox.store_host(sandbox.granted_catalogs()[0])
    assert client.get(f"/domains/{host}").status_code == 503
    assert client.get("/me").status_code == 504
    assert client.get("/me").status_code == 200
