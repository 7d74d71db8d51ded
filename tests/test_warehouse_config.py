"""The warehouse module up to the wire: which destination a name gives, how dlt resolves BigQuery's
credentials and location, and the table hints and DDL that dlt would send to BigQuery.

Nothing here talks to BigQuery; the end-to-end load runs against the emulator in
``test_warehouse_bigquery_emulator.py``. The DDL is produced by dlt's own BigQuery job client from the real
source's schema, the same code path a load takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.configuration.specs.gcp_credentials import GcpDefaultCredentials
from dlt.common.schema import Schema
from dlt.destinations.impl.bigquery.bigquery_adapter import CLUSTER_COLUMNS_HINT, PARTITION_HINT
from dlt.destinations.impl.bigquery.configuration import BigQueryClientConfiguration
from dlt.extract import DltSource

from octogen_source import warehouse
from octogen_source.errors import OctogenError
from octogen_source.source import octogen_source
from octogen_source.sync import SyncError, SyncOptions, run_sync
from octogen_source.warehouse import (
    apply_destination_hints,
    default_duckdb_path,
    destination_for,
    duckdb_threads,
    memory_bytes,
)
from tests.bigquery_emulator import service_account_info

GOOGLE_ENV = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "BIGQUERY_EMULATOR_HOST",
    "DESTINATION__BIGQUERY__LOCATION",
    "DESTINATION__BIGQUERY__CREDENTIALS",
    "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID",
    "DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY",
    "DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL",
    "DESTINATION__DUCKDB__CREDENTIALS",
)


@pytest.fixture(autouse=True)
def clean_google_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)
    # no gcloud user credentials from the developer's home leak into "no credentials" cases
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    # dlt remembers a failed Application Default Credentials lookup for 10 minutes, process-wide
    monkeypatch.setattr(GcpDefaultCredentials, "_LAST_FAILED_DEFAULT", 0.0)
    yield


def stand_in_source(*, products_columns: dict[str, Any] | None = None) -> DltSource:
    """A small source with the real tables' names, for the cases the real source cannot show."""

    @dlt.source(name="octogen")
    def source() -> Any:
        @dlt.resource(
            name="products",
            primary_key="uuid",
            write_disposition="merge",
            columns=products_columns
            if products_columns is not None
            else {
                "uuid": {"data_type": "text", "nullable": False},
                "catalog": {"data_type": "text"},
                "updated_at": {"data_type": "timestamp"},
                "removed_at": {"data_type": "timestamp"},
            },
        )
        def products() -> Iterator[dict[str, Any]]:
            yield {"uuid": "p1", "catalog": "c1", "updated_at": "2024-05-01T10:00:00Z", "images": ["a", "b"]}
            yield {"uuid": "p2", "catalog": "c2", "updated_at": None, "images": []}

        @dlt.resource(name="price_history", primary_key="uuid", columns={"uuid": {"data_type": "text"}})
        def price_history() -> Iterator[dict[str, Any]]:
            yield {"uuid": "p1", "updated_at": "2024-05-01T10:00:00Z", "current_price": 3.5}

        @dlt.resource(name="raw", columns={"payload": {"data_type": "json"}})
        def raw() -> Iterator[dict[str, Any]]:
            yield {"payload": {"nested": [1, 2]}}

        return products, price_history, raw

    return source()


def real_source() -> DltSource:
    # building the source makes no request; the URL is never contacted
    return octogen_source(api_key="octo_test_key", base_url="http://127.0.0.1:9/v1")


def bigquery_client_for(schema: Schema, dataset: str = "octogen") -> Any:
    """dlt's BigQuery job client for ``schema``, built as a load builds it; it never connects here."""
    from google.oauth2.credentials import Credentials

    # dlt also takes native Google credentials here (GcpDefaultCredentials.parse_native_representation)
    native = Credentials(token="unused", quota_project_id="proj")
    destination = dlt.destinations.bigquery(credentials=native)  # type: ignore[arg-type]
    return destination.client(schema, BigQueryClientConfiguration()._bind_dataset_name(dataset_name=dataset))


def create_table_sql(schema: Schema, table: str) -> str:
    client = bigquery_client_for(schema)
    statements = client._get_table_update_sql(table, list(schema.get_table_columns(table).values()), False)
    assert len(statements) == 1
    return str(statements[0])


# ---- destination_for ---------------------------------------------------------------------------------------


def run_small_pipeline(destination: Any, tmp_path: Path, name: str = "warehouse_check") -> dlt.Pipeline:
    pipeline = dlt.pipeline(
        name, destination=destination, dataset_name="octogen", pipelines_dir=str(tmp_path / "pipelines")
    )
    pipeline.run(stand_in_source().with_resources("products"))
    return pipeline


