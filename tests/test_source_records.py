"""Row helpers whose output is stored: fingerprints, observation ids, arrow conversion."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pytest
from pydantic import TypeAdapter

from octogen_source.source.arrow_rows import ArrowRows, SharedArrowRows, _columns_of
from octogen_source.source.catalog_walk import WalkBatch
from octogen_source.source.json_values import json_text
from octogen_source.source.records import Row, flat_columns, hit_fingerprint, price_row, product_row
from octogen_source.source.tables import PRICE_HISTORY_COLUMNS, PRODUCT_COLUMNS, RunConverters

OBSERVED = datetime(2026, 11, 25, tzinfo=UTC)
_DATETIME = TypeAdapter(datetime)


def first_observation_id(uuid: Any, updated_at: Any, current: Any, original: Any) -> str:
    """How observation ids were made when hits went through the pydantic models: the model's JSON spelling
    of updatedAt (a value it could not parse kept as sent) and prices as floats."""
    try:
        stamp = _DATETIME.dump_python(_DATETIME.validate_python(updated_at), mode="json")
    except ValueError:
        stamp = updated_at
    prices = [None if p is None or isinstance(p, bool) else float(p) for p in (current, original)]
    identity = json.dumps([uuid, stamp, *prices], default=str)
    return hashlib.blake2b(identity.encode(), digest_size=12).hexdigest()


@pytest.mark.parametrize(
    ("updated_at", "current", "original"),
    [
        ("2026-03-09T10:40:31Z", 252.99, 252.99),
        ("2026-03-09T10:40:31.123+00:00", 100, 120.5),
        ("2026-03-09T10:40:31+02:00", 1e16, None),
        ("2026-03-09T10:40:31", 0.1, 0.30000000000000004),
        (None, None, None),
        ("2026-02-30T10:40:31Z", 5.0, 6.0),  # not a date: kept as sent
        ("yesterday", 5.0, 6.0),
    ],
)
def test_observation_ids_are_the_ones_earlier_versions_stored(
    updated_at: str | None, current: float | None, original: float | None
) -> None:
    hit = {"uuid": "3f1c-ü", "updatedAt": updated_at, "currentPrice": current, "originalPrice": original}
    row = price_row(hit, "c", OBSERVED)
    assert row["observation_id"] == first_observation_id("3f1c-ü", updated_at, current, original)
    assert row["updated_at"] == updated_at and row["catalog"] == "c" and row["observed_at"] == OBSERVED


def test_a_drifted_price_is_left_out_of_the_history() -> None:
    row = price_row({"uuid": "u", "currentPrice": {"amount": 5}, "originalPrice": True}, "c", OBSERVED)
    assert row["current_price"] is None and row["original_price"] is None


def test_the_fingerprint_ignores_key_order_and_sees_any_change() -> None:
    hit = {"uuid": "u", "currentPrice": 5.0, "images": [{"url": "a", "width": 1}]}
    same = {"images": [{"width": 1, "url": "a"}], "currentPrice": 5.0, "uuid": "u"}
    assert hit_fingerprint(hit) == hit_fingerprint(same)
    assert hit_fingerprint(hit) != hit_fingerprint({**hit, "currentPrice": 5.01})
    assert hit_fingerprint(hit) != hit_fingerprint({**hit, "images": ["a"]})
    assert -(2**63) <= hit_fingerprint(hit) < 2**63


def first_fingerprint(hit: dict[str, Any]) -> int:
    """How fingerprints were made before string keys were assumed (orjson's OPT_NON_STR_KEYS)."""
    options = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    canonical = orjson.dumps(hit, option=options, default=str)
    return int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "big", signed=True)


@pytest.mark.parametrize(
    "hit",
    [
        {"uuid": "u", "title": "Ünïcode ✓", "brand": {"name": "B", "slug": None}, "images": [{"url": "a"}]},
        {"uuid": "u", "currentPrice": 1e16, "rating": {"average": 4.5, "count": 3}, "colors": []},
        {"uuid": "u", "when": datetime(2026, 1, 2, tzinfo=UTC)},  # not JSON: default=str
        {"uuid": "u", "odd": {1: "a key that is not a string"}},  # OPT_NON_STR_KEYS after all
    ],
)
def test_fingerprints_and_json_texts_are_the_ones_earlier_versions_stored(hit: dict[str, Any]) -> None:
    assert hit_fingerprint(hit) == first_fingerprint(hit)
    for value in hit.values():
        earlier = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
        assert json_text(value) == earlier


