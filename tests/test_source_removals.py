"""Removals: only a complete, unfiltered walk marks products removed; they keep their last state; a product
that comes back is live again. (A product gone between search and lookup: tests/test_sync_current_api.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from octogen_source.client import OctogenClient
from octogen_source.sandbox import Sandbox
from octogen_source.source import CatalogReport
from octogen_source.sync import SyncError
from tests.sync_support import (
    ExpectedTables,
    SyncTarget,
    assert_tables_match,
    read_table,
    totals,
)

PRODUCTS_PER_CATALOG = 40


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(
        sandbox_factory(catalogs=4, products=PRODUCTS_PER_CATALOG, ungranted=1, seed=5), tmp_path
    )


def removed_uuids(target: SyncTarget) -> set[str]:
    products = read_table(target.database, "products", "uuid")
    return {uuid for uuid, row in products.items() if row.get("removed_at") is not None}


def test_removed_products_keep_their_last_state_and_come_back(target: SyncTarget) -> None:
    sandbox = target.sandbox
    first, second, _ = sandbox.granted_catalogs()
    expected = ExpectedTables(sandbox)
    target.sync()
    expected.observe()

    gone = sandbox.remove_products(first, 3) + sandbox.remove_products(second, 2)
    report = target.sync()
    assert totals(report) == {"new": 0, "changed": 0, "removed": 5, "lookups": 0}
    assert sandbox.request_counts["lookup"] == 0
    expected.observe()
    assert expected.removed == set(gone)
    # the whole last row, images included, is still there
    assert_tables_match(target.database, expected)

    # a second complete walk does not mark them again
    assert totals(target.sync())["removed"] == 0

    sandbox.restore_products(gone[:2])
    report = target.sync()
    assert totals(report) == {"new": 2, "changed": 0, "removed": 0, "lookups": 2}
    expected.observe()
    assert removed_uuids(target) == set(gone[2:])
    assert_tables_match(target.database, expected)


def test_a_filtered_walk_marks_nothing_removed(target: SyncTarget) -> None:
    sandbox = target.sandbox
    first = sandbox.granted_catalogs()[0]
    target.sync(details=False)
    gone = sandbox.remove_products(first, 4)
    changed = sandbox.update_prices(first, 40)  # every remaining product of the catalog

    # price_min=0 lists every product, yet it is a filtered walk: it loads what changed, removes nothing
    loaded = 0
    for filters in ({"q": "linen"}, {"facets": ("gender=women",)}, {"price_min": 0.0}):
        report = target.sync(details=False, **filters)
        assert report.total("removed") == 0
        assert removed_uuids(target) == set()
        loaded += report.total("changed")
    assert loaded == len(set(changed) - set(gone))

    report = target.sync(details=False)
    assert totals(report) == {"new": 0, "changed": 0, "removed": 4, "lookups": 0}
    assert removed_uuids(target) == set(gone)


def test_an_interrupted_walk_marks_nothing_removed(target: SyncTarget) -> None:
    sandbox = target.sandbox
    target.sync(details=False)
    before = read_table(target.database, "products", "uuid")
    sandbox.remove_products(sandbox.granted_catalogs()[1], 3)

    def fail_after_the_first_page(report: CatalogReport) -> None:
        if report.pages == 1:
            sandbox.fail_next(100, "500", endpoint="search")

    with pytest.raises(SyncError, match="500"):
        target.sync(
            details=False, page_size=10, max_concurrent_catalogs=1, progress=fail_after_the_first_page
        )
    sandbox.clear_faults()
    assert read_table(target.database, "products", "uuid") == before

    assert target.sync(details=False).total("removed") == 3


def test_a_product_moved_to_another_catalog_is_live_there_and_loaded_once(target: SyncTarget) -> None:
    sandbox = target.sandbox
    first, second, third = sandbox.granted_catalogs()
    expected = ExpectedTables(sandbox)
    target.sync()
    expected.observe()

    # whichever catalog is walked first, the product is listed by one and no longer by the other
    moved = sandbox.move_products(first, 2, to_catalog=second) + sandbox.move_products(
        third, 1, to_catalog=first
    )
    report = target.sync()
    assert totals(report)["removed"] == 0
    assert totals(report)["new"] == 3  # new to the catalog that lists them now
    expected.observe()
    assert not expected.removed
    products = read_table(target.database, "products", "uuid")  # fails on a duplicate uuid
    assert {uuid: products[uuid]["catalog"] for uuid in moved} == {
        moved[0]: second,
        moved[1]: second,
        moved[2]: first,
    }
    assert_tables_match(target.database, expected)


def test_a_product_listed_by_two_catalogs_at_once_is_loaded_once(
    target: SyncTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = target.sandbox
    first, second, _ = sandbox.granted_catalogs()
    shared = sandbox.truth_search_items(first)[0]
    real_pages = OctogenClient.iter_wire_search_pages

    async def listed_twice(self: OctogenClient, **arguments: Any) -> Any:
        async for page in real_pages(self, **arguments):
            if arguments.get("catalogs") == [second] and page.get("nextCursor") is None:
                page = {**page, "items": [*page["items"], shared]}
            yield page

    monkeypatch.setattr(OctogenClient, "iter_wire_search_pages", listed_twice)
    report = target.sync()
    products = read_table(target.database, "products", "uuid")  # fails on a duplicate uuid
    assert len(products) == 3 * PRODUCTS_PER_CATALOG
    assert totals(report)["new"] == 3 * PRODUCTS_PER_CATALOG
    assert sandbox.request_counts["lookup"] == 3 * PRODUCTS_PER_CATALOG  # looked up once
