"""Brand records of the current generation: ``{name, slug, url, description}`` (BrandView).

Every brand of the synthetic catalogs gets a slug, a brand site and a one-line description; a brand not listed
(never the case for generated products) still gets a slug and a site derived from its name.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

_SLUG_JUNK = re.compile(r"[^a-z0-9]+")

DESCRIPTIONS: dict[str, str] = {
    "Northwind": "Scandinavian-inspired everyday wear cut from natural fibres.",
    "Northwind Basics": "The essentials line of Northwind: plain tees, knits and denim in core colours.",
    "Fjord & Field": "Outdoor-ready layers designed in Bergen for wet coastal weather.",
    "Harbor & Pine": "New England casualwear with a nautical edge, made in small runs.",
    "Saltmarsh": "Relaxed linen and cotton pieces for long summers on the coast.",
    "Tidewater Co.": "Workwear-inspired outerwear and denim built to be repaired, not replaced.",
    "Alpine Threads": "Mountain knitwear spun from traceable merino since 1998.",
    "Summit Line": "Technical hiking apparel tested above the tree line.",
    "Glacier Knit": "Chunky hand-finished sweaters and accessories for cold climates.",
    "Meridian": "Leather footwear lasted and stitched in Porto.",
    "Stride Lab": "Lightweight performance sneakers for city running.",
    "Cobble & Co.": "Goodyear-welted boots and loafers made to be resoled.",
    "Lumen": "Minimal wardrobe staples in a neutral palette.",
    "Lumen Studio": "Lumen's design-led capsule collections, released each season.",
    "Daybreak": "Soft loungewear and sleepwear in organic cotton.",
    "Cobalt": "Activewear for training, recovery and everything between.",
    "Cobalt Trail": "Trail running and hiking gear from Cobalt.",
    "Pace Theory": "Running apparel engineered with athletes, for everyday runners.",
}


def slugify(text: str) -> str:
    return _SLUG_JUNK.sub("-", text.lower().replace("&", "and")).strip("-")


@cache
def brand_view(name: str) -> dict[str, Any]:
    """The brand object of hits and product views (shared: never mutate the returned dict)."""
    slug = slugify(name)
    return {
        "name": name,
        "slug": slug,
        "url": f"https://www.{slug}.example",
        "description": DESCRIPTIONS.get(name),
    }
