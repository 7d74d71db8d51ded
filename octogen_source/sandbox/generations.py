"""The two generations of the Octogen API the sandbox speaks, and the old wire-shape names for them.

``current`` is the API as it is today (changelog July-August 2026, SDK 0.10.0): no ``GET /catalogs``, a
``catalogs`` allowlist on search, strict request models, object-valued brand/rating/images, ``requestId`` and
``effectiveQuery`` on pages, lookups with ``resolutionMode``, ``/me`` and ``/domains/{host}``.
``seed`` is the API as the May 2026 client guide describes it, byte for byte as the sandbox served it then.
"""

from __future__ import annotations

from typing import Literal

ApiGeneration = Literal["current", "seed"]
API_GENERATIONS: tuple[ApiGeneration, ...] = ("current", "seed")
DEFAULT_GENERATION: ApiGeneration = "current"
# set_wire_shape() predates generations: "v1" was the documented May shape, "v2" a guess at a newer one.
WIRE_SHAPE_ALIASES: dict[str, ApiGeneration] = {"v1": "seed", "v2": "current"}
GENERATION_WIRE_SHAPES: dict[ApiGeneration, str] = {"seed": "v1", "current": "v2"}


def parse_generation(name: str) -> ApiGeneration:
    """``"current"`` or ``"seed"`` (the wire-shape names ``"v2"``/``"v1"`` are accepted too); ValueError."""
    if name == "current":
        return "current"
    if name == "seed":
        return "seed"
    if name in WIRE_SHAPE_ALIASES:
        return WIRE_SHAPE_ALIASES[name]
    raise ValueError(f"unknown API generation {name!r}; expected one of {', '.join(API_GENERATIONS)}")
