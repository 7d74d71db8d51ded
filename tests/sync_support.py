"""Test support for the sync tests: sync into a DuckDB file, read whole tables back and build the expected
tables from the sandbox's truth (imported by the sync, source, warehouse and DAG tests, and bench/soak.py;
tested in tests/test_sync_tables.py).

The reader is written independently of ``octogen_source.source.stored_rows`` (plain DuckDB SQL over the
information schema), so the tests do not check the production reassembly with itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from dlt.common.normalizers.naming.snake_case import NamingConvention

from octogen_source.retries import RetryPolicy
from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncOptions, SyncReport, run_sync

DATASET = "octogen"
FAST_RETRY = RetryPolicy(max_attempts=3, max_total_seconds=5.0, initial_backoff=0.01, max_backoff=0.05)
_NAMING = NamingConvention()

Record = dict[str, Any]


# ---- syncing in tests -------------------------------------------------------------------------------------


@dataclass
class SyncTarget:
    """Where a test syncs: a DuckDB file and a pipelines dir in tmp_path."""

    sandbox: Sandbox
    root: Path
    pipeline_name: str = "octogen_sync"

    @property
    def database(self) -> Path:
        return self.root / "sync.duckdb"

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    def options(self, **overrides: Any) -> SyncOptions:
        settings: dict[str, Any] = {
            # named, as the current API requires (it no longer lists catalogs); catalogs=() lists them
            "catalogs": tuple(self.sandbox.granted_catalogs()),
            "api_key": self.sandbox.api_key,
            "base_url": self.sandbox.base_url,
            "duckdb_path": str(self.database),
            "pipelines_dir": str(self.pipelines_dir),
            "pipeline_name": self.pipeline_name,
            "retry": FAST_RETRY,
        }
        settings.update(overrides)
        return SyncOptions(**settings)

    def sync(self, **overrides: Any) -> SyncReport:
        self.sandbox.reset_counts()
        return run_sync(self.options(**overrides))


def totals(report: SyncReport) -> dict[str, int]:
    return {name: report.total(name) for name in ("new", "changed", "removed", "lookups")}


# ---- reading tables back ----------------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        if value.microsecond == 0:
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        return value.isoformat()
    return value


def _rows(connection: duckdb.DuckDBPyConnection, table: str) -> Iterator[Record]:
    cursor = connection.execute(f'SELECT * FROM "{DATASET}"."{table}"')
    names = [column[0] for column in cursor.description or ()]
    for values in cursor.fetchall():
        yield dict(zip(names, values, strict=True))


def _data(row: Record) -> Record:
    return {
        name: _iso(value) for name, value in row.items() if not name.startswith("_dlt_") and value is not None
    }


def table_names(database: Path) -> set[str]:
    with duckdb.connect(str(database)) as connection:
        found = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [DATASET]
        ).fetchall()
    return {name for (name,) in found}


def read_rows(database: Path, table: str) -> list[Record]:
    """The root rows of ``table`` as they are (nulls and _dlt_ columns dropped), no children."""
    with duckdb.connect(str(database)) as connection:
        return [_data(row) for row in _rows(connection, table)]


def read_table(database: Path, table: str, key: str) -> dict[Any, Record]:
    """``table`` as records keyed by ``key``: root columns plus every child table put back as lists.

    Fails on a duplicate key: a table keyed by ``key`` must hold each key once.
    """
    with duckdb.connect(str(database)) as connection:
        existing = {
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [DATASET]
            ).fetchall()
        }
        if table not in existing:
            return {}
        records: dict[Any, Record] = {}
        nodes: dict[str, Record] = {}
        for row in _rows(connection, table):
            record = _data(row)
            assert row[key] not in records, f"duplicate {key} {row[key]!r} in {table}"
            records[row[key]] = record
            nodes[row["_dlt_id"]] = record
        children = sorted(
            (name for name in existing if name.startswith(table + "__")), key=lambda name: name.count("__")
        )
        for child in children:
            # the parent is the longest table name the child's name extends: an object flattened into its
            # parent gives a child ``parent__object__list`` whose field is ``object__list``
            parent_table = max((name for name in existing if child.startswith(name + "__")), key=len)
            field_name = child[len(parent_table) + 2 :]
            rows = sorted(_rows(connection, child), key=lambda r: (r["_dlt_parent_id"], r["_dlt_list_idx"]))
            for row in rows:
                parent = nodes.get(row["_dlt_parent_id"])
                assert parent is not None, f"orphan row in {child}"
                data = _data(row)
                if data and set(data) <= {"value"}:
                    element: Any = data["value"]
                else:
                    element = data
                    nodes[row["_dlt_id"]] = data
                parent.setdefault(field_name, []).append(element)
        return records


# ---- the expected shape of a wire record in the destination ----------------------------------------------


def as_stored(record: Record) -> Record:
    """A wire record as dlt stores it: snake_case names, objects flattened with ``__``, lists kept as lists of
    stored elements, nulls and empty lists absent."""
    stored: Record = {}

    def put(name: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for key, inner in value.items():
                put(f"{name}__{_NAMING.normalize_identifier(key)}", inner)
        elif isinstance(value, list):
            elements = [
                as_stored(item) if isinstance(item, dict) else item for item in value if item is not None
            ]
            if elements:
                stored[name] = elements
        else:
            stored[name] = value

    for key, value in record.items():
        put(_NAMING.normalize_identifier(key), value)
    return stored


VOLATILE_HIT_FIELDS = ("rawScore", "displayMatchScore")
JSON_DETAIL_FIELDS = ("enrichment", "attributes")


def typed_columns(record: Record) -> Record:
    """The typed columns the tables derive from a wire hit or product (brand name, rating average and count,
    primary image URL), written out here from the contract, independently of the production code."""
    typed: Record = {}
    brand = record.get("brand")
    if isinstance(brand, dict):
        typed["brand"] = brand.get("name")
        typed["brand_json"] = brand
    rating = record.get("rating")
    if isinstance(rating, dict):
        average = rating.get("average")
        typed["rating"] = None if average is None else float(average)
        typed["rating_count"] = rating.get("count")
    primary = record.get("primaryImage")
    images = record.get("images") or []
    first = images[0] if images else None
    if isinstance(primary, dict) and (primary.get("cdnUrl") or primary.get("url")):
        typed["primary_image_url"] = primary.get("cdnUrl") or primary.get("url")
    elif record.get("imageUrl"):
        typed["primary_image_url"] = record["imageUrl"]
    elif isinstance(first, str):
        typed["primary_image_url"] = first
    elif isinstance(first, dict):
        typed["primary_image_url"] = first.get("cdnUrl") or first.get("url")
    return typed


def as_stored_hit(hit: Record) -> Record:
    """A search hit as ``products`` stores it: per-query scores dropped, snake_case names, the typed columns,
    nulls absent, nested values kept whole (stored as JSON text; :func:`assert_tables_match` decodes them)."""
    kept = {key: value for key, value in hit.items() if key not in VOLATILE_HIT_FIELDS}
    stored = {_NAMING.normalize_identifier(key): value for key, value in kept.items()}
    stored.update(typed_columns(kept))
    return {name: value for name, value in stored.items() if value is not None}


def decode_nested(record: Record, expected: Record) -> Record:
    """``record`` with the JSON text of each column whose expected value is a list or an object decoded."""
    return {
        name: json.loads(value)
        if isinstance(expected.get(name), (list, dict)) and isinstance(value, str)
        else value
        for name, value in record.items()
    }


def expected_detail(lookup: Record) -> Record:
    """The product_details record of a lookup response: the product (typed columns laid over it) plus the
    lookup's own fields; objects whose keys are data stay whole (JSON columns)."""
    product = lookup["product"]
    typed = typed_columns(product)
    if "brand_json" in typed:
        typed["brand_json"] = json.dumps(typed["brand_json"], separators=(",", ":"), ensure_ascii=False)
    row = {key: value for key, value in product.items() if key not in JSON_DETAIL_FIELDS}
    row.update(typed)
    for key, value in lookup.items():
        if key not in ("product", "catalogKey"):
            row[f"lookup_{key}" if key in row else key] = value
    row["catalog"] = lookup["catalogKey"]
    stored = as_stored(row)
    stored.update({key: product[key] for key in JSON_DETAIL_FIELDS if product.get(key) is not None})
    return stored