def test_a_batch_of_hits_becomes_one_typed_arrow_table() -> None:
    hits = [
        {
            "uuid": "a",
            "productUrl": "https://x/a",
            "currentPrice": 5,
            "images": ["u1", "u2"],
            "isActive": True,
            "updatedAt": "2026-03-09T10:40:31Z",
            "currency": "EUR",
        },
        {"uuid": "b", "currentPrice": 7.5, "images": [{"url": "u3", "width": 10}], "updatedAt": None},
    ]
    rows = [product_row(hit, catalog="c", fingerprint=index) for index, hit in enumerate(hits)]
    table = ArrowRows(PRODUCT_COLUMNS).table(rows)
    assert table is not None
    assert table.schema.field("current_price").type == pa.float64()
    assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("is_active").type == pa.bool_()
    assert table.schema.field("currency").type == pa.string()  # a field the declared columns do not know
    assert table.schema.field("uuid").nullable is False
    assert table.column("images").to_pylist() == ['["u1","u2"]', '[{"url":"u3","width":10}]']
    assert table.column("current_price").to_pylist() == [5.0, 7.5]
    assert table.column("updated_at").to_pylist() == [datetime(2026, 3, 9, 10, 40, 31, tzinfo=UTC), None]
    # the same rows as dicts, for a batch handed to dlt's normalizer, say the same
    assert flat_columns(rows[0])["images"] == '["u1","u2"]'


def test_a_value_that_does_not_fit_its_column_sends_the_batch_to_dlts_normalizer() -> None:
    converter = ArrowRows(PRODUCT_COLUMNS)
    assert (
        converter.table([product_row({"uuid": "a", "rating": 4.5}, catalog="c", fingerprint=1)]) is not None
    )
    assert converter.table([product_row({"uuid": "b", "rating": "4.5"}, catalog="c", fingerprint=2)]) is None
    # a new field keeps the type it was first seen with for the rest of the run
    assert converter.table([product_row({"uuid": "c", "stock": 3}, catalog="c", fingerprint=3)]) is not None
    assert converter.table([product_row({"uuid": "d", "stock": 3.5}, catalog="c", fingerprint=4)]) is None
    assert converter.table([product_row({"uuid": "e", "stock": True}, catalog="c", fingerprint=5)]) is None


def test_a_batch_whose_columns_are_known_converts_in_one_pass_to_the_same_table() -> None:
    converter = ArrowRows(PRODUCT_COLUMNS)
    first = [
        product_row(
            {
                "uuid": "a",
                "gender": "male",
                "stock": 3,
                "images": ["u1"],
                "updatedAt": "2026-03-09T10:40:31Z",
            },
            catalog="c",
            fingerprint=1,
        )
    ]
    assert converter.table(first) is not None  # decides "stock" (bigint) and learns "images" holds lists
    later = [
        product_row(
            {"uuid": "b", "gender": "female", "stock": 4, "images": [{"url": "u2"}], "updatedAt": None},
            catalog="c",
            fingerprint=2,
        ),
        product_row({"uuid": "c", "stock": None, "isActive": False}, catalog="c", fingerprint=3),
    ]
    one_pass = converter.table(later)
    column_by_column = converter._checked_table(later, _columns_of(later))
    assert one_pass is not None and column_by_column is not None
    assert one_pass.equals(column_by_column)
    assert one_pass.schema.equals(column_by_column.schema)
    assert one_pass.column("images").to_pylist() == ['[{"url":"u2"}]', None]


