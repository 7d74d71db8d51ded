"""The benchmark's two floors do what their figures claim (their timings are printed by the benchmark and
never asserted here): the incremental floor makes exactly the requests an incremental must make, and the
dlt floor loads exactly the rows a full sync would."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from bench.bare_loop import walk_all
from bench.dlt_floor import load_prepared, prepare_rows
from octogen_source.sandbox import Sandbox
from octogen_source.source.records import hit_fingerprint, price_row
from tests.sync_support import as_stored_hit, decode_nested, read_table


def test_the_incremental_floor_reads_every_page_and_looks_up_only_the_changed(sandbox: Sandbox) -> None:
    catalogs = sandbox.granted_catalogs()
    changed = set(sandbox.update_prices(catalogs[0], 5)) | set(sandbox.update_prices(catalogs[1], 3))
    sandbox.reset_counts()

    totals = asyncio.run(
        walk_all(
            sandbox.base_url,
            sandbox.api_key,
            catalogs,
            page_size=7,
            concurrency=2,
            lookups=4,
            look_up_only=changed,
        )
    )

    counts = sandbox.request_counts
    # every hit of every page (the current API repeats a few products across pages)
    assert totals.products >= sum(len(sandbox.truth_search_items(catalog)) for catalog in catalogs)
    assert counts.get("lookup", 0) == len(changed) == 8
    assert counts["search"] + counts["lookup"] == totals.requests


def test_the_dlt_floor_loads_the_rows_of_a_full_sync(sandbox: Sandbox, tmp_path: Path) -> None:
    catalogs = sandbox.granted_catalogs()
    database = tmp_path / "floor.duckdb"
    prepared = prepare_rows(sandbox.base_url, sandbox.api_key, catalogs, page_size=25)

    figures = load_prepared(prepared, duckdb_path=str(database), pipelines_dir=str(tmp_path / "pipelines"))

    hits = [(catalog, hit) for catalog in catalogs for hit in sandbox.truth_search_items(catalog)]
    assert figures["products"] == len(hits)
    expected_products = {
        hit["uuid"]: {**as_stored_hit(hit), "catalog": catalog, "hit_hash": hit_fingerprint(hit)}
        for catalog, hit in hits
    }
    products = read_table(database, "products", "uuid")
    assert {uuid: decode_nested(row, expected_products[uuid]) for uuid, row in products.items()} == (
        expected_products
    )
    now = datetime.now(UTC)
    expected_prices = {
        row["observation_id"]: (row["uuid"], row["catalog"], row["current_price"], row["original_price"])
        for row in (price_row(hit, catalog, now) for catalog, hit in hits)
    }
    prices = read_table(database, "price_history", "observation_id")
    assert {
        key: (row["uuid"], row["catalog"], row.get("current_price"), row.get("original_price"))
        for key, row in prices.items()
    } == expected_prices
