"""The response models: wire round trips (both wire shapes), drift tolerance, and the no-Python fast path.

No HTTP here: the records come from the sandbox's own renderer (SandboxState, no server started).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from octogen_source import models
from octogen_source.models import (
    Facet,
    ImageObject,
    MerchantCatalogSummary,
    MerchantProductListItem,
    MerchantProductListPage,
    MerchantProductUrlLookupResponse,
    MerchantProductView,
    ProductColor,
    ProductIdentifiers,
    ProductVariant,
    parse_catalog_list,
    parse_wire_search_page,
)
from octogen_source.sandbox import SandboxState
from tests.client_helpers import wire


@pytest.fixture(scope="module")
def state() -> SandboxState:
    return SandboxState(catalogs=2, products=120, seed=3)


def _page_bytes(items: list[dict[str, Any]], next_cursor: str | None = "c1") -> bytes:
    return json.dumps({"items": items, "nextCursor": next_cursor}).encode()


@pytest.mark.parametrize("shape", ["v1", "v2"])
def test_search_hits_round_trip_the_wire_record(state: SandboxState, shape: str) -> None:
    state.set_wire_shape(shape)
    hits = state.truth_search_items(state.granted_catalogs()[0])

    page = MerchantProductListPage.model_validate_json(_page_bytes(hits[:100]))

    assert len(page.items) == 100
    assert page.next_cursor == "c1"
    assert [wire(item) for item in page.items] == hits[:100]
    first = page.items[0]
    assert first.uuid == hits[0]["uuid"]
    assert first.product_url == hits[0]["productUrl"]
    assert first.current_price == hits[0]["currentPrice"]
    assert isinstance(first.updated_at, datetime)
    assert first.updated_at.tzinfo is not None
    assert all(item.model_extra == {} for item in page.items)  # every field of both generations is typed
    for item, hit in zip(page.items, hits, strict=False):
        assert (item.brand is None, item.rating is None) == (hit["brand"] is None, hit["rating"] is None)
    typed, hit = next(
        (item, hit) for item, hit in zip(page.items, hits, strict=False) if hit["brand"] and hit["rating"]
    )
    assert typed.brand is not None and typed.rating is not None
    if shape == "v1":  # the seed era: scalars
        assert all(isinstance(image, str) for image in typed.images or [])
        assert (typed.brand.name, typed.rating.average) == (hit["brand"], hit["rating"])
    else:  # the current API: objects
        assert typed.images and all(isinstance(image, dict) for image in typed.images)
        image: ImageObject = typed.images[0]  # type: ignore[assignment]
        assert image == hit["images"][0] and image.get("width") == hit["images"][0]["width"]
        assert typed.primary_image == hit["primaryImage"]
        assert (typed.brand.name, typed.brand.slug) == (hit["brand"]["name"], hit["brand"]["slug"])
        assert (typed.rating.average, typed.rating.count) == (
            hit["rating"]["average"],
            hit["rating"]["count"],
        )
        assert (typed.catalog_key, typed.currency, typed.in_stock) == (
            hit["catalogKey"],
            hit["currency"],
            hit["inStock"],
        )


@pytest.mark.parametrize("shape", ["v1", "v2"])
def test_lookup_round_trips_and_types_the_full_view(state: SandboxState, shape: str) -> None:
    state.set_wire_shape(shape)
    hits = state.truth_search_items(state.granted_catalogs()[1])
    for hit in hits[:20]:
        body = state.truth_lookup(hit["uuid"])

        lookup = MerchantProductUrlLookupResponse.model_validate_json(json.dumps(body))

        assert wire(lookup) == body
        assert lookup.catalog_key == body["catalogKey"]
        view = lookup.product
        assert isinstance(view, MerchantProductView)
        sent = body["product"]
        assert view.description == sent["description"]
        assert view.in_stock == sent["inStock"]
        assert view.sizes == sent["sizes"]
        assert view.colors == [
            ProductColor(label=c["label"], hex_code=c["hexCode"], swatch_url=c.get("swatchUrl"))
            for c in sent["colors"]
        ]
        assert isinstance(view.identifiers, ProductIdentifiers)
        assert view.identifiers.product_id == sent["identifiers"]["productId"]
        assert view.identifiers.product_group_id == sent["identifiers"]["productGroupId"]
        assert view.variants and all(isinstance(variant, ProductVariant) for variant in view.variants)
        assert view.variants[0].sku == sent["variants"][0]["sku"]
        assert view.variants[0].in_stock == sent["variants"][0]["inStock"]
        assert view.categories == sent["categories"]
        assert view.breadcrumbs == sent["breadcrumbs"]
        assert view.reviews == sent["reviews"]
        assert view.promotions == sent["promotions"]
        assert view.enrichment == sent["enrichment"]
        assert view.brand is not None and view.brand.name is not None
        assert all(variant.color is not None and variant.color.label for variant in view.variants)
        assert lookup.model_extra == {}
        if shape == "v1":
            assert view.model_extra is not None and view.model_extra["attributes"] == sent["attributes"]
            assert lookup.source is None
        else:
            assert view.model_extra == {}
            assert lookup.source == body["source"] == "indexed"


def test_catalog_summaries_round_trip(state: SandboxState) -> None:
    truth = state.truth_catalogs()

    catalogs = parse_catalog_list(json.dumps(truth).encode())

    assert [wire(catalog) for catalog in catalogs] == truth
    assert catalogs[0].display_name == truth[0]["displayName"]
    assert catalogs[0].product_count == truth[0]["productCount"]
    assert catalogs[0].last_indexed_at == datetime.fromisoformat(truth[0]["lastIndexedAt"])


def test_every_field_may_be_null_or_absent() -> None:
    nulls = {name: None for name in ("uuid", "productUrl", "title", "brand", "currentPrice", "images")}
    assert wire(MerchantProductListItem.model_validate(nulls)) == nulls
    assert wire(MerchantProductView.model_validate({})) == {}
    assert MerchantCatalogSummary.model_validate({"catalog": None}).catalog is None
    lookup = MerchantProductUrlLookupResponse.model_validate_json(b'{"product": null}')
    assert lookup.product is None


def test_attribute_names_are_accepted_too() -> None:
    item = MerchantProductListItem.model_validate({"product_url": "https://x/p", "current_price": "12.5"})
    assert item.product_url == "https://x/p"
    assert item.current_price == 12.5
    assert item.model_dump(by_alias=True, exclude_unset=True) == {
        "productUrl": "https://x/p",
        "currentPrice": 12.5,
    }


def test_images_may_be_strings_objects_or_a_mix() -> None:
    item = MerchantProductListItem.model_validate(
        {"images": ["https://x/1.jpg", {"url": "https://x/2.jpg", "width": 10, "focus": "center"}, None]}
    )
    assert item.images is not None
    assert item.images[0] == "https://x/1.jpg"
    # an image object is a plain dict (an ImageObject TypedDict), unknown keys kept
    assert item.images[1] == {"url": "https://x/2.jpg", "width": 10, "focus": "center"}
    assert item.images[2] is None
    numbers = MerchantProductListItem.model_validate({"images": [{"url": "u", "width": "640"}]})
    assert numbers.images == [{"url": "u", "width": 640}]


def test_a_drifted_field_is_kept_raw_and_the_record_still_parses(state: SandboxState) -> None:
    state.set_wire_shape("v2")
    hit = state.truth_search_items(state.granted_catalogs()[0])[0]
    drifted = {
        **hit,
        "currentPrice": {"amount": 12.5, "currency": "EUR"},
        "updatedAt": "last tuesday",
        "isActive": "maybe",
        "images": [{"url": {"href": "https://x/1.jpg"}, "width": "wide"}, "https://x/2.jpg"],
        "brandInfo": {"name": "New Field"},
    }

    page = MerchantProductListPage.model_validate_json(_page_bytes([drifted, hit]))

    item = page.items[0]
    assert (item.current_price, item.updated_at, item.is_active) == (None, None, None)
    assert item.title == hit["title"]
    assert item.model_extra is not None
    assert item.model_extra["currentPrice"] == {"amount": 12.5, "currency": "EUR"}
    assert item.model_extra["updatedAt"] == "last tuesday"
    assert item.model_extra["brandInfo"] == {"name": "New Field"}
    # a drifted image is kept as sent, beside the images that still fit
    assert item.images == drifted["images"]
    assert "images" not in item.model_extra
    # the dump gives back exactly what the API sent, with or without exclude_unset
    assert wire(item) == drifted
    assert item.model_dump(by_alias=True, mode="json")["currentPrice"] == drifted["currentPrice"]
    assert wire(page.items[1]) == hit


def test_drift_that_breaks_a_nested_record_keeps_the_original_value() -> None:
    # colors[0] first loses its "hexCode" to a repair, then the whole list must go (its last element is
    # a number no model accepts): the raw list kept is the one the API sent, "hexCode" included.
    raw_colors = [{"label": "Red", "hexCode": {"r": 255}}, 7]
    view = MerchantProductView.model_validate({"uuid": "u", "colors": raw_colors})
    assert view.colors is None
    assert view.model_extra == {"colors": [{"label": "Red", "hexCode": {"r": 255}}, 7]}
    nested = MerchantProductView.model_validate({"colors": [{"label": "Red", "hexCode": {"r": 255}}]})
    assert nested.colors is not None and nested.colors[0].label == "Red"
    assert nested.colors[0].hex_code is None
    assert nested.colors[0].model_extra == {"hexCode": {"r": 255}}


def test_model_validate_does_not_change_the_callers_data() -> None:
    data = {"uuid": "u", "currentPrice": {"amount": 1}}
    before = copy.deepcopy(data)
    MerchantProductListItem.model_validate(data)
    assert data == before


def test_view_fields_that_change_shape_parse() -> None:
    view = MerchantProductView.model_validate(
        {
            "colors": ["red"],
            "identifiers": "SKU-1",
            "sizes": [{"eu": 42}],
            "reviews": [{"stars": 5}],
            "uuid": 7,
        }
    )
    assert view.uuid == "7"
    assert (view.colors, view.identifiers, view.sizes) == (None, None, None)
    assert view.reviews == [{"stars": 5}]
    assert wire(view) == {
        "colors": ["red"],
        "identifiers": "SKU-1",
        "sizes": [{"eu": 42}],
        "reviews": [{"stars": 5}],
        "uuid": "7",
    }


PAGES_THAT_LOST_THEIR_SHAPE = [
    b'{"items": "nope", "nextCursor": null}',
    b'{"items": [1, 2], "nextCursor": null}',
    b'{"items": [], "nextCursor": {"page": 2}}',
    b'{"items": []}',
    b'{"nextCursor": null}',
    b"[]",
]


@pytest.mark.parametrize("body", PAGES_THAT_LOST_THEIR_SHAPE)
def test_a_page_that_lost_its_shape_is_refused(body: bytes) -> None:
    with pytest.raises(ValidationError):
        MerchantProductListPage.model_validate_json(body)


@pytest.mark.parametrize("body", [*PAGES_THAT_LOST_THEIR_SHAPE, b'{"items": [{"uuid": "<html>'])
def test_a_wire_page_that_lost_its_shape_is_refused(body: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_wire_search_page(body)


def test_a_wire_page_keeps_every_hit_as_sent() -> None:
    body = b'{"items": [{"uuid": "u", "price": 18446744073709551616, "x": {"y": [1]}}], "nextCursor": "c2"}'
    # a 65-bit integer is beyond orjson: pydantic takes that body
    assert parse_wire_search_page(body) == {
        "items": [{"uuid": "u", "price": 18446744073709551616, "x": {"y": [1]}}],
        "nextCursor": "c2",
    }
    assert parse_wire_search_page(b'{"items": [], "nextCursor": null, "extra": 1}')["items"] == []


def test_a_lookup_without_a_product_record_is_refused() -> None:
    with pytest.raises(ValidationError):
        MerchantProductUrlLookupResponse.model_validate_json(b'{"catalogKey": "a", "product": "gone"}')
    with pytest.raises(ValidationError):
        MerchantProductUrlLookupResponse.model_validate_json(b'{"catalogKey": "a"}')


def test_a_catalog_list_with_drifted_entries_parses() -> None:
    catalogs = parse_catalog_list(
        b'[{"catalog": "a", "productCount": "lots"}, {"catalog": "b", "productCount": 3}]'
    )
    assert [(c.catalog, c.product_count) for c in catalogs] == [("a", None), ("b", 3)]
    assert catalogs[0].model_extra == {"productCount": "lots"}
    with pytest.raises(ValidationError):
        parse_catalog_list(b'{"catalogs": []}')
    with pytest.raises(ValidationError):
        parse_catalog_list(b'["a"]')


def test_invalid_json_is_a_validation_error_not_a_decode_error() -> None:
    with pytest.raises(ValidationError) as raised:
        MerchantProductListPage.model_validate_json(b'{"items": [{"uuid": "<html>')
    assert raised.value.errors()[0]["type"] == "json_invalid"


def test_a_clean_page_never_takes_the_python_repair_path(
    state: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path is pure pydantic-core: a 100-item page costs no Python call per record.
    calls: list[object] = []
    monkeypatch.setattr(models, "_validate_with_repairs", lambda *args: calls.append(args))
    for shape in ("v1", "v2"):
        state.set_wire_shape(shape)
        hits = state.truth_search_items(state.granted_catalogs()[0])[:100]
        MerchantProductListPage.model_validate_json(_page_bytes(hits))
    assert calls == []


def test_timestamps_parse_as_aware_datetimes() -> None:
    item = MerchantProductListItem.model_validate({"updatedAt": "2026-05-19T18:04:10Z"})
    assert item.updated_at == datetime(2026, 5, 19, 18, 4, 10, tzinfo=UTC)
    assert wire(item) == {"updatedAt": "2026-05-19T18:04:10Z"}


def test_facet_is_a_strict_request_model() -> None:
    assert Facet(name="brand", values=["acme"]).model_dump() == {"name": "brand", "values": ["acme"]}
    with pytest.raises(ValidationError):
        Facet.model_validate({"name": "brand", "value": ["acme"]})
