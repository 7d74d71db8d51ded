"""Choosing tables (``sources.octogen.tables``, ``--tables``: dlt's ``with_resources``) and a schema contract
(``sources.octogen.schema_contract``, ``--schema-contract``), against the sandbox into real DuckDB files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncError
from tests.sync_support import (
    ExpectedTables,
    SyncTarget,
    assert_tables_match,
    decode_nested,
    read_table,
    table_names,
)

DLT_TABLES = {"_dlt_loads", "_dlt_pipeline_state", "_dlt_version"}
ALWAYS = DLT_TABLES | {"sync_runs"}


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=2, products=30), tmp_path)


def test_only_products(target: SyncTarget) -> None:
    report = target.sync(tables=("products",))
    # the view is made from whatever is loaded; no lookup is made for a table that is not loaded
    assert table_names(target.database) == ALWAYS | {"products", "products_current"}
    assert report.total("lookups") == 0 and target.sandbox.request_counts["lookup"] == 0
    expected = ExpectedTables(target.sandbox, details=False)
    expected.observe()
    products = read_table(target.database, "products", "uuid")
    assert set(products) == set(expected.products)
    for uuid, record in products.items():
        assert isinstance(record.pop("hit_hash"), int)
        assert decode_nested(record, expected.products[uuid]) == expected.products[uuid]


def test_only_product_details(target: SyncTarget) -> None:
    target.sync(tables=("product_details",))
    names = table_names(target.database)
    assert {"product_details", "product_details__sizes"} <= names
    assert not names & {"products", "catalogs", "price_history"}
    expected = ExpectedTables(target.sandbox)
    expected.observe()
    details = read_table(target.database, "product_details", "uuid")
    assert set(details) == set(expected.product_details)


def test_a_table_added_later_is_backfilled_by_refetch_all_without_duplicates(target: SyncTarget) -> None:
    target.sync(tables=("price_history",))
    target.sync(full_refresh=True)  # every table, every product again: price_history merged, not appended
    expected = ExpectedTables(target.sandbox)
    expected.observe()
    assert_tables_match(target.database, expected)


def test_a_frozen_contract_refuses_a_new_table_in_one_line(target: SyncTarget) -> None:
    target.sync(tables=("products",))
    with pytest.raises(SyncError) as failed:
        target.sync(schema_contract="freeze")
    assert str(failed.value) == (
        "the schema contract refused the data during extract: tables are freeze"
        " (sources.octogen.schema_contract), and this run would change table 'catalogs'; nothing was loaded"
    )
    assert not failed.value.retryable
    assert table_names(target.database) == ALWAYS | {"products", "products_current"}
    # the contract is the run's: without it the next run evolves the schema
    target.sync(full_refresh=True)
    expected = ExpectedTables(target.sandbox)
    expected.observe()
    assert_tables_match(target.database, expected)


def test_a_frozen_contract_lets_a_run_that_changes_no_schema_through(target: SyncTarget) -> None:
    expected = ExpectedTables(target.sandbox)
    target.sync()
    expected.observe()
    target.sandbox.update_prices(target.sandbox.granted_catalogs()[0], 3)
    report = target.sync(schema_contract={"tables": "freeze", "columns": "freeze"})
    assert report.total("changed") == 3
    expected.observe()
    assert_tables_match(target.database, expected)
