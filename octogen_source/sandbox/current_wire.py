"""The sandbox's records as the current API sends them (SDK 0.10.0 models, camelCase JSON).

- a search hit is a MerchantProductListItem: ``brand`` and ``rating`` objects, ``images`` objects with a
  ``primaryImage``, ``catalogKey``/``catalogDisplayName``, ``currency``, ``inStock``, ``colors`` and ``sizes``
  as strings, ``gender``, ``categoryPath`` and the query-relative ``rawScore``/``displayMatchScore``;
- a lookup's ``product`` is a MerchantProductView: the same plus description, ColorView colours, variants,
  identifiers, breadcrumbs/categories objects, reviews, promotions, videos, details, audience, enrichment.

A hit is rendered once and cached on the product WITHOUT its closing brace (:func:`hit_prefix`); each page
splices the per-request scores in (:mod:`octogen_source.sandbox.scores`), so a page stays a join of bytes.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from octogen_source.sandbox.brands import brand_view, slugify
from octogen_source.sandbox.catalog import CatalogInfo, Product
from octogen_source.sandbox.enrichment import enrichment, wire_gender
from octogen_source.sandbox.wire import CURRENCY, SIZES, iso_timestamp

CURRENT_CACHE_KEY = "current"
OCTOGEN_CDN = "https://images.octogen.ai"
_REVIEWERS = ("Maya R.", "Jonas K.", "Priya S.", "Tom H.", "Elena G.", "Sam W.", "Aiko T.", "Lucas M.")
_REVIEW_BODIES = (
    "Fits true to size and the fabric feels great.",
    "Lovely colour, washed well so far.",
    "Runs a little small, I would size up.",
    "Good quality for the price, would buy again.",
    "Comfortable enough to wear all day.",
)
_TAGS = ("new arrival", "bestseller", "sustainable", "limited edition", "online exclusive", "gift idea")
_DAY = 24 * 3600


def sizes_of(product: Product) -> list[str]:
    """The sizes on offer: the same draw the seed-era lookup view makes, so both generations agree."""
    all_sizes = SIZES[product.kind.size_system]
    first = int(random.Random(product.uuid).random() * max(1, len(all_sizes) - 3))
    return list(all_sizes[first : first + 4])


def category_path(product: Product) -> list[str]:
    return ["Apparel & Accessories", product.kind.top_category, product.kind.leaf_category]


def images(product: Product, info: CatalogInfo) -> list[dict[str, Any]]:
    """Image objects: the merchant URL always; Octogen's hosted webp copy for most products."""
    # the uuid's random bits stand in for an rng here: this runs once per product on the first walk
    bits = int(product.uuid[-12:], 16)
    hosted = bits % 100 >= 7
    square = product.kind.size_system == "shoes"
    result = []
    for index in range(product.image_count):
        url = f"{info.cdn_base_url}/{product.uuid[:8]}/{index}.jpg"
        if hosted:
            result.append(
                {
                    "url": url,
                    "cdnUrl": f"{OCTOGEN_CDN}/{info.key}/{product.uuid}/{index}.webp",
                    "width": 1200,
                    "height": 1200 if square else 1500,
                    "sizeBytes": 38_000 + (bits >> (8 + 4 * index)) % 180_000,
                    "mimeType": "image/webp",
                }
            )
        else:
            result.append(
                {
                    "url": url,
                    "cdnUrl": None,
                    "width": None,
                    "height": None,
                    "sizeBytes": None,
                    "mimeType": None,
                }
            )
    return result


def rating(product: Product) -> dict[str, Any] | None:
    if product.rating is None:
        return None
    return {"average": product.rating, "count": product.review_count}


def hit_dict(product: Product, info: CatalogInfo) -> dict[str, Any]:
    """A current search hit without the query-relative ``rawScore`` and ``displayMatchScore``."""
    pictures = images(product, info)
    primary = pictures[0] if pictures else None
    return {
        "uuid": product.uuid,
        "productUrl": product.product_url,
        "title": product.title,
        "brand": brand_view(product.brand) if product.brand else None,
        "currentPrice": product.current_price,
        "originalPrice": product.original_price,
        "currency": CURRENCY,
        "imageUrl": (primary["cdnUrl"] or primary["url"]) if primary else None,
        "primaryImage": primary,
        "images": pictures,
        "rating": rating(product),
        "isActive": product.is_active,
        "inStock": product.in_stock,
        "colors": [color.label for color in product.colors],
        "sizes": sizes_of(product),
        "gender": wire_gender(product.gender),
        "categoryPath": category_path(product),
        "catalogKey": info.key,
        "catalogDisplayName": info.display_name,
        "updatedAt": iso_timestamp(product.updated_at),
    }


