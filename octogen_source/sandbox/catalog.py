"""Deterministic synthetic catalogs: apparel shops with brands, prices, sales, colors, sizes and attributes.

Generation must stay cheap (3 x 50,000 products in a few seconds), so a product holds only what search needs
(title, brand, description, facet values, prices, updatedAt); the fuller lookup view (sizes, variants,
identifiers, tags, ...) is derived lazily from a per-product seed in :mod:`octogen_source.sandbox.wire`.
Facet values are stored lowercased once, so filtering never allocates.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import NamedTuple

# Generated updatedAt values fall in the 120 days before this instant (2026-05-19T18:04:10Z).
UPDATED_AT_ANCHOR = 1_779_213_850
UPDATED_AT_SPAN_SECONDS = 120 * 24 * 3600
# Share of generated products that copy the previous product's updatedAt: natural ties.
TIE_SHARE = 0.04


class Color(NamedTuple):
    label: str
    hex_code: str
    lowered: str


class ProductKind(NamedTuple):
    top_category: str
    leaf_category: str
    noun: str
    genders: tuple[str, ...]
    size_system: str
    price_range: tuple[int, int]
    fits: bool

    @property
    def categories_lowered(self) -> tuple[str, str]:
        return _CATEGORIES_LOWERED[self.leaf_category]


class ProductTexts(NamedTuple):
    """The text fields of a product; products with the same words share one instance (memory, speed)."""

    title: str
    brand: str | None
    description: str
    slug: str
    search_text: str  # lowercase title, brand and description: what ``q`` matches
    brand_lowered: str | None


@dataclass(frozen=True, slots=True)
class CatalogInfo:
    key: str
    display_name: str
    source_base_url: str
    code: str
    brands: tuple[str, ...]
    cdn_base_url: str


@dataclass(slots=True, eq=False)
class Product:
    """One indexed product; mutable so the sandbox's mutations can reprice and re-date it."""

    uuid: str
    catalog_key: str
    seq: int
    product_url: str
    texts: ProductTexts
    gender: str
    kind: ProductKind
    colors: tuple[Color, ...]
    attributes: dict[str, str]
    current_price: float
    original_price: float
    rating: float | None
    review_count: int
    is_active: bool
    in_stock: bool
    updated_at: int | None
    image_count: int
    # rendered search-hit bytes per wire shape; dropped (None) whenever the product changes
    hit_cache: dict[str, bytes] | None = None

    @property
    def title(self) -> str:
        return self.texts.title

    @property
    def brand(self) -> str | None:
        return self.texts.brand

    @property
    def description(self) -> str:
        return self.texts.description


CATALOG_TEMPLATES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("northwind_apparel", "Northwind Apparel", "NWA", ("Northwind", "Northwind Basics", "Fjord & Field")),
    ("harbor_outfitters", "Harbor Outfitters", "HBO", ("Harbor & Pine", "Saltmarsh", "Tidewater Co.")),
    ("alpine_threads", "Alpine Threads", "ALT", ("Alpine Threads", "Summit Line", "Glacier Knit")),
    ("meridian_footwear", "Meridian Footwear", "MRF", ("Meridian", "Stride Lab", "Cobble & Co.")),
    ("lumen_basics", "Lumen Basics", "LUB", ("Lumen", "Lumen Studio", "Daybreak")),
    ("cobalt_active", "Cobalt Active", "CBA", ("Cobalt", "Cobalt Trail", "Pace Theory")),
)

