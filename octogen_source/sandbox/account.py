"""Bodies of ``GET /v1/me`` (MeResponse) and ``GET /v1/domains/{host}`` (DomainCoverageResponse)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from octogen_source.sandbox.catalog import CatalogInfo, Product
from octogen_source.sandbox.enrichment import stable_uuid, wire_gender
from octogen_source.sandbox.wire import iso_timestamp

ORGANIZATION_NAME = "Northbeam Commerce Labs"
ORGANIZATION_SLUG = "northbeam-commerce-labs"
API_KEY_QUOTA = 25
TOP_VALUES = 10
PRICE_BUCKETS = 8


def key_id(api_key: str) -> str:
    """The middle segment of ``octo_live_<32 hex>_<secret>``."""
    return api_key.split("_")[2]


def key_prefix(api_key: str) -> str:
    """The non-secret display prefix, e.g. ``octo_live_3f9c1a2b4d``."""
    return f"octo_live_{key_id(api_key)[:10]}"


def me_body(
    api_key: str, seed: int, keys_in_org: int, granted: int, rate_limit: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "principal": "api_key",
        "organization": {
            "id": stable_uuid("organization", str(seed)),
            "name": ORGANIZATION_NAME,
            "slug": ORGANIZATION_SLUG,
            "type": "catalog_partner",
        },
        "key": {"id": key_id(api_key), "prefix": key_prefix(api_key)},
        "quotas": {
            "apiKeys": {"used": keys_in_org, "limit": API_KEY_QUOTA},
            "catalogs": {"granted": granted},
        },
        "rateLimit": rate_limit,
    }


def normalize_host(url_or_host: str) -> str:
    """Lowercased, without scheme, path, port and a leading ``www.`` (as the API normalizes hosts)."""
    host = url_or_host.strip().lower()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    host = host.split(":", 1)[0].rstrip(".")
    return host[len("www.") :] if host.startswith("www.") else host


def store_host(info: CatalogInfo) -> str:
    """The store host a catalog is crawled from (its sourceBaseUrl's host)."""
    return normalize_host(info.source_base_url)


FieldReader = Callable[[Product], Iterable[str]]
_FIELDS: tuple[tuple[str, str, str, FieldReader], ...] = (
    ("brand_name", "Brand", "brands", lambda p: [p.brand] if p.brand else []),
    ("gender", "Gender", "product", lambda p: [wire_gender(p.gender)]),
    ("color", "Color", "product", lambda p: [c.label for c in p.colors]),
    ("category_path.depth_1", "Category", "product", lambda p: [p.kind.top_category]),
    ("category_path.depth_2", "Subcategory", "product", lambda p: [p.kind.leaf_category]),
    ("material", "Material", "enrichment", lambda p: [p.attributes["material"]]),
    ("pattern", "Pattern", "enrichment", lambda p: [p.attributes["pattern"]]),
    ("fit", "Fit", "enrichment", lambda p: [p.attributes["fit"]] if "fit" in p.attributes else []),
)


def _field(name: str, label: str, source: str, read: FieldReader, products: list[Product]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    populated = 0
    for product in products:
        values = list(read(product))
        if values:
            populated += 1
            counts.update(values)
    top = counts.most_common(TOP_VALUES)
    return {
        "name": name,
        "displayName": label,
        "source": source,
        "coverage": round(populated / len(products), 4) if products else 0.0,
        "populated": populated,
        "distinct": len(counts),
        "topValues": [{"value": value.lower(), "label": value, "count": count} for value, count in top],
        "truncated": len(counts) > TOP_VALUES,
    }


def _price(products: list[Product]) -> dict[str, Any] | None:
    prices = sorted(p.current_price for p in products if p.current_price > 0)
    if not prices:
        return None
    low = math.floor(prices[0] / 10) * 10
    high = max(math.ceil(prices[-1] / 10) * 10, low + 10)
    width = (high - low) / PRICE_BUCKETS
    counts = [0] * PRICE_BUCKETS
    for price in prices:
        counts[min(int((price - low) / width), PRICE_BUCKETS - 1)] += 1
    return {
        "buckets": [
            {"min": round(low + i * width, 2), "max": round(low + (i + 1) * width, 2), "count": count}
            for i, count in enumerate(counts)
        ],
        "below": 0,
        "above": 0,
        "median": round(statistics.median(prices), 2),
        "populated": len(prices),
    }


def catalog_coverage(info: CatalogInfo, products: list[Product], computed_at: int) -> dict[str, Any]:
    """One DomainCatalogCoverage entry."""
    return {
        "catalog": info.key,
        "catalogDisplayName": info.display_name,
        "productCount": len(products),
        "computedAt": iso_timestamp(computed_at),
        "fields": [_field(*spec, products) for spec in _FIELDS],
        "price": _price(products),
    }
