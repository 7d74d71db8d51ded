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
from dlt.destinations.job_client_impl import SqlJobClientWithStagingDataset

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


_ROOTS = ("merged", "replaced", "appended")


def _nested_rows(version: int) -> list[dict[str, Any]]:
    return [
        {"id": key, "version": version, "sizes": ["S", "M"][: key % 2 + 1], "tags": [{"t": f"v{version}"}]}
        for key in range(1, 4)
    ]


def test_a_load_asks_each_table_s_staging_and_truncation_once_and_loads_what_dlt_s_own_client_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dlt asks both questions for every nested table of every table with a job (≈ 600 asks per load of
    products' details); the destination's client answers each table once per load, as dlt would."""
    asked: list[tuple[Any, str, str]] = []  # the client itself kept: ids are not reused meanwhile
    for question in ("should_load_data_to_staging_dataset", "should_truncate_table_before_load"):
        answer = getattr(SqlJobClientWithStagingDataset, question)

        def counted(self: Any, table_name: str, _answer: Any = answer, _question: str = question) -> bool:
            asked.append((self, _question, table_name))
            return bool(_answer(self, table_name))

        monkeypatch.setattr(SqlJobClientWithStagingDataset, question, counted)

    def load(destination: Any, name: str) -> dict[str, list[tuple[Any, ...]]]:
        pipeline = dlt.pipeline(name, destination=destination, dataset_name="d", pipelines_dir=str(tmp_path))
        for version in (1, 2):
            merged = dlt.resource(
                _nested_rows(version), name="merged", write_disposition="merge", primary_key="id"
            )
            replaced = dlt.resource(_nested_rows(version), name="replaced", write_disposition="replace")
            appended = dlt.resource(_nested_rows(version), name="appended", write_disposition="append")
            asked.clear()
            pipeline.run([merged, replaced, appended])
        queries = {table: "SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM " + table for table in _ROOTS}
        queries |= {f"{table}__sizes": f"SELECT value, _dlt_list_idx FROM {table}__sizes" for table in _ROOTS}
        with pipeline.sql_client() as client:
            return {
                table: sorted(map(tuple, client.execute_sql(sql) or [])) for table, sql in queries.items()
            }

    ours = load(destination_for("duckdb", duckdb_path=str(tmp_path / "ours.duckdb")), "ours")
    ours_asked = list(asked)
    theirs = load(dlt.destinations.duckdb(credentials=str(tmp_path / "theirs.duckdb")), "theirs")
    ours_questions = [(id(client), question, table) for client, question, table in ours_asked]
    assert len(ours_questions) == len(set(ours_questions)), "a question asked twice of one client"
    assert {ask[1:] for ask in ours_asked} == {ask[1:] for ask in asked}  # the same questions
    assert len(asked) > 2 * len(ours_asked), (len(asked), len(ours_asked))
    assert ours == theirs
    assert [row[1] for row in ours["merged"]] == [2, 2, 2]
    assert [row[1] for row in ours["replaced"]] == [2, 2, 2]
    assert sorted(row[1] for row in ours["appended"]) == [1, 1, 1, 2, 2, 2]
