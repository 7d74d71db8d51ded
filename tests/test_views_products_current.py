"""products_current on tables shaped the way dlt loads them (real dlt pipelines into real DuckDB files), and
its BigQuery SQL checked with sqlglot's BigQuery dialect (no BigQuery here)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import pytest
import sqlglot
from dlt.common.schema.typing import TTableSchemaColumns
from sqlglot import exp

from octogen_source.views import VIEW_COLUMNS, VIEW_NAME, create_analyst_views, products_current_view_sql

COLUMN_NAMES = [column.name for column in VIEW_COLUMNS]
T1 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
T2 = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
SEEN_1 = datetime(2026, 5, 3, 8, 0, tzinfo=UTC)
SEEN_2 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def hit(
    uuid: str, *, price: float, original: float = 50.0, updated_at: datetime | None = T1
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "catalog": "shop",
        "product_url": f"https://shop.example/{uuid}",
        "title": f"Title {uuid}",
        "brand": "Brand",
        "current_price": price,
        "original_price": original,
        "image_url": f"https://cdn.example/{uuid}.jpg",
        "images": [f"https://cdn.example/{uuid}.jpg"],
        "rating": 4.5,
        "is_active": True,
        "updated_at": updated_at,
        "removed_at": None,
    }


def detail(uuid: str, *, sizes: list[str], colors: list[str], gtin: str | None) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "catalog": "shop",
        "description": f"About {uuid}",
        "in_stock": True,
        "sizes": sizes,
        "colors": [{"label": label, "hex_code": "#000000"} for label in colors],
        "identifiers": {"product_id": f"P-{uuid}", "gtin": gtin, "product_group_id": "G-1"},
    }


def price(uuid: str, amount: float, updated_at: datetime | None, observed_at: datetime) -> dict[str, Any]:
    return {
        "observation_id": f"{uuid}-{amount}-{updated_at}",
        "uuid": uuid,
        "catalog": "shop",
        "updated_at": updated_at,
        "current_price": amount,
        "original_price": 50.0,
        "observed_at": observed_at,
    }


def load(pipeline: dlt.Pipeline, table: str, rows: list[dict[str, Any]], key: str = "uuid") -> None:
    # the source declares removed_at, so the column exists while every product is live
    columns: TTableSchemaColumns = (
        {"removed_at": {"data_type": "timestamp", "nullable": True}} if table == "products" else {}
    )
    pipeline.run(rows, table_name=table, write_disposition="merge", primary_key=key, columns=columns)


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[dlt.Pipeline]:
    yield dlt.pipeline(
        pipeline_name="views_handbuilt",
        destination=dlt.destinations.duckdb(str(tmp_path / "views.duckdb")),
        dataset_name="octogen",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def view_rows(pipeline: dlt.Pipeline) -> dict[str, dict[str, Any]]:
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            f"SELECT * FROM {client.make_qualified_table_name(VIEW_NAME)} ORDER BY uuid"
        )
        with client.execute_query(f"DESCRIBE {client.make_qualified_table_name(VIEW_NAME)}") as cursor:
            described = [row[0] for row in cursor.fetchall()]
    assert described == COLUMN_NAMES
    return {row[1]: dict(zip(COLUMN_NAMES, row, strict=True)) for row in rows or []}


def expected_row(
    uuid: str,
    *,
    price: float,
    previous: float | None,
    sizes: list[str] | None,
    colors: list[str] | None,
    gtin: str | None,
    with_details: bool = True,
) -> dict[str, Any]:
    return {
        "catalog": "shop",
        "uuid": uuid,
        "title": f"Title {uuid}",
        "brand": "Brand",
        "product_url": f"https://shop.example/{uuid}",
        "current_price": price,
        "original_price": 50.0,
        "currency": None,
        "previous_price": previous,
        "rating": 4.5,
        "rating_count": None,
        "image_url": f"https://cdn.example/{uuid}.jpg",
        "updated_at": T2 if previous is not None else T1,
        "is_active": True,
        "description": f"About {uuid}" if with_details else None,
        "in_stock": True if with_details else None,
        "sizes": sizes,
        "colors": colors,
        "gtin": gtin,
        "product_id": f"P-{uuid}" if with_details else None,
        "product_group_id": "G-1" if with_details else None,
    }


def test_view_exists_with_every_column_before_any_details_are_loaded(pipeline: dlt.Pipeline) -> None:
    assert create_analyst_views(pipeline) is None  # nothing loaded: nothing to build a view on

    load(pipeline, "products", [hit("a", price=40.0), hit("b", price=45.0)])
    assert create_analyst_views(pipeline) == '"octogen"."products_current"'

    assert view_rows(pipeline) == {
        uuid: expected_row(
            uuid, price=amount, previous=None, sizes=None, colors=None, gtin=None, with_details=False
        )
        for uuid, amount in (("a", 40.0), ("b", 45.0))
    }


def test_view_joins_details_aggregates_lists_and_takes_the_previous_price(pipeline: dlt.Pipeline) -> None:
    load(pipeline, "products", [hit("a", price=40.0), hit("b", price=45.0), hit("c", price=30.0)])
    load(
        pipeline,
        "product_details",
        [
            detail("a", sizes=["S", "M", "L"], colors=["Red", "Navy"], gtin="0001"),
            detail("b", sizes=[], colors=["Black"], gtin=None),
            detail("c", sizes=["One Size"], colors=[], gtin="0003"),
        ],
    )
    load(
        pipeline,
        "price_history",
        [price(u, p, T1, SEEN_1) for u, p in (("a", 40.0), ("b", 45.0), ("c", 30.0))],
        key="observation_id",
    )
    # second sync: a is repriced (new updatedAt), c is removed, b is untouched
    load(
        pipeline,
        "products",
        [hit("a", price=35.0, updated_at=T2), {**hit("c", price=30.0), "removed_at": SEEN_2}],
    )
    load(pipeline, "price_history", [price("a", 35.0, T2, SEEN_2)], key="observation_id")

    create_analyst_views(pipeline)

    assert view_rows(pipeline) == {
        "a": {
            **expected_row(
                "a", price=35.0, previous=40.0, sizes=["S", "M", "L"], colors=["Red", "Navy"], gtin="0001"
            )
        },
        "b": expected_row("b", price=45.0, previous=None, sizes=None, colors=["Black"], gtin=None),
    }


def test_sizes_and_colors_are_the_hits_lists_else_the_details(pipeline: dlt.Pipeline) -> None:
    """products.sizes / .colors hold the hit's lists as JSON text (labels, or objects with a label); an
    absent, empty or unreadable list reads as none and the details' list (child tables) is taken instead."""
    load(
        pipeline,
        "products",
        [
            {
                **hit("a", price=40.0),
                "sizes": '["S", "M", "L"]',
                "colors": '["Red", "Navy"]',
                "in_stock": False,
            },
            {**hit("b", price=40.0), "sizes": "[]", "colors": "[null]"},
            {
                **hit("c", price=40.0),
                "sizes": "M",  # a drifted scalar, stored as plain text
                "colors": '[{"label": "Blue", "hexCode": "#0000FF"}, null, {"hexCode": "#000000"}, "Ecru"]',
            },
            hit("d", price=40.0),
            {**hit("e", price=40.0), "sizes": '{"eu": "38"}', "colors": "not json ["},
        ],
    )
    load(
        pipeline,
        "product_details",
        [
            detail("a", sizes=["XS"], colors=["Black"], gtin=None),  # older than the hit
            detail("b", sizes=["One Size"], colors=["Green"], gtin=None),
            # colors sent as plain labels: the child table's element column is `value`, not `label`
            {**detail("e", sizes=["40", "41"], colors=[], gtin=None), "colors": ["Teal", "Sand"]},
        ],
    )

    create_analyst_views(pipeline)

    assert {uuid: (row["sizes"], row["colors"]) for uuid, row in view_rows(pipeline).items()} == {
        "a": (["S", "M", "L"], ["Red", "Navy"]),
        "b": (["One Size"], ["Green"]),
        "c": (None, ["Blue", "Ecru"]),
        "d": (None, None),
        "e": (["40", "41"], ["Teal", "Sand"]),
    }
    # in_stock follows the same rule: the hit's, else the lookup's
    assert {uuid: row["in_stock"] for uuid, row in view_rows(pipeline).items()} == {
        "a": False,
        "b": True,
        "c": None,
        "d": None,
        "e": True,
    }