KINDS: tuple[ProductKind, ...] = (
    ProductKind("Dresses", "Maxi Dresses", "Maxi Dress", ("women",), "letters", (59, 189), True),
    ProductKind("Dresses", "Wrap Dresses", "Wrap Dress", ("women",), "letters", (49, 159), True),
    ProductKind("Tops", "T-Shirts", "T-Shirt", ("women", "men", "unisex"), "letters", (15, 45), True),
    ProductKind("Tops", "Blouses", "Blouse", ("women",), "letters", (29, 99), True),
    ProductKind("Knitwear", "Sweaters", "Sweater", ("women", "men", "unisex"), "letters", (39, 179), True),
    ProductKind("Bottoms", "Jeans", "Jeans", ("women", "men"), "waist", (49, 149), True),
    ProductKind("Bottoms", "Chinos", "Chinos", ("men",), "waist", (39, 109), True),
    ProductKind(
        "Outerwear", "Rain Jackets", "Rain Jacket", ("women", "men", "unisex"), "letters", (79, 249), True
    ),
    ProductKind("Outerwear", "Puffer Jackets", "Puffer Jacket", ("women", "men"), "letters", (99, 329), True),
    ProductKind("Shoes", "Sneakers", "Sneakers", ("women", "men", "unisex"), "shoes", (59, 169), False),
    ProductKind("Shoes", "Ankle Boots", "Ankle Boots", ("women", "men"), "shoes", (89, 259), False),
    ProductKind("Accessories", "Tote Bags", "Tote Bag", ("women", "unisex"), "one", (25, 129), False),
)
_CATEGORIES_LOWERED = {
    kind.leaf_category: (kind.top_category.lower(), kind.leaf_category.lower()) for kind in KINDS
}

COLORS: tuple[Color, ...] = tuple(
    Color(label, hex_code, label.lower())
    for label, hex_code in (
        ("Black", "#111111"),
        ("White", "#FFFFFF"),
        ("Navy Blue", "#1F2A44"),
        ("Olive Green", "#556B2F"),
        ("Off White", "#F5F3EA"),
        ("Dusty Rose", "#C9A1A0"),
        ("Charcoal Grey", "#36454F"),
        ("Sand", "#C2B280"),
        ("Burgundy", "#800020"),
        ("Sky Blue", "#87CEEB"),
        ("Forest Green", "#228B22"),
        ("Rust", "#B7410E"),
    )
)

ADJECTIVES = ("Classic", "Relaxed", "Everyday", "Tailored", "Lightweight", "Heritage", "Coastal", "Essential")
MATERIALS = (
    "organic cotton",
    "linen",
    "linen blend",
    "merino wool",
    "recycled polyester",
    "denim",
    "leather",
)
PATTERNS = ("solid", "striped", "floral print", "checked")
OCCASIONS = ("everyday", "work", "going out", "outdoor")
FITS = ("slim", "regular", "relaxed", "oversized")
WIDTHS = ("standard", "wide fit")
SENTENCES = (
    "Designed for all-day comfort.",
    "Finished with a soft brushed hand feel.",
    "Cut to layer easily through the seasons.",
    "Made in small batches with traceable materials.",
    "A wardrobe staple that pairs with everything.",
    "Built to last, wash after wash.",
)
ATTRIBUTE_KEYS: frozenset[str] = frozenset({"fit", "material", "pattern", "occasion", "width"})

_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_attribute_sets: dict[tuple[str, ...], dict[str, str]] = {}
_texts_cache: dict[tuple[str, str, str, str | None, str], ProductTexts] = {}


def catalog_infos(count: int) -> list[CatalogInfo]:
    """The first ``count`` catalogs; beyond the named templates, keys get a numeric suffix."""
    infos = []
    for index in range(count):
        key, name, code, brands = CATALOG_TEMPLATES[index % len(CATALOG_TEMPLATES)]
        round_no = index // len(CATALOG_TEMPLATES)
        if round_no:
            key, name, code = f"{key}_{round_no + 1}", f"{name} {round_no + 1}", f"{code}{round_no + 1}"
        domain = key.replace("_", "-")
        infos.append(
            CatalogInfo(
                key=key,
                display_name=name,
                source_base_url=f"https://shop.{domain}.example",
                code=code,
                brands=brands,
                cdn_base_url=f"https://cdn.{domain}.example/images",
            )
        )
    return infos


