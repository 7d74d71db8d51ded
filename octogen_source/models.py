"""Pydantic models of the Octogen Platform Catalog API v1 wire records.

Attributes are snake_case; the wire names are the API's camelCase (``productUrl``), accepted on input
together with the attribute names, and given back by ``model_dump(by_alias=True, mode="json")``.

The models are built to survive API drift without losing data:

- unknown fields are kept (``model_extra``) and come back when the record is dumped;
- every field may be null or absent;
- a field whose value no longer fits its type (say ``currentPrice`` turning into an object) does not fail
  the record: the attribute is left ``None`` and the raw wire value is kept in ``model_extra`` under its
  wire name, so ``model_dump(by_alias=True, mode="json")`` still returns what the API sent
  (``model_dump_json`` would write such a key twice, null then raw: dump to a dict). Only the fields that
  hold a response together (a page's ``items`` and ``nextCursor``, a lookup's ``product``) are allowed to
  fail, and the client turns that into an :class:`~octogen_source.errors.OctogenAPIError`;
- ``images`` entries are URL strings or :class:`ImageObject` dicts, and anything else is kept as sent.

Validation stays in pydantic-core (no Python call per record) unless a record actually drifted.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Self, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic.alias_generators import to_camel
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

__all__ = [
    "Facet",
    "Image",
    "ImageObject",
    "MerchantCatalogSummary",
    "MerchantProductListItem",
    "MerchantProductListPage",
    "MerchantProductUrlLookupResponse",
    "MerchantProductView",
    "OctogenModel",
    "ProductColor",
    "ProductIdentifiers",
    "ProductVariant",
    "WireSearchPage",
    "parse_catalog_list",
    "parse_wire_search_page",
]


class OctogenModel(BaseModel):
    """Base of every response model: camelCase aliases, unknown fields kept, drift tolerated.

    ``model_validate`` and ``model_validate_json`` first validate the usual way (all in pydantic-core, no
    Python per record); only when that fails do they repair the input field by field (see module doc).
    """

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        coerce_numbers_to_str=True,
    )

    _shape_fields: ClassVar[frozenset[str]] = frozenset()
    """Wire and attribute names of the top-level fields whose failure must fail the whole record."""

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Self:
        try:
            return super().model_validate(obj, **options)
        except ValidationError as error:
            return _validate_with_repairs(
                lambda data: super(OctogenModel, cls).model_validate(data, **options),
                copy.deepcopy(obj),
                error,
                cls._shape_fields,
            )

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **options: Any) -> Self:
        try:
            return super().model_validate_json(json_data, **options)
        except ValidationError as error:
            if _is_invalid_json(error):
                raise
            return _validate_with_repairs(
                lambda data: super(OctogenModel, cls).model_validate(data, **options),
                json.loads(json_data),
                error,
                cls._shape_fields,
            )


_Validated = TypeVar("_Validated")
_Path = tuple[str | int, ...]


def _is_invalid_json(error: ValidationError) -> bool:
    return any(problem["type"] == "json_invalid" for problem in error.errors(include_url=False))


def _validate_with_repairs(
    validate: Callable[[Any], _Validated],
    data: Any,
    error: ValidationError,
    shape_fields: frozenset[str],
) -> _Validated:
    """Validate ``data`` (which this function may change), moving each field that fails to the extras.

    Each round takes the failing fields out of their records and validates again; every round removes at
    least one key, so the loop ends. The removed raw values are then put into the extras of the records
    that held them.
    """
    removed: list[_Removed] = []
    while True:
        repairs = _repairs_for(error, data, shape_fields)
        if not repairs:
            raise error
        for path, record, key in repairs:
            # A field taken out in an earlier round may sit inside this one: put it back first, so the
            # value kept for this field is exactly what the API sent.
            inside = (*path, key)
            for earlier in [entry for entry in removed if entry.path[: len(inside)] == inside]:
                earlier.record[earlier.key] = earlier.raw
                removed.remove(earlier)
            removed.append(_Removed(path, record, key, record.pop(key)))
        try:
            validated = validate(data)
        except ValidationError as next_error:
            error = next_error
            continue
        for entry in removed:
            _keep_as_extra(validated, entry.path, entry.key, entry.raw)
        return validated


@dataclass(slots=True)
class _Removed:
    path: _Path
    record: dict[str, Any]
    key: str
    raw: Any


def _repairs_for(
    error: ValidationError, data: Any, shape_fields: frozenset[str]
) -> list[tuple[_Path, dict[str, Any], str]]:
    """For every problem, the record (a dict of ``data``) and key of the innermost field that failed.

    An empty list means the problem cannot be repaired: the input is not a record, a shape field failed, or
    a problem points at no key that is present.
    """
    found: dict[tuple[int, str], tuple[_Path, dict[str, Any], str]] = {}
    for problem in error.errors(include_url=False, include_input=False, include_context=False):
        node: Any = data
        path: _Path = ()
        field: tuple[_Path, dict[str, Any], str] | None = None
        for part in problem["loc"]:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                field = (path, node, part)
                node, path = node[part], (*path, part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node, path = node[part], (*path, part)
            # anything else is a union member's tag in the location, not a step into the data
        if field is None or (field[0] == () and field[2] in shape_fields):
            return []
        found[(id(field[1]), field[2])] = field
    # A failing union (str | ImageObject) reports both the element and a field inside it: repair the inner
    # field, the element may then validate as the model.
    repairs = list(found.values())
    return [
        repair
        for repair in repairs
        if not any(
            other is not repair and other[0][: len(repair[0]) + 1] == (*repair[0], repair[2])
            for other in repairs
        )
    ]


def _keep_as_extra(validated: Any, path: _Path, key: str, raw: Any) -> None:
    target = validated
    for part in path:
        if isinstance(part, int):
            target = target[part] if isinstance(target, list) and part < len(target) else None
        elif isinstance(target, BaseModel):
            target = getattr(target, _attribute_names(type(target)).get(part, part), None)
        else:
            target = target.get(part) if isinstance(target, dict) else None
    if isinstance(target, BaseModel) and target.__pydantic_extra__ is not None:
        target.__pydantic_extra__[key] = raw


@functools.cache
def _attribute_names(model: type[BaseModel]) -> dict[str, str]:
    return {field.alias or name: name for name, field in model.model_fields.items()}


def _both_names(*attributes: str) -> frozenset[str]:
    return frozenset(attributes) | {to_camel(attribute) for attribute in attributes}


class Facet(BaseModel):
    """A search filter: ``name`` is a facet key (``brand``, ``color``, ``attribute_facets.fit``, ...)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    values: list[str]


