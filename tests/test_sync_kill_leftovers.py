"""Clean after a kill (issue 13, item 6): 30 syncs SIGKILLed one after another at random moments (extract,
normalize or load) leave no more than the last one's leftovers in the pipeline's working directory, a normal
sync then leaves none, and every table equals the API.

To stay within the suite's time, one driver process (dlt imported once) forks each sync and SIGKILLs it; the
fork is a real separate process running the product code, killed for real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import dlt
import pytest

from octogen_source.sandbox import Sandbox
from octogen_source.source.leftovers import remove_abandoned_extracts
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match

KILLS = 30
EXTRACT_FOLDER = re.compile(r"[0-9a-f]{16}")

DRIVER = textwrap.dedent(
    """
    import os, random, signal, sys, time
    from pathlib import Path

    from octogen_source.sync import SyncOptions, run_sync

    database, pipelines_dir, base_url, kills, seed = sys.argv[1:6]
    normalize = Path(pipelines_dir) / "octogen_sync" / "normalize"
    rng = random.Random(int(seed))
    most = 0
    for _ in range(int(kills)):
        pid = os.fork()
        if pid == 0:
            try:
                run_sync(SyncOptions(base_url=base_url, duckdb_path=database, pipelines_dir=pipelines_dir))
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.2, 1.1))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if normalize.is_dir():
            most = max(most, sum(1 for path in normalize.iterdir() if len(path.name) == 16))
    print(most)
    """
)


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=2, products=40, ungranted=0, seed=5), tmp_path)


def leftovers(target: SyncTarget) -> list[str]:
    """What the pipeline's working directory holds beyond dlt's own bookkeeping of a finished run."""
    normalize = target.pipelines_dir / target.pipeline_name / "normalize"
    found = [path.name for path in normalize.iterdir() if EXTRACT_FOLDER.fullmatch(path.name)]
    found += [str(path) for path in (normalize / "extracted").iterdir()]
    load = target.pipelines_dir / target.pipeline_name / "load"
    for stage in ("new", "normalized"):
        if (load / stage).is_dir():
            found += [str(path) for path in (load / stage).iterdir()]
    return found


@pytest.mark.timeout(240)
def test_thirty_kills_leave_nothing_behind(target: SyncTarget) -> None:
    sandbox = target.sandbox
    expected = ExpectedTables(sandbox)
    target.sync()
    expected.observe()
    sandbox.update_prices(sandbox.granted_catalogs()[0], 10)
    sandbox.add_products(sandbox.granted_catalogs()[1], 4)
    sandbox.set_fault_rates(latency=0.01)  # keeps each killed sync busy for a while

    script = target.root / "kill_driver.py"
    script.write_text(DRIVER)
    driver = subprocess.run(
        [
            sys.executable,
            str(script),
            str(target.database),
            str(target.pipelines_dir),
            sandbox.base_url,
            str(KILLS),
            "13",
        ],
        cwd=target.root,
        env={
            **os.environ,
            "OCTO_API_KEY": sandbox.api_key,
            "SOURCES__OCTOGEN__CATALOGS": json.dumps(sandbox.granted_catalogs()),
            "RUNTIME__LOG_LEVEL": "CRITICAL",
        },
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert driver.returncode == 0, driver.stderr[-2000:]
    assert int(driver.stdout.split()[-1]) <= 1, "extract folders accumulated between kills"

    sandbox.clear_faults()
    target.sync()
    assert leftovers(target) == []
    expected.observe()
    assert_tables_match(target.database, expected)


def test_the_temporary_files_of_an_interrupted_atomic_save_are_removed(tmp_path: Path) -> None:
    """A kill between dlt's write of ``<16 hex>`` and its rename leaves that file (e.g. in load/new); a kill
    while normalizing can leave a package in load/new whose extracted package is gone."""
    pipeline = dlt.pipeline(pipeline_name="leftovers_test", pipelines_dir=str(tmp_path))
    working = Path(pipeline.working_dir)
    # normalized again by the next run (dlt clears its load/new copy itself): kept
    package = working / "load" / "new" / "1733320000.123456"
    package.mkdir(parents=True)
    (package / "schema.json").write_text("{}")
    (working / "normalize" / "extracted" / package.name).mkdir(parents=True)
    orphan = working / "load" / "new" / "1796419342.6615927"
    orphan.mkdir(parents=True)
    (orphan / "schema.json").write_text("{}")
    (working / "load" / "new" / "fbd65b4dcce64b15").write_text("half a file")
    (working / "load" / "normalized").mkdir(parents=True)
    (working / "load" / "normalized" / "0123456789abcdef").write_text("")
    extract = working / "normalize" / "00112233aabbccdd"
    extract.mkdir(parents=True)
    (extract / "products.parquet").write_text("")
    assert remove_abandoned_extracts(pipeline) == 4
    assert sorted(path.name for path in (working / "load" / "new").iterdir()) == [package.name]
    assert list((working / "load" / "normalized").iterdir()) == [] and not extract.exists()
    assert (package / "schema.json").read_text() == "{}"  # a package dlt will normalize again is not touched


def test_loaded_packages_of_earlier_runs_do_not_accumulate(target: SyncTarget) -> None:
    """dlt keeps every loaded package with its files: a scheduled sync's working directory grew by ≈ 2 KB per
    product written at every run. After a successful run only that run's packages stay, for both the sync's
    pipeline and its history's; a failed run removes nothing."""
    from octogen_source.history import history_pipeline_name
    from octogen_source.sync import SyncError

    def loaded(pipeline_name: str) -> set[str]:
        folder = target.pipelines_dir / pipeline_name / "load" / "loaded"
        return {path.name for path in folder.iterdir()} if folder.is_dir() else set()

    history = history_pipeline_name(target.pipeline_name)
    reports = []
    for _ in range(3):
        target.sandbox.update_prices(target.sandbox.granted_catalogs()[0], 3)
        reports.append(target.sync())
        assert loaded(target.pipeline_name) == set(reports[-1].load_ids)
        assert len(loaded(history)) == 1

    target.sandbox.set_fault_rates(rate_5xx=1.0)
    with pytest.raises(SyncError):
        target.sync()
    target.sandbox.clear_faults()
    assert loaded(target.pipeline_name) == set(reports[-1].load_ids)
