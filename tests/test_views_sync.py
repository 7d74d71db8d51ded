"""products_current after real syncs of the sandbox (HTTP on 127.0.0.1 -> dlt -> a DuckDB file), compared
whole with what the sandbox's truth says it must hold: one row per live product with its search and detail
fields, the previous price after a repricing, removed products gone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import dlt
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncOptions, run_sync
from octogen_source.views import VIEW_COLUMNS, create_analyst_views
from tests.sync_support import typed_columns

PIPELINE = "octogen_views_test"
DATASET = "octogen"
COLUMN_NAMES = [column.name for column in VIEW_COLUMNS]
# what analysts ask: "what is on sale now", biggest discount first (the README's query)
ON_SALE_NOW = """
SELECT catalog, uuid, title, brand, current_price, original_price,
       ROUND(100 * (1 - current_price / original_price)) AS pct_off, previous_price
FROM octogen.products_current
WHERE current_price < original_price
ORDER BY pct_off DESC, uuid
"""


def sync(sandbox: Sandbox, tmp_path: Path) -> dlt.Pipeline:
    """One sync of every granted catalog, then the view (as the sync does after each successful load)."""
    database, pipelines_dir = str(tmp_path / "warehouse.duckdb"), str(tmp_path / "pipelines")
    options = SyncOptions(
        duckdb_path=database,
        dataset=DATASET,
        pipeline_name=PIPELINE,
        pipelines_dir=pipelines_dir,
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        catalogs=tuple(sandbox.granted_catalogs()),
    )
    run_sync(options)
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE,
        destination=dlt.destinations.duckdb(database),
        dataset_name=DATASET,
        pipelines_dir=pipelines_dir,
    )
    assert create_analyst_views(pipeline) == '"octogen"."products_current"'
    return pipeline


def view_table(
    pipeline: dlt.Pipeline, sql: str = "SELECT * FROM octogen.products_current"
) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as client:
        return [tuple(row) for row in client.execute_sql(sql) or []]


def expected_view(sandbox: Sandbox, previous_prices: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The view computed in Python from the sandbox's truth (search hits + lookup records)."""
    expected = {}
    for catalog in sandbox.granted_catalogs():
        for hit in sandbox.truth_search_items(catalog):
            view = sandbox.truth_product_view(hit["uuid"])
            identifiers = view.get("identifiers") or {}
            typed = typed_columns(hit)
            updated_at = hit["updatedAt"]
            expected[hit["uuid"]] = {
                "catalog": catalog,
                "uuid": hit["uuid"],
                "title": hit["title"],
                "brand": typed.get("brand", hit["brand"]),
                "product_url": hit["productUrl"],
                "current_price": hit["currentPrice"],
                "original_price": hit["originalPrice"],
                "currency": hit.get("currency"),
                "previous_price": previous_prices.get(hit["uuid"]),
                "rating": typed.get("rating", hit["rating"]),
                "rating_count": typed.get("rating_count"),
                "image_url": typed.get("primary_image_url"),
                "updated_at": datetime.fromisoformat(updated_at) if updated_at else None,
                "is_active": hit["isActive"],
                "description": view["description"],
                "in_stock": view["inStock"],
                "sizes": list(view["sizes"]) or None,
                "colors": [color["label"] for color in view["colors"]] or None,
                "gtin": identifiers.get("gtin"),
                "product_id": identifiers.get("productId"),
                "product_group_id": identifiers.get("productGroupId"),
            }
    return expected


def as_rows(table: list[tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
    rows = [dict(zip(COLUMN_NAMES, values, strict=True)) for values in table]
    by_uuid = {row["uuid"]: row for row in rows}
    assert len(by_uuid) == len(rows), "products_current must hold one row per product"
    return by_uuid


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
