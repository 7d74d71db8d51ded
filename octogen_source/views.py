"""The analyst-facing view ``products_current``: one row per live product, no joins needed.

It joins what the sync loads (``products``, ``product_details`` and its child tables, ``price_history``) into
one row per product that is still listed (``removed_at IS NULL``). dlt creates a table or column only once
data for it arrives (no details loaded yet, no product with a GTIN, ...), so the view is generated from the
columns the destination really has: anything missing reads as a typed NULL and the view's columns never
change. One canonical query (DuckDB dialect) is transpiled with sqlglot for the destination (DuckDB or
BigQuery), so both warehouses answer the same question the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import dlt
import sqlglot
from sqlglot import exp

from octogen_source.table_names import (
    PRICE_HISTORY,
    PRODUCT_DETAIL_COLORS,
    PRODUCT_DETAIL_SIZES,
    PRODUCT_DETAILS,
    PRODUCTS,
    PRODUCTS_CURRENT,
)

VIEW_NAME = PRODUCTS_CURRENT
DETAILS = PRODUCT_DETAILS
SIZES = PRODUCT_DETAIL_SIZES
COLORS = PRODUCT_DETAIL_COLORS
SOURCE_TABLES: tuple[str, ...] = (PRODUCTS, DETAILS, SIZES, COLORS, PRICE_HISTORY)

# the aliases the canonical query gives the joined relations
_PRODUCT = "p"
_DETAIL = "d"


@dataclass(frozen=True)
class ViewColumn:
    """One column of the view and where it is read from (the existing sources, COALESCE'd in order)."""

    name: str
    sql_type: str
    """DuckDB type, used for the typed NULL when no source column exists yet."""
    sources: tuple[tuple[str, str], ...]
    """(relation alias, column) pairs: ``p`` = products, ``d`` = product_details."""
    description: str


VIEW_COLUMNS: tuple[ViewColumn, ...] = (
    ViewColumn("catalog", "VARCHAR", ((_PRODUCT, "catalog"),), "catalog key the product is listed in"),
    ViewColumn("uuid", "VARCHAR", ((_PRODUCT, "uuid"),), "Octogen's product id (unique in the view)"),
    ViewColumn("title", "VARCHAR", ((_PRODUCT, "title"),), "product title"),
    ViewColumn("brand", "VARCHAR", ((_PRODUCT, "brand"),), "brand name"),
    ViewColumn("product_url", "VARCHAR", ((_PRODUCT, "product_url"),), "the product page at the merchant"),
    ViewColumn("current_price", "DOUBLE", ((_PRODUCT, "current_price"),), "price now"),
    ViewColumn("original_price", "DOUBLE", ((_PRODUCT, "original_price"),), "list price (before discount)"),
    ViewColumn(
        "currency", "VARCHAR", ((_PRODUCT, "currency"), (_DETAIL, "currency")), "ISO 4217 code of the prices"
    ),
    ViewColumn(
        "previous_price",
        "DOUBLE",
        (),  # computed from price_history, see _previous_price_relation
        "current_price of the latest observation before the current one (NULL when none)",
    ),
    ViewColumn("rating", "DOUBLE", ((_PRODUCT, "rating"),), "average rating"),
    ViewColumn("rating_count", "BIGINT", ((_PRODUCT, "rating_count"),), "number of ratings"),
    ViewColumn(
        "image_url",
        "VARCHAR",
        ((_PRODUCT, "primary_image_url"), (_PRODUCT, "image_url")),
        "main image (the hosted copy when there is one)",
    ),
    ViewColumn("updated_at", "TIMESTAMPTZ", ((_PRODUCT, "updated_at"),), "when Octogen last saw it change"),
    ViewColumn("is_active", "BOOLEAN", ((_PRODUCT, "is_active"),), "the merchant lists it as active"),
    ViewColumn("description", "VARCHAR", ((_DETAIL, "description"),), "long description (lookup)"),
    ViewColumn(
        "in_stock",
        "BOOLEAN",
        ((_DETAIL, "in_stock"), (_PRODUCT, "in_stock")),
        "in stock (lookup; newer search hits carry it too)",
    ),
    ViewColumn("sizes", "VARCHAR[]", (), "sizes offered, in the merchant's order (array of strings)"),
    ViewColumn("colors", "VARCHAR[]", (), "color labels, in the merchant's order (array of strings)"),
    ViewColumn("gtin", "VARCHAR", ((_DETAIL, "identifiers__gtin"),), "GTIN / EAN barcode"),
    ViewColumn("product_id", "VARCHAR", ((_DETAIL, "identifiers__product_id"),), "merchant's product id"),
    ViewColumn(
        "product_group_id",
        "VARCHAR",
        ((_DETAIL, "identifiers__product_group_id"),),
        "merchant's id of the product group (variants of one product share it)",
    ),
)

# list columns: view column -> (child table of product_details, the column holding one list element)
_LIST_COLUMNS: Mapping[str, tuple[str, str]] = {"sizes": (SIZES, "value"), "colors": (COLORS, "label")}


def products_current_query(tables: Mapping[str, Collection[str]]) -> exp.Select:
    """The view's SELECT over unqualified table names, in the canonical (DuckDB) dialect.

    ``tables`` maps each existing source table to its column names; a table or column that is absent makes
    the corresponding view column a typed NULL. ``products`` must exist.
    """
    if PRODUCTS not in tables:
        raise ValueError(f"table {PRODUCTS!r} does not exist yet: nothing to build {VIEW_NAME!r} from")
    products_columns = set(tables[PRODUCTS])
    details_columns = set(tables.get(DETAILS, ()))
    available = {_PRODUCT: products_columns, _DETAIL: details_columns}

    ctes: list[str] = []
    joins: list[str] = []
    if DETAILS in tables and "uuid" in details_columns:
        joins.append(f"LEFT JOIN {DETAILS} AS {_DETAIL} ON {_DETAIL}.uuid = {_PRODUCT}.uuid")
    else:
        available[_DETAIL] = set()

    computed: dict[str, str] = {}
    for view_column, (child_table, element) in _LIST_COLUMNS.items():
        child_columns = set(tables.get(child_table, ()))
        if available[_DETAIL] and {element, "_dlt_parent_id", "_dlt_list_idx"} <= child_columns:
            cte = f"{view_column}_lists"
            ctes.append(
                f"{cte} AS (SELECT parent.uuid,"
                f" ARRAY_AGG(child.{element} ORDER BY child._dlt_list_idx NULLS FIRST) AS {view_column}"
                f" FROM {child_table} AS child"
                f" JOIN {DETAILS} AS parent ON child._dlt_parent_id = parent._dlt_id"
                f" WHERE child.{element} IS NOT NULL GROUP BY parent.uuid)"
            )
            joins.append(f"LEFT JOIN {cte} ON {cte}.uuid = {_PRODUCT}.uuid")
            computed[view_column] = f"{cte}.{view_column}"

    previous = _previous_price_relation(tables)
    if previous is not None:
        ctes.append(previous)
        joins.append(f"LEFT JOIN previous_prices ON previous_prices.uuid = {_PRODUCT}.uuid")
        computed["previous_price"] = "previous_prices.previous_price"

    select_items = []
    for column in VIEW_COLUMNS:
        value = computed.get(column.name) or _coalesce(
            [f"{alias}.{name}" for alias, name in column.sources if name in available[alias]]
        )
        select_items.append(f"{value or f'CAST(NULL AS {column.sql_type})'} AS {column.name}")

    where = f"{_PRODUCT}.removed_at IS NULL" if "removed_at" in products_columns else "TRUE"
    sql = (
        (f"WITH {', '.join(ctes)} " if ctes else "")
        + f"SELECT {', '.join(select_items)} FROM {PRODUCTS} AS {_PRODUCT} "
        + " ".join(joins)
        + f" WHERE {where}"
    )
    query = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(query, exp.Select)
    return query


def _previous_price_relation(tables: Mapping[str, Collection[str]]) -> str | None:
    """CTE ``previous_prices(uuid, previous_price)``: the second most recent observation of each product.

    ``price_history`` holds one row per observed version (uuid, updated_at, prices) with the time the sync
    observed it; the most recent observation is the product's current version, so the one before it carries
    the previous price. Ordered by ``observed_at`` (not ``updated_at``, which may be null or unchanged when
    only the price moved). None while price_history (or a column it needs) does not exist.
    """
    needed = {"uuid", "current_price", "observed_at", "updated_at"}
    if not needed <= set(tables.get(PRICE_HISTORY, ())):
        return None
    return (
        "previous_prices AS (SELECT uuid, previous_price FROM ("
        "SELECT uuid, current_price AS previous_price, ROW_NUMBER() OVER (PARTITION BY uuid"
        " ORDER BY observed_at DESC, updated_at DESC NULLS LAST) AS recency"
        f" FROM {PRICE_HISTORY}) AS ranked WHERE recency = 2)"
    )


def _coalesce(expressions: list[str]) -> str | None:
    if not expressions:
        return None
    return expressions[0] if len(expressions) == 1 else f"COALESCE({', '.join(expressions)})"


def products_current_view_sql(
    tables: Mapping[str, Collection[str]], *, dialect: str, dataset: str, project: str | None = None
) -> str:
    """``CREATE OR REPLACE VIEW <project.>dataset.products_current AS ...`` in ``dialect`` ("duckdb",
    "bigquery"), every source table qualified with the same dataset (and project, for BigQuery)."""

    def qualify(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in SOURCE_TABLES:
            qualified = exp.table_(node.name, db=dataset, catalog=project, quoted=True)
            if node.alias:
                qualified.set("alias", node.args["alias"])
            return qualified
        return node

    query = products_current_query(tables).transform(qualify)
    view = exp.table_(VIEW_NAME, db=dataset, catalog=project, quoted=True)
    statement = exp.Create(this=view, kind="VIEW", replace=True, expression=query)
    return statement.sql(dialect=dialect, identify=True)


def create_analyst_views(pipeline: dlt.Pipeline) -> str | None:
    """Creates (or replaces) ``products_current`` in the pipeline's dataset; returns its qualified name.

    Reads the source tables' columns from the destination's INFORMATION_SCHEMA, so it adapts to what has been
    loaded so far (by this pipeline or another one sharing the dataset). Returns None, creating nothing, while
    ``products`` does not exist yet (nothing loaded).
    """
    with pipeline.destination_client() as job_client:
        storage_tables = dict(job_client.get_storage_tables(SOURCE_TABLES))  # type: ignore[attr-defined]
    tables = {name: set(columns) for name, columns in storage_tables.items() if columns}
    if PRODUCTS not in tables:
        return None
    with pipeline.sql_client() as client:
        *catalog, dataset, view_name = client.make_qualified_table_name_path(VIEW_NAME, quote=False)
        dialect = client.capabilities.sqlglot_dialect or "duckdb"
        sql = products_current_view_sql(
            tables, dialect=dialect, dataset=dataset, project=catalog[0] if catalog else None
        )
        client.execute_sql(sql)
        return client.make_qualified_table_name(view_name)
