"""A catalog's rows reach the loads in batches (``octogen_source.source.catalog_walk``): grouped up to
``BATCH_ROWS`` rows, and held no longer than ``BATCH_SECONDS`` (a walk finding few rows hands them over as it
goes instead of at the end of the catalog). The real walk and client against the sandbox over HTTP; only the
destination is stood in for (nothing loaded)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.source import catalog_walk, resolve_settings
from octogen_source.source.catalog_walk import CatalogWalk, WalkBatch
from octogen_source.source.known_versions import KnownVersions
from octogen_source.source.records import Row
from octogen_source.source.report import WalkObserver
from octogen_source.source.settings import SourceSettings

PAGE_SIZE = 10


class _NothingLoaded:
    def known_versions(self, catalog: str, *, details: bool) -> KnownVersions:
        return KnownVersions()

    def stored_products(self, uuids: Sequence[str]) -> list[Row]:
        return []

    def stored_catalog(self, catalog: str) -> Row | None:
        return None


def _settings(sandbox: Sandbox, catalog: str) -> SourceSettings:
    return resolve_settings(
        {
            "api_key": sandbox.api_key,
            "base_url": sandbox.base_url,
            "catalogs": [catalog],
            "details": False,
            "page_size": PAGE_SIZE,
        }
    )


def _walked(sandbox: Sandbox, catalog: str) -> list[WalkBatch]:
    settings = _settings(sandbox, catalog)

    async def walk() -> list[WalkBatch]:
        return [batch async for batch in CatalogWalk(settings, _NothingLoaded(), WalkObserver()).batches()]

    return asyncio.run(walk())


def _products_per_batch(batches: list[WalkBatch]) -> list[int]:
    return [len(batch.products) for batch in batches if batch.products]


def test_rows_wait_in_a_batch_no_longer_than_batch_seconds(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = sandbox.granted_catalogs()[0]
    products = len(sandbox.truth_search_items(catalog))
    assert products > 2 * PAGE_SIZE
    monkeypatch.setattr(catalog_walk, "BATCH_ROWS", 10**6)

    monkeypatch.setattr(catalog_walk, "BATCH_SECONDS", math.inf)
    assert _products_per_batch(_walked(sandbox, catalog)) == [products]  # the catalog's end flushes it

    monkeypatch.setattr(catalog_walk, "BATCH_SECONDS", 0.0)
    per_page = _products_per_batch(_walked(sandbox, catalog))  # each page's rows as they come
    assert sum(per_page) == products and max(per_page) <= PAGE_SIZE
    assert len(per_page) >= products / PAGE_SIZE


class _Recorded(_NothingLoaded):
    """Records each read in ``events``, beside the batches the test takes."""

    def __init__(self, events: list[str]) -> None:
        self._events = events

    def known_versions(self, catalog: str, *, details: bool) -> KnownVersions:
        self._events.append("known_versions")
        return super().known_versions(catalog, details=details)

    def stored_catalog(self, catalog: str) -> Row | None:
        self._events.append("stored_catalog")
        return {"catalog": catalog, "kept_column": "as loaded"}


def test_a_catalogs_stored_row_is_read_before_its_walk_so_its_end_waits_for_no_read(sandbox: Sandbox) -> None:
    # in a sync in segments a read at the walk's end waited for the next segment's extract, behind a load
    catalog = sandbox.granted_catalogs()[0]
    settings = _settings(sandbox, catalog)
    events: list[str] = []

    async def walk() -> list[WalkBatch]:
        batches = []
        async for batch in CatalogWalk(settings, _Recorded(events), WalkObserver()).batches():
            events.append("batch")
            batches.append(batch)
        return batches

    batches = asyncio.run(walk())
    assert events[:2] == ["known_versions", "stored_catalog"]
    assert events[2:] == ["batch"] * len(batches)  # nothing unlisted: no read after the first page
    rows = [row for batch in batches for row in batch.catalogs]
    assert len(rows) == 1
    assert rows[0]["kept_column"] == "as loaded"  # the stored row under what this run learned
    assert rows[0]["product_count"] == len(sandbox.truth_search_items(catalog))
