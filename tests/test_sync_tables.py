"""Tests of the sync tests' support (tests/sync_support.py): the flattening and the whole-table reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sync_support import DATASET, as_stored, read_table


def test_as_stored_flattens_objects_and_keeps_lists() -> None:
    wire = {
        "productUrl": "u",
        "brand": None,
        "identifiers": {"productId": "p", "gtin": None},
        "images": [{"url": "a", "width": 1}, {"url": "b"}],
        "tags": ["x", "y"],
        "videos": [],
    }
    assert as_stored(wire) == {
        "product_url": "u",
        "identifiers__product_id": "p",
        "images": [{"url": "a", "width": 1}, {"url": "b"}],
        "tags": ["x", "y"],
    }


@pytest.fixture
def loaded_database(tmp_path: Path) -> Path:
    import dlt

    pipeline = dlt.pipeline(
        "support_check",
        destination=dlt.destinations.duckdb(str(tmp_path / "support.duckdb")),
        dataset_name=DATASET,
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.run(
        [
            {"id": 1, "tags": ["b", "a"], "images": [{"url": "x", "sizes": [1, 2]}], "meta": {"k": "v"}},
            {"id": 2, "tags": [], "images": None},
        ],
        table_name="things",
        primary_key="id",
        write_disposition="merge",
    )
    return tmp_path / "support.duckdb"


def test_read_table_reassembles_child_tables(loaded_database: Path) -> None:
    assert read_table(loaded_database, "things", "id") == {
        1: {"id": 1, "tags": ["b", "a"], "images": [{"url": "x", "sizes": [1, 2]}], "meta__k": "v"},
        2: {"id": 2},
    }