def test_previous_price_follows_observations_when_updated_at_is_null_or_unchanged(
    pipeline: dlt.Pipeline,
) -> None:
    load(pipeline, "products", [hit("n", price=20.0, updated_at=None), hit("u", price=25.0)])
    load(
        pipeline,
        "price_history",
        [
            price("n", 22.0, None, SEEN_1),
            price("n", 20.0, None, SEEN_2),
            price("u", 30.0, T1, SEEN_1),
            price("u", 25.0, T1, SEEN_2),
        ],
        key="observation_id",
    )

    create_analyst_views(pipeline)

    rows = view_rows(pipeline)
    assert {uuid: row["previous_price"] for uuid, row in rows.items()} == {"n": 22.0, "u": 30.0}
    assert {uuid: row["current_price"] for uuid, row in rows.items()} == {"n": 20.0, "u": 25.0}


ALL_TABLES = {
    "products": {
        "uuid",
        "catalog",
        "title",
        "brand",
        "product_url",
        "current_price",
        "original_price",
        "rating",
        "image_url",
        "updated_at",
        "is_active",
        "in_stock",
        "sizes",
        "colors",
        "removed_at",
        "_dlt_id",
    },
    "product_details": {
        "uuid",
        "_dlt_id",
        "description",
        "in_stock",
        "identifiers__gtin",
        "identifiers__product_id",
        "identifiers__product_group_id",
    },
    "product_details__sizes": {"value", "_dlt_parent_id", "_dlt_list_idx", "_dlt_id"},
    "product_details__colors": {"label", "hex_code", "_dlt_parent_id", "_dlt_list_idx", "_dlt_id"},
    "price_history": {"observation_id", "uuid", "updated_at", "current_price", "observed_at"},
}


