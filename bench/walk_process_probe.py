"""What moving the walk into a process of its own would give a full sync (a measurement, not product code):

    uv run python bench/walk_process_probe.py [--latency 0.02] [--catalogs 3 --products 50000] [--repeat 3]
                                              [--one-catalog]

On one sandbox (its own process, a fixed latency per request), each measurement in a fresh worker process:
the bare loop (bench/bare_loop.py), the full sync as shipped (details off, into a new DuckDB file: the walk in
a thread beside dlt's extract) and the same sync with the walk forked into a child process that pickles its
batches over a pipe, so that the walk's CPU (HTTP, JSON, rows) no longer shares the extract's GIL. Prints the
medians and their ratios to the bare loop, with each sync's own CPU seconds (the parent's; the child's apart).

The child is a probe: it answers the walk's reads of the destination with "nothing loaded" (so only a full
sync into a new destination is measured), and its progress reports and log lines stay in the child.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bare_loop import walk_all
from bench.measure import worker_environment
from bench.sandbox_process import sandbox_process
from octogen_source.source import segments, walk_pump
from octogen_source.source.catalog_walk import CatalogWalk, WalkBatch
from octogen_source.source.known_versions import KnownVersions
from octogen_source.source.records import Row
from octogen_source.source.report import WalkObserver
from octogen_source.source.settings import SourceSettings
from octogen_source.sync.options import SyncOptions
from octogen_source.sync.run import run_sync

MODES = ("bare", "thread", "process")


class _NothingLoaded:
    """The destination of a first sync, as the child sees it."""

    def known_versions(self, catalog: str, *, details: bool) -> KnownVersions:
        return KnownVersions()

    def stored_products(self, uuids: Sequence[str]) -> list[Row]:
        return []

    def stored_catalog(self, catalog: str) -> Row | None:
        return None


def _child(settings: SourceSettings, connection: multiprocessing.connection.Connection) -> None:
    """The walk, in the forked child: batches pickled and sent by a thread of their own (a full pipe blocks
    that thread, not the walk's loop); an empty message ends the walk."""
    outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def send() -> None:
        while True:
            message = outbox.get()
            connection.send_bytes(message)
            if not message:
                return

    sender = threading.Thread(target=send)
    sender.start()

    async def walk() -> None:
        async for batch in CatalogWalk(settings, _NothingLoaded(), WalkObserver()).batches():
            outbox.put(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))

    try:
        asyncio.run(walk())
    finally:
        outbox.put(b"")
        sender.join()


class _ProcessPump(walk_pump.WalkPump):
    """The pump with its walk in a forked child: its thread only relays the child's batches to the queue."""

    settings: SourceSettings | None = None

    def _run(self) -> None:
        assert self.settings is not None
        receiving, sending = multiprocessing.Pipe(duplex=False)
        child = multiprocessing.get_context("fork").Process(
            target=_child, args=(self.settings, sending), daemon=True
        )
        child.start()
        sending.close()
        try:
            while message := receiving.recv_bytes():
                batch: WalkBatch = pickle.loads(message)
                while self._queued_rows >= self._max_queued_rows and not self._stopping:
                    time.sleep(0.002)
                self._queue(batch)
            self._items.put(walk_pump._END)
        except EOFError:
            self._items.put(RuntimeError("the walk's process ended without its last batch"))
        finally:
            child.join()


