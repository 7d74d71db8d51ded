"""The analyst-facing view ``products_current``: one row per live product, no joins needed.

It joins what the sync loads (``products``, ``product_details`` and its child tables, ``price_history``) into
one row per product that is still listed (``removed_at IS NULL``). dlt creates a table or column only once
data for it arrives (no details loaded yet, no product with a GTIN, ...), so the view is generated from the
columns the destination really has: anything missing reads as a typed NULL and the view's columns never
change. One canonical query (DuckDB dialect) is transpiled with sqlglot for the destination (DuckDB or
BigQuery), so both warehouses answer the same question the same way; only the reading of a JSON list is
written out per dialect (:data:`_JSON_LABELS`).

``sizes`` and ``colors`` are the search hit's lists (``products.sizes`` / ``.colors``, JSON text), else the
last lookup's (``product_details__sizes`` / ``__colors``). A ``products`` row is rewritten whenever its hit
changes (any field), while details are fetched only for the hits written in a run with details on; so after
a ``--no-details`` run, or a lookup that gave nothing, the details row holds an older version, and keeps it
until the hit changes again. The details are newer only when the product changed in the moments between a
run's search and its lookup, and the next run's hit catches up. The seed-era API's hits carry no lists: the
details' are the only ones.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
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
        ((_PRODUCT, "in_stock"), (_DETAIL, "in_stock")),
        "in stock (the search hit's; the lookup's when the hit has none)",
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

# list columns: view column -> (child table of product_details, the columns that may hold one element: an
# object's label, or the element itself when the API sent strings)
_LIST_COLUMNS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "sizes": (SIZES, ("value",)),
    "colors": (COLORS, ("label", "value")),
}

_JSON_LABELS_PLACEHOLDER = "octogen_json_labels"
"""A function name the canonical query uses for :data:`_JSON_LABELS`, replaced per dialect."""
_DUCKDB_LABEL = (
    "CASE JSON_TYPE(element) WHEN 'OBJECT' THEN element ->> '$.label' WHEN 'ARRAY' THEN NULL"
    " ELSE element ->> '$' END"
)
_BIGQUERY_LABEL = "COALESCE(JSON_VALUE(element, '$.label'), JSON_VALUE(element, '$'))"
_JSON_LABELS: Mapping[str, str] = {
    # JSON_VALID / SAFE.: a drifted scalar stored as plain text reads as no list instead of failing the view
    "duckdb": (
        f"(SELECT ARRAY_AGG({_DUCKDB_LABEL} ORDER BY element_index)"
        " FROM UNNEST(CAST(CASE WHEN JSON_VALID({column}) THEN {column} -> '$[*]' END AS JSON[]))"
        f" WITH ORDINALITY AS elements(element, element_index) WHERE {_DUCKDB_LABEL} IS NOT NULL)"
    ),
    "bigquery": (
        f"(SELECT ARRAY_AGG({_BIGQUERY_LABEL} ORDER BY element_index)"
        " FROM UNNEST(SAFE.JSON_QUERY_ARRAY({column})) AS element WITH OFFSET AS element_index"
        f" WHERE {_BIGQUERY_LABEL} IS NOT NULL)"
    ),
}
"""The labels of a JSON text list column, in order: a string (or number) element is its own label, an object
element gives its ``label``; nulls, nested lists and unlabelled objects are left out. NULL when that leaves
none (an empty list, no list, text that is not JSON), so COALESCE falls through to the details' list. The
JSON functions have no common spelling sqlglot transpiles (it drops DuckDB's ``$[*]`` paths), hence one
expression per dialect, parsed in that dialect."""


def products_current_query(tables: Mapping[str, Collection[str]], dialect: str = "duckdb") -> exp.Select:
    """The view's SELECT over unqualified table names, to be written in ``dialect`` ("duckdb", "bigquery"):
    canonical (DuckDB) SQL but for the JSON list reading, which is parsed in ``dialect``.

    ``tables`` maps each existing source table to its column names; a table or column that is absent makes
    the corresponding view column a typed NULL. ``products`` must exist.
    """
    if dialect not in _JSON_LABELS:
        raise ValueError(
            f"no {VIEW_NAME!r} SQL for the {dialect!r} dialect (known: {', '.join(_JSON_LABELS)})"
        )
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
    for view_column, (child_table, element_columns) in _LIST_COLUMNS.items():
        lists = []
        if view_column in products_columns:
            lists.append(f"{_JSON_LABELS_PLACEHOLDER}({_PRODUCT}.{view_column})")
        child_columns = set(tables.get(child_table, ()))
        element = _coalesce([f"child.{name}" for name in element_columns if name in child_columns])
        if available[_DETAIL] and element and {"_dlt_parent_id", "_dlt_list_idx"} <= child_columns:
            cte = f"{view_column}_lists"
            ctes.append(
                f"{cte} AS (SELECT parent.uuid,"
                f" ARRAY_AGG({element} ORDER BY child._dlt_list_idx NULLS FIRST) AS {view_column}"
                f" FROM {child_table} AS child"
                f" JOIN {DETAILS} AS parent ON child._dlt_parent_id = parent._dlt_id"
                f" WHERE {element} IS NOT NULL GROUP BY parent.uuid)"
            )
            joins.append(f"LEFT JOIN {cte} ON {cte}.uuid = {_PRODUCT}.uuid")
            lists.append(f"{cte}.{view_column}")
        if lists:
            computed[view_column] = _coalesce(lists) or ""

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
    query = sqlglot.parse_one(sql, read="duckdb").transform(_json_labels_in(dialect))
    assert isinstance(query, exp.Select)
    return query


def _json_labels_in(dialect: str) -> Callable[[exp.Expression], exp.Expression]:
    """Replaces each placeholder call ``octogen_json_labels(column)`` with :data:`_JSON_LABELS` in
    ``dialect``."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == _JSON_LABELS_PLACEHOLDER:
            (column,) = node.expressions
            sql = _JSON_LABELS[dialect].format(column=column.sql(dialect=dialect))
            return sqlglot.parse_one(sql, read=dialect)
        return node

    return replace


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

    query = products_current_query(tables, dialect).transform(qualify)
    view = exp.table_(VIEW_NAME, db=dataset, catalog=project, quoted=True)
    statement = exp.Create(this=view, kind="VIEW", replace=True, expression=query)
    return statement.sql(dialect=dialect, identify=True)


def create_analyst_views(pipeline: dlt.Pipeline) -> str | None:
    """Creates (or replaces) ``products_current`` in the pipeline's dataset; returns its qualified name.

    Reads the source tables' columns from the destination's INFORMATION_SCHEMA, so it adapts to what has been
    loaded so far (by this pipeline or another one sharing the dataset). Returns None, creating nothing, while
    ``products`` does not exist yet (nothing loaded).
    """
    # one client reads the columns and creates the view: each client opened costs dlt ≈ 30 ms
    with pipeline.destination_client() as job_client:
        storage_tables = dict(job_client.get_storage_tables(SOURCE_TABLES))  # type: ignore[attr-defined]
        tables = {name: set(columns) for name, columns in storage_tables.items() if columns}
        if PRODUCTS not in tables:
            return None
        client = job_client.sql_client  # type: ignore[attr-defined]
        *catalog, dataset, view_name = client.make_qualified_table_name_path(VIEW_NAME, quote=False)
        dialect = client.capabilities.sqlglot_dialect or "duckdb"
        sql = products_current_view_sql(
            tables, dialect=dialect, dataset=dataset, project=catalog[0] if catalog else None
        )
        client.execute_sql(sql)
        return client.make_qualified_table_name(view_name)
