"""The mass-removal guard (issue 13, item 3): when the API ends a catalog's walk early (the last page cut
short, or an empty page without a cursor), the removal sweep is skipped and the run says so; every table
stays as it was and ``products_current`` keeps its products. ``allow_mass_removal`` sweeps anyway; an
ordinary removal is swept as before. Real HTTP to the sandbox on 127.0.0.1, real DuckDB files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.source.guards import mass_removal
from octogen_source.source.tables import SYNC_RUNS
from tests.sync_support import (
    DATASET,
    ExpectedTables,
    SyncTarget,
    assert_tables_match,
    read_rows,
    table_names,
    totals,
)

PAGE_SIZE = 10
PRODUCTS = 40
FAST = {"page_size": PAGE_SIZE, "details": False}
"""Small pages, so that a walk can end after a few; no lookups: the sweep does not depend on them."""


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=2, products=PRODUCTS, ungranted=0, seed=23), tmp_path)


def snapshot(database: Path) -> dict[str, list[str]]:
    """Every table and view of the dataset, rows as sorted JSON (dlt's bookkeeping columns and the run log
    ``sync_runs``, which every sync appends to, left out)."""
    return {
        table: sorted(json.dumps(row, sort_keys=True, default=str) for row in read_rows(database, table))
        for table in sorted(table_names(database))
        if not table.startswith("_dlt") and table != SYNC_RUNS
    }


def live_products(database: Path) -> int:
    with duckdb.connect(str(database), read_only=True) as connection:
        found = connection.execute(f"SELECT count(*) FROM {DATASET}.products_current").fetchone()
    assert found is not None
    return int(found[0])


def first_sync(target: SyncTarget) -> tuple[ExpectedTables, dict[str, list[str]]]:
    expected = ExpectedTables(target.sandbox, details=False)
    target.sync(**FAST)
    expected.observe()
    assert_tables_match(target.database, expected)
    return expected, snapshot(target.database)


@pytest.mark.parametrize(("after_pages", "empty"), [(2, False), (1, True)], ids=["cut-short", "empty-page"])
def test_a_walk_the_api_ends_early_removes_nothing(target: SyncTarget, after_pages: int, empty: bool) -> None:
    expected, before = first_sync(target)
    first = target.sandbox.granted_catalogs()[0]
    target.sandbox.end_walks_early(after_pages, empty=empty, catalog=first)

    report = target.sync(**FAST)

    assert totals(report) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    assert snapshot(target.database) == before
    assert_tables_match(target.database, expected)
    assert live_products(target.database) == 2 * PRODUCTS
    [warning] = report.warnings
    assert warning.startswith(f"{first}: removal sweep skipped (")
    assert "--allow-mass-removal" in warning
    skipped = {r.catalog: r.removal_skipped for r in report.catalogs}
    assert skipped[first] is not None and set(skipped.values()) == {skipped[first], None}

    target.sandbox.clear_faults()  # the API walks whole again: nothing to do, nothing lost
    report = target.sync(**FAST)
    assert totals(report) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    assert report.warnings == []
    assert snapshot(target.database) == before


def test_allow_mass_removal_sweeps_and_products_come_back(target: SyncTarget) -> None:
    expected, _ = first_sync(target)
    first = target.sandbox.granted_catalogs()[0]
    target.sandbox.end_walks_early(2, catalog=first)

    report = target.sync(**FAST, allow_mass_removal=True)
    swept = totals(report)["removed"]
    assert swept > PRODUCTS / 2 and report.warnings == []
    assert live_products(target.database) == 2 * PRODUCTS - swept

    target.sandbox.clear_faults()
    report = target.sync(**FAST)
    assert totals(report) == {"new": swept, "changed": 0, "removed": 0, "lookups": 0}
    expected.observe()
    assert_tables_match(target.database, expected)


def test_a_removal_below_the_share_is_swept(target: SyncTarget) -> None:
    expected, _ = first_sync(target)
    first = target.sandbox.granted_catalogs()[0]
    target.sandbox.remove_products(first, 4)  # 10% of the catalog

    report = target.sync(**FAST)
    assert totals(report)["removed"] == 4 and report.warnings == []
    expected.observe()
    assert_tables_match(target.database, expected)


def test_products_that_moved_to_another_catalog_of_the_run_do_not_trip_the_guard(target: SyncTarget) -> None:
    """A quarter of a catalog moves to the other catalog of the run and two products are really removed: the
    moved ones are neither removed nor counted against the guard (both the share and the listed count); the
    two removals are swept and ``product_count`` follows the walk, run after run."""
    expected, _ = first_sync(target)
    first, second = target.sandbox.granted_catalogs()
    target.sandbox.move_products(first, PRODUCTS // 4, second)
    gone = target.sandbox.remove_products(first, 2)

    report = target.sync(**FAST)

    assert report.warnings == []
    assert {r.catalog: r.removed for r in report.catalogs} == {first: 2, second: 0}
    expected.observe()
    assert_tables_match(target.database, expected)
    counts = {row["catalog"]: row["product_count"] for row in read_rows(target.database, "catalogs")}
    assert counts == {first: PRODUCTS - PRODUCTS // 4 - 2, second: PRODUCTS + PRODUCTS // 4}
    with duckdb.connect(str(target.database), read_only=True) as connection:
        still_live = connection.execute(
            f"SELECT count(*) FROM {DATASET}.products_current WHERE uuid IN (?, ?)", gone
        ).fetchone()
    assert still_live == (0,)

    report = target.sync(**FAST)  # nothing left to explain
    assert report.warnings == [] and totals(report) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}


@pytest.mark.parametrize("generation", ["current", "seed"])
def test_a_skipped_sweep_keeps_the_stored_product_count(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, generation: str
) -> None:
    """Not the short walk's count, nor (seed era, catalogs listed by GET /catalogs) the API's own: the next
    runs' guard compares with the last complete walk. Half the catalog leaves the index at once."""
    sandbox = sandbox_factory(catalogs=2, products=PRODUCTS, ungranted=0, seed=23, generation=generation)
    target = SyncTarget(sandbox, tmp_path)
    listed = {} if generation == "current" else {"catalogs": ()}  # seed era: the catalogs as listed
    target.sync(**FAST, **listed)
    first = sandbox.granted_catalogs()[0]
    sandbox.remove_products(first, PRODUCTS // 2)
    report = target.sync(**FAST, **listed)
    assert len(report.warnings) == 1
    counts = {row["catalog"]: row["product_count"] for row in read_rows(target.database, "catalogs")}
    assert counts[first] == PRODUCTS


def test_the_share_is_configurable(target: SyncTarget) -> None:
    first_sync(target)
    first = target.sandbox.granted_catalogs()[0]
    target.sandbox.remove_products(first, 4)
    report = target.sync(**FAST, max_removal_share=0.05)
    assert totals(report)["removed"] == 0
    assert "it would mark 4 of 40 live products removed (10%, more than 5%)" in report.warnings[0]


def _guard(**overrides: Any) -> str | None:
    facts: dict[str, Any] = {
        "unlisted": 5,
        "listed": 95,
        "new": 0,
        "last_complete_count": 100,
        "max_share": 0.2,
    }
    facts.update(overrides)
    return mass_removal(**facts)


def test_the_guard_rules() -> None:
    assert _guard() is None
    assert _guard(unlisted=0, listed=10) is None  # nothing to remove: nothing to guard
    assert (
        _guard(unlisted=30, listed=70) == "it would mark 30 of 100 live products removed (30%, more than 20%)"
    )
    # few live rows left, but the walk listed far fewer products than the last complete one
    assert _guard(unlisted=1, listed=10, last_complete_count=100) == (
        "the walk listed 10 products where the last complete walk listed 100 (fewer than 80% of them)"
    )
    assert _guard(unlisted=1, listed=10, last_complete_count=None) is None
    # products that moved to another catalog of the run are accounted for, in both rules
    assert _guard(unlisted=2, moved=25, listed=73) is None
    assert _guard(unlisted=2, listed=73) == (
        "the walk listed 73 products where the last complete walk listed 100 (fewer than 80% of them)"
    )
    assert _guard(unlisted=30, moved=40, listed=30, new=0) == (
        "it would mark 30 of 100 live products removed (30%, more than 20%)"
    )


def test_the_cli_flag_reaches_the_source() -> None:
    from octogen_source.commands.sync import build_parser, options_from

    assert options_from(build_parser().parse_args(["--allow-mass-removal"])).allow_mass_removal is True
    assert options_from(build_parser().parse_args([])).allow_mass_removal is None  # config decides
