"""What the products_current tests share: the view computed in Python from the sandbox's truth, and the
view's rows keyed by uuid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from octogen_source.sandbox import Sandbox
from octogen_source.views import VIEW_COLUMNS
from tests.sync_support import typed_columns

COLUMN_NAMES = [column.name for column in VIEW_COLUMNS]


def label(color: Any) -> str:
    """A color's label: the lookup sends objects ``{label, hexCode, ...}``, a search hit plain labels."""
    return color if isinstance(color, str) else str(color["label"])


def expected_view(
    sandbox: Sandbox, previous_prices: dict[str, float], *, looked_up: bool = True
) -> dict[str, dict[str, Any]]:
    """The view computed in Python from the sandbox's truth (search hits + lookup records).

    ``looked_up``: every product has been looked up at least once (details on in some sync). The sizes and
    colors are the product's as they are now (the truth's lookup record), wherever the sync could read them:
    today's hits carry them, the seed era's only the lookups.
    """
    expected = {}
    for catalog in sandbox.granted_catalogs():
        for hit in sandbox.truth_search_items(catalog):
            truth = sandbox.truth_product_view(hit["uuid"])
            view = truth if looked_up else {}
            lists_synced = looked_up or ("sizes" in hit and "colors" in hit)
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
                "description": view.get("description"),
                "in_stock": hit["inStock"] if hit.get("inStock") is not None else view.get("inStock"),
                "sizes": (list(truth["sizes"]) or None) if lists_synced else None,
                "colors": ([label(color) for color in truth["colors"]] or None) if lists_synced else None,
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
