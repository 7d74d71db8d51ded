"""End to end, sandbox over HTTP -> DuckDB: after a first sync and after each kind of change in the API, every
table equals the sandbox's truth, and only what changed was looked up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncReport
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match, read_rows, totals

PRODUCTS_PER_CATALOG = 40


@pytest.fixture(params=["current", "seed"])
def target(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[SyncTarget]:
    sandbox = sandbox_factory(
        catalogs=4, products=PRODUCTS_PER_CATALOG, ungranted=1, seed=3, generation=request.param
    )
    yield SyncTarget(sandbox, tmp_path)


def assert_synced(target: SyncTarget, expected: ExpectedTables, report: SyncReport, **figures: int) -> None:
    """The report's totals are ``figures`` (others zero), every lookup was one the report counts, and the
    tables equal the truth."""
    wanted = {"new": 0, "changed": 0, "removed": 0, **figures}
    wanted.setdefault("lookups", wanted["new"] + wanted["changed"])
    assert totals(report) == wanted
    assert target.sandbox.request_counts["lookup"] == wanted["lookups"]
    expected.observe()
    assert_tables_match(target.database, expected)


def test_each_kind_of_change_lands_and_nothing_else_is_fetched(target: SyncTarget) -> None:
    sandbox = target.sandbox
    first, second, third = sandbox.granted_catalogs()
    expected = ExpectedTables(sandbox)

    report = target.sync()
    assert_synced(target, expected, report, new=3 * PRODUCTS_PER_CATALOG)
    assert [r.catalog for r in report.catalogs] == [first, second, third]
    assert all(r.complete and r.requests >= 1 + r.lookups for r in report.catalogs)
    high_water = report.high_water
    assert high_water is not None

    # nothing changed: no lookup, no new row anywhere
    history_rows = len(read_rows(target.database, "price_history"))
    assert_synced(target, expected, target.sync())
    assert len(read_rows(target.database, "price_history")) == history_rows

    sandbox.update_prices(first, 5)
    assert_synced(target, expected, target.sync(), changed=5)

    sandbox.add_products(second, 4)
    report = target.sync()
    assert_synced(target, expected, report, new=4)
    assert report.high_water is not None and report.high_water > high_water

    # late-indexed (updatedAt older than anything loaded, below any high-water mark), null updatedAt, and
    # ties with the newest updatedAt already loaded
    sandbox.add_late_indexed(third, 2)
    sandbox.add_null_updated_at(first, 2)
    sandbox.add_same_second(second, 3)
    assert_synced(target, expected, target.sync(), new=7)

    sandbox.update_prices(first, 3)
    sandbox.add_same_second(first, 2)
    assert_synced(target, expected, target.sync(), new=2, changed=3)

    # the API moves under the sync (seed-era hits become today's objects, or back): every hit differs,
    # nothing is lost, and the typed columns keep their types
    moved_to = "current" if sandbox.api_generation == "seed" else "seed"
    sandbox.set_api_generation(moved_to)
    live = len(expected.live_hits())
    assert_synced(target, expected, target.sync(), changed=live)
    products = read_rows(target.database, "products")
    assert all(isinstance(row.get("brand", ""), str) for row in products)
    assert all(isinstance(row.get("rating", 0.0), float) for row in products)
    if moved_to == "current":
        assert all(row["currency"] == "USD" for row in products)

    assert_synced(target, expected, target.sync())


def test_without_details_nothing_is_looked_up(target: SyncTarget) -> None:
    expected = ExpectedTables(target.sandbox, details=False)
    assert_synced(target, expected, target.sync(details=False), new=3 * PRODUCTS_PER_CATALOG, lookups=0)
    target.sandbox.update_prices(target.sandbox.granted_catalogs()[0], 2)
    assert_synced(target, expected, target.sync(details=False), changed=2, lookups=0)