def test_bigquery_sql_parses_and_reads_only_the_dataset_tables() -> None:
    sql = products_current_view_sql(ALL_TABLES, dialect="bigquery", dataset="octogen", project="acme-data")

    statement = sqlglot.parse_one(sql, read="bigquery")

    assert isinstance(statement, exp.Create) and statement.kind == "VIEW" and statement.args.get("replace")
    view = statement.this
    assert (view.catalog, view.db, view.name) == ("acme-data", "octogen", "products_current")
    query = statement.expression
    assert query.named_selects == COLUMN_NAMES
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    read = {
        (table.catalog, table.db, table.name) for table in query.find_all(exp.Table) if table.name not in ctes
    }
    assert read == {("acme-data", "octogen", name) for name in ALL_TABLES}
    assert sql.startswith("CREATE OR REPLACE VIEW `acme-data`.`octogen`.`products_current` AS ")
    # BigQuery spellings, not DuckDB's
    assert "ARRAY_AGG(`child`.`value` ORDER BY `child`.`_dlt_list_idx`)" in sql
    # the hit's JSON lists first, read with BigQuery's JSON functions, else the details'
    assert "UNNEST(SAFE.JSON_QUERY_ARRAY(`p`.`sizes`, '$')) AS `element` WITH OFFSET AS element_index" in sql
    assert "COALESCE(JSON_VALUE(`element`, '$.label'), JSON_VALUE(`element`, '$'))" in sql
    assert "`sizes_lists`.`sizes`) AS `sizes`" in sql and "`colors_lists`.`colors`) AS `colors`" in sql
    assert "->" not in sql  # no DuckDB JSON operator left
    assert "COALESCE(`p`.`in_stock`, `d`.`in_stock`) AS `in_stock`" in sql
    assert "WHERE `p`.`removed_at` IS NULL" in sql


def test_bigquery_sql_types_the_columns_that_do_not_exist_yet() -> None:
    sql = products_current_view_sql(
        {"products": {"uuid", "catalog"}}, dialect="bigquery", dataset="octogen", project="acme-data"
    )

    query = sqlglot.parse_one(sql, read="bigquery").expression
    casts = {
        select.alias: select.this.to.sql(dialect="bigquery")
        for select in query.selects
        if isinstance(select.this, exp.Cast)
    }
    assert casts == {
        "title": "STRING",
        "brand": "STRING",
        "product_url": "STRING",
        "current_price": "FLOAT64",
        "original_price": "FLOAT64",
        "currency": "STRING",
        "previous_price": "FLOAT64",
        "rating": "FLOAT64",
        "rating_count": "INT64",
        "image_url": "STRING",
        "updated_at": "TIMESTAMP",
        "is_active": "BOOL",
        "description": "STRING",
        "in_stock": "BOOL",
        "sizes": "ARRAY<STRING>",
        "colors": "ARRAY<STRING>",
        "gtin": "STRING",
        "product_id": "STRING",
        "product_group_id": "STRING",
    }
    assert "removed_at" not in sql  # no removal yet: the column does not exist, every row is live
    assert [table.name for table in query.find_all(exp.Table)] == ["products"]
