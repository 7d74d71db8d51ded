"""The ``enrichment`` object of a current-generation product view (ProductEnrichment, snake_case on the wire).

Its ``attributes`` dict is keyed by human attribute names that depend on the product type ("Sleeve length
type", "Neckline", "Heel height", ...): across a catalog there are dozens of different keys, as on the real
API, so a connector must not turn each key into a table or a column. ``attribute_handles`` and
``classification`` are dicts keyed by data too.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from octogen_source.sandbox.brands import brand_view, slugify
from octogen_source.sandbox.catalog import Color, Product

# Per top category: (attribute name, possible values); each product gets a seeded subset.
_TYPE_ATTRIBUTES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "Dresses": (
        ("Dress length", ("Mini", "Midi", "Maxi")),
        ("Neckline", ("V-neck", "Square", "Crew", "Halter")),
        ("Sleeve length type", ("Sleeveless", "Short", "Three-quarter", "Long")),
        ("Dress style", ("Wrap", "Slip", "Shirt", "A-line")),
        ("Waistline", ("Empire", "Natural", "Drop")),
    ),
    "Tops": (
        ("Neckline", ("Crew", "V-neck", "Scoop", "Collared")),
        ("Sleeve length type", ("Short", "Long", "Cap", "Sleeveless")),
        ("Top length", ("Cropped", "Regular", "Longline")),
        ("Closure type", ("Pullover", "Button", "Half-zip")),
    ),
    "Knitwear": (
        ("Neckline", ("Crew", "Turtleneck", "V-neck", "Mock neck")),
        ("Sweater style", ("Cardigan", "Pullover", "Vest")),
        ("Knit type", ("Cable knit", "Rib knit", "Fine knit", "Chunky knit")),
        ("Sleeve length type", ("Long", "Three-quarter")),
    ),
    "Bottoms": (
        ("Rise", ("Low", "Mid", "High")),
        ("Leg style", ("Skinny", "Straight", "Wide", "Bootcut", "Tapered")),
        ("Waist type", ("Button fly", "Zip fly", "Elastic")),
        ("Inseam length", ("Short", "Regular", "Long")),
    ),
    "Outerwear": (
        ("Hood type", ("Fixed hood", "Detachable hood", "No hood")),
        ("Insulation type", ("Down", "Synthetic", "Uninsulated")),
        ("Water resistance", ("Waterproof", "Water-repellent", "None")),
        ("Closure type", ("Zip", "Snap", "Button")),
        ("Coat length", ("Hip", "Thigh", "Knee")),
    ),
    "Shoes": (
        ("Shoe height", ("Low top", "Mid top", "Ankle")),
        ("Toe style", ("Round toe", "Almond toe", "Square toe")),
        ("Closure type", ("Lace-up", "Slip-on", "Zip", "Hook and loop")),
        ("Heel height", ("Flat", "Low", "Mid")),
        ("Sole material", ("Rubber", "EVA", "Leather")),
    ),
    "Accessories": (
        ("Bag size", ("Small", "Medium", "Large")),
        ("Handle type", ("Shoulder strap", "Top handle", "Crossbody strap")),
        ("Closure type", ("Zip", "Magnetic snap", "Open top")),
    ),
}
_COMMON_ATTRIBUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Care instructions", ("Machine wash cold", "Hand wash", "Dry clean only")),
    ("Season", ("Spring", "Summer", "Autumn", "Winter", "All season")),
    ("Sustainability", ("Organic", "Recycled materials", "Fair trade")),
    ("Lining material", ("Cotton", "Polyester", "Unlined")),
)
# (CSS colour name, colour family) per sandbox colour label
_CSS_COLORS: dict[str, tuple[str, str]] = {
    "Black": ("black", "Black"),
    "White": ("white", "White"),
    "Navy Blue": ("navy", "Blue"),
    "Olive Green": ("olivedrab", "Green"),
    "Off White": ("ivory", "White"),
    "Dusty Rose": ("rosybrown", "Pink"),
    "Charcoal Grey": ("darkslategray", "Gray"),
    "Sand": ("tan", "Brown"),
    "Burgundy": ("maroon", "Red"),
    "Sky Blue": ("skyblue", "Blue"),
    "Forest Green": ("forestgreen", "Green"),
    "Rust": ("sienna", "Orange"),
}
_STYLES = ("casual", "minimalist", "classic", "sporty", "bohemian", "workwear", "preppy", "streetwear")
_WIRE_GENDERS = {"women": "female", "men": "male", "unisex": "unisex"}


def wire_gender(gender: str) -> str:
    """The sandbox's ``women``/``men``/``unisex`` as the current API spells them."""
    return _WIRE_GENDERS.get(gender, gender)


