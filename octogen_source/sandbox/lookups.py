"""Current-generation lookup answers: indexed (from the store) and on demand (a "scraped" page).

Resolution, per ``resolutionMode``:
- ``auto`` (default): the index first (only catalogs the key can see); otherwise, on a known store host,
  on demand; otherwise 404 ``product_not_found``.
- ``index_only``: the index or 404 ``product_not_found``.
- ``on_demand_only``: on demand for any URL on a known store host (404 elsewhere).

Matching, per ``matchMode``: ``loose`` (default) ignores the scheme, ``www.``, path case, a trailing slash
and query parameters; ``strict`` takes only the exact indexed URL. On-demand answers have ``source:
"on_demand"``, ``product.uuid`` and ``catalogKey`` null, no ``matchedVia``, and a product as a page scrape
gives it (no enrichment, variants or reviews). A removed product's URL is resolved from its last known
data; any other URL on a store host from its path.
"""

from __future__ import annotations

import hashlib
from typing import Any

from octogen_source.sandbox.brands import brand_view
from octogen_source.sandbox.catalog import CatalogInfo, Product
from octogen_source.sandbox.current_wire import product_view
from octogen_source.sandbox.lookup_request import ProductUrl
from octogen_source.sandbox.wire import CURRENCY

_MISSING_ON_DEMAND = ["reviews", "variants", "identifiers", "enrichment", "categories"]


def indexed_answer(
    product: Product, info: CatalogInfo, url: ProductUrl, matched_via: str, request_id: str
) -> dict[str, Any]:
    """ProgrammaticProductLookupResponse for an indexed product."""
    return {
        "source": "indexed",
        "requestId": request_id,
        "requestedUrl": url.requested,
        "normalizedUrl": product.product_url,
        "canonicalUrl": None,
        "resolvedUrl": None,
        "resolution": None,
        "cacheStatus": None,
        "matchedVia": matched_via,
        "warnings": [],
        "catalogKey": info.key,
        "catalogDisplayName": info.display_name,
        "sourceBaseUrl": info.source_base_url,
        "product": product_view(product, info),
    }


def _title_from_path(path: str) -> str:
    slug = path.rstrip("/").rsplit("/", 1)[-1] or "product"
    words = slug.split("-")
    if len(words) > 1 and any(ch.isdigit() for ch in words[-1]):
        words = words[:-1]  # the shop's internal code
    return " ".join(word.capitalize() for word in words if word) or "Product"


def _scraped_from_path(url: ProductUrl, info: CatalogInfo, resolved: str) -> dict[str, Any]:
    digest = int(hashlib.sha256(url.loose.encode()).hexdigest()[:8], 16)
    price = float(19 + digest % 180) + 0.99
    brand = info.brands[digest % len(info.brands)]
    slug = url.path.rstrip("/").rsplit("/", 1)[-1] or "product"
    return {
        "title": _title_from_path(url.path),
        "brand": {"name": brand, "slug": None, "url": None, "description": None},
        "description": None,
        "currentPrice": price,
        "originalPrice": price,
        "image": f"https://{url.host}/cdn/shop/files/{slug}.jpg",
        "inStock": digest % 5 != 0,
        "colors": [],
        "resolved": resolved,
    }


def _scraped_from_product(product: Product, info: CatalogInfo, resolved: str) -> dict[str, Any]:
    brand = brand_view(product.brand) if product.brand else None
    return {
        "title": product.title,
        "brand": {"name": brand["name"], "slug": None, "url": None, "description": None} if brand else None,
        "description": product.description,
        "currentPrice": product.current_price,
        "originalPrice": product.original_price,
        "image": f"{info.cdn_base_url}/{product.uuid[:8]}/0.jpg" if product.image_count else None,
        "inStock": product.in_stock,
        "colors": [{"label": c.label, "hexCode": None, "swatchUrl": None} for c in product.colors],
        "resolved": resolved,
    }


def on_demand_answer(
    url: ProductUrl,
    info: CatalogInfo,
    known: Product | None,
    cache_status: str,
    request_id: str,
) -> dict[str, Any]:
    """ProgrammaticProductLookupResponse resolved on demand from the store page at ``url``."""
    resolved = url.loose if known is None else known.product_url
    scraped = (
        _scraped_from_product(known, info, resolved)
        if known is not None
        else _scraped_from_path(url, info, resolved)
    )
    image = scraped["image"]
    image_object = (
        {"url": image, "cdnUrl": None, "width": None, "height": None, "sizeBytes": None, "mimeType": None}
        if image
        else None
    )
    warnings = ["variant_url_no_match"] if url.query else []
    product: dict[str, Any] = {
        "uuid": None,
        "catalogKey": None,
        "productUrl": resolved,
        "title": scraped["title"],
        "brand": scraped["brand"],
        "description": scraped["description"],
        "currentPrice": scraped["currentPrice"],
        "originalPrice": scraped["originalPrice"],
        "currency": CURRENCY,
        "imageUrl": image,
        "primaryImage": image_object,
        "images": [image_object] if image_object else [],
        "rating": None,
        "isActive": None,
        "inStock": scraped["inStock"],
        "colors": scraped["colors"],
        "sizes": [],
        "tags": [],
        "variants": [],
        "categories": [],
        "breadcrumbs": [],
        "reviews": [],
        "promotions": [],
        "videos": [],
        "identifiers": {},
        "enrichment": None,
        "updatedAt": None,
    }
    return {
        "source": "on_demand",
        "requestId": request_id,
        "requestedUrl": url.requested,
        "normalizedUrl": None,
        "canonicalUrl": resolved,
        "resolvedUrl": resolved,
        "resolution": {
            "completeness": "partial",
            "method": "json_ld",
            "missingFields": list(_MISSING_ON_DEMAND),
            "rendered": False,
        },
        "cacheStatus": cache_status,
        "warnings": warnings,
        "catalogKey": None,
        "catalogDisplayName": None,
        "sourceBaseUrl": f"https://{url.host}",
        "product": product,
    }


def markdown(answer: dict[str, Any]) -> bytes:
    """The ``format: md`` rendering of a lookup answer."""
    product = answer["product"]
    brand = (product.get("brand") or {}).get("name")
    lines = [f"# {product['title']}", ""]
    if brand:
        lines.append(f"**Brand:** {brand}  ")
    if product.get("currentPrice") is not None:
        lines.append(
            f"**Price:** {product['currentPrice']:.2f} {product.get('currency') or ''}".rstrip() + "  "
        )
    lines.append(f"**In stock:** {'yes' if product.get('inStock') else 'no'}")
    if product.get("description"):
        lines += ["", product["description"]]
    lines += ["", f"[View product]({product['productUrl']})", ""]
    return "\n".join(lines).encode()
