"""Retries against the sandbox's injected faults, with every attempt counted on both sides of the wire."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import pytest

from octogen_source.client import OctogenClient, RequestStats
from octogen_source.errors import (
    OctogenAPIError,
    OctogenAuthenticationError,
    OctogenConnectionError,
    OctogenForbiddenError,
    OctogenNotFoundError,
    OctogenResponseError,
    OctogenValidationError,
)
from octogen_source.retries import RetryPolicy, retry_after_seconds
from octogen_source.sandbox import Sandbox
from tests.client_helpers import wire

FAST_RETRIES = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02)


def make_client(sandbox: Sandbox, **options: Any) -> OctogenClient:
    options.setdefault("api_key", sandbox.api_key)
    options.setdefault("retry", FAST_RETRIES)
    return OctogenClient(base_url=sandbox.base_url, **options)


@pytest.mark.parametrize("kind", ["500", "502", "503", "504", "drop", "429"])
async def test_transient_faults_are_retried_until_success(sandbox: Sandbox, kind: str) -> None:
    catalog = sandbox.granted_catalogs()[0]
    sandbox.fail_next(2, kind, endpoint="search", retry_after=0 if kind == "429" else None)

    async with make_client(sandbox) as client:
        page = await client.search_products(catalog=catalog, limit=100)

    assert sorted(item.uuid or "" for item in page.items) == sorted(
        item["uuid"] for item in sandbox.truth_search_items(catalog)
    )
    assert sandbox.request_counts["search"] == 3
    assert sandbox.faults_injected == {kind: 2}
    assert client.stats == RequestStats(requests=3, retries=2, by_operation={"search_products": 3})


async def test_a_sandbox_429_waits_for_its_retry_after(sandbox_factory: Any) -> None:
    sandbox: Sandbox = sandbox_factory(catalogs=3, products=60, generation="seed")
    sandbox.fail_next(1, "429", endpoint="catalogs", retry_after=0.3)
    async with make_client(sandbox) as client:
        started = time.monotonic()
        catalogs = await client.list_catalogs()
        elapsed = time.monotonic() - started

    assert [wire(catalog) for catalog in catalogs] == sandbox.truth_catalogs()
    assert elapsed >= 0.3
    assert sandbox.request_counts["catalogs"] == 2


async def test_a_current_429_waits_for_its_retry_after(sandbox: Sandbox) -> None:
    sandbox.fail_next(1, "429", endpoint="me", retry_after=0.3)
    async with make_client(sandbox) as client:
        started = time.monotonic()
        me = await client.get_me()
        elapsed = time.monotonic() - started

    assert me.principal == "api_key"
    assert elapsed >= 0.3
    assert sandbox.request_counts["me"] == 2


async def test_a_dropped_connection_that_never_recovers_is_a_connection_error(sandbox: Sandbox) -> None:
    sandbox.fail_next(10, "drop")
    async with make_client(sandbox) as client:
        with pytest.raises(OctogenConnectionError) as raised:
            await client.lookup_product("https://example.com/p/1")

    # RemoteProtocolError mostly, ReadError when the close races the request: both are a dropped connection
    assert str(raised.value).startswith("Could not reach the Octogen API on POST /products/lookup: ")
    assert sandbox.request_counts["lookup"] == 4
    assert client.stats.retries == 3


async def test_attempts_are_bounded(sandbox: Sandbox) -> None:
    sandbox.fail_next(10, "503")
    async with make_client(sandbox, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01)) as client:
        with pytest.raises(OctogenAPIError) as raised:
            await client.get_me()

    assert (raised.value.status_code, raised.value.detail) == (503, "Service Unavailable")
    assert sandbox.request_counts["me"] == 3
    assert client.stats == RequestStats(requests=3, retries=2, by_operation={"get_me": 3})


async def test_max_attempts_one_never_retries(sandbox: Sandbox) -> None:
    sandbox.fail_next(1, "500")
    async with make_client(sandbox, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(OctogenAPIError):
            await client.list_catalogs()
    assert sandbox.request_counts["catalogs"] == 1


async def test_a_garbage_success_body_is_an_api_error_not_retried(sandbox: Sandbox) -> None:
    sandbox.fail_next(1, "garbage", endpoint="search")
    async with make_client(sandbox) as client:
        with pytest.raises(OctogenResponseError) as raised:
            await client.search_products()

    assert raised.value.status_code == 200
    assert str(raised.value.detail).startswith("invalid JSON response")
    assert sandbox.request_counts["search"] == 1


@pytest.mark.parametrize(
    ("setup", "error_type"),
    [
        ("revoked", OctogenAuthenticationError),
        ("forbidden", OctogenForbiddenError),
        ("ungranted", OctogenNotFoundError),
        ("bad_facet", OctogenValidationError),
    ],
)
async def test_4xx_are_never_retried(sandbox: Sandbox, setup: str, error_type: type[OctogenAPIError]) -> None:
    key = sandbox.api_key
    search: dict[str, Any] = {}
    if setup == "revoked":
        key = sandbox.add_key()
        sandbox.revoke_key(key)
    elif setup == "forbidden":
        key = sandbox.add_key(forbidden=True)
    elif setup == "ungranted":
        search["catalog"] = sandbox.all_catalogs()[-1]
    else:
        search["facets"] = [{"name": "fabric_weight", "values": ["heavy"]}]

    async with make_client(sandbox, api_key=key) as client:
        with pytest.raises(error_type):
            await client.search_products(**search)

    assert sandbox.request_counts["search"] == 1
    assert client.stats == RequestStats(requests=1, retries=0, by_operation={"search_products": 1})


async def test_a_full_walk_through_random_faults_matches_the_truth(sandbox_factory: Any) -> None:
    sandbox: Sandbox = sandbox_factory(catalogs=2, products=300, seed=11)
    sandbox.set_fault_rates(rate_429=0.1, rate_5xx=0.15, rate_drop=0.1, retry_after=0, seed=5)
    catalog = sandbox.granted_catalogs()[0]
    policy = RetryPolicy(max_attempts=12, initial_backoff=0.005, max_backoff=0.01)

    async with make_client(sandbox, retry=policy) as client:
        pages = [page async for page in client.iter_wire_search_pages(catalog=catalog, limit=20)]

    # current pages may repeat a product of the previous page; scores vary per request
    unique = {hit["uuid"]: hit for page in pages for hit in page["items"]}
    stable = [
        {k: v for k, v in unique[uuid].items() if k not in ("rawScore", "displayMatchScore")}
        for uuid in sorted(unique)
    ]
    assert stable == sorted(sandbox.truth_search_items(catalog), key=lambda item: item["uuid"])
    injected = sum(sandbox.faults_injected.values())
    assert injected > 0
    assert client.stats.retries == injected
    assert client.stats.requests == sandbox.request_counts["search"] == len(pages) + injected


async def test_tracked_stats_follow_spawned_tasks_and_count_retries(sandbox: Sandbox) -> None:
    first, second = sandbox.granted_catalogs()
    sandbox.fail_next(1, "503", endpoint="search")
    per_catalog = {first: RequestStats(), second: RequestStats()}

    async with make_client(sandbox) as client:

        async def walk(catalog: str) -> int:
            with client.track(per_catalog[catalog]):
                async with asyncio.TaskGroup() as group:
                    # tasks spawned inside the block are counted into it too
                    pages = group.create_task(_count_pages(client, catalog))
                return pages.result()

        page_counts = await asyncio.gather(walk(first), walk(second))

    assert page_counts == [3, 3]
    tracked = [per_catalog[first], per_catalog[second]]
    assert sum(stats.requests for stats in tracked) == 7
    assert sum(stats.retries for stats in tracked) == 1
    assert all(stats.by_operation["search_products"] == stats.requests for stats in tracked)
    assert client.stats == RequestStats(requests=7, retries=1, by_operation={"search_products": 7})


async def _count_pages(client: OctogenClient, catalog: str) -> int:
    return len([page async for page in client.iter_search_pages(catalog=catalog, limit=25)])


# ---- the pieces ------------------------------------------------------------------------------------------


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 0.25 ") == 0.25
    assert retry_after_seconds("-4") == 0.0
    in_ten = retry_after_seconds(email.utils.formatdate(time.time() + 10, usegmt=True))
    assert in_ten is not None and 8 <= in_ten <= 10
    assert retry_after_seconds(email.utils.formatdate(time.time() - 100, usegmt=True)) == 0.0
    for unusable in (None, "", "soon", "nan", "inf"):
        assert retry_after_seconds(unusable) is None


@pytest.mark.parametrize(
    "options",
    [
        {"max_attempts": 0},
        {"max_total_seconds": -1},
        {"initial_backoff": float("nan")},
        {"max_backoff": -0.1},
    ],
)
def test_retry_policy_refuses_impossible_values(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**options)


def test_retry_policy_defaults() -> None:
    assert RetryPolicy() == RetryPolicy(
        max_attempts=6, max_total_seconds=120.0, initial_backoff=0.5, max_backoff=20.0
    )
