"""Bounded input (issue 13, item 1): a response body over the client's ``max_response_bytes`` is refused at
once with one line naming the endpoint and the limit, read in chunks (never whole), and not retried; a sync
that meets one fails with that line and loads nothing of it. Real HTTP to the sandbox on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from octogen_source.bounded_body import MAX_TEXT_CHARS, clip_long_text
from octogen_source.client import DEFAULT_MAX_RESPONSE_BYTES, OctogenClient
from octogen_source.errors import OctogenResponseTooLargeError
from octogen_source.sandbox import Sandbox
from tests.scripted_server import HIT, ScriptedServer, current_page, make_client, scripted_server
from tests.sync_support import FAST_RETRY, ExpectedTables, SyncTarget, read_table


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with scripted_server() as running:
        yield running


def _search(sandbox: Sandbox, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
    async def run() -> None:
        async with OctogenClient(
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
            retry=FAST_RETRY,
            max_response_bytes=max_response_bytes,
        ) as client:
            await client.search_products(catalogs=[sandbox.granted_catalogs()[0]], limit=100)

    asyncio.run(run())


def test_default_limit_is_far_above_a_real_page() -> None:
    assert DEFAULT_MAX_RESPONSE_BYTES == 16 * 1024 * 1024


def test_a_streamed_body_over_the_limit_is_cut_off_and_not_retried(sandbox: Sandbox) -> None:
    sandbox.fail_next(1, "oversized", endpoint="search", body_bytes=64 * 1024 * 1024)
    with pytest.raises(OctogenResponseTooLargeError) as raised:
        _search(sandbox, max_response_bytes=1024 * 1024)
    message = str(raised.value)
    assert message == (
        "the Octogen API answered POST /products/search with a longer body, more than the 1,048,576-byte"
        " limit; refused (raise it with max_response_bytes, sources.octogen.max_response_bytes or"
        " --max-response-bytes)"
    )
    assert "\n" not in message
    assert sandbox.request_counts["search"] == 1  # refused, not retried


def test_an_announced_length_over_the_limit_is_refused_unread(sandbox: Sandbox) -> None:
    # a real 60-product page announces its Content-Length: more than the 10,000 bytes allowed here
    with pytest.raises(OctogenResponseTooLargeError, match=r"with a body of [\d,]+ bytes \(announced\)"):
        _search(sandbox, max_response_bytes=10_000)
    _search(sandbox)  # the default takes it


def test_the_limit_must_be_positive(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="max_response_bytes"):
        OctogenClient(api_key=sandbox.api_key, max_response_bytes=0)


def test_hits_of_another_catalog_are_never_written(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    target = SyncTarget(sandbox_factory(catalogs=2, products=30, ungranted=0, seed=3), tmp_path)
    first = target.sandbox.granted_catalogs()[0]
    target.sandbox.ignore_search_scope()  # every search answers with both catalogs' products

    report = target.sync(catalogs=(first,))

    [only] = report.catalogs
    assert (only.catalog, only.new, only.other_catalog) == (first, 30, 30)
    assert report.warnings == [f"{first}: 30 hits or lookups named another catalog; not written"]
    expected = ExpectedTables(target.sandbox)
    expected.observe()
    products = read_table(target.database, "products", "uuid")
    assert {row["catalog_key"] for row in products.values()} == {first}
    assert set(products) == {hit["uuid"] for hit in target.sandbox.truth_search_items(first)}
    assert set(read_table(target.database, "catalogs", "catalog")) == {first}
    assert read_table(target.database, "catalogs", "catalog")[first] == expected.catalogs[first]


async def test_over_long_text_in_wire_answers_is_cut_and_counted(server: ScriptedServer) -> None:
    long_title = "T" * (MAX_TEXT_CHARS + 10)
    hits: list[dict[str, Any]] = [
        {**HIT, "title": long_title, "images": [{"url": "u" * (MAX_TEXT_CHARS * 2)}]},
        {**HIT, "uuid": "u2"},
    ]
    server.script(current_page(hits, None), current_page([HIT], None))
    async with make_client(server, max_text_chars=MAX_TEXT_CHARS) as client:
        [page] = [page async for page in client.iter_wire_search_pages(catalogs=["c"])]
        [small] = [page async for page in client.iter_wire_search_pages(catalogs=["c"])]
        assert client.stats.clipped_values == 2
    first, second = page["items"]
    assert first["title"] == long_title[:MAX_TEXT_CHARS]
    assert first["images"] == [{"url": "u" * MAX_TEXT_CHARS}]
    assert second == {**HIT, "uuid": "u2"} and small["items"] == [HIT]


def test_clip_long_text_cuts_nested_strings_in_place() -> None:
    value: dict[str, object] = {"a": "xxxxx", "b": ["yyyyyy", {"c": "zz"}], "d": 7, "xxxxxxxx": "ok"}
    assert clip_long_text(value, limit=3) == 2
    assert value == {"a": "xxx", "b": ["yyy", {"c": "zz"}], "d": 7, "xxxxxxxx": "ok"}


def test_lookups_naming_another_catalog_are_not_written_and_retried_next_run(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    target = SyncTarget(sandbox_factory(catalogs=2, products=20, ungranted=0, seed=4), tmp_path)
    first, second = target.sandbox.granted_catalogs()
    target.sandbox.misattribute_lookups(second)

    report = target.sync(catalogs=(first,))
    [only] = report.catalogs
    assert (only.other_catalog, only.new) == (20, 0)
    assert read_table(target.database, "product_details", "uuid") == {}
    assert read_table(target.database, "products", "uuid") == {}
    assert set(read_table(target.database, "catalogs", "catalog")) == {first}

    target.sandbox.clear_faults()
    report = target.sync(catalogs=(first,))
    assert (report.catalogs[0].new, report.catalogs[0].lookups, report.warnings) == (20, 20, [])
    assert len(read_table(target.database, "product_details", "uuid")) == 20