def price_key(uuid: str, updated_at: Any, current: Any, original: Any) -> tuple[Any, ...]:
    return (uuid, _iso(updated_at), current, original)


@dataclass
class ExpectedTables:
    """What the tables must hold after the syncs so far, built from the sandbox's truth after each sync.

    A product the API stopped listing keeps its last row (``removed_at`` set) and its last details; the price
    history holds every (uuid, updatedAt, prices) seen at a sync.
    """

    sandbox: Sandbox
    details: bool = True
    listed: bool = False
    """The sync listed the catalogs (GET /catalogs, seed era) instead of being given them."""
    products: dict[str, Record] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    product_details: dict[str, Record] = field(default_factory=dict)
    prices: set[tuple[Any, ...]] = field(default_factory=set)
    catalogs: dict[str, Record] = field(default_factory=dict)

    def live_hits(self) -> dict[str, tuple[str, Record]]:
        return {
            hit["uuid"]: (catalog, hit)
            for catalog in self.sandbox.granted_catalogs()
            for hit in self.sandbox.truth_search_items(catalog)
        }

    def observe(self) -> None:
        """Record the truth as a complete sync sees it now."""
        live = self.live_hits()
        for uuid, (catalog, hit) in live.items():
            self.products[uuid] = {**as_stored_hit(hit), "catalog": catalog}
            self.prices.add(price_key(uuid, hit["updatedAt"], hit["currentPrice"], hit["originalPrice"]))
            if self.details:
                self.product_details[uuid] = expected_detail(self.sandbox.truth_lookup(uuid))
        self.removed = set(self.products) - set(live)
        summaries = self.sandbox.truth_catalog_summaries()
        self.catalogs = {summary["catalog"]: self._expected_catalog(summary) for summary in summaries}

    def _expected_catalog(self, summary: Record) -> Record:
        """What a sync says of a catalog: the listing (seed era, when it listed them), else the display name
        from the hits (current) or lookups, the source URL from lookups, the count of products walked."""
        if self.listed:
            listing = {entry["catalog"]: entry for entry in self.sandbox.truth_catalogs()}
            return as_stored(listing[summary["catalog"]])
        previous = self.catalogs.get(summary["catalog"], {})
        current = self.sandbox.api_generation == "current"
        known = {
            "catalog": summary["catalog"],
            "product_count": summary["productCount"],
            "display_name": summary["displayName"] if (current or self.details) else None,
            "source_base_url": summary["sourceBaseUrl"] if self.details else None,
        }
        return {**previous, **{name: value for name, value in known.items() if value is not None}}