class MerchantCatalogSummary(OctogenModel):
    """One catalog granted to the key (an entry of ``GET /catalogs``)."""

    catalog: str | None = None
    display_name: str | None = None
    product_count: int | None = None
    source_base_url: str | None = None
    last_indexed_at: datetime | None = None


@with_config(ConfigDict(extra="allow"))
class ImageObject(TypedDict, total=False):
    """An image in the newer wire shape (``{url, width, height, alt, ...}``); older deployments send URLs.

    A plain dict, not a model: a page carries hundreds of images, and dicts of plain values cost the
    garbage collector nothing where model instances cost it a lot (a third of a walk's CPU). Unknown keys
    are kept.
    """

    url: str | None
    width: int | None
    height: int | None
    alt: str | None


Image = Annotated[str | ImageObject | Any | None, Field(union_mode="left_to_right")]
"""An entry of ``images``: a URL, an :class:`ImageObject`, or (drifted) whatever the API sent, kept as is."""


class ProductColor(OctogenModel):
    label: str | None = None
    hex_code: str | None = None


class ProductIdentifiers(OctogenModel):
    product_id: str | None = None
    gtin: str | None = None
    product_group_id: str | None = None


class ProductVariant(OctogenModel):
    """A purchasable variant of a product; its fields vary by catalog, so most arrive as extras."""

    sku: str | None = None
    size: str | None = None
    color: str | None = None
    price: float | None = None
    in_stock: bool | None = None


class MerchantProductListItem(OctogenModel):
    """A search hit."""

    uuid: str | None = None
    product_url: str | None = None
    title: str | None = None
    brand: str | None = None
    current_price: float | None = None
    original_price: float | None = None
    image_url: str | None = None
    images: list[Image] | None = None
    rating: float | None = None
    is_active: bool | None = None
    updated_at: datetime | None = None


class MerchantProductListPage(OctogenModel):
    """One page of a search: up to ``limit`` items and the cursor of the next page (``None`` at the end)."""

    _shape_fields = _both_names("items", "next_cursor")

    # Both required: a page without them would end a walk early and look like removed products.
    items: list[MerchantProductListItem]
    next_cursor: str | None


class MerchantProductView(MerchantProductListItem):
    """The full product record returned by a lookup."""

    description: str | None = None
    in_stock: bool | None = None
    sizes: list[str | None] | None = None
    colors: list[ProductColor] | None = None
    tags: list[str | None] | None = None
    identifiers: ProductIdentifiers | None = None
    variants: list[ProductVariant] | None = None
    categories: list[Any] | None = None
    breadcrumbs: list[Any] | None = None
    reviews: Any = None
    promotions: Any = None
    videos: Any = None
    enrichment: Any = None


class MerchantProductUrlLookupResponse(OctogenModel):
    """The answer of ``POST /products/lookup``."""

    _shape_fields = _both_names("product")

    catalog_key: str | None = None
    catalog_display_name: str | None = None
    source_base_url: str | None = None
    product: MerchantProductView | None


_CATALOG_LIST = TypeAdapter(list[MerchantCatalogSummary])


def parse_catalog_list(content: bytes) -> list[MerchantCatalogSummary]:
    """Validate the body of ``GET /catalogs`` with the same drift tolerance as the models."""
    try:
        return _CATALOG_LIST.validate_json(content)
    except ValidationError as error:
        if _is_invalid_json(error):
            raise
        return _validate_with_repairs(_CATALOG_LIST.validate_python, json.loads(content), error, frozenset())


class WireSearchPage(TypedDict):
    """A search page as the API sent it: each hit a plain dict of wire names and values, not validated.

    For bulk consumers (the dlt source) that store every field as sent: only the page's shape is checked,
    at a third of the cost of building :class:`MerchantProductListItem` models.
    """

    # required for the same reason as MerchantProductListPage's fields
    items: list[dict[str, Any]]
    nextCursor: str | None


_WIRE_SEARCH_PAGE: TypeAdapter[WireSearchPage] = TypeAdapter(WireSearchPage)


def parse_wire_search_page(content: bytes) -> WireSearchPage:
    """Check the shape of a search response body (raises pydantic's ``ValidationError``).

    The usual body is decoded by orjson and checked here (twice as fast); anything else goes through
    pydantic, which accepts what it accepts and describes what is wrong with the rest.
    """
    try:
        page = orjson.loads(content)
    except orjson.JSONDecodeError:
        page = None
    if _is_wire_search_page(page):
        return page
    return _WIRE_SEARCH_PAGE.validate_json(content)


def _is_wire_search_page(page: Any) -> bool:
    if not isinstance(page, dict) or "nextCursor" not in page:
        return False
    items, cursor = page.get("items"), page["nextCursor"]
    return (
        type(items) is list
        and all(type(item) is dict for item in items)
        and (cursor is None or type(cursor) is str)
    )
