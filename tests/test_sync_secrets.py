"""The API key never lands anywhere: not in the output, the pipeline directory (state, schemas, traces, load
packages), nor the destination (every table of every schema, the stored pipeline state decompressed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from dlt.common.versioned_state import decompress_state

from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncError
from tests.sync_support import SyncTarget

SCRIPT = Path(__file__).resolve().parents[1] / "pipelines" / "sync.py"


def needles(key: str) -> list[bytes]:
    """The key, and its secret part alone (a leak of the part that matters)."""
    return [key.encode(), key.rsplit("_", 1)[1].encode()]


def files_under(root: Path) -> Iterator[Path]:
    return (path for path in root.rglob("*") if path.is_file())


def database_dump(database: Path) -> Iterator[str]:
    """Every value of every table of every schema, as text; the stored pipeline states decompressed."""
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_catalog = current_database()"
        ).fetchall()
        assert tables
        for schema, table in tables:
            cursor = connection.execute(f'SELECT * FROM "{schema}"."{table}"')
            names = [column[0] for column in cursor.description or ()]
            for row in cursor.fetchall():
                yield json.dumps(row, default=str)
                if table == "_dlt_pipeline_state":
                    yield json.dumps(decompress_state(row[names.index("state")]), default=str)


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=3, products=15, ungranted=1, seed=19), tmp_path)


def test_the_key_is_nowhere(target: SyncTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = target.sandbox
    key = sandbox.api_key
    outputs: list[str] = []

    # 1. the CLI, key from the environment (dlt's secret provider), with progress and retries shown
    sandbox.fail_next(2, "503", endpoint="lookup")
    env = {name: value for name, value in os.environ.items() if "OCTO" not in name}
    env.update(
        OCTO_API_KEY=key,
        DLT_DATA_DIR=str(target.pipelines_dir.parent / "dlt"),
        SOURCES__OCTOGEN__BASE_URL=sandbox.base_url,
        SOURCES__OCTOGEN__CATALOGS=json.dumps(sandbox.granted_catalogs()),
        DESTINATION__DUCKDB__CREDENTIALS=str(target.database),
    )
    cli = subprocess.run(
        [sys.executable, str(SCRIPT), "--progress"],
        cwd=target.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert "retrying" in cli.stderr  # the retry lines were printed, and they carry no key
    outputs += [cli.stdout, cli.stderr]

    # 2. in-process, key passed explicitly, then a failing run (its exception lands in the trace)
    sandbox.update_prices(sandbox.granted_catalogs()[0], 2)
    target.sync()
    sandbox.update_prices(sandbox.granted_catalogs()[0], 2)
    sandbox.fail_next(1, "garbage", endpoint="lookup")
    with pytest.raises(SyncError) as failure:
        target.sync()
    outputs.append(str(failure.value))
    # and through the SOURCES__OCTOGEN__API_KEY variable
    monkeypatch.setenv("SOURCES__OCTOGEN__API_KEY", key)
    target.sync(api_key=None)

    for needle in needles(key):
        for text in outputs:
            assert needle.decode() not in text
        for path in [*files_under(target.root / "dlt"), *files_under(target.pipelines_dir)]:
            assert needle not in path.read_bytes(), f"the key is in {path}"
        for value in database_dump(target.database):
            assert needle.decode() not in value