def assert_tables_match(database: Path, expected: ExpectedTables) -> None:
    """Every table equals its expectation, row for row and field for field."""
    products = read_table(database, "products", "uuid")
    assert set(products) == set(expected.products)
    for uuid, record in products.items():
        assert isinstance(record.pop("hit_hash"), int)
        removed_at = record.pop("removed_at", None)
        assert (removed_at is not None) == (uuid in expected.removed), f"removed_at of {uuid}: {removed_at}"
        assert decode_nested(record, expected.products[uuid]) == expected.products[uuid], (
            f"products row {uuid}"
        )

    details = read_table(database, "product_details", "uuid")
    assert set(details) == set(expected.product_details)
    for uuid, record in details.items():
        for name in JSON_DETAIL_FIELDS:
            if isinstance(record.get(name), str):
                record[name] = json.loads(record[name])
        # the current API's id of the lookup that gave the row (new on every request)
        assert isinstance(record.pop("request_id", ""), str)
        assert record == expected.product_details[uuid], f"product_details row {uuid}"

    history = read_rows(database, "price_history") if "price_history" in table_names(database) else []
    observed = Counter(
        price_key(row["uuid"], row.get("updated_at"), row.get("current_price"), row.get("original_price"))
        for row in history
    )
    assert set(observed) == expected.prices
    assert max(observed.values(), default=1) == 1, "duplicate price_history rows"
    assert len({row["observation_id"] for row in history}) == len(history)

    assert read_table(database, "catalogs", "catalog") == expected.catalogs
