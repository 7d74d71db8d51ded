"""What the kill tests share: a sync in a subprocess that can be told to SIGKILL itself at a chosen moment
of its load, and the changes made to the sandbox between a killed sync and the next."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from tests.sync_support import ExpectedTables, SyncTarget

# The sync to kill. With KILL_DURING_LOAD set, the process SIGKILLs itself as soon as dlt's loader has
# committed the first finished load job of the package: the tables are then part-way loaded; with
# KILL_AFTER_TABLE=<table>, as soon as that table's merge has committed, the other tables' jobs not started
# (test hooks in this script only; the product code is untouched). SMALL_SEGMENTS=1 makes its DuckDB segments
# a few rows, so that its first load (and a kill in it) comes while the walk goes on.
SYNC_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys

    if os.environ.get("KILL_DURING_LOAD"):
        from dlt.load.load import Load

        complete_jobs = Load.complete_jobs

        def complete_jobs_then_die(self, load_id, jobs, schema):
            remaining, finished, error = complete_jobs(self, load_id, jobs, schema)
            if finished:
                os.kill(os.getpid(), signal.SIGKILL)
            return remaining, finished, error

        Load.complete_jobs = complete_jobs_then_die

    if os.environ.get("KILL_AFTER_TABLE"):
        # dies as soon as the merge of that table into the dataset has committed; until then the loader starts
        # only that table's jobs, so the other tables' jobs are still pending at the kill whatever the timing
        import dlt.load.load as load_module
        from dlt.common.storages.load_package import ParsedLoadJobFileName
        from dlt.load.load import Load

        complete_jobs = Load.complete_jobs
        filter_new_jobs = load_module.filter_new_jobs
        table = os.environ["KILL_AFTER_TABLE"]

        def filter_that_tables_jobs(file_names, *args, **kwargs):
            root_tables = [ParsedLoadJobFileName.parse(name).table_name.split("__")[0] for name in file_names]
            mine = [name for name, root in zip(file_names, root_tables) if root == table]
            return filter_new_jobs(mine, *args, **kwargs)

        load_module.filter_new_jobs = filter_that_tables_jobs

        def complete_jobs_then_die_after(self, load_id, jobs, schema):
            remaining, finished, error = complete_jobs(self, load_id, jobs, schema)
            for job in finished:
                info = job.job_file_info()
                if info.table_name == table and info.file_format == "sql" and job.state() == "completed":
                    os.kill(os.getpid(), signal.SIGKILL)
            return remaining, finished, error

        Load.complete_jobs = complete_jobs_then_die_after

    if os.environ.get("SMALL_SEGMENTS"):
        # DuckDB loads in segments of a few rows, the first while the walk goes on
        from octogen_source.source import catalog_walk, segments, walk_process, walk_pump

        segments.MIN_SEGMENT_ROWS = 4
        segments.DETAILS_SEGMENT_SECONDS = 0.0  # a segment with details may end as soon as one without
        segments.SECONDS_PER_LOAD_SECOND = 0.0
        catalog_walk.BATCH_ROWS = 2
        walk_process.GROUP_ROWS = 2
        walk_pump.WAITING_SHARE = 0.0

    from octogen_source.sync import SyncOptions, run_sync

    database, pipelines_dir, base_url = sys.argv[1:4]
    run_sync(SyncOptions(base_url=base_url, duckdb_path=database, pipelines_dir=pipelines_dir))
    print("sync finished")
    """
)


def start_sync(target: SyncTarget, **env: str) -> subprocess.Popen[str]:
    script = target.root / "sync_to_kill.py"
    script.write_text(SYNC_SCRIPT)
    return subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(target.database),
            str(target.pipelines_dir),
            target.sandbox.base_url,
        ],
        cwd=target.root,
        env={
            **os.environ,
            "OCTO_API_KEY": target.sandbox.api_key,
            "SOURCES__OCTOGEN__CATALOGS": json.dumps(target.sandbox.granted_catalogs()),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def mutate(target: SyncTarget) -> int:
    """Changes in every catalog; returns how many products a sync must look up."""
    first, second, third = target.sandbox.granted_catalogs()
    changed = target.sandbox.update_prices(first, 10) + target.sandbox.add_products(second, 5)
    target.sandbox.remove_products(third, 2)
    return len(changed)


def killed_after_products_merge(target: SyncTarget) -> tuple[ExpectedTables, int]:
    """Syncs, changes every catalog (:func:`mutate`), then runs a sync SIGKILLed as soon as its ``products``
    merge committed: its package stays pending, part-way loaded. Returns what the tables held before the
    killed sync and how many products a sync must look up."""
    expected = ExpectedTables(target.sandbox)
    target.sync()
    expected.observe()
    to_look_up = mutate(target)
    sync = start_sync(target, KILL_AFTER_TABLE="products")
    _, stderr = sync.communicate(timeout=120)
    assert sync.returncode == -signal.SIGKILL, stderr
    return expected, to_look_up