def duckdb_products(database: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database)) as connection:
        return connection.execute(
            "SELECT uuid, catalog, updated_at IS NULL FROM octogen.products ORDER BY uuid"
        ).fetchall()


def test_duckdb_with_a_path_loads_into_that_file(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    run_small_pipeline(destination_for("duckdb", duckdb_path=str(database)), tmp_path)
    assert duckdb_products(database) == [("p1", "c1", False), ("p2", "c2", True)]


def test_duckdb_without_a_path_follows_dlt_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = tmp_path / "configured.duckdb"
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(configured))
    run_small_pipeline(destination_for("duckdb"), tmp_path)
    assert duckdb_products(configured) == [("p1", "c1", False), ("p2", "c2", True)]


def test_duckdb_default_file_is_named_after_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_small_pipeline(destination_for("duckdb"), tmp_path, name="named_after_me")
    assert duckdb_products(tmp_path / "named_after_me.duckdb") == [("p1", "c1", False), ("p2", "c2", True)]


@pytest.mark.parametrize("name", ["snowflake", "BigQuery", ""])
def test_an_unknown_destination_is_one_clear_line(name: str) -> None:
    with pytest.raises(OctogenError) as raised:
        destination_for(name)
    message = str(raised.value)
    assert message == f"unknown destination {name!r}: supported destinations are duckdb, bigquery"
    with pytest.raises(OctogenError, match="supported destinations are duckdb, bigquery"):
        apply_destination_hints(stand_in_source(), name)


def test_bigquery_reads_a_service_account_and_location_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = service_account_info("octogen-prod", "https://oauth2.googleapis.com/token")
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID", info["project_id"])
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY", info["private_key"])
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL", info["client_email"])
    monkeypatch.setenv("DESTINATION__BIGQUERY__LOCATION", "europe-west3")

    destination = destination_for("bigquery")
    assert destination.destination_type == "dlt.destinations.bigquery"
    config = destination.configuration(
        BigQueryClientConfiguration()._bind_dataset_name(dataset_name="octogen")
    )
    assert config.location == "europe-west3"
    assert config.credentials.project_id == "octogen-prod"
    native = config.credentials.to_native_credentials()
    assert native.service_account_email == info["client_email"]
    assert info["private_key"] not in str(config.credentials)


def test_bigquery_reads_the_service_account_from_secrets_toml(tmp_path: Path) -> None:
    info = service_account_info("octogen-from-toml", "https://oauth2.googleapis.com/token")
    settings = tmp_path / ".dlt"
    settings.mkdir()
    (settings / "secrets.toml").write_text(
        "[destination.bigquery.credentials]\n"
        + "".join(
            f"{key} = {json.dumps(info[key])}\n" for key in ("project_id", "private_key", "client_email")
        )
    )
    (settings / "config.toml").write_text('[destination.bigquery]\nlocation = "EU"\n')
    from dlt.common.configuration.container import Container
    from dlt.common.runtime.run_context import PluggableRunContext

    # a project run from tmp_path: dlt reads tmp_path/.dlt
    run_context = Container()[PluggableRunContext]
    original_run_dir = run_context.context.run_dir
    run_context.reload(str(tmp_path))
    try:
        config = destination_for("bigquery").configuration(
            BigQueryClientConfiguration()._bind_dataset_name(dataset_name="octogen")
        )
        assert config.credentials.project_id == "octogen-from-toml"
        assert config.credentials.client_email == info["client_email"]
        assert config.location == "EU"
    finally:
        run_context.reload(original_run_dir)


def test_bigquery_falls_back_to_application_default_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps(service_account_info("octogen-adc", "https://oauth2.googleapis.com/token")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))

    config = destination_for("bigquery").configuration(
        BigQueryClientConfiguration()._bind_dataset_name(dataset_name="octogen")
    )
    assert config.credentials.has_default_credentials()
    assert config.credentials.project_id == "octogen-adc"
    assert config.location == "US"  # dlt's default when DESTINATION__BIGQUERY__LOCATION is not set


def test_bigquery_without_any_credentials_fails_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigFieldMissingException):
        destination_for("bigquery").configuration(
            BigQueryClientConfiguration()._bind_dataset_name(dataset_name="octogen")
        )
    with pytest.raises(SyncError) as raised:
        run_sync(
            SyncOptions(
                destination="bigquery",
                api_key="octo_test_key",
                base_url="http://127.0.0.1:9/v1",
                pipelines_dir=str(tmp_path / "pipelines"),
            )
        )
    message = str(raised.value)
    assert "\n" not in message
    assert "credentials" in message and "octo_test_key" not in message