def format_uuid(bits: int) -> str:
    """A version-4 UUID string from 128 random bits."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[bits & 3]}{h[17:20]}-{h[20:]}"


def _shared_attributes(values: tuple[str, ...], kind: ProductKind) -> dict[str, str]:
    # Attribute dicts are never mutated, so identical combinations share one dict (memory at 150k products).
    cached = _attribute_sets.get(values)
    if cached is None:
        material, pattern, occasion, fit_or_width = values
        cached = {"material": material, "pattern": pattern, "occasion": occasion}
        cached["fit" if kind.fits else "width"] = fit_or_width
        _attribute_sets[values] = cached
    return cached


def _shared_texts(
    adjective: str, material: str, kind: ProductKind, brand: str | None, sentence: str
) -> ProductTexts:
    key = (adjective, material, kind.noun, brand, sentence)
    texts = _texts_cache.get(key)
    if texts is None:
        title = f"{adjective} {material.title()} {kind.noun}"
        maker = f" from {brand}" if brand else ""
        description = f"{adjective} {kind.noun.lower()} in {material}{maker}. {sentence}"
        texts = ProductTexts(
            title=title,
            brand=brand,
            description=description,
            slug=_SLUG_JUNK.sub("-", title.lower()).strip("-"),
            search_text=f"{title}\n{brand or ''}\n{description}".lower(),
            brand_lowered=brand.lower() if brand else None,
        )
        _texts_cache[key] = texts
    return texts


def make_product(info: CatalogInfo, rng: random.Random, seq: int, updated_at: int | None) -> Product:
    """One product of ``info``; every field comes from ``rng``, so a seeded rng gives the same product."""
    r = rng.random
    uuid = format_uuid(rng.getrandbits(128))
    kind = KINDS[int(r() * len(KINDS))]
    gender = kind.genders[int(r() * len(kind.genders))]
    brand: str | None = info.brands[int(r() * len(info.brands))] if r() > 0.01 else None
    adjective = ADJECTIVES[int(r() * len(ADJECTIVES))]
    material = MATERIALS[int(r() * len(MATERIALS))]
    pattern = PATTERNS[int(r() * len(PATTERNS))]
    occasion = OCCASIONS[int(r() * len(OCCASIONS))]
    fit_or_width = FITS[int(r() * len(FITS))] if kind.fits else WIDTHS[int(r() * len(WIDTHS))]
    first_color = int(r() * len(COLORS))
    color_count = 1 + int(r() * 3)
    colors = tuple(COLORS[(first_color + 3 * i) % len(COLORS)] for i in range(color_count))

    texts = _shared_texts(adjective, material, kind, brand, SENTENCES[int(r() * len(SENTENCES))])

    low, high = kind.price_range
    list_price = float(low + int(r() * (high - low))) + 0.99
    if r() < 0.3:
        discount = (10, 20, 25, 30, 40, 50)[int(r() * 6)]
        current_price = round(list_price * (100 - discount) / 100, 2)
    else:
        current_price = list_price
    has_rating = r() > 0.1
    rating = round(3.0 + r() * 2.0, 1) if has_rating else None
    review_count = 1 + int(r() * 400) if has_rating else 0
    is_active = r() > 0.05
    in_stock = is_active and r() > 0.08
    image_count = 0 if r() < 0.02 else 1 + int(r() * 5)

    return Product(
        uuid=uuid,
        catalog_key=info.key,
        seq=seq,
        product_url=f"{info.source_base_url}/products/{texts.slug}-{info.code.lower()}{seq:06d}",
        texts=texts,
        gender=gender,
        kind=kind,
        colors=colors,
        attributes=_shared_attributes((material, pattern, occasion, fit_or_width), kind),
        current_price=current_price,
        original_price=list_price,
        rating=rating,
        review_count=review_count,
        is_active=is_active,
        in_stock=in_stock,
        updated_at=updated_at,
        image_count=image_count,
    )


def generate_products(info: CatalogInfo, count: int, rng: random.Random) -> list[Product]:
    """The initial ``count`` products of a catalog, with updatedAt spread over the span before the anchor."""
    products: list[Product] = []
    previous_updated_at = UPDATED_AT_ANCHOR
    r = rng.random
    for seq in range(1, count + 1):
        if products and r() < TIE_SHARE:
            updated_at = previous_updated_at
        else:
            updated_at = UPDATED_AT_ANCHOR - int(r() * UPDATED_AT_SPAN_SECONDS)
        products.append(make_product(info, rng, seq, updated_at))
        previous_updated_at = updated_at
    return products
