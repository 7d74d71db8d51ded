"""The names of every table and view the sync writes, defined once (the source, the views, the warehouse
hints, the state read back and the sync history all import them from here)."""

from __future__ import annotations

CATALOGS = "catalogs"
PRODUCTS = "products"
PRODUCT_DETAILS = "product_details"
PRODUCT_DETAIL_SIZES = "product_details__sizes"
PRODUCT_DETAIL_COLORS = "product_details__colors"
PRICE_HISTORY = "price_history"
SYNC_RUNS = "sync_runs"
"""One row per catalog per sync (:mod:`octogen_source.history`); not part of the source."""
PRODUCTS_CURRENT = "products_current"
"""The analysts' view (:mod:`octogen_source.views`)."""

__all__ = [
    "CATALOGS",
    "PRICE_HISTORY",
    "PRODUCTS",
    "PRODUCTS_CURRENT",
    "PRODUCT_DETAILS",
    "PRODUCT_DETAIL_COLORS",
    "PRODUCT_DETAIL_SIZES",
    "SYNC_RUNS",
]
