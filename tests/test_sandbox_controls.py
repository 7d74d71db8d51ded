"""The sandbox's test controls: synthetic data, mutations, wire shapes, faults, request counts, lifecycle.

Over real HTTP to the sandbox on 127.0.0.1 with plain httpx.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from octogen_source.sandbox import RemoteSandbox, Sandbox
from tests.sandbox_helpers import api_client, by_uuid, search, walk

ISO_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The seed-era API (May 2026): this module pins that generation's behaviour byte for byte."""
    with Sandbox(catalogs=3, products=60, ungranted=1, generation="seed") as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with api_client(sandbox) as http:
        yield http


def lookup(client: httpx.Client, url: str) -> httpx.Response:
    return client.post("/products/lookup", json={"url": url})


def test_synthetic_catalog_is_realistic_and_deterministic(sandbox_factory: Callable[..., Sandbox]) -> None:
    sandbox = sandbox_factory(catalogs=2, products=400, seed=11, generation="seed")
    hits = [hit for catalog in sandbox.granted_catalogs() for hit in sandbox.truth_search_items(catalog)]
    assert len(hits) == 800
    assert all(hit["originalPrice"] >= hit["currentPrice"] > 0 for hit in hits)
    on_sale = sum(hit["originalPrice"] > hit["currentPrice"] for hit in hits)
    assert 100 < on_sale < 400
    assert len({hit["brand"] for hit in hits}) >= 6
    assert all(ISO_SECOND.match(hit["updatedAt"]) for hit in hits)
    ties = Counter(hit["updatedAt"] for hit in hits)
    assert 1 < sum(count > 1 for count in ties.values()) < 100, "some natural ties, mostly distinct"
    with_images = [hit for hit in hits if hit["images"]]
    assert all(isinstance(url, str) for hit in with_images for url in hit["images"])
    assert all(hit["imageUrl"] == hit["images"][0] for hit in with_images)
    assert any(hit["rating"] is None for hit in hits) and any(not hit["isActive"] for hit in hits)
    view = sandbox.truth_product_view(hits[0]["uuid"])
    assert view["variants"] and view["sizes"] and view["breadcrumbs"] and view["attributes"]
    # same seed, same data; another seed, other data
    again = Sandbox(catalogs=2, products=400, seed=11, generation="seed")
    assert again.truth_search_items(again.granted_catalogs()[0]) == sandbox.truth_search_items(
        sandbox.granted_catalogs()[0]
    )
    assert again.api_key == sandbox.api_key
    other = Sandbox(catalogs=2, products=400, seed=12, generation="seed")
    assert other.truth_search_items(other.granted_catalogs()[0])[0]["uuid"] != hits[0]["uuid"]


