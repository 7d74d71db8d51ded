"""dlt's own share of a full sync: the same rows, built before the clock starts, extracted and loaded.

The products and price history rows of every hit are made with the sync's own code (fingerprint, rows,
arrow tables with ``_dlt_id`` and ``_dlt_load_id``) from pages read before the clock starts; the clock
then runs one ``pipeline.run`` of two resources with the hints of the sync's first load (both appended, see
``octogen_source.source.first_load``) into a fresh DuckDB file, parquet, the sync's DuckDB settings. No
request, no walk: what dlt needs for these rows whatever reads them. Its normalize and load steps cannot
overlap a walk (dlt loads a package once its extract is over), so bare loop + those steps is a floor for
a full sync loaded in one package.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dlt
import httpx
import pyarrow as pa

from octogen_source.source.arrow_rows import ArrowRows
from octogen_source.source.catalog_walk import BATCH_ROWS
from octogen_source.source.records import hit_fingerprint, price_row, product_row
from octogen_source.source.tables import (
    PRICE_HISTORY,
    PRICE_HISTORY_COLUMNS,
    PRODUCT_COLUMNS,
    PRODUCTS,
    with_dlt_columns,
)
from octogen_source.source.typed_fields import stable_hit
from octogen_source.warehouse import destination_for

# one hit in a batch of BATCH_ROWS rows gives a products row and a price_history row
HITS_PER_BATCH = BATCH_ROWS // 2


@dataclass
class PreparedRows:
    products: list[pa.Table]
    prices: list[pa.Table]

    @property
    def hits(self) -> int:
        return sum(table.num_rows for table in self.products)


def read_hits(base_url: str, api_key: str, catalogs: list[str], page_size: int) -> Iterator[tuple[str, Any]]:
    """Every (catalog, hit) of a full walk, read with plain httpx (not timed)."""
    with httpx.Client(
        base_url=base_url.rstrip("/") + "/", headers={"Authorization": f"Bearer {api_key}"}, timeout=60.0
    ) as client:
        for catalog in catalogs:
            body: dict[str, Any] = {"catalogs": [catalog], "limit": page_size}
            while True:
                response = client.post("products/search", json=body)
                response.raise_for_status()
                page = response.json()
                for hit in page["items"]:
                    yield catalog, hit
                if page.get("nextCursor") is None:
                    break
                body = {**body, "cursor": page["nextCursor"]}


def prepare_rows(base_url: str, api_key: str, catalogs: list[str], page_size: int) -> PreparedRows:
    """The arrow tables a full sync hands dlt, in batches like the walk's."""
    observed_at = datetime.now(UTC)
    to_products, to_prices = ArrowRows(PRODUCT_COLUMNS), ArrowRows(PRICE_HISTORY_COLUMNS)
    prepared = PreparedRows(products=[], prices=[])
    products: list[dict[str, Any]] = []
    prices: list[dict[str, Any]] = []

    def flush() -> None:
        product_table, price_table = to_products.table(products), to_prices.table(prices)
        if product_table is None or price_table is None:
            raise RuntimeError("a batch did not fit its arrow columns: the floor would not be dlt's alone")
        prepared.products.append(product_table)
        prepared.prices.append(price_table)
        products.clear()
        prices.clear()

    seen: set[str] = set()
    for catalog, hit in read_hits(base_url, api_key, catalogs, page_size):
        if hit["uuid"] in seen:
            continue  # the current API repeats products across pages; the sync loads each once
        seen.add(hit["uuid"])
        stable = stable_hit(hit)
        row = product_row(stable, catalog=catalog, fingerprint=hit_fingerprint(stable))
        products.append(row)
        prices.append(price_row(row, catalog, observed_at))
        if len(products) >= HITS_PER_BATCH:
            flush()
    if products:
        flush()
    return prepared


def load_prepared(prepared: PreparedRows, *, duckdb_path: str, pipelines_dir: str) -> dict[str, float | int]:
    """One timed ``pipeline.run`` of the prepared rows; its steps' seconds."""

    @dlt.resource(
        name=PRODUCTS,
        primary_key="uuid",
        columns=PRODUCT_COLUMNS,
        write_disposition="append",  # a first load (first_load.py)
    )
    def products() -> Iterator[pa.Table]:
        for table in prepared.products:
            yield with_dlt_columns(table, "uuid")

    @dlt.resource(
        name=PRICE_HISTORY,
        primary_key="observation_id",
        columns=PRICE_HISTORY_COLUMNS,
        write_disposition="append",
    )
    def price_history() -> Iterator[pa.Table]:
        for table in prepared.prices:
            yield with_dlt_columns(table, "observation_id")

    pipeline = dlt.pipeline(
        pipeline_name="octogen_dlt_floor",
        destination=destination_for("duckdb", duckdb_path=duckdb_path),
        dataset_name="octogen",  # the sync's: same names, same SQL
        pipelines_dir=pipelines_dir,
    )
    started = time.perf_counter()
    pipeline.extract([products(), price_history()], loader_file_format="parquet")
    extracted = time.perf_counter()
    pipeline.normalize()
    pipeline.load()
    finished = time.perf_counter()
    return {
        "dlt_extract_seconds": extracted - started,
        "dlt_normalize_load_seconds": finished - extracted,
        "products": prepared.hits,
    }