def _walk_in_a_process() -> None:
    """Patches the segmented sync to fork its walk (this worker process only)."""
    original = segments.walked_settings

    def walked(settings: SourceSettings) -> SourceSettings:
        _ProcessPump.settings = original(settings)
        return _ProcessPump.settings

    segments.walked_settings = walked
    segments.__dict__["WalkPump"] = _ProcessPump

    # the child's reports stay in the child: every catalog counts as started
    def every_walk_started(observer: WalkObserver, catalogs: Sequence[str]) -> Any:
        return lambda: True

    segments._every_walk_started = every_walk_started


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _worker(
    mode: str, base_url: str, catalogs: list[str], page_size: int, concurrency: int
) -> dict[str, Any]:
    api_key = os.environ["OCTO_API_KEY"]
    started = time.monotonic()
    if mode == "bare":
        asyncio.run(walk_all(base_url, api_key, catalogs, page_size=page_size, concurrency=concurrency))
        products = 0
    else:
        if mode == "process":
            _walk_in_a_process()
        with tempfile.TemporaryDirectory() as directory:
            options = SyncOptions(
                destination="duckdb",
                duckdb_path=f"{directory}/probe.duckdb",
                pipelines_dir=f"{directory}/pipelines",
                api_key=api_key,
                base_url=base_url,
                catalogs=tuple(catalogs),
                details=False,
                page_size=page_size,
                max_concurrent_catalogs=concurrency,
            )
            run_sync(options)
            with duckdb.connect(f"{directory}/probe.duckdb", read_only=True) as database:
                loaded = database.execute(f"SELECT count(*) FROM {options.dataset}.products").fetchone()
            products = loaded[0] if loaded else 0
    return {
        "seconds": time.monotonic() - started,
        "cpu": _cpu_seconds(resource.RUSAGE_SELF),
        "child_cpu": _cpu_seconds(resource.RUSAGE_CHILDREN),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "products": products,
    }


def _measure(
    mode: str, sandbox_url: str, api_key: str, arguments: argparse.Namespace, catalogs: list[str]
) -> Any:
    command = [sys.executable, __file__, "--worker", mode, "--base-url", sandbox_url]
    command += ["--page-size", str(arguments.page_size), "--concurrency", str(arguments.concurrency)]
    command += ["--worker-catalogs", ",".join(catalogs)]
    finished = subprocess.run(
        command, env=worker_environment(api_key), capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        raise RuntimeError(f"{mode} worker failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/walk_process_probe.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request (default 0.02)")
    parser.add_argument("--catalogs", type=int, default=3)
    parser.add_argument("--products", type=int, default=50_000, help="products per catalog")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one-catalog", action="store_true", help="walk the first catalog only")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"what to measure, comma-separated (default {','.join(MODES)})",
    )
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--worker-catalogs", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        result = _worker(
            arguments.worker,
            arguments.base_url,
            arguments.worker_catalogs.split(","),
            arguments.page_size,
            arguments.concurrency,
        )
        print(json.dumps(result))
        return 0
    with sandbox_process(arguments.catalogs, arguments.products) as sandbox:
        print(
            f"sandbox: {arguments.catalogs} x {arguments.products:,} products,"
            f" latency {arguments.latency:g} s per request"
        )
        _measure(
            "bare", sandbox.base_url, sandbox.api_key, arguments, sandbox.catalogs
        )  # warm-up, not counted
        sandbox.remote.set_fault_rates(latency=arguments.latency)
        walked = sandbox.catalogs[:1] if arguments.one_catalog else sandbox.catalogs
        modes = ["bare", *(mode for mode in arguments.modes.split(",") if mode in MODES and mode != "bare")]
        results: dict[str, list[Any]] = {mode: [] for mode in modes}
        for round_number in range(arguments.repeat):
            for mode in modes:
                result = _measure(mode, sandbox.base_url, sandbox.api_key, arguments, walked)
                results[mode].append(result)
                print(
                    f"  [{round_number + 1}/{arguments.repeat}] {mode:8s} {result['seconds']:6.2f} s, CPU "
                    f"{result['cpu']:5.2f} s (child {result['child_cpu']:5.2f} s),"
                    f" {result['products']:,} products loaded, peak RSS {result['peak_rss_mib']:,.0f} MiB"
                )
    bare = median(result["seconds"] for result in results["bare"])
    for mode in results:
        seconds = median(result["seconds"] for result in results[mode])
        print(f"{mode:8s} median {seconds:6.2f} s  = {seconds / bare:.2f}x the bare loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