def test_update_prices_is_visible_in_truth_and_over_http(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    before = by_uuid(sandbox.truth_search_items(catalog))
    clock_before = sandbox.clock
    changed = sandbox.update_prices(catalog, 5)
    assert len(changed) == len(set(changed)) == 5
    assert sandbox.clock > clock_before
    after = by_uuid(walk(client, catalog=catalog, limit=100))
    assert after == by_uuid(sandbox.truth_search_items(catalog))
    for uuid in changed:
        assert after[uuid]["currentPrice"] != before[uuid]["currentPrice"]
        assert after[uuid]["originalPrice"] >= after[uuid]["currentPrice"]
        assert after[uuid]["updatedAt"] == sandbox.clock
        assert (
            lookup(client, after[uuid]["productUrl"]).json()["product"]["currentPrice"]
            == (after[uuid]["currentPrice"])
        )
    untouched = set(before) - set(changed)
    assert all(after[uuid] == before[uuid] for uuid in untouched)
    catalogs = {c["catalog"]: c for c in client.get("/catalogs").json()}
    assert catalogs[catalog]["lastIndexedAt"] == sandbox.clock


def test_add_remove_and_restore_products(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[1]
    added = sandbox.add_products(catalog, 4)
    walked = by_uuid(walk(client, catalog=catalog, limit=100))
    assert set(added) <= set(walked) and len(walked) == 64
    assert all(walked[uuid]["updatedAt"] == sandbox.clock for uuid in added)

    removed = sandbox.remove_products(catalog, 6)
    urls = {uuid: walked[uuid]["productUrl"] for uuid in removed}
    walked = by_uuid(walk(client, catalog=catalog, limit=100))
    assert not set(removed) & set(walked) and len(walked) == 58
    assert by_uuid(sandbox.truth_search_items(catalog)) == walked
    assert {c["catalog"]: c["productCount"] for c in client.get("/catalogs").json()}[catalog] == 58
    for uuid, url in urls.items():
        assert lookup(client, url).status_code == 404
        with pytest.raises(KeyError):
            sandbox.truth_product_view(uuid)

    restored = sandbox.restore_products([*removed[:2], "not-a-removed-uuid"])
    assert restored == removed[:2]
    for uuid in restored:
        response = lookup(client, urls[uuid])
        assert response.status_code == 200
        assert response.json()["product"]["updatedAt"] == sandbox.clock
    assert len(walk(client, catalog=catalog, limit=100)) == 60


def test_moved_products_are_listed_by_their_new_catalog_only(sandbox: Sandbox, client: httpx.Client) -> None:
    first, second = sandbox.granted_catalogs()[:2]
    before = {c: by_uuid(walk(client, catalog=c, limit=100)) for c in (first, second)}
    with RemoteSandbox(sandbox.base_url) as remote:  # over the admin API, as the benchmark drives it
        moved = remote.move_products(first, 3, to_catalog=second)
    after = {c: by_uuid(walk(client, catalog=c, limit=100)) for c in (first, second)}
    assert set(after[first]) == set(before[first]) - set(moved)
    assert set(after[second]) == set(before[second]) | set(moved)
    for uuid in moved:
        assert after[second][uuid]["updatedAt"] == sandbox.clock
        assert after[second][uuid]["productUrl"] == before[first][uuid]["productUrl"]
        assert lookup(client, after[second][uuid]["productUrl"]).json()["catalogKey"] == second
    assert by_uuid(sandbox.truth_search_items(second)) == after[second]
    with pytest.raises(ValueError):
        sandbox.move_products(first, 1, to_catalog="no_such_catalog")


def test_recolored_products_show_their_new_colors_in_lookups_and_current_hits(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    before = by_uuid(walk(client, catalog=catalog, limit=100))

    def labels(uuid: str) -> list[str]:
        product = lookup(client, before[uuid]["productUrl"]).json()["product"]
        return [color["label"] for color in product["colors"]]

    colors_before = {uuid: labels(uuid) for uuid in before}
    with RemoteSandbox(sandbox.base_url) as remote:  # over the admin API, as the benchmark drives it
        recolored = remote.recolor_products(catalog, 3)
    after = by_uuid(walk(client, catalog=catalog, limit=100))

    assert len(recolored) == 3 and set(after) == set(before)
    for uuid in recolored:
        assert after[uuid] == {**before[uuid], "updatedAt": sandbox.clock}  # seed hits carry no colors
        new = labels(uuid)
        assert len(new) == len(colors_before[uuid]) and new != colors_before[uuid]
    assert all(after[uuid] == before[uuid] for uuid in set(before) - set(recolored))
    sandbox.set_api_generation("current")
    current = by_uuid(sandbox.truth_search_items(catalog))
    assert {uuid: current[uuid]["colors"] for uuid in before} == {uuid: labels(uuid) for uuid in before}


def test_late_indexed_null_and_same_second_products(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    everything = [hit for c in sandbox.granted_catalogs() for hit in sandbox.truth_search_items(c)]
    oldest = min(hit["updatedAt"] for hit in everything)
    newest = max(hit["updatedAt"] for hit in sandbox.truth_search_items(catalog))

    late = sandbox.add_late_indexed(catalog, 3)
    null = sandbox.add_null_updated_at(catalog, 2)
    same = sandbox.add_same_second(catalog, 4)
    walked = by_uuid(walk(client, catalog=catalog, limit=100))
    assert len(walked) == 69
    late_stamps = {walked[uuid]["updatedAt"] for uuid in late}
    assert len(late_stamps) == 1 and late_stamps.pop() < oldest
    assert all(walked[uuid]["updatedAt"] is None for uuid in null)
    assert {walked[uuid]["updatedAt"] for uuid in same} == {newest}
    # a later call is older than the earlier late-indexed products too
    later = sandbox.add_late_indexed(catalog, 1)
    assert sandbox.truth_product_view(later[0])["updatedAt"] < walked[late[0]]["updatedAt"]


def test_mutations_are_deterministic_for_a_seed() -> None:
    def run() -> tuple[list[list[str]], list[dict[str, Any]]]:
        sandbox = Sandbox(catalogs=2, products=50, seed=3, generation="seed")
        catalog = sandbox.granted_catalogs()[0]
        calls = [
            sandbox.update_prices(catalog, 5),
            sandbox.add_products(catalog, 3),
            sandbox.remove_products(catalog, 4),
            sandbox.add_same_second(catalog, 2),
        ]
        return calls, sandbox.truth_search_items(catalog)

    assert run() == run()


def test_wire_shapes_are_aliases_of_the_generations(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sandbox.granted_catalogs()[0]
    seed_hits = by_uuid(walk(client, catalog=catalog, limit=100))
    assert (sandbox.api_generation, sandbox.wire_shape) == ("seed", "v1")
    sandbox.set_wire_shape("v2")
    assert (sandbox.api_generation, sandbox.wire_shape) == ("current", "v2")
    response = client.post("/products/search", json={"catalogs": [catalog], "limit": 100})
    current = by_uuid(response.json()["items"])
    assert set(current) == set(seed_hits)
    for uuid, hit in current.items():
        assert (
            hit["brand"]["name"] == seed_hits[uuid]["brand"] if hit["brand"] else not seed_hits[uuid]["brand"]
        )
        assert [image["url"] for image in hit["images"]] == seed_hits[uuid]["images"]
    sandbox.set_wire_shape("v1")
    assert sandbox.api_generation == "seed"
    assert by_uuid(walk(client, catalog=catalog, limit=100)) == seed_hits
    with pytest.raises(ValueError):
        sandbox.set_wire_shape("v3")
    with pytest.raises(ValueError):
        sandbox.set_api_generation("v3")


def test_fail_next_serves_each_fault_kind_before_auth(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.fail_next(1, "429", retry_after=3)
    response = httpx.get(sandbox.base_url + "/catalogs")  # no key at all: faults come first
    assert (response.status_code, response.headers["Retry-After"]) == (429, "3")
    sandbox.fail_next(1, 429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT")
    assert client.get("/catalogs").headers["Retry-After"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    sandbox.fail_next(1, "429")
    assert "Retry-After" not in client.get("/catalogs").headers
    for status in ("500", "502", "503", "504"):
        sandbox.fail_next(1, status)
        response = client.get("/catalogs")
        assert response.status_code == int(status) and isinstance(response.json()["detail"], str)
    sandbox.fail_next(1, "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/catalogs")
    sandbox.fail_next(1, "garbage")
    response = client.get("/catalogs")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert client.get("/catalogs").status_code == 200  # queue drained
    assert sandbox.faults_injected == {
        "429": 3,
        "500": 1,
        "502": 1,
        "503": 1,
        "504": 1,
        "drop": 1,
        "garbage": 1,
    }
    with pytest.raises(ValueError):
        sandbox.fail_next(1, "418")
    with pytest.raises(ValueError):
        sandbox.fail_next(1, "500", endpoint="checkout")


def test_faults_can_target_one_endpoint(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.fail_next(2, "503", endpoint="lookup")
    assert client.get("/catalogs").status_code == 200
    assert client.post("/products/search", json={}).status_code == 200
    url = sandbox.truth_search_items(sandbox.granted_catalogs()[0])[0]["productUrl"]
    assert [lookup(client, url).status_code for _ in range(3)] == [503, 503, 200]


def test_fault_rates_are_seeded_and_latency_delays(sandbox: Sandbox, client: httpx.Client) -> None:
    def statuses() -> list[int | str]:
        sandbox.set_fault_rates(rate_429=0.2, rate_5xx=0.2, rate_drop=0.1, retry_after=0, seed=5)
        seen: list[int | str] = []
        for _ in range(40):
            try:
                seen.append(client.get("/catalogs").status_code)
            except httpx.RemoteProtocolError:
                seen.append("drop")
        return seen

    first = statuses()
    assert first == statuses()
    assert {200, 429, "drop"} <= set(first) and ({500, 503} & set(first))
    sandbox.clear_faults()
    assert all(client.get("/catalogs").status_code == 200 for _ in range(10))
    sandbox.set_fault_rates(latency=0.2)
    started = time.monotonic()
    assert client.get("/catalogs").status_code == 200
    assert time.monotonic() - started >= 0.2
    with pytest.raises(ValueError):
        sandbox.set_fault_rates(rate_429=0.8, rate_5xx=0.5)


def test_request_counts_per_endpoint_include_faulted_and_rejected_requests(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    assert sandbox.request_counts == {"catalogs": 0, "search": 0, "lookup": 0, "me": 0, "domains": 0}
    client.get("/catalogs")
    walk(client, catalog=sandbox.granted_catalogs()[0], limit=25)  # 3 pages
    client.post("/products/lookup", json={"url": "nope"})
    client.post("/products/search", json={"limit": 0})
    sandbox.fail_next(1, "500")
    client.get("/catalogs")
    httpx.get(sandbox.base_url + "/catalogs")  # 401
    assert sandbox.request_counts == {"catalogs": 3, "search": 4, "lookup": 1, "me": 0, "domains": 0}
    sandbox.reset_counts()
    assert sandbox.request_counts == {"catalogs": 0, "search": 0, "lookup": 0, "me": 0, "domains": 0}
    assert sandbox.faults_injected == {}


def test_controls_are_safe_while_the_server_is_busy(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            with api_client(sandbox) as http:
                for _ in range(30):
                    walk(http, catalog=catalog, limit=10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(30):
        sandbox.add_products(catalog, 1)
        sandbox.update_prices(catalog, 2)
        sandbox.remove_products(catalog, 1)
    for thread in threads:
        thread.join()
    assert not errors
    with api_client(sandbox) as http:
        assert by_uuid(walk(http, catalog=catalog)) == by_uuid(sandbox.truth_search_items(catalog))


def test_start_stop_is_clean() -> None:
    sandbox = Sandbox(catalogs=1, products=5, generation="seed")
    with pytest.raises(RuntimeError):
        _ = sandbox.base_url
    with sandbox:
        port = sandbox.port
        assert sandbox.base_url == f"http://127.0.0.1:{port}/v1"
        with api_client(sandbox) as http:  # an idle keep-alive connection stays open across stop()
            assert search(http)["items"]
            sandbox.stop()
            with pytest.raises(httpx.TransportError):
                http.get("/catalogs")
    sandbox.stop()  # idempotent
    assert not [t for t in threading.enumerate() if t.name == "octogen-sandbox"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    sandbox.start()  # restartable
    try:
        with api_client(sandbox) as http:
            assert http.get("/catalogs").status_code == 200
    finally:
        sandbox.stop()


def test_invalid_arguments_are_rejected(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        Sandbox(catalogs=2, ungranted=3)
    with pytest.raises(ValueError):
        sandbox.add_products("no_such_catalog", 1)
    with pytest.raises(ValueError):
        sandbox.update_prices(sandbox.granted_catalogs()[0], -1)
    with pytest.raises(ValueError):
        sandbox.add_key(["no_such_catalog"])