def test_bigquery_destination_without_google_libraries_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = warehouse.importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "google.cloud.bigquery" else real_find_spec(name, *args)

    # the one thing faked: an environment installed without the `bigquery` extra
    monkeypatch.setattr(warehouse.importlib.util, "find_spec", find_spec)
    with pytest.raises(OctogenError, match=r"pip install 'octogen-dlt\[bigquery\]'"):
        destination_for("bigquery")


# ---- apply_destination_hints -------------------------------------------------------------------------------


def test_duckdb_gets_no_hints() -> None:
    plain = {name: resource.compute_table_schema() for name, resource in real_source().resources.items()}
    hinted = apply_destination_hints(real_source(), "duckdb")
    assert {name: resource.compute_table_schema() for name, resource in hinted.resources.items()} == plain


def test_bigquery_partitions_and_clusters_products_and_price_history() -> None:
    plain = real_source()
    plain_products = plain.resources["products"].compute_table_schema()
    source = apply_destination_hints(real_source(), "bigquery")

    for table in ("products", "price_history"):
        schema = source.resources[table].compute_table_schema()
        assert schema["columns"]["updated_at"][PARTITION_HINT] is True  # type: ignore[typeddict-item]
        assert schema[CLUSTER_COLUMNS_HINT] == ["catalog"]  # type: ignore[typeddict-item]
        assert schema["file_format"] == "parquet"
    for table in ("catalogs", "product_details"):
        schema = source.resources[table].compute_table_schema()
        assert CLUSTER_COLUMNS_HINT not in schema
        assert not any(PARTITION_HINT in column for column in schema["columns"].values())
        assert schema["file_format"] == "parquet"

    # the source's own hints survive the adapter: keys, merge, declared types
    products = source.resources["products"]
    schema = products.compute_table_schema()
    assert schema["write_disposition"] == plain_products["write_disposition"] == "merge"
    for name, column in plain_products["columns"].items():
        assert {k: v for k, v in schema["columns"][name].items() if not k.startswith("x-")} == column


def test_bigquery_create_table_sql_partitions_by_day_and_clusters_by_catalog() -> None:
    schema = apply_destination_hints(real_source(), "bigquery").discover_schema()

    products = create_table_sql(schema, "products")
    assert products.startswith("CREATE TABLE `proj`.`octogen`.`products` (")
    assert "`updated_at` TIMESTAMP" in products and "`catalog` STRING" in products
    assert products.endswith("\nPARTITION BY DATE(`updated_at`)\nCLUSTER BY `catalog`")

    history = create_table_sql(schema, "price_history")
    assert history.endswith("\nPARTITION BY DATE(`updated_at`)\nCLUSTER BY `catalog`")

    for table in ("catalogs", "product_details"):
        sql = create_table_sql(schema, table)
        assert "PARTITION BY" not in sql and "CLUSTER BY" not in sql


def test_new_columns_on_a_partitioned_table_alter_without_partition_clauses() -> None:
    # dlt < 1.20 appended PARTITION BY / CLUSTER BY to ALTER TABLE (dlt-hub/dlt#3236, #3377): invalid SQL
    schema = apply_destination_hints(real_source(), "bigquery").discover_schema()
    client = bigquery_client_for(schema)
    new_column = {"name": "in_stock", "data_type": "bool", "nullable": True}
    (alter,) = client._get_table_update_sql("products", [new_column], True)
    assert alter.startswith("ALTER TABLE `proj`.`octogen`.`products`")
    assert "ADD COLUMN `in_stock` BOOL" in alter
    assert "PARTITION" not in alter and "CLUSTER" not in alter


