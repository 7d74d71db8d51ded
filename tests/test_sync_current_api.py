"""The sync against today's API (the sandbox's default generation) where it differs from the May 2026 one:
object-valued fields in typed columns, a bounded schema, pages that repeat products, a last page without
``nextCursor``, index-only lookups, the credit running out, catalogs that must be named."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from octogen_source.client import OctogenClient
from octogen_source.sandbox import Sandbox
from octogen_source.source.destination_state import DestinationState
from octogen_source.source.known_versions import KnownVersions
from octogen_source.sync import SyncError
from tests.sync_support import (
    DATASET,
    ExpectedTables,
    SyncTarget,
    as_stored_hit,
    assert_tables_match,
    price_key,
    read_table,
    table_names,
    totals,
    typed_columns,
)

PRODUCTS_PER_CATALOG = 60
TABLES = {
    "catalogs",
    "products",
    "price_history",
    "product_details",
    "products_current",
}
"""The root tables (and the view); child tables of product_details come from lists of the records."""


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    sandbox = sandbox_factory(catalogs=3, products=PRODUCTS_PER_CATALOG, ungranted=1, seed=11)
    assert sandbox.api_generation == "current"
    return SyncTarget(sandbox, tmp_path)


def column_types(database: Path, table: str) -> dict[str, str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ?",
            [DATASET, table],
        ).fetchall()
    return dict(rows)


def all_columns(database: Path) -> set[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = ?",
            [DATASET],
        ).fetchall()
    return {name for (name,) in rows}


def test_object_fields_land_in_typed_columns_with_one_type_each(target: SyncTarget) -> None:
    target.sync()
    products = column_types(target.database, "products")
    assert {name: products[name] for name in TYPED_PRODUCT_COLUMNS} == TYPED_PRODUCT_COLUMNS
    assert "raw_score" not in products and "display_match_score" not in products
    assert not [name for name in all_columns(target.database) if "__v_" in name], "variant columns"

    hits = {
        hit["uuid"]: hit
        for catalog in target.sandbox.granted_catalogs()
        for hit in target.sandbox.truth_search_items(catalog)
    }
    assert all(isinstance(hit["brand"], dict | None) for hit in hits.values())  # objects, not names
    with duckdb.connect(str(target.database), read_only=True) as connection:
        view = {
            uuid: (brand, rating, rating_count, image_url, currency)
            for uuid, brand, rating, rating_count, image_url, currency in connection.execute(
                "SELECT uuid, brand, rating, rating_count, image_url, currency FROM octogen.products_current"
            ).fetchall()
        }
    typed = {uuid: typed_columns(hit) for uuid, hit in hits.items()}
    assert view == {
        uuid: (
            typed[uuid].get("brand"),
            typed[uuid].get("rating"),
            typed[uuid].get("rating_count"),
            typed[uuid].get("primary_image_url"),
            hit["currency"],
        )
        for uuid, hit in hits.items()
    }
    assert sum(value[1] is not None for value in view.values()) > len(view) // 2  # real ratings, typed


TYPED_PRODUCT_COLUMNS = {
    "brand": "VARCHAR",
    "brand_json": "VARCHAR",
    "rating": "DOUBLE",
    "rating_count": "BIGINT",
    "primary_image_url": "VARCHAR",
    "currency": "VARCHAR",
    "in_stock": "BOOLEAN",
    "updated_at": "TIMESTAMP WITH TIME ZONE",
    "current_price": "DOUBLE",
}


def test_enrichment_attribute_names_add_no_table_or_column(target: SyncTarget) -> None:
    sandbox = target.sandbox
    target.sync()
    tables, columns = table_names(target.database), all_columns(target.database)
    assert not [name for name in tables if "enrichment" in name or "attributes" in name]
    details = read_table(target.database, "product_details", "uuid")
    names = {
        name
        for record in details.values()
        if isinstance(record.get("enrichment"), str)
        for name in json.loads(record["enrichment"]).get("attributes") or {}
    }
    assert len(names) >= 5, names  # many attribute names, each kept inside the JSON value

    for catalog in sandbox.granted_catalogs():
        sandbox.add_products(catalog, 20)
    report = target.sync()
    assert totals(report)["new"] == 40
    assert table_names(target.database) == tables
    assert all_columns(target.database) == columns


def test_products_repeated_across_pages_are_loaded_and_looked_up_once(target: SyncTarget) -> None:
    report = target.sync(page_size=7)
    assert sum(catalog.repeated for catalog in report.catalogs) > 0, "the sandbox repeats products"
    live = 2 * PRODUCTS_PER_CATALOG
    assert totals(report) == {"new": live, "changed": 0, "removed": 0, "lookups": live}
    assert target.sandbox.request_counts["lookup"] == live
    expected = ExpectedTables(target.sandbox)
    expected.observe()
    assert_tables_match(target.database, expected)  # fails on a duplicate uuid

    assert totals(target.sync(page_size=7)) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    assert target.sandbox.request_counts["lookup"] == 0


def test_a_single_page_without_next_cursor_loads_its_rows(target: SyncTarget) -> None:
    catalog = target.sandbox.granted_catalogs()[0]
    report = target.sync(catalogs=(catalog,), details=False, page_size=100)
    assert report.catalogs[0].pages == 1
    assert totals(report)["new"] == PRODUCTS_PER_CATALOG
    assert set(read_table(target.database, "products", "uuid")) == {
        hit["uuid"] for hit in target.sandbox.truth_search_items(catalog)
    }


def test_each_catalogs_first_page_is_asked_for_while_its_loaded_versions_are_read(
    target: SyncTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.sync(details=False)  # something loaded, for the next run to read
    searched = threading.Event()
    search_page = OctogenClient._search_page

    async def searching(self: OctogenClient, *arguments: Any) -> Any:
        searched.set()
        return await search_page(self, *arguments)

    read_known_versions = DestinationState.known_versions
    searched_during_reads: list[bool] = []

    def known_versions(self: DestinationState, catalog: str, *, details: bool) -> KnownVersions:
        # a walk that asked for its first page only after this read would leave it waiting the whole 10 s
        searched_during_reads.append(searched.wait(timeout=10))
        return read_known_versions(self, catalog, details=details)

    monkeypatch.setattr(OctogenClient, "_search_page", searching)
    monkeypatch.setattr(DestinationState, "known_versions", known_versions)
    report = target.sync(details=False)
    assert searched_during_reads and all(searched_during_reads)
    assert totals(report) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    assert set(read_table(target.database, "products", "uuid")) == {
        hit["uuid"]
        for catalog in target.sandbox.granted_catalogs()
        for hit in target.sandbox.truth_search_items(catalog)
    }


def _remove_before_first_lookup(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, *, resolution_mode: str | None
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Wraps the real wire lookup so that its first call removes a product of the catalog being looked up
    (over the sandbox's own controls) before any lookup request is sent; ``resolution_mode`` replaces what
    the sync asks for (``"auto"``: an API that ignores index_only). The sandbox cannot race a search with a
    removal by itself; everything else is the real client and server."""
    removed: list[str] = []
    last_hits: dict[str, dict[str, Any]] = {}
    real_lookup = OctogenClient.lookup_product_wire

    async def lookup_after_a_removal(self: OctogenClient, url: str, **arguments: Any) -> dict[str, Any]:
        if not removed:
            for catalog in sandbox.granted_catalogs():
                hits = {hit["uuid"]: hit for hit in sandbox.truth_search_items(catalog)}
                if any(hit["productUrl"] == url for hit in hits.values()):
                    removed.extend(sandbox.remove_products(catalog, 1))
                    last_hits[removed[0]] = {**hits[removed[0]], "catalog": catalog}
        if resolution_mode is not None:
            arguments["resolution_mode"] = resolution_mode
        return await real_lookup(self, url, **arguments)

    monkeypatch.setattr(OctogenClient, "lookup_product_wire", lookup_after_a_removal)
    return removed, last_hits


