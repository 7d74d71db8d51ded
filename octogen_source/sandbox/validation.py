"""Request-body validation with FastAPI-style 422 details: a list of ``{type, loc, msg, input, ctx?}``."""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from octogen_source.sandbox.cursors import CursorError, decode_cursor, filters_fingerprint

BASE_FACETS = frozenset({"brand", "gender", "color", "category"})
ATTRIBUTE_FACET_PREFIX = "attribute_facets."
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 100, 50

Loc = tuple[str | int, ...]


class RequestValidationError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


def _error(kind: str, loc: Loc, msg: str, value: Any, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "loc": list(loc), "msg": msg, "input": value}
    if ctx is not None:
        error["ctx"] = ctx
    return error


def _value_error(loc: Loc, reason: str, value: Any) -> dict[str, Any]:
    return _error("value_error", loc, f"Value error, {reason}", value, {"error": reason})


@dataclass(frozen=True)
class SearchRequest:
    catalog: str | None
    q_terms: tuple[str, ...]
    # (canonical facet name, accepted lowercase values); base names or bare attribute keys
    facets: tuple[tuple[str, frozenset[str]], ...]
    price_min: float | None
    price_max: float | None
    limit: int
    fingerprint: str
    after_uuid: str | None


def parse_json_body(raw: bytes) -> Any:
    if not raw.strip():
        raise RequestValidationError([_error("missing", ("body",), "Field required", None)])
    try:
        return json.loads(raw)
    except ValueError as exc:
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise RequestValidationError(
            [_error("json_invalid", ("body", position), "JSON decode error", {}, {"error": reason})]
        ) from None


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestValidationError(
            [
                _error(
                    "model_attributes_type",
                    ("body",),
                    "Input should be a valid dictionary or object to extract fields from",
                    body,
                )
            ]
        )
    return body


def _optional_str(body: dict[str, Any], name: str, errors: list[dict[str, Any]]) -> str | None:
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    errors.append(_error("string_type", ("body", name), "Input should be a valid string", value))
    return None


