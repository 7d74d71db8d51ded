"""The DuckDB file over many incremental syncs: does it grow with its rows or with the runs?

A first sync, then ``--runs`` incremental ones, each after changes in the sandbox (per catalog: repricings,
recolorings, additions, removals), all in this process against the sandbox in its own. Prints, every
``--every`` runs, the sync's seconds, the file's size, DuckDB's used and free blocks and the rows of the main
tables. Run by hand:

    uv run python bench/file_growth.py --runs 150

A file that grows with the runs (free blocks never reused, a table that keeps every run's copy) shows as a
size that climbs while the rows stay level.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from bench.sandbox_process import SandboxProcess, sandbox_process
from octogen_source.sync import SyncOptions, run_sync

TABLES = ("products", "product_details", "price_history", "sync_runs")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalogs", type=int, default=3)
    parser.add_argument("--products", type=int, default=3_000, help="per catalog")
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--every", type=int, default=10, help="print every N runs")
    parser.add_argument("--repriced", type=int, default=20, help="per catalog and run")
    parser.add_argument("--recolored", type=int, default=5, help="per catalog and run")
    parser.add_argument("--added", type=int, default=3, help="per catalog and run")
    parser.add_argument("--removed", type=int, default=2, help="per catalog and run")
    parser.add_argument("--no-details", dest="details", action="store_false")
    arguments = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="octogen-growth-") as scratch,
        sandbox_process(arguments.catalogs, arguments.products) as sandbox,
    ):
        database = Path(scratch) / "catalog.duckdb"
        options = SyncOptions(
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
            catalogs=tuple(sandbox.catalogs),
            duckdb_path=str(database),
            pipelines_dir=str(Path(scratch) / "pipelines"),
            pipeline_name="octogen_growth",
            details=arguments.details,
        )
        for run in range(arguments.runs + 1):
            if run > 0:
                _change(sandbox, arguments)
            started = time.perf_counter()
            run_sync(options)
            seconds = time.perf_counter() - started
            if run <= 1 or run % arguments.every == 0 or run == arguments.runs:
                print(
                    f"run {run:4d}  {seconds:6.2f} s  {_file_figures(database, options.dataset)}", flush=True
                )
    return 0


def _change(sandbox: SandboxProcess, arguments: argparse.Namespace) -> None:
    remote = sandbox.remote
    for catalog in sandbox.catalogs:
        remote.update_prices(catalog, arguments.repriced)
        remote.recolor_products(catalog, arguments.recolored)
        remote.add_products(catalog, arguments.added)
        remote.remove_products(catalog, arguments.removed)


def _file_figures(database: Path, dataset: str) -> str:
    size = database.stat().st_size / 2**20
    with duckdb.connect(str(database), read_only=True) as connection:
        used, free, block_size = connection.execute(
            "SELECT used_blocks, free_blocks, block_size FROM pragma_database_size()"
        ).fetchone() or (0, 0, 0)
        rows = [f"{table} {_count(connection, f'{dataset}.{table}'):,}" for table in TABLES]
    mib = block_size / 2**20
    return f"file {size:6.1f} MiB (used {used * mib:.1f}, free {free * mib:.1f})  " + ", ".join(rows)


def _count(connection: duckdb.DuckDBPyConnection, table: str) -> int:
    (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
    return int(count)


if __name__ == "__main__":
    raise SystemExit(main())
