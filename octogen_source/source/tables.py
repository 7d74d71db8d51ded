"""The four tables: their keys, write dispositions and declared columns, each fed from the walk's batches.

The walk (:mod:`catalog_walk`) is a hidden resource; each table is a transformer that takes its share of a
batch. Columns not declared here arrive as the API sends them (dlt infers and evolves them). ``products``
and ``price_history`` (flat rows, one per product) are handed to dlt as arrow tables: written as parquet at
extract, they skip dlt's per-row Python normalizer (see :mod:`arrow_rows`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

import dlt
import pyarrow as pa
from dlt.common.schema.typing import TDeleteInsertStrategyDict, TMergeDispositionDict, TTableSchemaColumns
from dlt.extract import DltResource

from octogen_source.source.arrow_rows import ArrowRows, SharedArrowRows, fits_schema
from octogen_source.source.catalog_walk import CatalogWalk, WalkBatch
from octogen_source.source.destination_state import DestinationState
from octogen_source.source.records import JSON_DETAIL_FIELDS, Row, flat_columns
from octogen_source.source.report import WalkObserver
from octogen_source.source.settings import SourceSettings
from octogen_source.source.stored_rows import ROW_ID
from octogen_source.table_names import CATALOGS, PRICE_HISTORY, PRODUCT_DETAILS, PRODUCTS, SYNC_RUNS

__all__ = ["CATALOGS", "PRICE_HISTORY", "PRODUCTS", "PRODUCT_DETAILS", "SYNC_RUNS"]  # re-exported

LOAD_ID = "_dlt_load_id"


_PRICES: TTableSchemaColumns = {
    "current_price": {"data_type": "double"},
    "original_price": {"data_type": "double"},
}

CATALOG_COLUMNS: TTableSchemaColumns = {
    "catalog": {"data_type": "text", "nullable": False},
    "display_name": {"data_type": "text"},
    "source_base_url": {"data_type": "text"},
    "product_count": {"data_type": "bigint"},
    # GET /catalogs (seed-era API only)
    "last_indexed_at": {"data_type": "timestamp"},
}
_TYPED: TTableSchemaColumns = {
    # the brand name (the current API's brand object is kept whole in brand_json)
    "brand": {"data_type": "text"},
    "brand_json": {"data_type": "text"},
    # rating average (the seed era's rating number) and count
    "rating": {"data_type": "double"},
    "rating_count": {"data_type": "bigint"},
    "primary_image_url": {"data_type": "text"},
    "currency": {"data_type": "text"},
    "in_stock": {"data_type": "bool"},
}
"""Columns both API generations fill with one type each (see :mod:`typed_fields`)."""

PRODUCT_COLUMNS: TTableSchemaColumns = {
    "uuid": {"data_type": "text", "nullable": False},
    "catalog": {"data_type": "text"},
    "product_url": {"data_type": "text"},
    "title": {"data_type": "text"},
    "image_url": {"data_type": "text"},
    # the list as the API sent it (URL strings or image objects), as JSON text
    "images": {"data_type": "text"},
    "primary_image": {"data_type": "text"},
    "is_active": {"data_type": "bool"},
    "updated_at": {"data_type": "timestamp"},
    # declared so the column exists while every product is live (dlt creates no all-null column)
    "removed_at": {"data_type": "timestamp"},
    "hit_hash": {"data_type": "bigint"},
    "catalog_key": {"data_type": "text"},
    "catalog_display_name": {"data_type": "text"},
    "gender": {"data_type": "text"},
    # lists of labels as JSON text
    "colors": {"data_type": "text"},
    "sizes": {"data_type": "text"},
    "category_path": {"data_type": "text"},
    **_TYPED,
    **_PRICES,
}
PRODUCT_DETAIL_COLUMNS: TTableSchemaColumns = {
    "uuid": {"data_type": "text", "nullable": False},
    "catalog": {"data_type": "text"},
    "updated_at": {"data_type": "timestamp"},
    # JSON text (not dlt's json type: BigQuery would then load the table from JSONL instead of parquet)
    **{name: {"data_type": "text"} for name in JSON_DETAIL_FIELDS},
    **_TYPED,
    **_PRICES,
}
PRICE_HISTORY_COLUMNS: TTableSchemaColumns = {
    "observation_id": {"data_type": "text", "nullable": False},
    "uuid": {"data_type": "text"},
    "catalog": {"data_type": "text"},
    "updated_at": {"data_type": "timestamp"},
    "observed_at": {"data_type": "timestamp"},
    **_PRICES,
}


MERGE_ONE_ROW_PER_KEY: TDeleteInsertStrategyDict = {
    "disposition": "merge",
    "strategy": "delete-insert",
    "deduplicated": True,
}
"""``products`` and ``product_details``: the walk emits a uuid once per run, so dlt's de-duplication of the
staged rows (a window over all of them, the largest memory use of a load) has nothing to do."""
INSERT_NEW_KEYS: TMergeDispositionDict = {"disposition": "merge", "strategy": "insert-only"}
"""``price_history``: the first observation of a version is kept (its observed_at); later identical ones add
nothing."""


HIGH_WATER_PATH = ("incremental", "updated_at", "last_value")
"""Where the ``products`` resource state keeps the newest updatedAt any sync has seen: the path of the
``dlt.sources.incremental`` on ``updated_at`` that earlier versions kept it with, so their mark carries on.

