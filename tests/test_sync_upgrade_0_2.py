"""Upgrading a dataset loaded by release 0.2 in place: the real 0.2 code (from this repository's history)
loads the seed-era API into DuckDB in a subprocess, then this release syncs on into the same file and
pipeline, against the current API (the API moved under the user) and against the seed-era one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from octogen_source.sandbox import Sandbox
from tests.sync_support import (
    ExpectedTables,
    SyncTarget,
    assert_tables_match,
    read_table,
    totals,
)

RELEASE_0_2 = "90a58bb"
"""The last commit of 0.2.0 (stop 9)."""
REPO = Path(__file__).resolve().parents[1]
PRODUCTS_PER_CATALOG = 30

SYNC_WITH_0_2 = """
import json, sys
from octogen_source.retries import RetryPolicy
from octogen_source.sync import SyncOptions, run_sync
settings = json.loads(sys.argv[1])
report = run_sync(SyncOptions(retry=RetryPolicy(max_attempts=2, max_total_seconds=5.0), **settings))
print(json.dumps({r.catalog: [r.new, r.changed, r.removed, r.lookups] for r in report.catalogs}))
"""


@pytest.fixture(scope="module")
def release_0_2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The octogen_source package of 0.2, unpacked from git history."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", RELEASE_0_2, "octogen_source"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"release 0.2 ({RELEASE_0_2}) is not in this clone's history: {archive.stderr[:200]!r}")
    root = tmp_path_factory.mktemp("octogen_0_2")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return root


def sync_with_0_2(release: Path, target: SyncTarget) -> dict[str, list[int]]:
    settings: dict[str, Any] = {
        "api_key": target.sandbox.api_key,
        "base_url": target.sandbox.base_url,
        "duckdb_path": str(target.database),
        "pipelines_dir": str(target.pipelines_dir),
        "pipeline_name": target.pipeline_name,
    }
    environment = {**os.environ, "PYTHONPATH": str(release), "RUNTIME__LOG_LEVEL": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-c", SYNC_WITH_0_2, json.dumps(settings)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=release,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    sandbox = sandbox_factory(catalogs=2, products=PRODUCTS_PER_CATALOG, seed=21, generation="seed")
    return SyncTarget(sandbox, tmp_path)


def test_a_0_2_dataset_syncs_on_against_the_current_api_without_loss_or_duplicates(
    release_0_2: Path, target: SyncTarget
) -> None:
    sandbox = target.sandbox
    first, second = sandbox.granted_catalogs()
    assert sync_with_0_2(release_0_2, target) == {
        first: [PRODUCTS_PER_CATALOG, 0, 0, PRODUCTS_PER_CATALOG],
        second: [PRODUCTS_PER_CATALOG, 0, 0, PRODUCTS_PER_CATALOG],
    }
    by_0_2 = LoadedBy02(target)
    expected = ExpectedTables(sandbox)
    expected.observe()  # the price observations 0.2 made

    removed = sandbox.remove_products(first, 2)
    sandbox.update_prices(second, 3)
    sandbox.set_api_generation("current")
    report = target.sync()
    expected.observe()

    live = 2 * PRODUCTS_PER_CATALOG - 2
    # every hit changed shape (objects for brand and rating): each live product is written and looked up
    # once again, in the current shape; the two gone are marked removed and keep what 0.2 loaded
    assert totals(report) == {"new": 0, "changed": live, "removed": 2, "lookups": live}
    by_0_2.keep(expected, removed)
    expected.removed = set(removed)
    for key, row in expected.catalogs.items():
        expected.catalogs[key] = {**by_0_2.catalogs[key], **row}  # last_indexed_at stays from the listing
    assert_tables_match(target.database, expected)

    assert totals(target.sync()) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    assert_tables_match(target.database, expected)


def test_a_0_2_dataset_on_the_seed_era_api_needs_no_lookups_to_go_on(
    release_0_2: Path, target: SyncTarget
) -> None:
    sandbox = target.sandbox
    sync_with_0_2(release_0_2, target)
    by_0_2 = LoadedBy02(target)
    expected = ExpectedTables(sandbox, listed=True)
    expected.observe()

    repriced = sandbox.update_prices(sandbox.granted_catalogs()[0], 2)
    report = target.sync(catalogs=())  # listed with GET /catalogs, as 0.2 did
    expected.observe()
    # the fingerprints of seed-era hits are those 0.2 stored: only the repriced products changed
    assert totals(report) == {"new": 0, "changed": 2, "removed": 0, "lookups": 2}
    # rows of unchanged products stay as 0.2 wrote them (without the new primary_image_url column, and
    # with their details' enrichment in 0.2's child tables) until they next change
    by_0_2.keep(expected, [uuid for uuid in by_0_2.products if uuid not in repriced])
    assert_tables_match(target.database, expected)


class LoadedBy02:
    """The tables as 0.2 left them."""

    def __init__(self, target: SyncTarget) -> None:
        self.products = read_table(target.database, "products", "uuid")
        self.details = read_table(target.database, "product_details", "uuid")
        self.catalogs = read_table(target.database, "catalogs", "catalog")

    def keep(self, expected: ExpectedTables, uuids: list[str]) -> None:
        """These products' rows are expected as 0.2 wrote them."""
        for uuid in uuids:
            row = self.products[uuid]
            expected.products[uuid] = {
                name: value for name, value in row.items() if name not in ("removed_at", "hit_hash")
            }
            expected.product_details[uuid] = self.details[uuid]
