"""Wire records -> table rows: what each of the four tables receives for one API record.

Top-level keys are turned into column names here (``productUrl`` -> ``product_url``) with dlt's own naming
convention, so the high-water mark and the column hints use one spelling (``updated_at``). Every field the
API sends is kept, known or not.

A ``products`` row is flat: a nested value of a search hit (``images``, or an object a newer deployment adds)
is kept as its JSON text, so the row loads as one arrow record whatever shape the API gives it (a list of URL
strings one day, of image objects the next). ``product_details`` rows keep nesting to dlt's normalizer
(objects flattened into ``parent__child`` columns, lists into child tables): they are few, and fuller.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any

import orjson
from dlt.common.normalizers.naming.snake_case import NamingConvention

from octogen_source.source.json_values import json_text
from octogen_source.source.typed_fields import stable_hit, typed_fields

Row = dict[str, Any]

_NAMING = NamingConvention()

JSON_DETAIL_FIELDS: tuple[str, ...] = ("enrichment", "attributes")
"""Objects of a product record whose keys are data (attribute names such as "Sleeve length type"): stored as
one JSON text each, so the schema does not grow a column or a table per key."""

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
    """A signed 64-bit digest of a search hit as the API sent it (any field, any shape, keys in any order),
    per-query scores left out (:func:`~octogen_source.source.typed_fields.stable_hit`: give it that).

    Stored as ``products.hit_hash``; a hit whose fingerprint differs from the loaded one is a changed product
    even when its updatedAt did not move (a repricing without a new timestamp, a new field, a shape change).
    A seed-era hit has no scores, so its fingerprint is the one earlier versions stored.
    """
    try:
        # decoded JSON has only string keys: the same bytes as with OPT_NON_STR_KEYS, a fifth faster
        canonical = orjson.dumps(hit, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:
        canonical = orjson.dumps(hit, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "big", signed=True)


def flat_columns(record: Mapping[str, Any]) -> Row:
    """:func:`to_columns`, with every nested value (list or object) turned into its JSON text: a
    ``products`` row as dlt receives it when its batch is handed over as dicts."""
    return {
        column_name(key): json_text(value) if isinstance(value, (list, dict)) else value
        for key, value in record.items()
        if value is not None
    }


def product_row(hit: Mapping[str, Any], *, catalog: str, fingerprint: int) -> Row:
    """The ``products`` row of a live search hit, keyed by wire names plus the row's own columns: the hit
    without its per-query scores, with the typed columns laid over it (brand name, rating average and
    count, primary image URL).

    Column names (and JSON text for nested values) are given when the batch is turned into an arrow table
    (:mod:`arrow_rows`), once per column, or by :func:`flat_columns` for a batch handed over as dicts.
    """
    return stable_product_row(stable_hit(hit), catalog=catalog, fingerprint=fingerprint)


def stable_product_row(stable: dict[str, Any], *, catalog: str, fingerprint: int) -> Row:
    """:func:`product_row` of a hit already without its scores (a copy :func:`stable_hit` made, which the
    caller gives up), made in place: the walk fingerprints that copy, then it becomes the row (one copy of
    each hit fewer)."""
    stable.update(typed_fields(stable))
    stable["catalog"] = catalog
    stable["hit_hash"] = fingerprint
    stable["removed_at"] = None
    return stable


def removed_row(row: Row, removed_at: datetime) -> Row:
    """``row`` (a product's last loaded state, read back from the destination) marked as no longer listed.

    A row loaded before nested values were kept as JSON text comes back with its child-table lists attached;
    they become JSON text like a live hit's.
    """
    return {**row, "removed_at": removed_at}


def price_row(hit: Mapping[str, Any], catalog: str, observed_at: datetime) -> Row:
    """The ``price_history`` row of one observed product version (a search hit, wire names).

    ``observation_id`` identifies (uuid, updated_at, prices): rerunning adds nothing, a new updatedAt adds a
    row, and so does a price that changed under an unchanged (or null) updatedAt.
    """
    uuid = hit.get("uuid")
    updated_at = hit.get("updatedAt")
    current_price = _price(hit.get("currentPrice"))
    original_price = _price(hit.get("originalPrice"))
    identity = _identity_text(uuid, _timestamp_text(updated_at), current_price, original_price)
    return {
        "observation_id": hashlib.blake2b(identity.encode(), digest_size=12).hexdigest(),
        "uuid": uuid,
        "catalog": catalog,
        "updated_at": updated_at,
        "current_price": current_price,
        "original_price": original_price,
        "observed_at": observed_at,
    }


def _identity_text(
    uuid: Any, updated_at: Any, current_price: float | None, original_price: float | None
) -> str:
    """``json.dumps([uuid, updated_at, current_price, original_price], default=str)``, the text the ids of
    observations loaded by earlier versions were made from, written out directly for the usual types."""
    if (
        type(uuid) is str
        and (updated_at is None or type(updated_at) is str)
        and _finite_or_none(current_price)
        and _finite_or_none(original_price)
    ):
        stamp = _NULL if updated_at is None else encode_basestring_ascii(updated_at)
        return (
            f"[{encode_basestring_ascii(uuid)}, {stamp},"
            f" {_NULL if current_price is None else repr(current_price)},"
            f" {_NULL if original_price is None else repr(original_price)}]"
        )
    return json.dumps([uuid, updated_at, current_price, original_price], default=str)


def _finite_or_none(price: float | None) -> bool:
    return price is None or math.isfinite(price)


_NULL = "null"


def wire_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp of the wire as an aware datetime (UTC when it names no zone); else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _timestamp_text(value: Any) -> Any:
    """An ISO-8601 timestamp in the one spelling observation ids were first made from (pydantic's: ``Z`` for
    UTC, microseconds only when there are some); anything else as it is."""
    if not isinstance(value, str):
        return value
    if len(value) == 20 and value[19] == "Z" and value[10] == "T":
        # YYYY-MM-DDTHH:MM:SSZ, the usual case: already in that spelling (or, malformed, kept as it is: the
        # spelling pydantic gave a value it could not parse)
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    text = parsed.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _price(value: Any) -> float | None:
    """A price as a number (an integer price and its float are one price); a drifted price (an object, a
    string) has no place in the history's numeric columns: the products row keeps it as sent."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def detail_row(lookup: Mapping[str, Any], *, uuid: str, catalog: str) -> Row:
    """The ``product_details`` row of a lookup response: the product record plus the lookup's own fields.

    The lookup's fields (``catalogDisplayName``, ``sourceBaseUrl``, a newer ``source``, ...) are kept beside
    the product's; one that collides with a product field gets a ``lookup_`` prefix.
    """
    product = lookup.get(_LOOKUP_PRODUCT)
    row: Row = {}
    if isinstance(product, Mapping):
        row = to_columns({**product, **typed_fields(product)})
        for name in JSON_DETAIL_FIELDS:
            if isinstance(row.get(name), dict | list):
                row[name] = json_text(row[name])
    for key, value in lookup.items():
        if key in (_LOOKUP_PRODUCT, _LOOKUP_CATALOG) or value is None:
            continue
        name = column_name(key)
        row[f"lookup_{name}" if name in row else name] = value
    row["uuid"] = uuid
    row["catalog"] = lookup.get(_LOOKUP_CATALOG) or catalog
    # nested nulls left out too: dlt warns about (and creates no) child columns that only ever held nulls
    return {name: _without_nulls(value) for name, value in row.items()}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(inner) for key, inner in value.items() if inner is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value if item is not None]
    return value


def catalog_row(summary: Mapping[str, Any]) -> Row:
    """The ``catalogs`` row of one ``GET /catalogs`` entry."""
    return to_columns(summary)
