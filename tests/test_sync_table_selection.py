"""Choosing tables (``sources.octogen.tables``, ``--tables``: dlt's ``with_resources``) and a schema contract
(``sources.octogen.schema_contract``, ``--schema-contract``), against the sandbox into real DuckDB files."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from octogen_source.commands.sync import main
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


@pytest.fixture(autouse=True)
def _cli_logging() -> Iterator[None]:
    """The CLI's logging setup undone."""
    logger = logging.getLogger("octogen_source")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=2, products=30), tmp_path)


def test_only_products_from_the_command_line(
    target: SyncTarget, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = target.sandbox
    monkeypatch.setenv("OCTO_API_KEY", sandbox.api_key)
    monkeypatch.setenv("SOURCES__OCTOGEN__BASE_URL", sandbox.base_url)
    monkeypatch.setenv("SOURCES__OCTOGEN__CATALOGS", ",".join(sandbox.granted_catalogs()))
    monkeypatch.setenv("DLT_DATA_DIR", str(target.pipelines_dir))
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "ERROR")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(target.database))
    sandbox.reset_counts()
    assert main(["--tables", "products", "--json"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["totals"]["lookups"] == 0
    # the view is made from whatever is loaded; no lookup is made for a table that is not loaded
    assert table_names(target.database) == ALWAYS | {"products", "products_current"}
    assert sandbox.request_counts["lookup"] == 0
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
    # the products loaded without their details are looked up now: the first new table met is one of the
    # first page's (which of the two dlt extracts first is its business)
    assert re.fullmatch(
        "the schema contract refused the data during extract: tables are freeze"
        r" \(sources.octogen.schema_contract\), and this run would change table"
        " '(product_details|price_history)'; nothing was loaded",
        str(failed.value),
    ), str(failed.value)
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


def test_a_contract_stays_with_the_tables_until_another_is_given(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # dlt stores a contract in the schema with the tables it was applied to: a later run without one keeps it
    target = SyncTarget(sandbox_factory(catalogs=2, products=20, generation="seed"), tmp_path)
    target.sync()
    target.sync(schema_contract="freeze", full_refresh=True)
    before = table_names(target.database)
    target.sandbox.set_api_generation("current")  # its lookups fill child tables the May 2026 API left empty
    with pytest.raises(SyncError) as failed:
        target.sync(full_refresh=True)
    assert str(failed.value) == (
        "the schema contract refused the data during normalize: columns are freeze"
        " (sources.octogen.schema_contract), and this run would change column 'catalog_key' of table"
        " 'product_details'; nothing was loaded"
    )
    assert table_names(target.database) == before
    target.sync(schema_contract="evolve", full_refresh=True)
    assert table_names(target.database) > before
    expected = ExpectedTables(target.sandbox)
    expected.observe()
    assert_tables_match(target.database, expected)