def test_bigquery_load_files_are_parquet_except_json_tables(tmp_path: Path) -> None:
    source = apply_destination_hints(stand_in_source(), "bigquery")
    pipeline = dlt.pipeline(
        "parquet_check",
        destination=dlt.destinations.bigquery(),
        dataset_name="octogen",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.extract(source)
    load_id = pipeline.normalize().loads_ids[0]
    jobs = pipeline.get_load_package_info(load_id).jobs["new_jobs"]
    formats = {job.job_file_info.table_name: job.job_file_info.file_format for job in jobs}
    assert formats["products"] == "parquet"
    assert formats["products__images"] == "parquet"  # child tables inherit the table's file format
    assert formats["price_history"] == "parquet"
    # BigQuery cannot load a JSON column from parquet: that table stays on JSONL
    assert formats["raw"] == "jsonl"


def test_without_pyarrow_bigquery_keeps_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    # the one thing faked: an environment without pyarrow
    monkeypatch.setattr(warehouse, "_pyarrow_available", lambda: False)
    source = apply_destination_hints(real_source(), "bigquery")
    assert all("file_format" not in resource.compute_table_schema() for resource in source.resources.values())


def test_a_products_table_without_the_layout_columns_is_a_programming_error() -> None:
    with pytest.raises(OctogenError, match="'products' must declare the column\\(s\\) updated_at, catalog"):
        apply_destination_hints(stand_in_source(products_columns={"uuid": {"data_type": "text"}}), "bigquery")
    text_timestamp = {"catalog": {"data_type": "text"}, "updated_at": {"data_type": "text"}}
    with pytest.raises(OctogenError, match="'updated_at' must be declared as timestamp, not 'text'"):
        apply_destination_hints(stand_in_source(products_columns=text_timestamp), "bigquery")


def test_an_optional_table_without_the_layout_columns_is_left_unpartitioned() -> None:
    source = apply_destination_hints(stand_in_source(), "bigquery")
    price_history = source.resources["price_history"].compute_table_schema()
    assert CLUSTER_COLUMNS_HINT not in price_history
    assert "updated_at" not in price_history["columns"]


def test_duckdb_loads_with_a_bounded_memory_limit(tmp_path: Path) -> None:
    pipeline = run_small_pipeline(
        destination_for("duckdb", duckdb_path=str(tmp_path / "bounded.duckdb"), duckdb_memory_limit="96MB"),
        tmp_path,
    )
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            "SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order'),"
            " current_setting('allocator_flush_threshold')"
        )
    assert rows is not None
    limit, insertion_order, flush_threshold = rows[0]
    assert limit == "91.5 MiB"  # 96 MB as DuckDB reports it
    assert insertion_order is False
    assert flush_threshold == "32MB"  # the allocator gives back what a load's task peaked at


def test_duckdb_loads_with_no_more_threads_than_its_memory_limit_feeds(tmp_path: Path) -> None:
    # 40 MB feeds one thread of 32 MiB: on any machine, however many cores
    pipeline = run_small_pipeline(
        destination_for("duckdb", duckdb_path=str(tmp_path / "threads.duckdb"), duckdb_memory_limit="40MB"),
        tmp_path,
    )
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT current_setting('threads')")
    assert rows == [(1,)]


def test_duckdb_threads_follow_the_cores_up_to_one_per_32_mib() -> None:
    assert duckdb_threads("128MB", cores=16) == 3  # 128 MB < 4 x 32 MiB
    assert duckdb_threads("128MiB", cores=16) == 4
    assert duckdb_threads("128MB", cores=2) == 2
    assert duckdb_threads("1GB", cores=64) == 29
    assert duckdb_threads("1GB", cores=4) == 4
    assert duckdb_threads("10MB", cores=8) == 1
    assert duckdb_threads("lots", cores=8) is None
    assert memory_bytes("1.5GiB") == 3 * 2**29
    assert memory_bytes(" 64 mb ") == 64_000_000


def _duckdb_memory_limit(size: str) -> str:
    """What DuckDB makes of ``SET memory_limit`` (its rounded display, e.g. ``122.0 MiB``), or its error."""
    connection = duckdb.connect()
    try:
        connection.execute(f"SET memory_limit = '{size}'")
        row = connection.execute("SELECT current_setting('memory_limit')").fetchone()
        assert row is not None
        return str(row[0])
    except duckdb.Error as exc:
        return f"error: {type(exc).__name__}"
    finally:
        connection.close()


@pytest.mark.parametrize(
    "size",
    ["128MB", "128mb", " 64 mb ", "96 MiB", "1.5GiB", ".5GB", "1g", "2G", "100M", "65536K", "65536kb",
     "131072KiB", "1TB", "1 tib", "200000000B"],
)  # fmt: skip
def test_a_memory_size_the_cli_accepts_means_to_duckdb_what_it_means_here(size: str) -> None:
    size_in_bytes = memory_bytes(size)
    assert size_in_bytes is not None
    assert _duckdb_memory_limit(size) == _duckdb_memory_limit(f"{size_in_bytes}B")


@pytest.mark.parametrize("size", ["1000", "1.5", "1,5GB", "1GB;", "1 mbit", "1PB", "1PiB", "1gi", "lots", ""])
def test_a_memory_size_duckdb_refuses_is_refused_before_the_load(size: str) -> None:
    assert memory_bytes(size) is None
    assert _duckdb_memory_limit(size).startswith("error:")


def test_the_sync_finds_the_duckdb_file_dlt_would_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS", raising=False)
    assert default_duckdb_path("my_pipeline") == "my_pipeline.duckdb"
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "configured.duckdb"))
    assert default_duckdb_path("my_pipeline") == str(tmp_path / "configured.duckdb")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", "duckdb:///" + str(tmp_path / "url.duckdb"))
    assert default_duckdb_path("my_pipeline") == str(tmp_path / "url.duckdb")
