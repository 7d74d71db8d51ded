"""A first load into DuckDB appends; anything else merges."""

from __future__ import annotations

from pathlib import Path

import duckdb

from octogen_source.source.first_load import holds_no_products


def test_only_a_duckdb_file_without_any_products_table_counts_as_empty(tmp_path: Path) -> None:
    database = tmp_path / "sync.duckdb"
    assert holds_no_products(str(database))
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE SCHEMA other; CREATE TABLE other.catalogs (catalog TEXT)")
    assert holds_no_products(str(database))
    with duckdb.connect(str(database)) as connection:
        # another dataset's products (or an empty table): merge, an append could duplicate rows
        connection.execute("CREATE TABLE other.products (uuid TEXT)")
    assert not holds_no_products(str(database))


def test_memory_and_remote_databases_always_merge() -> None:
    for path in (":memory:", "md:my_db", "motherduck:my_db", "s3://bucket/file.duckdb"):
        assert not holds_no_products(path)


def test_a_file_that_is_not_a_database_merges(tmp_path: Path) -> None:
    garbage = tmp_path / "not.duckdb"
    garbage.write_text("not a database")
    assert not holds_no_products(str(garbage))