@pytest.mark.parametrize("resolution_mode", [None, "auto"], ids=["as-sent", "api-ignores-index-only"])
def test_a_product_that_left_the_index_is_removed_never_resolved_on_demand(
    target: SyncTarget, monkeypatch: pytest.MonkeyPatch, resolution_mode: str | None
) -> None:
    sandbox = target.sandbox
    removed, last_hits = _remove_before_first_lookup(sandbox, monkeypatch, resolution_mode=resolution_mode)
    # the wrapper changes the sandbox (this process's) from inside the walk: a walk in a thread of it
    report = target.sync(walk_in_process=False)
    monkeypatch.undo()

    live = 2 * PRODUCTS_PER_CATALOG - 1
    assert totals(report) == {"new": live, "changed": 0, "removed": 1, "lookups": live + 1}
    if resolution_mode == "auto":
        # proof that the API would have answered it: on demand, without a uuid
        hit = last_hits[removed[0]]
        with sandbox_client(sandbox) as client:
            answer = client.post("/products/lookup", json={"url": hit["productUrl"]}).json()
        assert (answer["source"], answer["product"]["uuid"]) == ("on_demand", None)
    details = read_table(target.database, "product_details", "uuid")
    assert removed[0] not in details and len(details) == live
    assert all(record.get("source") == "indexed" for record in details.values())
    expected = ExpectedTables(sandbox)
    expected.observe()
    hit = last_hits[removed[0]]
    expected.products[removed[0]] = as_stored_hit(hit)
    expected.removed = set(removed)
    # the version its search showed, in the history as in its row
    expected.prices.add(price_key(removed[0], hit["updatedAt"], hit["currentPrice"], hit["originalPrice"]))
    assert_tables_match(target.database, expected)


def sandbox_client(sandbox: Sandbox) -> Any:
    import httpx

    return httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {sandbox.api_key}"}, timeout=10
    )


