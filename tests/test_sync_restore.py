"""Ephemeral workers: with the local pipeline directory gone, a sync restores its state from the destination
and loads only what changed; a full refresh backfills the selected catalogs without touching the others."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from octogen_source.sandbox import Sandbox
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match, read_rows, totals


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=3, products=30, ungranted=1, seed=13), tmp_path)


def test_a_fresh_worker_loads_only_what_changed(target: SyncTarget) -> None:
    sandbox = target.sandbox
    first, second = sandbox.granted_catalogs()
    expected = ExpectedTables(sandbox)
    first_report = target.sync()
    expected.observe()

    sandbox.update_prices(first, 4)
    sandbox.add_products(second, 1)
    gone = sandbox.remove_products(second, 2)
    shutil.rmtree(target.pipelines_dir)

    report = target.sync()
    assert totals(report) == {"new": 1, "changed": 4, "removed": 2, "lookups": 5}
    assert sandbox.request_counts["lookup"] == 5
    assert report.high_water is not None and first_report.high_water is not None
    assert report.high_water > first_report.high_water  # the state came back from the destination
    expected.observe()
    assert expected.removed == set(gone)
    assert_tables_match(target.database, expected)  # read_table fails on any duplicate key


def test_full_refresh_of_one_catalog_reloads_it_and_leaves_the_others_alone(target: SyncTarget) -> None:
    sandbox = target.sandbox
    first, second = sandbox.granted_catalogs()
    expected = ExpectedTables(sandbox)
    target.sync()
    expected.observe()
    gone = sandbox.remove_products(first, 3)
    sandbox.update_prices(first, 2)
    target.sync()
    expected.observe()

    def rows_of_the_other_catalog() -> list[dict[str, object]]:
        rows = [row for row in read_rows(target.database, "products") if row["catalog"] == second]
        return sorted(rows, key=lambda row: str(row["uuid"]))

    other_catalog_before = rows_of_the_other_catalog()
    history_before = len(read_rows(target.database, "price_history"))
    assert history_before == 62
    sandbox.reset_counts()

    report = target.sync(catalogs=[first], full_refresh=True)

    # every live product of the backfilled catalog is loaded and looked up again; nothing else is touched
    assert totals(report) == {"new": 0, "changed": 27, "removed": 0, "lookups": 27}
    assert sandbox.request_counts["lookup"] == 27
    assert rows_of_the_other_catalog() == other_catalog_before  # same rows, same _dlt_load_id
    assert len(read_rows(target.database, "price_history")) == history_before
    expected.observe()
    assert expected.removed == set(gone)
    assert_tables_match(target.database, expected)
