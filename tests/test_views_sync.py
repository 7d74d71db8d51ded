"""products_current after real syncs of the sandbox (HTTP on 127.0.0.1 -> dlt -> a DuckDB file), compared
whole with what the sandbox's truth says it must hold: one row per live product with its search and detail
fields, the previous price after a repricing, removed products gone, and the product's sizes and colors as
they are now (from the hits, from the lookups when the hits carry none) whether details are on or off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncOptions, SyncReport, run_sync
from octogen_source.views import create_analyst_views
from tests.view_support import as_rows, expected_view

PIPELINE = "octogen_views_test"
DATASET = "octogen"
# what analysts ask: "what is on sale now", biggest discount first (the README's query)
ON_SALE_NOW = """
SELECT catalog, uuid, title, brand, current_price, original_price,
       ROUND(100 * (1 - current_price / original_price)) AS pct_off, previous_price
FROM octogen.products_current
WHERE current_price < original_price
ORDER BY pct_off DESC, uuid
"""


def sync(sandbox: Sandbox, tmp_path: Path, *, details: bool = True) -> dlt.Pipeline:
    """One sync of every granted catalog, then the view (as the sync does after each successful load)."""
    return sync_reporting(sandbox, tmp_path, details=details)[0]


def sync_reporting(
    sandbox: Sandbox, tmp_path: Path, *, details: bool = True
) -> tuple[dlt.Pipeline, SyncReport]:
    database, pipelines_dir = str(tmp_path / "warehouse.duckdb"), str(tmp_path / "pipelines")
    options = SyncOptions(
        duckdb_path=database,
        dataset=DATASET,
        pipeline_name=PIPELINE,
        pipelines_dir=pipelines_dir,
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        catalogs=tuple(sandbox.granted_catalogs()),
        details=details,
    )
    report = run_sync(options)
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE,
        destination=dlt.destinations.duckdb(database),
        dataset_name=DATASET,
        pipelines_dir=pipelines_dir,
    )
    assert create_analyst_views(pipeline) == '"octogen"."products_current"'
    return pipeline, report


def view_table(
    pipeline: dlt.Pipeline, sql: str = "SELECT * FROM octogen.products_current"
) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as client:
        return [tuple(row) for row in client.execute_sql(sql) or []]


@pytest.mark.timeout(120)
def test_products_current_follows_syncs_with_previous_prices_and_without_removed_products(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    pipeline = sync(sandbox, tmp_path)
    assert as_rows(view_table(pipeline)) == expected_view(sandbox, previous_prices={})

    first, second = sandbox.granted_catalogs()[:2]
    prices_before = {hit["uuid"]: hit["currentPrice"] for hit in sandbox.truth_search_items(first)}
    repriced = sandbox.update_prices(first, 5)
    removed = sandbox.remove_products(second, 3)
    added = sandbox.add_products(second, 2)

    pipeline = sync(sandbox, tmp_path)

    rows = as_rows(view_table(pipeline))
    assert rows == expected_view(sandbox, previous_prices={uuid: prices_before[uuid] for uuid in repriced})
    assert not set(removed) & set(rows) and set(added) <= set(rows)
    assert all(rows[uuid]["previous_price"] != rows[uuid]["current_price"] for uuid in repriced)

    on_sale = view_table(pipeline, ON_SALE_NOW)
    expected_on_sale = sorted(
        (
            (
                row["catalog"],
                uuid,
                row["title"],
                row["brand"],
                row["current_price"],
                row["original_price"],
                round(100 * (1 - row["current_price"] / row["original_price"])),
                row["previous_price"],
            )
            for uuid, row in rows.items()
            if row["current_price"] < row["original_price"]
        ),
        key=lambda row: (-row[6], row[1]),
    )
    assert on_sale and on_sale == expected_on_sale


def stored_detail_colors(pipeline: dlt.Pipeline, uuids: list[str]) -> dict[str, list[str]]:
    """The color labels product_details holds for ``uuids`` (its child table, in list order)."""
    placeholders = ", ".join("?" for _ in uuids)
    sql = f"""
        SELECT d.uuid, c.label FROM octogen.product_details__colors AS c
        JOIN octogen.product_details AS d ON c._dlt_parent_id = d._dlt_id
        WHERE d.uuid IN ({placeholders}) ORDER BY d.uuid, c._dlt_list_idx"""
    colors: dict[str, list[str]] = {}
    with pipeline.sql_client() as client:
        for uuid, color in client.execute_sql(sql, *uuids) or []:
            colors.setdefault(uuid, []).append(color)
    return colors


@pytest.mark.timeout(120)
def test_products_current_reads_sizes_and_colors_from_the_hits_when_details_are_off(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    pipeline = sync(sandbox, tmp_path, details=False)

    rows = as_rows(view_table(pipeline))
    assert rows == expected_view(sandbox, previous_prices={}, looked_up=False)
    # every sandbox product has sizes and colors: none may read as empty
    assert all(row["sizes"] and row["colors"] for row in rows.values())
    assert all(row["description"] is None and row["gtin"] is None for row in rows.values())


@pytest.mark.timeout(180)
def test_products_current_shows_the_current_colors_when_the_details_are_older_than_the_hit(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Why the view prefers the hit's lists: a product changed during a --no-details run keeps its older
    details row, and a later run with details does not look it up again (its hit is unchanged by then)."""
    pipeline = sync(sandbox, tmp_path)
    catalog = sandbox.granted_catalogs()[0]
    hits_before = {hit["uuid"]: hit for hit in sandbox.truth_search_items(catalog)}
    colors_before = {uuid: hit["colors"] for uuid, hit in hits_before.items()}
    recolored = sandbox.recolor_products(catalog, 4)
    # a new updatedAt is a new observation: its price (unchanged) becomes the previous one too
    previous_prices = {uuid: hits_before[uuid]["currentPrice"] for uuid in recolored}

    pipeline = sync(sandbox, tmp_path, details=False)

    assert as_rows(view_table(pipeline)) == expected_view(sandbox, previous_prices)
    assert stored_detail_colors(pipeline, recolored) == {uuid: colors_before[uuid] for uuid in recolored}

    pipeline, report = sync_reporting(sandbox, tmp_path)

    assert report.total("lookups") == 0  # nothing changed since the last run: the details stay older
    assert stored_detail_colors(pipeline, recolored) == {uuid: colors_before[uuid] for uuid in recolored}
    rows = as_rows(view_table(pipeline))
    assert rows == expected_view(sandbox, previous_prices)
    assert all(rows[uuid]["colors"] != colors_before[uuid] for uuid in recolored)


