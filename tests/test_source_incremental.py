"""The products' high-water mark on updated_at (resource state, where dlt's incremental kept it) only moves
forward and never drops a row: what is loaded is decided per uuid against the destination."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dlt
import pytest

from octogen_source.sandbox import Sandbox
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match, totals

FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=3, products=30, ungranted=1, seed=11), tmp_path)


def test_rows_below_a_high_water_mark_are_still_loaded(target: SyncTarget) -> None:
    sandbox = target.sandbox
    first, second = sandbox.granted_catalogs()
    expected = ExpectedTables(sandbox, details=False)
    report = target.sync(details=False)
    expected.observe()
    assert report.high_water is not None and report.high_water < FUTURE

    # a high-water mark beyond every updatedAt: a dlt incremental filtering on it would drop everything
    pipeline = dlt.attach(target.pipeline_name, pipelines_dir=str(target.pipelines_dir))
    products_state = pipeline.state["sources"]["octogen"]["resources"]["products"]
    assert products_state["incremental"]["updated_at"]["last_value"] == report.high_water
    with pipeline.managed_state() as state:
        state["sources"]["octogen"]["resources"]["products"]["incremental"]["updated_at"]["last_value"] = (
            FUTURE
        )

    sandbox.update_prices(first, 3)
    sandbox.add_late_indexed(second, 2)
    sandbox.add_null_updated_at(second, 1)
    sandbox.add_same_second(first, 2)
    report = target.sync(details=False)
    assert totals(report) == {"new": 5, "changed": 3, "removed": 0, "lookups": 0}
    assert report.high_water == FUTURE  # kept: the mark only moves forward
    expected.observe()
    assert_tables_match(target.database, expected)


def test_products_loaded_without_details_are_looked_up_once_details_are_on(target: SyncTarget) -> None:
    """A run with details off loads products no lookup has seen; the next run with details on looks up
    exactly those (unchanged products too), and the one after looks nothing up."""
    sandbox = target.sandbox
    first, second = sandbox.granted_catalogs()
    expected = ExpectedTables(sandbox, details=False)
    report = target.sync(details=False)
    expected.observe()
    products = report.total("new")
    assert products > 0 and report.total("lookups") == 0

    sandbox.update_prices(first, 2)  # changed: looked up as changed, not twice
    report = target.sync()
    assert totals(report) == {"new": 0, "changed": 2, "removed": 0, "lookups": products}
    assert report.total("unchanged") == products - 2
    expected.details = True
    expected.observe()
    assert_tables_match(target.database, expected)

    sandbox.add_late_indexed(second, 1)
    report = target.sync()
    assert totals(report) == {"new": 1, "changed": 0, "removed": 0, "lookups": 1}
    expected.observe()
    assert_tables_match(target.database, expected)