The mark is kept here directly, not by a dlt incremental: the walk already chose the rows by comparing each
uuid with its loaded version (a high-water filter would drop late-indexed products and same-second ties),
and a dlt incremental bound to the transformer resolved its configuration and compiled its cursor path for
every batch handed over (≈ 1.5 s of a 150,000-product sync, under the GIL the walk shares)."""


Rows: TypeAlias = list[Row] | pa.Table


@dataclass(frozen=True)
class RunConverters:
    """The arrow converters of ``products`` and ``price_history`` for one run: shared by the segments of a
    sync loaded in segments, and by the pump that converts the batches waiting for a load
    (:meth:`convert_early`)."""

    products: SharedArrowRows = field(default_factory=lambda: SharedArrowRows(PRODUCT_COLUMNS))
    prices: SharedArrowRows = field(default_factory=lambda: SharedArrowRows(PRICE_HISTORY_COLUMNS))

    def convert_early(self, batch: WalkBatch) -> None:
        """Turns the batch's products and prices into arrow tables, where the converters can already."""
        convert_batch(batch, self.products.convert_early, self.prices.convert_early)


def convert_batch(
    batch: WalkBatch,
    products: Callable[[list[Row]], pa.Table | None],
    prices: Callable[[list[Row]], pa.Table | None],
) -> None:
    """Replaces the batch's product and price rows by the arrow table each converter gives (on None they
    stay rows)."""
    if batch.products and batch.product_table is None:
        table = products(batch.products)
        if table is not None:
            batch.product_table, batch.products = table, []
    if batch.prices and batch.price_table is None:
        table = prices(batch.prices)
        if table is not None:
            batch.price_table, batch.prices = table, []


class WalkConverters:
    """The arrow conversion made in the walk's own process (:mod:`walk_process`), where the schema is not at
    hand: declared column types and types inferred from the rows (the extract checks each table against the
    schema, :meth:`_ArrowBatches.converted`). After a batch of a table does not fit, that table's batches
    stay rows for the rest of the run (the extract converts them, or dlt normalizes them)."""

    def __init__(self) -> None:
        self._products = _UntilRefused(PRODUCT_COLUMNS)
        self._prices = _UntilRefused(PRICE_HISTORY_COLUMNS)

    def convert(self, batch: WalkBatch) -> None:
        """Turns the batch's products and prices into arrow tables, in place, where they fit."""
        convert_batch(batch, self._products, self._prices)


class _UntilRefused:
    """One table's :class:`ArrowRows`, given up after the first batch that does not fit."""

    def __init__(self, declared: TTableSchemaColumns) -> None:
        self._converter: ArrowRows | None = ArrowRows(declared)

    def __call__(self, rows: list[Row]) -> pa.Table | None:
        if self._converter is None:
            return None
        table = self._converter.table(rows)
        if table is None:
            self._converter = None
        return table


class _ArrowBatches:
    """Hands one table's rows to dlt as arrow tables, or as flat dict rows when a value does not fit its
    column (dlt then normalizes them, adding a variant column). One per segment (per source built)."""

    def __init__(self, table: str, converter: SharedArrowRows, row_key: str) -> None:
        self._table = table
        self._converter = converter
        self._row_key = row_key
        self._begun = False

    def __call__(self, rows: list[Row]) -> Rows:
        if not self._begun:
            # at the segment's first batch: the schema (columns loaded before) exists only inside the extract
            known = dlt.current.source_schema().tables.get(self._table, {}).get("columns", {})
            self._converter.begin_segment(known)
            self._begun = True
        table = self._converter.table(rows)
        if table is None:
            return [flat_columns(row) for row in rows]
        return with_dlt_columns(table, self._row_key)

    def converted(self, table: pa.Table) -> Rows:
        """A table converted before the extract (while its batch waited, or by the walk's process): as it
        is, unless a column's type differs from the schema's (then its rows, as any batch's)."""
        known = dlt.current.source_schema().tables.get(self._table, {}).get("columns", {})
        if not fits_schema(table, known):
            return self(table.to_pylist())
        return with_dlt_columns(table, self._row_key)