@pytest.mark.timeout(180)
def test_products_current_lists_in_the_seed_era_come_from_the_lookups_then_from_todays_hits(
    seed_sandbox: Sandbox, tmp_path: Path
) -> None:
    """The seed-era API's hits carry no sizes or colors (its lookups send colors as objects): the view
    reads the details'; once the API answers in today's shape, the hits' lists (newer) win."""
    pipeline = sync(seed_sandbox, tmp_path)

    rows = as_rows(view_table(pipeline))
    assert rows == expected_view(seed_sandbox, previous_prices={})
    assert all(row["sizes"] and row["colors"] for row in rows.values())

    seed_sandbox.set_api_generation("current")
    catalog = seed_sandbox.granted_catalogs()[0]
    prices = {hit["uuid"]: hit["currentPrice"] for hit in seed_sandbox.truth_search_items(catalog)}
    recolored = seed_sandbox.recolor_products(catalog, 3)
    pipeline = sync(seed_sandbox, tmp_path, details=False)

    rows = as_rows(view_table(pipeline))
    expected = expected_view(seed_sandbox, {uuid: prices[uuid] for uuid in recolored})
    # the details were looked up in the seed era: their identifiers stay the seed lookup's
    seed_fields = ("gtin", "product_id", "product_group_id")
    assert {
        uuid: {**row, **{name: expected[uuid][name] for name in seed_fields}} for uuid, row in rows.items()
    } == expected
    assert {uuid: rows[uuid]["colors"] for uuid in recolored} == {
        uuid: expected[uuid]["colors"] for uuid in recolored
    }
