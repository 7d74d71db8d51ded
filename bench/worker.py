"""One measurement in a fresh process: ``python -m bench.worker '<json spec>'``, the key in OCTO_API_KEY.

Imports happen before the clock starts, including the ones libraries make lazily on first use (pyarrow imports
pandas at its first array: ≈1 s here); the result (seconds, figures, peak RSS) is printed as one JSON line
prefixed with ``RESULT_MARKER``. Tasks: ``bare`` (plain httpx walk), ``sync`` (run_sync), ``peer`` (dlt's
generic rest_api source), ``dlt-floor`` (dlt loading rows built before the clock).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

RESULT_MARKER = "BENCH_RESULT "
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Spec = dict[str, Any]
Figures = dict[str, Any]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (threads included)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _children() -> list[str]:
    """The pids of the process's running children."""
    pids: list[str] = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as listed:
                pids += listed.read().split()
        except OSError:
            continue
    return pids


def _children_private_bytes(pids: list[str]) -> int:
    """The memory the children ``pids`` hold of their own (private pages; what a forked child shares with this
    process is in this process's RSS already): the walk's child, when it runs in one."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith(("Private_Clean:", "Private_Dirty:")):
                        total += int(line.split()[1]) * 1024
        except OSError:  # ended meanwhile
            continue
    return total


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux; a child's private memory is counted by the PhaseSampler (RSS runs)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PhaseSampler:
    """Samples the process's RSS (plus its children's private memory: the walk's process) every few
    milliseconds and keeps the peak of each phase of a sync: ``walk`` (dlt's extract, the walk included),
    ``normalize``, ``load``, ``after`` (views, report)."""

    INTERVAL_SECONDS = 0.01
    CHILDREN_EVERY = 20
    """The children's memory is read every 20th sample (0.2 s) and when one starts or ends:
    ``smaps_rollup`` walks a process's page tables (1-3 ms for a few hundred MiB), and read 100 times a
    second it took a quarter of a core."""

    def __init__(self) -> None:
        self.phase = "walk"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        children, pids = 0, list[str]()
        for count in itertools.count():
            if self._stop.wait(self.INTERVAL_SECONDS):
                return
            now = _children()
            if now != pids or count % self.CHILDREN_EVERY == 0:
                pids, children = now, _children_private_bytes(now)
            rss = _current_rss_bytes() + children
            if rss > self.peaks.get(self.phase, 0):
                self.peaks[self.phase] = rss

    def __enter__(self) -> PhaseSampler:
        import dlt

        sampler = self
        for step in ("extract", "normalize", "load"):
            original = getattr(dlt.Pipeline, step)

            def marked(
                self: Any, *args: Any, _step: str = step, _original: Any = original, **kwargs: Any
            ) -> Any:
                sampler.phase = "walk" if _step == "extract" else _step
                try:
                    return _original(self, *args, **kwargs)
                finally:
                    sampler.phase = "after"

            setattr(dlt.Pipeline, step, marked)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def prepare_bare(spec: Spec, api_key: str) -> Callable[[], Figures]:
    from bench.bare_loop import walk_all

    look_up_only: frozenset[str] | None = None
    if spec.get("look_up_file"):
        with open(spec["look_up_file"]) as uuids:
            look_up_only = frozenset(json.load(uuids))

    def run() -> Figures:
        totals = asyncio.run(
            walk_all(
                spec["base_url"],
                api_key,
                spec["catalogs"],
                page_size=spec["page_size"],
                concurrency=spec["concurrency"],
                lookups=spec.get("lookups") or 0,
                look_up_only=look_up_only,
            )
        )
        return {"products": totals.products, "client_requests": totals.requests}

    return run


def prepare_sync(spec: Spec, api_key: str) -> Callable[[], Figures]:
    from octogen_source.retries import RetryPolicy
    from octogen_source.sync import SyncOptions, run_sync

    retry = RetryPolicy(**spec["retry"]) if spec.get("retry") else None
    options = SyncOptions(
        api_key=api_key,
        base_url=spec["base_url"],
        catalogs=tuple(spec["catalogs"]),
        duckdb_path=spec["duckdb_path"],
        pipelines_dir=spec["pipelines_dir"],
        pipeline_name=spec.get("pipeline_name", "octogen_bench"),
        details=spec["details"],
        page_size=spec["page_size"],
        max_concurrent_catalogs=spec["concurrency"],
        max_concurrent_lookups=spec.get("lookups"),
        loader_file_format=spec.get("file_format"),
        retry=retry,
        walk_in_process=spec.get("walk_in_process"),
    )

    def run() -> Figures:
        figures: Figures = {}
        if spec.get("rss_by_phase"):
            with PhaseSampler() as sampler:
                report = run_sync(options)
            figures["rss_by_phase"] = sampler.peaks
            figures["sampled_peak_rss_bytes"] = max(sampler.peaks.values(), default=0)
        else:
            # timed runs sample nothing: the sampler's thread would take the GIL 100 times a second
            report = run_sync(options)
        figures |= {
            name: report.total(name) for name in ("new", "changed", "removed", "lookups", "retries", "walked")
        }
        figures["products"] = figures.pop("walked")
        figures["client_requests"] = report.requests
        figures["report_seconds"] = report.seconds
        figures["catalog_seconds"] = {r.catalog: round(r.seconds, 3) for r in report.catalogs}
        return figures

    return run


def prepare_peer(spec: Spec, api_key: str) -> Callable[[], Figures]:
    from bench.peer import run_peer

    def run() -> Figures:
        products = run_peer(
            spec["base_url"],
            api_key,
            spec["catalogs"],
            page_size=spec["page_size"],
            duckdb_path=spec["duckdb_path"],
            pipelines_dir=spec["pipelines_dir"],
            file_format=spec.get("file_format"),
        )
        return {"products": products}

    return run


def prepare_dlt_floor(spec: Spec, api_key: str) -> Callable[[], Figures]:
    from bench.dlt_floor import load_prepared, prepare_rows

    prepared = prepare_rows(spec["base_url"], api_key, spec["catalogs"], spec["page_size"])

    def run() -> Figures:
        return load_prepared(prepared, duckdb_path=spec["duckdb_path"], pipelines_dir=spec["pipelines_dir"])

    return run


TASKS: dict[str, Callable[[Spec, str], Callable[[], Figures]]] = {
    "bare": prepare_bare,
    "sync": prepare_sync,
    "peer": prepare_peer,
    "dlt-floor": prepare_dlt_floor,
}


def _import_lazy_dependencies() -> None:
    """What a sync imports on first use rather than at import time, paid here and not on the clock."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is not None:
        import pyarrow

        pyarrow.array([0])  # imports pandas when it is installed


def main() -> int:
    spec: Spec = json.loads(sys.argv[1])
    run = TASKS[spec["task"]](spec, os.environ["OCTO_API_KEY"])
    _import_lazy_dependencies()
    baseline = _current_rss_bytes()
    sandbox_pid: int | None = spec.get("sandbox_pid")
    sandbox_cpu_started = process_cpu_seconds(sandbox_pid) if sandbox_pid is not None else 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    children_at_start = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_cpu_started = children_at_start.ru_utime + children_at_start.ru_stime
    figures = run()
    figures["seconds"] = time.perf_counter() - started
    figures["client_cpu_seconds"] = time.process_time() - cpu_started
    if sandbox_pid is not None:  # the sandbox's CPU while timed (not the requests made before the clock)
        figures["timed_sandbox_cpu_seconds"] = process_cpu_seconds(sandbox_pid) - sandbox_cpu_started
    # the walk's own process, when it runs in one (waited for by the time the run returns)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["children_cpu_seconds"] = children.ru_utime + children.ru_stime - children_cpu_started
    figures["baseline_rss_bytes"] = baseline
    figures["peak_rss_bytes"] = max(_peak_rss_bytes(), figures.pop("sampled_peak_rss_bytes", 0))
    print(RESULT_MARKER + json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
