"""Our typed models read the current API as the vendor's own SDK does (octogen-ai-sdk, a dev-only dependency).

Both clients ask the current-generation sandbox over HTTP; every value both models type must agree: brand,
rating, images, variant colors, the lookup's provenance fields, /me and /domains.
"""

from __future__ import annotations

from typing import Any

import pytest

from octogen_source.client import OctogenClient
from octogen_source.sandbox import Sandbox

vendor = pytest.importorskip("octogen_ai_sdk")


def ours(sandbox: Sandbox) -> OctogenClient:
    return OctogenClient(api_key=sandbox.api_key, base_url=sandbox.base_url)


def theirs(sandbox: Sandbox) -> Any:
    return vendor.OctogenClient(api_key=sandbox.api_key, base_url=sandbox.base_url)


def image(value: Any) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return (value.get("url"), value.get("cdnUrl"), value.get("width"), value.get("height"))
    return (value.url, value.cdn_url, value.width, value.height)


def hit_values(item: Any) -> tuple[Any, ...]:
    brand, rating = item.brand, item.rating
    return (
        item.uuid,
        (brand.name, brand.slug, brand.url, brand.description) if brand else None,
        (rating.average, rating.count) if rating else None,
        image(item.primary_image),
        [image(entry) for entry in item.images or []],
        (item.currency, item.in_stock, item.gender, item.colors, item.sizes, item.category_path),
        (item.catalog_key, item.catalog_display_name),
    )


async def test_search_hits_agree_with_the_vendor_sdk(sandbox: Sandbox) -> None:
    catalog = sandbox.granted_catalogs()[0]
    async with ours(sandbox) as client, theirs(sandbox) as sdk:
        page = await client.search_products(catalogs=[catalog], limit=40)
        vendor_page = await sdk.search_products(catalogs=[catalog], limit=40)

    mine = {item.uuid: hit_values(item) for item in page.items}
    vendor_values = {item.uuid: hit_values(item) for item in vendor_page.items}
    assert mine == vendor_values
    assert any(values[1] is not None and values[2] is not None for values in mine.values())
    assert page.request_id is not None and vendor_page.request_id is not None


async def test_a_lookup_agrees_with_the_vendor_sdk(sandbox: Sandbox) -> None:
    hits = sandbox.truth_search_items(sandbox.granted_catalogs()[1])
    async with ours(sandbox) as client, theirs(sandbox) as sdk:
        for hit in hits[:10]:
            lookup = await client.lookup_product(hit["productUrl"], resolution_mode="index_only")
            vendor_lookup = await sdk.lookup_product(hit["productUrl"], resolution_mode="index_only")

            fields = ("source", "catalog_key", "normalized_url", "canonical_url", "matched_via", "warnings")
            assert [getattr(lookup, name) for name in fields] == [
                getattr(vendor_lookup, name) for name in fields
            ]
            view, vendor_view = lookup.product, vendor_lookup.product
            assert view is not None
            assert hit_values(view)[:5] == hit_values(vendor_view)[:5]
            assert [(c.label, c.hex_code, c.swatch_url) for c in view.colors or []] == [
                (c.label, c.hex_code, c.swatch_url) for c in vendor_view.colors or []
            ]
            variant_colors = [(v.sku, v.color.label if v.color else None) for v in view.variants or []]
            assert variant_colors == [
                (v.sku, v.color.label if v.color else None) for v in vendor_view.variants or []
            ]
            assert all(label is not None for _, label in variant_colors)


async def test_me_and_domain_agree_with_the_vendor_sdk(sandbox: Sandbox) -> None:
    host = sandbox.store_host(sandbox.granted_catalogs()[0])
    async with ours(sandbox) as client, theirs(sandbox) as sdk:
        me, vendor_me = await client.get_me(), await sdk.get_me()
        domain, vendor_domain = await client.get_domain(host), await sdk.get_domain(host)

    assert me.organization is not None and me.key is not None
    assert (me.organization.id, me.organization.type, me.key.prefix) == (
        vendor_me.organization.id,
        vendor_me.organization.type,
        vendor_me.key.prefix,
    )
    assert domain.host == vendor_domain.host
    assert [(c.catalog, c.catalog_display_name, c.product_count) for c in domain.catalogs] == [
        (c.catalog, c.catalog_display_name, c.product_count) for c in vendor_domain.catalogs
    ]
