"""A destination loaded by 0.1 (images in the ``products__images`` child table) is brought to the flat
layout by the next sync, without lookups, and stays equal to the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.source.records import hit_fingerprint, to_columns
from octogen_source.sync import DEFAULT_DATASET
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match, totals


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=3, products=30, seed=11), tmp_path)


def load_like_0_1(target: SyncTarget) -> None:
    """The products table as 0.1 wrote it: the hit's fields as dlt normalizes them (lists into child tables),
    its catalog and the fingerprint of the hit."""
    sandbox = target.sandbox

    @dlt.resource(
        name="products",
        primary_key="uuid",
        write_disposition="merge",
        columns={"removed_at": {"data_type": "timestamp"}, "hit_hash": {"data_type": "bigint"}},
    )
    def products() -> Iterator[dict[str, Any]]:
        for catalog in sandbox.granted_catalogs():
            for hit in sandbox.truth_search_items(catalog):
                yield {**to_columns(hit), "catalog": catalog, "hit_hash": hit_fingerprint(hit)}

    pipeline = dlt.pipeline(
        target.pipeline_name,
        destination=dlt.destinations.duckdb(str(target.database)),
        dataset_name=DEFAULT_DATASET,
        pipelines_dir=str(target.pipelines_dir),
    )
    pipeline.run(products(), schema=dlt.Schema("octogen"))


def rows_of(database: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(query).fetchall()


def test_a_0_1_destination_is_rewritten_flat_once_without_lookups(target: SyncTarget) -> None:
    load_like_0_1(target)
    assert rows_of(target.database, "SELECT count(*) FROM octogen.products__images")[0][0] > 0

    report = target.sync(details=False)
    # nothing changed in the API: nothing new, changed or looked up; every row written again, flat
    assert totals(report) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    assert target.sandbox.request_counts["lookup"] == 0
    assert rows_of(target.database, "SELECT count(*) FROM octogen.products__images") == [(0,)]
    assert rows_of(target.database, "SELECT count(*) FROM octogen.products WHERE images IS NULL") == [(0,)]
    expected = ExpectedTables(target.sandbox, details=False)
    expected.observe()
    assert_tables_match(target.database, expected)

    # once flat, a sync writes nothing
    target.sync(details=False)
    latest = rows_of(target.database, "SELECT max(load_id) FROM octogen._dlt_loads")[0][0]
    assert rows_of(
        target.database, f"SELECT count(*) FROM octogen.products WHERE _dlt_load_id = '{latest}'"
    ) == [(0,)]
    assert_tables_match(target.database, expected)
