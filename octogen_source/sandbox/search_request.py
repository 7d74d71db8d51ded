"""The current generation's search request (ProgrammaticProductSearchRequest): strict, ``catalogs`` allowlist.

Unknown fields, including the seed era's ``catalog``, are refused with pydantic's ``extra_forbidden`` entries
(``loc: ["body", name]``); ``catalogs`` holds 1..500 keys. Facet names accept the current spellings
(``brand_name``, ``category_path.depth_N``, ``gender`` values ``female``/``male``) besides the seed ones.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from octogen_source.sandbox.cursors import CursorError, decode_cursor, filters_fingerprint
from octogen_source.sandbox.validation import (
    RequestValidationError,
    _error,
    _facets,
    _limit,
    _optional_number,
    _optional_str,
    _require_object,
    _value_error,
    parse_json_body,
)

CATALOGS_MIN, CATALOGS_MAX = 1, 500
SEARCH_FIELDS = frozenset(
    {
        "q",
        "understand",
        "facets",
        "exclude_facets",
        "omit_generated_facets",
        "price_min",
        "price_max",
        "brand_quality_min",
        "brand_quality_max",
        "similar_to_brands",
        "fallback_category",
        "catalogs",
        "limit",
        "cursor",
        "relax",
        "diversity",
        "debug",
    }
)
_FACET_ALIASES = {"brand_name": "brand", **{f"category_path.depth_{depth}": "category" for depth in range(7)}}
_GENDER_VALUES = {"female": "women", "male": "men"}

Facets = tuple[tuple[str, frozenset[str]], ...]


@dataclass(frozen=True)
class CurrentSearchRequest:
    catalogs: tuple[str, ...] | None
    q_text: str
    q_terms: tuple[str, ...]
    understand: bool
    facets: Facets
    exclude_facets: Facets
    price_min: float | None
    price_max: float | None
    brand_quality_min: float | None
    brand_quality_max: float | None
    similar_to_brands: tuple[str, ...]
    limit: int
    fingerprint: str
    after_uuid: str | None


def extra_forbidden(body: dict[str, Any], allowed: Collection[str]) -> list[dict[str, Any]]:
    """pydantic's entries for fields a ``extra="forbid"`` model does not declare."""
    return [
        _error("extra_forbidden", ("body", name), "Extra inputs are not permitted", value)
        for name, value in body.items()
        if name not in allowed
    ]


def _optional_bool(body: dict[str, Any], name: str, default: bool, errors: list[dict[str, Any]]) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    errors.append(_error("bool_type", ("body", name), "Input should be a valid boolean", value))
    return default


def _string_list(
    body: dict[str, Any], name: str, errors: list[dict[str, Any]], *, bounds: tuple[int, int] | None = None
) -> tuple[str, ...] | None:
    value = body.get(name)
    if value is None:
        return None
    loc = ("body", name)
    if not isinstance(value, list):
        errors.append(_error("list_type", loc, "Input should be a valid list", value))
        return None
    bad = [
        _error("string_type", (*loc, index), "Input should be a valid string", item)
        for index, item in enumerate(value)
        if not isinstance(item, str)
    ]
    if bad:
        errors.extend(bad)
        return None
    if bounds is not None:
        low, high = bounds
        if len(value) < low:
            msg = f"List should have at least {low} item after validation, not {len(value)}"
            errors.append(
                _error(
                    "too_short",
                    loc,
                    msg,
                    value,
                    {"field_type": "List", "min_length": low, "actual_length": len(value)},
                )
            )
            return None
        if len(value) > high:
            msg = f"List should have at most {high} items after validation, not {len(value)}"
            errors.append(
                _error(
                    "too_long",
                    loc,
                    msg,
                    value,
                    {"field_type": "List", "max_length": high, "actual_length": len(value)},
                )
            )
            return None
    return tuple(value)


def _canonical(facets: Facets) -> Facets:
    renamed = []
    for name, values in facets:
        canonical = _FACET_ALIASES.get(name, name)
        if canonical == "gender":
            values = frozenset(_GENDER_VALUES.get(value, value) for value in values)
        renamed.append((canonical, values))
    return tuple(sorted(renamed, key=lambda facet: (facet[0], sorted(facet[1]))))


def _facet_list(
    body: dict[str, Any], name: str, attribute_keys: Collection[str], errors: list[dict[str, Any]]
) -> Facets:
    """Reuse the seed parser (it reads ``facets``) on the named field, with current facet names allowed."""
    value = body.get(name)
    if isinstance(value, list):
        value = [
            {**item, "name": _FACET_ALIASES.get(item["name"].strip().lower(), item["name"])}
            if isinstance(item, dict) and isinstance(item.get("name"), str)
            else item
            for item in value
        ]
    found: list[dict[str, Any]] = []
    parsed = _facets({"facets": value}, attribute_keys, found)
    for error in found:
        error["loc"] = ["body", name, *error["loc"][2:]]
    errors.extend(found)
    return _canonical(parsed)


def parse_current_search_request(raw: bytes, attribute_keys: Collection[str]) -> CurrentSearchRequest:
    """The validated body; :class:`RequestValidationError` lists every problem (unknown fields included)."""
    body = _require_object(parse_json_body(raw))
    errors = extra_forbidden(body, SEARCH_FIELDS)
    q = _optional_str(body, "q", errors)
    cursor = _optional_str(body, "cursor", errors)
    catalogs = _string_list(body, "catalogs", errors, bounds=(CATALOGS_MIN, CATALOGS_MAX))
    similar = _string_list(body, "similar_to_brands", errors) or ()
    _string_list(body, "omit_generated_facets", errors)
    _string_list(body, "fallback_category", errors)
    numbers = {
        name: _optional_number(body, name, errors)
        for name in ("price_min", "price_max", "brand_quality_min", "brand_quality_max")
    }
    understand = _optional_bool(body, "understand", True, errors)
    for flag in ("relax", "diversity", "debug"):
        _optional_bool(body, flag, False, errors)
    limit = _limit(body, errors)
    facets = _facet_list(body, "facets", attribute_keys, errors)
    excluded = _facet_list(body, "exclude_facets", attribute_keys, errors)
    if errors:
        raise RequestValidationError(errors)

    q_terms = tuple(q.lower().split()) if q else ()
    unique_catalogs = tuple(dict.fromkeys(catalogs)) if catalogs is not None else None
    fingerprint = filters_fingerprint(
        {
            "catalogs": list(unique_catalogs) if unique_catalogs is not None else None,
            "q": list(q_terms),
            "understand": understand,
            "facets": [[name, sorted(values)] for name, values in facets],
            "exclude": [[name, sorted(values)] for name, values in excluded],
            **numbers,
            "similar": list(similar),
        }
    )
    after_uuid = None
    if cursor is not None:
        try:
            after_uuid = decode_cursor(cursor, fingerprint)
        except CursorError as exc:
            raise RequestValidationError([_value_error(("body", "cursor"), str(exc), cursor)]) from None
    return CurrentSearchRequest(
        catalogs=unique_catalogs,
        q_text=q or "",
        q_terms=q_terms,
        understand=understand,
        facets=facets,
        exclude_facets=excluded,
        price_min=numbers["price_min"],
        price_max=numbers["price_max"],
        brand_quality_min=numbers["brand_quality_min"],
        brand_quality_max=numbers["brand_quality_max"],
        similar_to_brands=similar,
        limit=limit,
        fingerprint=fingerprint,
        after_uuid=after_uuid,
    )