def stable_uuid(*parts: str) -> str:
    """A deterministic UUID-4-shaped id for synthetic reference data (brand ids, taxonomy nodes)."""
    h = hashlib.sha256(":".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def css_colors(colors: tuple[Color, ...]) -> list[tuple[str, str]]:
    return [_CSS_COLORS.get(color.label, (color.lowered.replace(" ", ""), "Multicolor")) for color in colors]


def _attributes(product: Product, rng: random.Random) -> dict[str, list[str]]:
    candidates = _TYPE_ATTRIBUTES.get(product.kind.top_category, ()) + _COMMON_ATTRIBUTES
    chosen = [item for item in candidates if rng.random() < 0.7]
    attributes = {name: [values[int(rng.random() * len(values))]] for name, values in chosen}
    attributes["Fabric"] = [product.attributes["material"].capitalize()]
    attributes["Pattern"] = [product.attributes["pattern"].capitalize()]
    if "fit" in product.attributes:
        attributes["Fit"] = [product.attributes["fit"].capitalize()]
    return attributes


def _canonical_brand(name: str) -> dict[str, Any]:
    brand = brand_view(name)
    return {
        "brand_name": name,
        "brand_slug": brand["slug"],
        "brand_uuid": stable_uuid("brand", name),
        "brand_synonyms": [name.lower(), brand["slug"].replace("-", " ")],
        "brand_enrichment": {
            "brand_description": brand["description"],
            "brand_positioning": "mid-market",
            "brand_quality_score": round(3.2 + (len(name) % 7) / 5, 1),
            "facet_price_tier": "mid",
            "facet_origin_country": "Norway" if "Fjord" in name or "Northwind" in name else "United States",
            "founded_year": 1990 + len(name) * 2 % 30,
        },
    }


def enrichment(product: Product, rng: random.Random) -> dict[str, Any]:
    """ProductEnrichment for ``product``; ``rng`` is the product's detail rng (seeded by its uuid)."""
    attributes = _attributes(product, rng)
    handles = {
        slugify(name).replace("-", "_"): [
            f"{slugify(name).replace('-', '_')}__{slugify(value).replace('-', '_')}" for value in values
        ]
        for name, values in attributes.items()
    }
    colors = css_colors(product.colors)
    category_path = ["Apparel & Accessories", product.kind.top_category, product.kind.leaf_category]
    gender = wire_gender(product.gender)
    return {
        "age_groups": ["adult"],
        "gender": gender,
        "type": product.kind.noun.lower(),
        "type_synonyms": [product.kind.leaf_category.lower(), product.kind.noun.lower() + "s"],
        "summary": product.description.split(".")[0] + ".",
        "category_path": category_path,
        "fully_qualified_name": " > ".join(category_path),
        "taxonomy_uuid": stable_uuid("taxonomy", product.kind.leaf_category),
        "attributes": attributes,
        "attribute_handles": handles,
        "structured_attributes": [
            {
                "handle": handle,
                "name": name,
                "values": [
                    {"handle": value_handle, "name": value}
                    for value_handle, value in zip(hs, vs, strict=True)
                ],
            }
            for (name, vs), (handle, hs) in zip(attributes.items(), handles.items(), strict=True)
        ],
        "classification": {
            "department": [{"female": "Women", "male": "Men"}.get(gender, "Unisex")],
            "product_type": [product.kind.leaf_category],
            "google_product_category": ["Apparel & Accessories > Clothing"]
            if product.kind.top_category not in ("Shoes", "Accessories")
            else [f"Apparel & Accessories > {product.kind.top_category}"],
        },
        "color": [css for css, _ in colors],
        "color_family": sorted({family for _, family in colors}),
        "color_indices": list(range(len(colors))),
        "styles": sorted(rng.sample(_STYLES, 2)),
        "tags": [product.attributes["occasion"], product.attributes["pattern"]],
        "is_activewear": product.kind.top_category == "Outerwear" and rng.random() < 0.3,
        "image_with_single_product": rng.random() > 0.1,
        "brand_id": stable_uuid("brand", product.brand) if product.brand else None,
        "canonical_brand": _canonical_brand(product.brand) if product.brand else None,
    }