def test_a_list_where_a_known_text_column_had_text_becomes_json_text() -> None:
    converter = ArrowRows(PRODUCT_COLUMNS)
    first = product_row({"uuid": "a", "gender": "male", "stock": 3}, catalog="c", fingerprint=1)
    assert converter.table([first]) is not None
    table = converter.table([product_row({"uuid": "b", "gender": ["male", "x"]}, catalog="c", fingerprint=2)])
    assert table is not None
    assert table.column("gender").to_pylist() == ['["male","x"]']
    # a known bigint column still refuses what arrow itself would quietly convert (True as 1, 2.5 as 2)
    for stock in (True, 2.5):
        row = product_row({"uuid": "d", "gender": "x", "stock": stock}, catalog="c", fingerprint=3)
        assert converter.table([row]) is None


def test_rows_read_back_from_the_destination_convert_too() -> None:
    stored = {"uuid": "a", "updated_at": datetime(2026, 3, 9, tzinfo=UTC), "images": ["u1"], "hit_hash": 7}
    table = ArrowRows(PRODUCT_COLUMNS).table(
        [stored, product_row({"uuid": "b", "updatedAt": "2026-03-10T00:00:00Z"}, catalog="c", fingerprint=1)]
    )
    assert table is not None
    assert table.column("updated_at").to_pylist() == [
        datetime(2026, 3, 9, tzinfo=UTC),
        datetime(2026, 3, 10, tzinfo=UTC),
    ]
    assert table.column("images").to_pylist() == ['["u1"]', None]


def test_price_rows_convert_with_their_declared_types() -> None:
    rows = [price_row({"uuid": "u", "updatedAt": "2026-03-09T10:40:31Z", "currentPrice": 3}, "c", OBSERVED)]
    table = ArrowRows(PRICE_HISTORY_COLUMNS).table(rows)
    assert table is not None
    assert table.column("current_price").to_pylist() == [3.0]
    assert table.column("observed_at").to_pylist() == [OBSERVED]


def test_a_runs_shared_converter_converts_early_only_what_the_extract_would_convert_alike() -> None:
    shared = SharedArrowRows(PRODUCT_COLUMNS)

    def rows(uuid: str, **fields: object) -> list[Row]:
        return [product_row({"uuid": uuid, **fields}, catalog="c", fingerprint=1)]

    # before the extract made the converter (with the schema's columns), waiting batches stay rows
    assert shared.convert_early(rows("a", stock=1)) is None
    shared.begin_segment({"stock": {"name": "stock", "data_type": "text"}})
    first = shared.table(rows("a", stock="1"))
    assert first is not None and first.schema.field("stock").type == pa.string()
    assert shared.convert_early(rows("b", stock="2")) is not None
    # a batch that does not fit: dlt types its columns from dict rows, so the batches after it wait as rows
    # until the extract's next segment makes the converter anew from the schema
    assert shared.convert_early(rows("c", stock=3, size=1)) is None
    assert shared.convert_early(rows("d", stock="4")) is None
    after = shared.table(rows("d", stock="4", size="M"))  # the rest of that segment: the same converter
    assert after is not None and after.schema.field("size").type == pa.string()
    shared.begin_segment({"size": {"name": "size", "data_type": "bigint"}})  # as dlt typed the dict rows
    again = shared.convert_early(rows("e", stock="5", size=2))
    assert again is not None and again.schema.field("size").type == pa.int64()


def test_a_batch_converted_early_keeps_its_rows_in_tables() -> None:
    converters = RunConverters()
    hit = {"uuid": "a", "currentPrice": 5, "updatedAt": "2026-03-09T10:40:31Z"}
    product = product_row(hit, catalog="c", fingerprint=1)
    batch = WalkBatch(products=[product], prices=[price_row(hit, "c", OBSERVED)])
    converters.convert_early(batch)
    assert batch.products and batch.product_table is None  # no converter before the first segment's extract
    converters.products.begin_segment({})
    converters.prices.begin_segment({})
    converters.convert_early(batch)
    assert batch.products == [] and batch.prices == [] and batch.rows == 2
    assert batch.product_table is not None and batch.product_table.column("uuid").to_pylist() == ["a"]
    assert batch.price_table is not None and batch.price_table.column("current_price").to_pylist() == [5.0]