def with_dlt_columns(table: pa.Table, row_key: str) -> pa.Table:
    """``table`` with the ``_dlt_load_id`` and ``_dlt_id`` columns dlt gives dict rows, made here so that dlt
    imports the parquet file as it is (its normalizer would rewrite it to add them: +60% of the load time).

    ``_dlt_id`` is the row's own key (uuid, observation_id): one row per key in these tables, and the same id
    when a resumed run loads a row twice, which is what the resume de-duplication keys on.
    """
    load_id = dlt.current.load_package_state()["load_id"]
    dlt_columns = [
        (LOAD_ID, pa.array([load_id] * table.num_rows, type=pa.string())),
        (ROW_ID, table[row_key]),
    ]
    for name, column in dlt_columns:
        table = table.append_column(pa.field(name, pa.string(), nullable=False), column)
    return table


def walk_resource(settings: SourceSettings, observer: WalkObserver) -> DltResource:
    """The hidden resource every table is fed from (not loaded itself)."""

    @dlt.resource(name="catalog_walk", selected=False)
    async def walk() -> AsyncIterator[WalkBatch]:
        async for batch in CatalogWalk(settings, DestinationState(), observer).batches():
            yield batch

    return walk()


def catalogs_table(walk: DltResource) -> DltResource:
    @dlt.transformer(
        name=CATALOGS,
        data_from=walk,
        primary_key="catalog",
        write_disposition="merge",
        columns=CATALOG_COLUMNS,
    )
    def catalogs(batch: WalkBatch) -> Iterator[list[Row]]:
        if batch.catalogs:
            yield batch.catalogs

    return catalogs


def products_table(walk: DltResource, converters: RunConverters) -> DltResource:
    as_rows = _ArrowBatches(PRODUCTS, converters.products, row_key="uuid")

    @dlt.transformer(
        name=PRODUCTS,
        data_from=walk,
        primary_key="uuid",
        write_disposition="merge",
        columns=PRODUCT_COLUMNS,
    )
    def products(batch: WalkBatch) -> Iterator[Rows]:
        if batch.product_table is not None:
            yield as_rows.converted(batch.product_table)
        if batch.products:
            yield as_rows(batch.products)
        if batch.high_water is not None:
            keep_high_water(dlt.current.resource_state(PRODUCTS), batch.high_water)

    products.apply_hints(write_disposition=MERGE_ONE_ROW_PER_KEY)
    return products


def product_details_table(walk: DltResource) -> DltResource:
    @dlt.transformer(
        name=PRODUCT_DETAILS,
        data_from=walk,
        primary_key="uuid",
        write_disposition="merge",
        columns=PRODUCT_DETAIL_COLUMNS,
    )
    def product_details(batch: WalkBatch) -> Iterator[list[Row]]:
        if batch.details:
            yield batch.details

    product_details.apply_hints(write_disposition=MERGE_ONE_ROW_PER_KEY)  # one lookup per product per run
    return product_details


def price_history_table(walk: DltResource, converters: RunConverters) -> DltResource:
    as_rows = _ArrowBatches(PRICE_HISTORY, converters.prices, row_key="observation_id")

    @dlt.transformer(
        name=PRICE_HISTORY,
        data_from=walk,
        primary_key="observation_id",
        write_disposition="merge",
        columns=PRICE_HISTORY_COLUMNS,
    )
    def price_history(batch: WalkBatch) -> Iterator[Rows]:
        if batch.price_table is not None:
            yield as_rows.converted(batch.price_table)
        if batch.prices:
            yield as_rows(batch.prices)

    price_history.apply_hints(write_disposition=INSERT_NEW_KEYS)
    return price_history


def high_water_mark(resource_state: dict[str, Any]) -> datetime | None:
    """The newest updatedAt any sync has seen, from the ``products`` resource state."""
    section, cursor, key = HIGH_WATER_PATH
    value = resource_state.get(section, {}).get(cursor, {}).get(key)
    return value if isinstance(value, datetime) else None


def keep_high_water(resource_state: dict[str, Any], seen: datetime) -> None:
    """Moves the mark in the ``products`` resource state forward to ``seen`` (never back)."""
    section, cursor, key = HIGH_WATER_PATH
    mark = resource_state.setdefault(section, {}).setdefault(cursor, {})
    previous = mark.get(key)
    if not isinstance(previous, datetime) or seen > previous:
        mark[key] = seen