def hit_prefix(product: Product, info: CatalogInfo) -> bytes:
    """The cached hit bytes without the closing ``}``: append scores and ``}`` per request."""
    cache = product.hit_cache
    if cache is None:
        cache = product.hit_cache = {}
    cached = cache.get(CURRENT_CACHE_KEY)
    if cached is None:
        cached = cache[CURRENT_CACHE_KEY] = orjson.dumps(hit_dict(product, info))[:-1]
    return cached


def _collection_url(info: CatalogInfo, *names: str) -> str:
    return f"{info.source_base_url}/collections/{'-'.join(slugify(name) for name in names)}"


def _reviews(product: Product, rng: random.Random) -> list[dict[str, Any]]:
    if product.rating is None:
        return []
    count = min(product.review_count, int(rng.random() * 4))
    anchor = product.updated_at or 0
    return [
        {
            "author": _REVIEWERS[int(rng.random() * len(_REVIEWERS))],
            "rating": float(max(1, min(5, round(product.rating + rng.uniform(-1.2, 1.2))))),
            "body": _REVIEW_BODIES[int(rng.random() * len(_REVIEW_BODIES))],
            "publishedAt": iso_timestamp(anchor - int(rng.random() * 90) * _DAY),
        }
        for _ in range(count)
    ]


def product_view(product: Product, info: CatalogInfo) -> dict[str, Any]:
    """The MerchantProductView of an indexed product (lookup's ``product``)."""
    rng = random.Random(f"{product.uuid}:view")
    view = hit_dict(product, info)
    product_id = f"{info.code}-{product.seq:06d}"
    sizes = view["sizes"]
    on_sale = product.current_price < product.original_price
    discount = round(100 * (1 - product.current_price / product.original_price)) if on_sale else 0
    colors = [
        {
            "label": color.label,
            "hexCode": color.hex_code,
            "swatchUrl": f"{info.cdn_base_url}/swatches/{color.hex_code[1:].lower()}.png",
        }
        for color in product.colors
    ]
    tags = sorted(rng.sample(_TAGS, 1 + int(rng.random() * 3))) + (["sale"] if on_sale else [])
    gtin = None if rng.random() < 0.1 else f"{rng.getrandbits(40) % 10**13:013d}"
    variants = [
        {
            "sku": f"{product_id}-{color['hexCode'][1:]}-{size.replace(' ', '')}",
            "color": color,
            "size": size,
            "inStock": product.in_stock and rng.random() > 0.15,
            "imageUrl": view["imageUrl"],
            "productUrl": f"{product.product_url}?variant={4_100_000_000 + product.seq * 97 + index}",
        }
        for index, (color, size) in enumerate((c, s) for c in colors for s in sizes)
    ]
    gender = view["gender"]
    view.update(
        {
            "description": product.description,
            "colors": colors,
            "tags": tags,
            "identifiers": {
                "productId": product_id,
                "gtin": gtin,
                "productGroupId": f"{info.code}G-{(product.seq + 2) // 3:05d}",
            },
            "variants": variants,
            "categories": [
                {"name": name, "url": _collection_url(info, name)}
                for name in (product.kind.top_category, product.kind.leaf_category)
            ],
            "breadcrumbs": [
                {"name": "Home", "url": f"{info.source_base_url}/"},
                {"name": product.gender.title(), "url": _collection_url(info, product.gender)},
                {
                    "name": product.kind.leaf_category,
                    "url": _collection_url(info, product.gender, product.kind.leaf_category),
                },
            ],
            "details": {
                "dimensions": None,
                "fit": [product.attributes["fit"]] if "fit" in product.attributes else [],
                "materials": [product.attributes["material"]],
                "patterns": [product.attributes["pattern"]],
            },
            "audience": {"ageGroups": ["adult"], "genders": [gender]},
            "reviews": _reviews(product, rng),
            "promotions": (
                [
                    {
                        "promotionId": f"{info.code}-PROMO-{discount:02d}",
                        "code": None,
                        "description": f"{discount}% off, applied at checkout",
                    }
                ]
                if on_sale
                else []
            ),
            "videos": (
                [
                    {
                        "name": f"{product.title}: on model",
                        "url": f"{info.cdn_base_url}/{product.uuid[:8]}/clip.mp4",
                        "thumbnailUrl": f"{info.cdn_base_url}/{product.uuid[:8]}/clip.jpg",
                    }
                ]
                if rng.random() < 0.08
                else []
            ),
            "enrichment": enrichment(product, rng) if rng.random() > 0.15 else None,
        }
    )
    return view