def _optional_number(body: dict[str, Any], name: str, errors: list[dict[str, Any]]) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    loc: Loc = ("body", name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        errors.append(_error("float_type", loc, "Input should be a valid number", value))
        return None
    try:
        number = float(value)
    except ValueError:
        errors.append(
            _error(
                "float_parsing",
                loc,
                "Input should be a valid number, unable to parse string as a number",
                value,
            )
        )
        return None
    if not math.isfinite(number):
        errors.append(_error("finite_number", loc, "Input should be a finite number", value))
        return None
    return number


def _limit(body: dict[str, Any], errors: list[dict[str, Any]]) -> int:
    if "limit" not in body:
        return LIMIT_DEFAULT
    value = body["limit"]
    loc: Loc = ("body", "limit")
    number: int
    if isinstance(value, bool) or value is None or not isinstance(value, int | float | str):
        errors.append(_error("int_type", loc, "Input should be a valid integer", value))
        return LIMIT_DEFAULT
    if isinstance(value, float):
        if not value.is_integer():
            msg = "Input should be a valid integer, got a number with a fractional part"
            errors.append(_error("int_from_float", loc, msg, value))
            return LIMIT_DEFAULT
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            msg = "Input should be a valid integer, unable to parse string as an integer"
            errors.append(_error("int_parsing", loc, msg, value))
            return LIMIT_DEFAULT
    else:
        number = value
    if number < LIMIT_MIN:
        msg = f"Input should be greater than or equal to {LIMIT_MIN}"
        errors.append(_error("greater_than_equal", loc, msg, value, {"ge": LIMIT_MIN}))
    elif number > LIMIT_MAX:
        msg = f"Input should be less than or equal to {LIMIT_MAX}"
        errors.append(_error("less_than_equal", loc, msg, value, {"le": LIMIT_MAX}))
    return number


def canonical_facet_name(name: str, attribute_keys: Collection[str]) -> str | None:
    """``brand`` / ``fit`` / ``attribute_facets.fit`` -> the name filters use; None when unknown."""
    lowered = name.strip().lower()
    if lowered in BASE_FACETS:
        return lowered
    if lowered.startswith(ATTRIBUTE_FACET_PREFIX):
        lowered = lowered[len(ATTRIBUTE_FACET_PREFIX) :]
    return lowered if lowered in attribute_keys else None


def _facets(
    body: dict[str, Any], attribute_keys: Collection[str], errors: list[dict[str, Any]]
) -> tuple[tuple[str, frozenset[str]], ...]:
    value = body.get("facets")
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.append(_error("list_type", ("body", "facets"), "Input should be a valid list", value))
        return ()
    facets: list[tuple[str, frozenset[str]]] = []
    for index, item in enumerate(value):
        loc: Loc = ("body", "facets", index)
        if not isinstance(item, dict):
            msg = "Input should be a valid dictionary or object to extract fields from"
            errors.append(_error("model_attributes_type", loc, msg, item))
            continue
        name, values = item.get("name"), item.get("values")
        item_errors = []
        if "name" not in item:
            item_errors.append(_error("missing", (*loc, "name"), "Field required", item))
        elif not isinstance(name, str):
            item_errors.append(_error("string_type", (*loc, "name"), "Input should be a valid string", name))
        if "values" not in item:
            item_errors.append(_error("missing", (*loc, "values"), "Field required", item))
        elif not isinstance(values, list):
            item_errors.append(_error("list_type", (*loc, "values"), "Input should be a valid list", values))
        else:
            item_errors.extend(
                _error("string_type", (*loc, "values", i), "Input should be a valid string", facet_value)
                for i, facet_value in enumerate(values)
                if not isinstance(facet_value, str)
            )
        errors.extend(item_errors)
        if item_errors or not isinstance(name, str) or not isinstance(values, list):
            continue
        canonical = canonical_facet_name(name, attribute_keys)
        if canonical is None:
            errors.append(_value_error((*loc, "name"), f"unknown facet name '{name}'", name))
            continue
        accepted = frozenset(v.strip().lower() for v in values if v.strip())
        if accepted:
            facets.append((canonical, accepted))
    return tuple(facets)


def parse_search_request(raw: bytes, attribute_keys: Collection[str]) -> SearchRequest:
    """The validated search body; :class:`RequestValidationError` lists every problem found."""
    body = _require_object(parse_json_body(raw))
    errors: list[dict[str, Any]] = []
    catalog = _optional_str(body, "catalog", errors)
    q = _optional_str(body, "q", errors)
    cursor = _optional_str(body, "cursor", errors)
    price_min = _optional_number(body, "price_min", errors)
    price_max = _optional_number(body, "price_max", errors)
    limit = _limit(body, errors)
    facets = _facets(body, attribute_keys, errors)
    text_query = body.get("text_search_query")
    if text_query is not None and not isinstance(text_query, dict):
        msg = "Input should be a valid dictionary"
        errors.append(_error("dict_type", ("body", "text_search_query"), msg, text_query))
    if errors:
        raise RequestValidationError(errors)

    q_terms = tuple(q.lower().split()) if q else ()
    facets = tuple(sorted(facets, key=lambda facet: (facet[0], sorted(facet[1]))))
    fingerprint = filters_fingerprint(
        {
            "catalog": catalog,
            "q": list(q_terms),
            "facets": [[name, sorted(values)] for name, values in facets],
            "price_min": price_min,
            "price_max": price_max,
        }
    )
    after_uuid = None
    if cursor is not None:
        try:
            after_uuid = decode_cursor(cursor, fingerprint)
        except CursorError as exc:
            raise RequestValidationError([_value_error(("body", "cursor"), str(exc), cursor)]) from None
    return SearchRequest(catalog, q_terms, facets, price_min, price_max, limit, fingerprint, after_uuid)


def parse_lookup_url(raw: bytes) -> str:
    body = _require_object(parse_json_body(raw))
    if "url" not in body:
        raise RequestValidationError([_error("missing", ("body", "url"), "Field required", body)])
    url = body["url"]
    if not isinstance(url, str):
        raise RequestValidationError(
            [_error("string_type", ("body", "url"), "Input should be a valid string", url)]
        )
    return url
