"""Sync history: every sync, successful or failed, appends its per-catalog figures to ``sync_runs``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncError, SyncReport
from tests.cli_support import closed_port
from tests.sync_support import DATASET, SyncTarget, read_rows, table_names

VOLATILE = ("started_at", "finished_at", "seconds", "run_id", "load_id")


@pytest.fixture
def target(sandbox: Sandbox, tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox, tmp_path)


def history(database: Path) -> list[dict[str, Any]]:
    """``sync_runs`` as loaded, oldest run first (catalogs in name order within a run)."""
    with duckdb.connect(str(database)) as connection:
        cursor = connection.execute(
            f"SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM {DATASET}.sync_runs"
            " ORDER BY min(started_at) OVER (PARTITION BY run_id), catalog"
        )
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def figures(report: SyncReport) -> list[dict[str, Any]]:
    """What ``sync_runs`` must hold of ``report``: its JSON records, warnings as the stored JSON text."""
    expected = []
    for record in sorted(report.catalog_records(), key=lambda record: record["catalog"] or ""):
        row = {name: value for name, value in record.items() if name not in VOLATILE}
        row["warnings"] = json.dumps(row["warnings"]) if row["warnings"] else None
        expected.append(row)
    return expected


def without_volatile(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: value for name, value in row.items() if name not in VOLATILE} for row in rows]


def test_two_syncs_and_a_failed_one_leave_three_runs_in_sync_runs(target: SyncTarget) -> None:
    sandbox = target.sandbox
    catalogs = sandbox.granted_catalogs()
    first = target.sync()
    sandbox.update_prices(catalogs[0], 4)
    second = target.sync()
    sandbox.exhaust_credit()
    with pytest.raises(SyncError) as failure:
        target.sync()
    failed = failure.value.report
    assert failed is not None and failed.outcome == "failed" and failed.error == str(failure.value)

    rows = history(target.database)
    assert without_volatile(rows) == [*figures(first), *figures(second), *figures(failed)]
    # the figures are the run summary's
    assert [row["new"] for row in rows[:2]] == [60, 60]
    assert {row["catalog"]: (row["changed"], row["lookups"]) for row in rows[2:4]} == {
        catalogs[0]: (4, 4),
        catalogs[1]: (0, 0),
    }
    assert {row["outcome"] for row in rows[:4]} == {"ok"}
    assert {row["outcome"] for row in rows[4:]} == {"failed"}
    assert all("credit" in row["error"] for row in rows[4:])
    assert {row["pipeline_name"] for row in rows} == {"octogen_sync"}
    # one run id per sync, the load id of the data it loaded (none for the failed one)
    assert [len({row["run_id"] for row in rows[i : i + 2]}) for i in (0, 2, 4)] == [1, 1, 1]
    assert len({row["run_id"] for row in rows}) == 3
    assert [rows[0]["load_id"], rows[2]["load_id"], rows[4]["load_id"]] == [
        first.load_ids[-1],
        second.load_ids[-1],
        None,
    ]
    for row in rows:
        assert isinstance(row["started_at"], datetime) and row["started_at"] <= row["finished_at"]
    assert rows[0]["finished_at"] <= rows[2]["started_at"] <= rows[4]["started_at"]
    # the data tables are untouched by the history: one row per product still
    assert len(read_rows(target.database, "products")) == 120


def test_as_dict_is_json_ready_and_says_what_sync_runs_holds(target: SyncTarget) -> None:
    report = target.sync()
    result = json.loads(json.dumps(report.as_dict()))
    assert result["outcome"] == "ok" and result["error"] is None
    assert result["totals"]["new"] == 120 and result["totals"]["requests"] == report.requests
    assert [entry["catalog"] for entry in result["catalogs"]] == [r.catalog for r in report.catalogs]
    assert result["run_id"] == history(target.database)[0]["run_id"]
    assert result["load_ids"] == report.load_ids


def test_a_run_that_fails_before_any_catalog_is_recorded_once(target: SyncTarget) -> None:
    target.sync()  # the file and the table exist
    unreachable = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(SyncError) as failure:
        target.sync(catalogs=(), base_url=unreachable)  # listing the catalogs fails: none is known
    rows = history(target.database)[len(target.sandbox.granted_catalogs()) :]
    assert len(rows) == 1
    assert rows[0]["catalog"] is None and rows[0]["outcome"] == "failed"
    assert rows[0]["error"] == str(failure.value) and rows[0]["requests"] == 0


def test_a_configuration_mistake_is_not_recorded(target: SyncTarget) -> None:
    target.sync()
    before = history(target.database)
    with pytest.raises(SyncError, match="no catalogs configured"):
        target.sync(catalogs=())  # the current API needs named catalogs: the destination is left alone
    assert history(target.database) == before


def test_no_history_when_turned_off(target: SyncTarget) -> None:
    target.sync(record_history=False)
    tables = table_names(target.database)
    assert "sync_runs" not in tables and "products" in tables
