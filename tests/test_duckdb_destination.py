"""The DuckDB destination a sync loads into (``octogen_source.duckdb_destination``): dlt's own, its
capabilities resolved once per destination object instead of at each of dlt's two dozen asks per
``pipeline.run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.common.destination import reference
from dlt.common.normalizers.naming import snake_case, sql_cs_v1

from octogen_source.duckdb_destination import DuckDBDestination
from octogen_source.warehouse import destination_for


@pytest.fixture
def provider_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The configurations dlt's destination resolves through its config providers (counted, then resolved)."""
    resolved: list[Any] = []
    resolve = reference.resolve_configuration

    def counting(config: Any, *args: Any, **kwargs: Any) -> Any:
        resolved.append(type(config).__name__)
        return resolve(config, *args, **kwargs)

    monkeypatch.setattr(reference, "resolve_configuration", counting)
    return resolved


def test_capabilities_are_resolved_once_per_naming_and_each_caller_gets_its_own_copy(
    tmp_path: Path, provider_reads: list[Any]
) -> None:
    destination = destination_for("duckdb", duckdb_path=str(tmp_path / "w.duckdb"))
    assert isinstance(destination, DuckDBDestination)
    first = destination.capabilities()
    second = destination.capabilities()
    assert len(provider_reads) == 1
    assert first is not second and dict(first) == dict(second)
    first.preferred_loader_file_format = "jsonl"  # dlt sets attributes on the copy it is given
    assert destination.capabilities().preferred_loader_file_format == second.preferred_loader_file_format

    snake = destination.capabilities(naming=snake_case.NamingConvention())
    case_sensitive = destination.capabilities(naming=sql_cs_v1.NamingConvention())
    destination.capabilities(naming=snake_case.NamingConvention())
    assert len(provider_reads) == 3  # one per naming convention's case sensitivity
    plain = dlt.destinations.duckdb(credentials=str(tmp_path / "w.duckdb"))
    assert dict(snake) == dict(plain.capabilities(naming=snake_case.NamingConvention()))
    assert dict(case_sensitive) == dict(plain.capabilities(naming=sql_cs_v1.NamingConvention()))


def test_each_destination_object_reads_the_providers_anew(tmp_path: Path, provider_reads: list[Any]) -> None:
    """A sync makes its destination for each run: what the providers say then is read by that run."""
    database = str(tmp_path / "w.duckdb")
    for _ in range(2):
        destination = destination_for("duckdb", duckdb_path=database)
        destination.capabilities()
        destination.capabilities()
    assert len(provider_reads) == 2


def test_pipelines_see_dlt_s_duckdb_destination(tmp_path: Path) -> None:
    """Same type and name as ``dlt.destinations.duckdb``: pipeline state and ``dlt.attach`` see no change."""
    destination = destination_for("duckdb", duckdb_path=str(tmp_path / "w.duckdb"))
    assert destination.destination_type == "dlt.destinations.duckdb"
    assert destination.destination_name == "duckdb"
    pipeline = dlt.pipeline(
        "kept_caps", destination=destination, dataset_name="d", pipelines_dir=str(tmp_path)
    )
    pipeline.run([{"id": 1}, {"id": 2}], table_name="t")
    attached = dlt.attach("kept_caps", pipelines_dir=str(tmp_path))
    assert attached.state["destination_type"] == "dlt.destinations.duckdb"
    assert attached.destination is not None and attached.destination.destination_name == "duckdb"
    with pipeline.sql_client() as client:
        assert client.execute_sql("SELECT count(*) FROM t") == [(2,)]
