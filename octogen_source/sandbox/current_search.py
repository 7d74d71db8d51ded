"""One current-generation search page: ``{items, nextCursor?, requestId, effectiveQuery}``.

Pages after the first start with up to three products of the previous page's tail again (the real API ranks
page 1 by relevance and later pages by quality score from page 1's last item, so consecutive pages can repeat
a product). How many is deterministic: ``1 + int(cursor_uuid[:2], 16) % 3``, capped at ``limit - 1`` so a
walk always advances; every live product still appears at least once. ``nextCursor`` is absent on the last
page. Hit bytes come from the per-product cache; only the scores are rendered per request.
"""

from __future__ import annotations

from typing import Any

from octogen_source.sandbox.current_wire import hit_prefix
from octogen_source.sandbox.cursors import encode_cursor
from octogen_source.sandbox.scores import score_suffixes, splice
from octogen_source.sandbox.search_request import CurrentSearchRequest, Facets
from octogen_source.sandbox.store import ProductStore, build_predicate
from octogen_source.sandbox.wire import dumps

MAX_REPEATS = 3
_WIRE_FACET_NAMES = {"brand": "brand_name", "category": "category_path"}
_WIRE_GENDERS = {"women": "female", "men": "male"}


def repeat_count(after_uuid: str | None, limit: int) -> int:
    """How many products of the previous page the page after ``after_uuid`` serves again."""
    if after_uuid is None:
        return 0
    return max(0, min(1 + int(after_uuid[:2], 16) % MAX_REPEATS, limit - 1))


def _effective_facets(facets: Facets) -> list[dict[str, Any]]:
    result = []
    for name, values in facets:
        shown = sorted(_WIRE_GENDERS.get(v, v) for v in values) if name == "gender" else sorted(values)
        result.append({"name": _WIRE_FACET_NAMES.get(name, name), "values": shown, "source": "caller"})
    return result


def effective_query(request: CurrentSearchRequest, catalog_keys: list[str]) -> dict[str, Any]:
    """ProgrammaticProductSearchEffectiveQuery: the search that ran."""
    return {
        "text": request.q_text,
        "understood": request.understand and bool(request.q_terms),
        "catalogs": catalog_keys,
        "facets": _effective_facets(request.facets),
        "excludeFacets": _effective_facets(request.exclude_facets),
        "priceMin": request.price_min,
        "priceMax": request.price_max,
        "brandQualityMin": request.brand_quality_min,
        "brandQualityMax": request.brand_quality_max,
        "similarToBrands": list(request.similar_to_brands),
        "relaxation": None,
    }


def search_page(
    store: ProductStore,
    request: CurrentSearchRequest,
    catalog_keys: list[str],
    request_id: str,
    request_serial: int,
    end_here: bool = False,
    empty: bool = False,
) -> bytes:
    """``end_here``: a broken API's early end of the walk (no ``nextCursor``); ``empty``: and no items."""
    predicate = build_predicate(request, request.exclude_facets)
    repeats = repeat_count(request.after_uuid, request.limit)
    page, more = store.page_with_repeats(catalog_keys, request.after_uuid, request.limit, repeats, predicate)
    more = more and not end_here
    if empty:
        page = []
    infos = store.catalogs
    prefixes = [hit_prefix(product, infos[product.catalog_key].info) for product in page]
    parts = [b'{"items":[', splice(prefixes, score_suffixes(request_serial, len(page))), b"]"]
    if more:
        parts += (b',"nextCursor":', dumps(encode_cursor(request.fingerprint, page[-1].uuid)))
    parts += (
        b',"requestId":',
        dumps(request_id),
        b',"effectiveQuery":',
        dumps(effective_query(request, catalog_keys)),
        b"}",
    )
    return b"".join(parts)
