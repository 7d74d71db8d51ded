"""Wire records -> table rows: what each of the four tables receives for one API record.

Top-level keys are turned into column names here (``productUrl`` -> ``product_url``) with dlt's own naming
convention, so the incremental cursor and the column hints use one spelling (``updated_at``); nested keys are
left to dlt's normalizer, which flattens objects into ``parent__child`` columns and lists into child tables.
Every field the API sends is kept, known or not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from dlt.common.normalizers.naming.snake_case import NamingConvention

Row = dict[str, Any]

_NAMING = NamingConvention()

# the lookup response fields that are not copied onto a product_details row as they are
_LOOKUP_PRODUCT = "product"
_LOOKUP_CATALOG = "catalogKey"


@lru_cache(maxsize=4096)
def column_name(wire_key: str) -> str:
    """The column dlt gives a top-level wire key (``updatedAt`` -> ``updated_at``)."""
    return _NAMING.normalize_path(wire_key)


def to_columns(record: Mapping[str, Any]) -> Row:
    """``record`` with its top-level keys renamed to column names; nulls left out (a missing key loads as
    null, and dlt warns about columns that only ever held nulls)."""
    return {column_name(key): value for key, value in record.items() if value is not None}


def hit_fingerprint(hit: Mapping[str, Any]) -> int:
    """A signed 64-bit digest of a search hit as the API sent it (any field, any shape).

    Stored as ``products.hit_hash``; a hit whose fingerprint differs from the loaded one is a changed product
    even when its updatedAt did not move (a repricing without a new timestamp, a new field, a shape change).
    """
    canonical = json.dumps(hit, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.blake2b(canonical.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def product_row(hit: Mapping[str, Any], *, catalog: str, fingerprint: int) -> Row:
    """The ``products`` row of a live search hit."""
    row = to_columns(hit)
    row["catalog"] = catalog
    row["hit_hash"] = fingerprint
    row["removed_at"] = None
    return row


def removed_row(row: Row, removed_at: datetime) -> Row:
    """``row`` (a product's last loaded state) marked as no longer listed."""
    row["removed_at"] = removed_at
    return row


def price_row(product: Row, observed_at: datetime) -> Row:
    """The ``price_history`` row of one observed product version (from its ``products`` row).

    ``observation_id`` identifies (uuid, updated_at, prices): rerunning adds nothing, a new updatedAt adds a
    row, and so does a price that changed under an unchanged (or null) updatedAt.
    """
    uuid = product.get("uuid")
    updated_at = product.get("updated_at")
    current_price = product.get("current_price")
    original_price = product.get("original_price")
    identity = json.dumps([uuid, updated_at, current_price, original_price], default=str)
    return {
        "observation_id": hashlib.blake2b(identity.encode(), digest_size=12).hexdigest(),
        "uuid": uuid,
        "catalog": product.get("catalog"),
        "updated_at": updated_at,
        "current_price": current_price,
        "original_price": original_price,
        "observed_at": observed_at,
    }


def detail_row(lookup: Mapping[str, Any], *, uuid: str, catalog: str) -> Row:
    """The ``product_details`` row of a lookup response: the product record plus the lookup's own fields.

    The lookup's fields (``catalogDisplayName``, ``sourceBaseUrl``, a newer ``source``, ...) are kept beside
    the product's; one that collides with a product field gets a ``lookup_`` prefix.
    """
    product = lookup.get(_LOOKUP_PRODUCT)
    row = to_columns(product) if isinstance(product, Mapping) else {}
    for key, value in lookup.items():
        if key in (_LOOKUP_PRODUCT, _LOOKUP_CATALOG):
            continue
        name = column_name(key)
        row[f"lookup_{name}" if name in row else name] = value
    row["uuid"] = uuid
    row["catalog"] = lookup.get(_LOOKUP_CATALOG) or catalog
    return row


def catalog_row(summary: Mapping[str, Any]) -> Row:
    """The ``catalogs`` row of one ``GET /catalogs`` entry."""
    return to_columns(summary)