def test_exhausted_credit_stops_the_run_with_one_line_and_loads_nothing(
    target: SyncTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = target.sandbox
    expected = ExpectedTables(sandbox)
    target.sync()
    expected.observe()
    before = {table: read_table(target.database, table, key) for table, key in KEYED_TABLES}

    sandbox.update_prices(sandbox.granted_catalogs()[0], 5)
    sandbox.add_products(sandbox.granted_catalogs()[1], 5)
    # the credit runs out in the middle of the run, at its first lookup (after search pages were read); the
    # wrapper only flips the sandbox's switch, the requests are the real client's
    real_lookup = OctogenClient.lookup_product_wire

    async def lookup_when_credit_runs_out(self: OctogenClient, url: str, **arguments: Any) -> dict[str, Any]:
        sandbox.exhaust_credit()
        return await real_lookup(self, url, **arguments)

    monkeypatch.setattr(OctogenClient, "lookup_product_wire", lookup_when_credit_runs_out)
    with pytest.raises(SyncError) as failure:
        # the wrapper flips this process's sandbox from inside the walk: a walk in a thread of it
        target.sync(walk_in_process=False)
    monkeypatch.undo()
    message = str(failure.value)
    assert "credit" in message and "top up" in message and "\n" not in message
    assert sandbox.request_counts["search"] >= 1
    assert {table: read_table(target.database, table, key) for table, key in KEYED_TABLES} == before

    sandbox.restore_credit()
    report = target.sync()
    assert totals(report) == {"new": 5, "changed": 5, "removed": 0, "lookups": 10}
    expected.observe()
    assert_tables_match(target.database, expected)


KEYED_TABLES = (("products", "uuid"), ("product_details", "uuid"), ("catalogs", "catalog"))


def test_without_named_catalogs_the_run_says_how_to_name_them(target: SyncTarget) -> None:
    with pytest.raises(SyncError) as failure:
        target.sync(catalogs=())
    message = str(failure.value)
    assert "--catalog" in message and "--discover" in message and "2026-07-09" in message
    assert target.sandbox.request_counts["search"] == 0
    assert not target.database.exists() or "products" not in table_names(target.database)


def test_an_unknown_catalog_fails_with_one_line_before_anything_is_loaded(target: SyncTarget) -> None:
    ungranted = target.sandbox.all_catalogs()[-1]
    for catalog in ("no_such_catalog", ungranted):
        with pytest.raises(SyncError) as failure:
            target.sync(catalogs=(catalog,))
        assert str(failure.value).startswith(f"unknown catalog {catalog!r}")
        assert "--discover" in str(failure.value)


def test_the_catalogs_table_says_what_the_api_says_now(target: SyncTarget) -> None:
    sandbox = target.sandbox
    target.sync(details=False)
    catalogs = read_table(target.database, "catalogs", "catalog")
    summaries = {summary["catalog"]: summary for summary in sandbox.truth_catalog_summaries()}
    # without lookups: the display name from the hits, the count from the walk
    assert catalogs == {
        key: {"catalog": key, "display_name": entry["displayName"], "product_count": entry["productCount"]}
        for key, entry in summaries.items()
    }
    first = sandbox.granted_catalogs()[0]
    sandbox.add_products(first, 3)
    sandbox.remove_products(first, 1)
    target.sync()  # the lookups of the new products add the source URL; counts follow the catalog
    catalogs = read_table(target.database, "catalogs", "catalog")
    assert catalogs[first] == {
        "catalog": first,
        "display_name": summaries[first]["displayName"],
        "product_count": PRODUCTS_PER_CATALOG + 2,
        "source_base_url": summaries[first]["sourceBaseUrl"],
    }

    target.sync(details=False, q="dress")  # a filtered walk changes no count and forgets nothing
    assert read_table(target.database, "catalogs", "catalog") == catalogs


@pytest.mark.parametrize("generation", ["current", "seed"])
def test_products_and_prices_take_the_arrow_path_in_both_generations(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, generation: str
) -> None:
    # counts the batches handed to dlt as dict rows (the slow path a value that does not fit its column takes)
    import octogen_source.source.tables as tables

    slow_batches: list[int] = []
    real_flat_columns = tables.flat_columns

    def counted(row: dict[str, Any]) -> dict[str, Any]:
        slow_batches.append(1)
        return real_flat_columns(row)

    monkeypatch.setattr(tables, "flat_columns", counted)
    sandbox = sandbox_factory(catalogs=2, products=120, seed=8, generation=generation)
    target = SyncTarget(sandbox, tmp_path)
    target.sync(page_size=25)
    sandbox.update_prices(sandbox.granted_catalogs()[0], 7)
    sandbox.set_api_generation("seed" if generation == "current" else "current")  # and after the API moved
    target.sync(page_size=25)
    assert slow_batches == []
    assert not [name for name in all_columns(target.database) if "__v_" in name]
