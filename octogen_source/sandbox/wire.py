"""The sandbox's records as the seed-era API sends them (camelCase JSON), plus shared JSON helpers.

This is the May 2026 shape (``wire shape v1``): ``brand`` and ``rating`` scalars, ``images`` as URL strings.
The current generation's records are in :mod:`octogen_source.sandbox.current_wire`. Search hits are rendered
to bytes once and cached on the product (key ``"v1"``), so a page body is a join of cached bytes.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Literal

from octogen_source.sandbox.catalog import CatalogInfo, Product

WireShape = Literal["v1", "v2"]
# the old names of the two generations (see generations.WIRE_SHAPE_ALIASES)
WIRE_SHAPES: tuple[WireShape, ...] = ("v1", "v2")
SEED_CACHE_KEY = "v1"
CURRENCY = "USD"

SIZES = {
    "letters": ("XS", "S", "M", "L", "XL", "XXL"),
    "waist": ("28", "30", "32", "34", "36", "38"),
    "shoes": ("37", "38", "39", "40", "41", "42", "43", "44"),
    "one": ("One Size",),
}
_TAGS = ("new arrival", "bestseller", "sustainable", "limited edition", "online exclusive", "gift idea")
_SEASONS = ("spring", "summer", "autumn", "winter", "all season")


def iso_timestamp(epoch_seconds: int | None) -> str | None:
    if epoch_seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _image_urls(product: Product, info: CatalogInfo) -> list[str]:
    return [f"{info.cdn_base_url}/{product.uuid[:8]}/{index}.jpg" for index in range(product.image_count)]


def hit_dict(product: Product, info: CatalogInfo) -> dict[str, Any]:
    """A seed-era search hit (MerchantProductListItem of May 2026)."""
    urls = _image_urls(product, info)
    hit: dict[str, Any] = {
        "uuid": product.uuid,
        "productUrl": product.product_url,
        "title": product.title,
        "brand": product.brand,
        "currentPrice": product.current_price,
        "originalPrice": product.original_price,
        "imageUrl": urls[0] if urls else None,
        "images": urls,
        "rating": product.rating,
        "isActive": product.is_active,
        "updatedAt": iso_timestamp(product.updated_at),
    }
    return hit


def hit_bytes(product: Product, info: CatalogInfo) -> bytes:
    cache = product.hit_cache
    if cache is None:
        cache = product.hit_cache = {}
    cached = cache.get(SEED_CACHE_KEY)
    if cached is None:
        cached = cache[SEED_CACHE_KEY] = dumps(hit_dict(product, info))
    return cached


def product_view(product: Product, info: CatalogInfo) -> dict[str, Any]:
    """The seed-era fuller product record (MerchantProductView of May 2026) returned by lookup."""
    details = random.Random(product.uuid)
    product_id = f"{info.code}-{product.seq:06d}"
    all_sizes = SIZES[product.kind.size_system]
    first_size = int(details.random() * max(1, len(all_sizes) - 3))
    sizes = list(all_sizes[first_size : first_size + 4])
    gtin = None if details.random() < 0.1 else f"{details.getrandbits(40) % 10**13:013d}"
    tags = sorted(details.sample(_TAGS, 1 + int(details.random() * 3)))
    on_sale = product.current_price < product.original_price
    if on_sale:
        tags.append("sale")
    variants = [
        {
            "sku": f"{product_id}-{color.hex_code[1:]}-{size.replace(' ', '')}",
            "color": color.label,
            "size": size,
            "price": product.current_price,
            "inStock": product.in_stock and details.random() > 0.15,
        }
        for color in product.colors
        for size in sizes
    ]
    discount = round(100 * (1 - product.current_price / product.original_price)) if on_sale else 0
    has_video = details.random() < 0.05
    enrichment = (
        None
        if details.random() < 0.3
        else {
            "styleTags": sorted({product.attributes.get("fit", "classic"), product.attributes["pattern"]}),
            "season": _SEASONS[int(details.random() * len(_SEASONS))],
        }
    )
    view = hit_dict(product, info)
    view.update(
        {
            "description": product.description,
            "inStock": product.in_stock,
            "gender": product.gender,
            "sizes": sizes,
            "colors": [{"label": color.label, "hexCode": color.hex_code} for color in product.colors],
            "tags": tags,
            "identifiers": {
                "productId": product_id,
                "gtin": gtin,
                "productGroupId": f"{info.code}G-{(product.seq + 2) // 3:05d}",
            },
            "variants": variants,
            "categories": [product.kind.top_category, product.kind.leaf_category],
            "breadcrumbs": [product.gender.title(), product.kind.top_category, product.kind.leaf_category],
            "attributes": dict(product.attributes),
            "reviews": (
                {"averageRating": product.rating, "count": product.review_count}
                if product.rating is not None
                else None
            ),
            "promotions": (
                [{"type": "sale", "label": f"{discount}% off", "discountPercent": discount}]
                if on_sale
                else []
            ),
            "videos": (
                [{"url": f"{info.cdn_base_url}/{product.uuid[:8]}/clip.mp4", "durationSeconds": 15}]
                if has_video
                else []
            ),
            "enrichment": enrichment,
        }
    )
    return view


def lookup_dict(product: Product, info: CatalogInfo) -> dict[str, Any]:
    """The seed-era lookup response (MerchantProductUrlLookupResponse of May 2026)."""
    return {
        "catalogKey": info.key,
        "catalogDisplayName": info.display_name,
        "sourceBaseUrl": info.source_base_url,
        "product": product_view(product, info),
    }


def catalog_summary(info: CatalogInfo, product_count: int, last_indexed_at: int) -> dict[str, Any]:
    """One entry of GET /catalogs (MerchantCatalogSummary)."""
    return {
        "catalog": info.key,
        "displayName": info.display_name,
        "sourceBaseUrl": info.source_base_url,
        "productCount": product_count,
        "lastIndexedAt": iso_timestamp(last_indexed_at),
    }
