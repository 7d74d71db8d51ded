"""The benchmark, run by hand (never a timed test):

    uv run python bench/run.py [--catalogs 3 --products 50000 --concurrency 4 --page-size 100 ...]
    uv run python bench/run.py --quick      # 3 x 5,000 products, RSS at 2,000 and 20,000: a fast smoke
    uv run python bench/run.py --soak       # faults injected at large scale: finishes, tables equal the truth

Starts the sandbox in its own process and measures, each in a fresh worker process: the bare loop (plain
httpx, same searches, same concurrency: the physical limit of one client), a full sync with details off, the
bare loop looking up every product and a full sync with details on, an incremental sync after 1% of the
products changed (its lookups must equal the changed count), dlt's generic rest_api source on the same API,
and the peak RSS of a full sync at two sizes. Prints the figures and the ratios next to their targets, and
writes them to bench/results/<timestamp>.json. ``--skip`` leaves parts out; ``--repeat`` shows medians.

The ``floors`` part measures what bounds two targets, in the same run: dlt alone loading the rows of a full
sync built before the clock (bench/dlt_floor.py), and the bare loop looking up only the products the
incremental found changed (the requests any incremental sync must make).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe_machine, machine_info
from bench.measure import Measurement, MeasurementFailed, run_worker
from bench.report import Ratio, format_ratios, format_table, median_seconds, write_results
from bench.sandbox_process import SandboxProcess, sandbox_process
from bench.soak import SoakSettings, run_soak
from octogen_source.source.settings import DEFAULT_MAX_CONCURRENT_LOOKUPS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PARTS = ("bare", "floors", "full", "bare-details", "details", "incremental", "one-catalog", "peer", "rss")
MIB = 2**20


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogs", type=int, default=None, help="catalogs in the sandbox (default 3)")
    parser.add_argument(
        "--products", type=int, default=None, help="products per catalog (default 50,000; --quick 5,000)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="catalogs walked at once (default 4)")
    parser.add_argument("--page-size", type=int, default=100, help="search page size (default 100)")
    parser.add_argument(
        "--lookups", type=int, default=None, help="concurrent detail lookups (source default)"
    )
    parser.add_argument(
        "--file-format",
        default=None,
        help="dlt loader file format of the syncs (default: what the sync picks)",
    )
    parser.add_argument(
        "--peer-file-format", default=None, help="loader file format of the peer (default: dlt's for DuckDB)"
    )
    parser.add_argument(
        "--changed", type=float, default=0.01, help="share of products changed (default 0.01)"
    )
    parser.add_argument(
        "--rss-sizes",
        default=None,
        help="total products of the two RSS runs, comma-separated (default 10000,200000; --quick 2000,20000)",
    )
    parser.add_argument("--rss-details", action="store_true", help="the RSS runs look details up too")
    parser.add_argument(
        "--rss-repeat",
        type=int,
        default=1,
        help="runs at each RSS size (the ratio is of the median peaks; a peak varies by 20-40 MiB a run)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each timing (the median is shown)")
    parser.add_argument("--skip", default="", help=f"parts to leave out, comma-separated: {', '.join(PARTS)}")
    parser.add_argument("--seed", type=int, default=0, help="sandbox data and fault seed (default 0)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a fast smoke")
    parser.add_argument("--soak", action="store_true", help="run the soak (faults injected) instead")
    parser.add_argument("--soak-retry-after", type=float, default=0.2, help="Retry-After of the 429s (s)")
    parser.add_argument("--soak-latency", type=float, default=0.005, help="latency added to each request (s)")
    parser.add_argument(
        "--soak-max-attempts", type=int, default=10, help="RetryPolicy.max_attempts of the soak's syncs"
    )
    parser.add_argument(
        "--latency",
        default="0",
        help="seconds the sandbox waits before answering each request, comma-separated: the timed parts run"
        " once per value, ratios within each (e.g. 0,0.02; default 0: loopback)",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="a source tree of an earlier version (e.g. `git archive <commit> | tar -x -C DIR`): its full,"
        " incremental and one-catalog syncs are measured too, right after ours, on the same sandbox",
    )
    parser.add_argument(
        "--walk-in-process",
        action="store_true",
        help="our syncs walk in a child process (walk_in_process); a --baseline-tree keeps its own default",
    )
    parser.add_argument("--keep", action="store_true", help="keep the DuckDB files and pipeline dirs")
    return parser


def _finish_arguments(args: argparse.Namespace) -> argparse.Namespace:
    args.catalogs = args.catalogs or 3
    args.products = args.products or (5_000 if args.quick else 50_000)
    sizes = args.rss_sizes or ("2000,20000" if args.quick else "10000,200000")
    args.rss_sizes = [int(size) for size in sizes.split(",")]
    args.latency = [float(value) for value in str(args.latency).split(",") if value.strip()]
    if not args.latency or any(value < 0 for value in args.latency):
        raise SystemExit("error: --latency needs seconds >= 0")
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    unknown = args.skip - set(PARTS)
    if unknown:
        raise SystemExit(f"error: unknown part(s) to skip: {', '.join(sorted(unknown))}")
    if min(args.repeat, args.rss_repeat, args.catalogs, args.products) < 1 or len(args.rss_sizes) != 2:
        raise SystemExit(
            "error: --repeat, --rss-repeat, --catalogs and --products must be >= 1;"
            " --rss-sizes needs two sizes"
        )
    return args


class Bench:
    """The measurements of one benchmark run, against one sandbox process."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.results: dict[str, list[Measurement]] = {}
        self._serial = 0
        self.tag = ""
        """Suffix of the result keys of the latency being measured ("" on loopback, "@20ms", ...)."""
        self.latency = 0.0
        self._detailed: dict[str, str] | None = None
        """The destination loaded with details that the incrementals sync again (with ``details`` skipped)."""

    def fresh_destination(self) -> dict[str, str]:
        self._serial += 1
        return {
            "duckdb_path": str(self.workdir / f"sync_{self._serial}.duckdb"),
            "pipelines_dir": str(self.workdir / f"pipelines_{self._serial}"),
        }

    def detailed_destination(self, sandbox: SandboxProcess) -> dict[str, str]:
        """A destination loaded by a full sync with details, made untimed and on loopback (every product is
        looked up)."""
        destination = self.fresh_destination()
        sandbox.remote.set_fault_rates(latency=0)
        try:
            spec = self.sync_spec(details=True, destination=destination)
            prepared = run_worker("full sync with details (untimed)", sandbox, spec)
        finally:
            sandbox.remote.set_fault_rates(latency=self.latency)
        print(f"  destination for the incremental (untimed, loopback): {prepared.seconds:.2f} s", flush=True)
        return destination

    def copy_of(self, destination: dict[str, str]) -> dict[str, str]:
        copy = self.fresh_destination()
        shutil.copyfile(destination["duckdb_path"], copy["duckdb_path"])
        shutil.copytree(destination["pipelines_dir"], copy["pipelines_dir"])
        return copy

    def sync_spec(self, *, details: bool, destination: dict[str, str]) -> dict[str, Any]:
        return {
            "task": "sync",
            "details": details,
            "page_size": self.args.page_size,
            "concurrency": self.args.concurrency,
            "lookups": self.args.lookups,
            "file_format": self.args.file_format,
            **({"walk_in_process": True} if self.args.walk_in_process else {}),
            **destination,
        }

    def measure(
        self, key: str, label: str, run: Callable[[], Measurement], attempts: range | None = None
    ) -> list[Measurement]:
        """Runs ``run`` --repeat times (or just the ``attempts`` given, numbered among the repeats)."""
        runs = self.results.setdefault(key + self.tag, [])
        label += self.tag
        for attempt in attempts if attempts is not None else range(self.args.repeat):
            measurement = run()
            runs.append(measurement)
            suffix = f" [{attempt + 1}/{self.args.repeat}]" if self.args.repeat > 1 else ""
            print(
                f"  {label}{suffix}: {measurement.seconds:.2f} s, {measurement.products:,} products, "
                f"{measurement.requests:,} requests, peak RSS {measurement.peak_rss_bytes / MIB:,.0f} MiB, "
                f"other load {measurement.background_cpu:.0%}",
                flush=True,
            )
        return runs

    def run_main(self, sandbox: SandboxProcess) -> None:
        walk = {"task": "bare", "page_size": self.args.page_size, "concurrency": self.args.concurrency}
        # the sandbox renders each hit once and caches it: every measurement should see a warm sandbox
        warm_up = run_worker("warm-up walk", sandbox, walk)
        print(f"  warm-up walk (not counted): {warm_up.seconds:.2f} s", flush=True)
        for latency in self.args.latency:
            self.tag = latency_tag(latency)
            self.latency = latency
            print(f"latency per request: {latency * 1000:g} ms", flush=True)
            sandbox.remote.set_fault_rates(latency=latency)
            try:
                self.run_parts(sandbox)
            finally:
                sandbox.remote.clear_faults()
        self.tag = ""

    def run_parts(self, sandbox: SandboxProcess) -> None:
        args = self.args
        walk = {"task": "bare", "page_size": args.page_size, "concurrency": args.concurrency}
        if "bare" not in args.skip:
            self.measure("bare", "bare loop", lambda: run_worker("bare loop", sandbox, walk))
        if "floors" not in args.skip:
            floor = {"task": "dlt-floor", "page_size": args.page_size}
            self.measure(
                "dlt-floor",
                "dlt alone, rows prebuilt",
                lambda: run_worker("dlt floor", sandbox, {**floor, **self.fresh_destination()}),
            )
        # the destination the incremental sync runs against: the last full sync's (details on if measured)
        loaded: dict[str, str] = {}
        loaded_by_baseline: dict[str, str] = {}
        baseline = args.baseline_tree

        def full_sync(details: bool, tree: Path | None = None) -> Measurement:
            destination = loaded_by_baseline if tree else loaded
            destination.clear()
            destination.update(self.fresh_destination())
            label = "full sync with details" if details else "full sync"
            return run_worker(
                label, sandbox, self.sync_spec(details=details, destination=destination), tree=tree
            )

        if "full" not in args.skip or ("details" in args.skip and "incremental" not in args.skip):
            self.measure("full", "full sync, details off", lambda: full_sync(False))
            if baseline:
                self.measure(
                    "full-base", "baseline: full sync, details off", lambda: full_sync(False, baseline)
                )
        if "bare-details" not in args.skip:
            lookups = args.lookups or DEFAULT_MAX_CONCURRENT_LOOKUPS
            walk_and_look_up = {**walk, "lookups": lookups}
            self.measure(
                "bare-details",
                "bare loop with lookups",
                lambda: run_worker("bare loop with lookups", sandbox, walk_and_look_up),
            )
        if "details" not in args.skip:
            self.measure("details", "full sync, details on", lambda: full_sync(True))
        if "incremental" not in args.skip:
            # an incremental runs against a destination loaded with details: products loaded without them
            # are each looked up once by the next run with details on, which is no incremental's work
            if "details" in args.skip:
                # made once per bench run: the incrementals leave it equal to the sandbox, and the next
                # latency's start from it (its build looks up every product: minutes)
                if self._detailed is None:
                    self._detailed = self.detailed_destination(sandbox)
                loaded.clear()
                loaded.update(self._detailed)
            if baseline:
                # both versions start from the same destination
                loaded_by_baseline.clear()
                loaded_by_baseline.update(self.copy_of(loaded))
            changed: set[str] = set()
            # with a baseline, each repeat reprices products once for both: the two destinations must see
            # the same changes (its destination was loaded before the same products changed)
            for attempt in range(args.repeat) if baseline else [None]:
                once = None if attempt is None else range(attempt, attempt + 1)
                changed.clear()
                self.measure(
                    "incremental",
                    "incremental sync",
                    lambda: self.incremental(sandbox, loaded, changed),
                    attempts=once,
                )
                if baseline:
                    self.measure(
                        "incremental-base",
                        "baseline: incremental sync",
                        lambda: self.incremental(sandbox, loaded_by_baseline, changed, tree=baseline),
                        attempts=once,
                    )
        if "one-catalog" not in args.skip:
            # one catalog alone, as one Airflow task syncs it
            alone = {"catalogs": sandbox.catalogs[:1]}
            self.measure(
                "bare-one",
                "bare walk of one catalog",
                lambda: run_worker("bare one", sandbox, {**walk, **alone}),
            )
            for key, label, tree in (
                ("one", "full sync of one catalog", None),
                ("one-base", "baseline: full sync of one catalog", args.baseline_tree),
            ):
                if key == "one-base" and tree is None:
                    continue
                self.measure(
                    key,
                    label,
                    lambda tree=tree: run_worker(  # type: ignore[misc]
                        "one catalog",
                        sandbox,
                        {**self.sync_spec(details=False, destination=self.fresh_destination()), **alone},
                        tree=tree,
                    ),
                )
        if "peer" not in args.skip:
            self.measure(
                "peer",
                "peer (dlt rest_api)",
                lambda: run_worker(
                    "peer",
                    sandbox,
                    {
                        "task": "peer",
                        "page_size": args.page_size,
                        "file_format": args.peer_file_format,
                        **self.fresh_destination(),
                    },
                ),
            )

    def incremental(
        self, sandbox: SandboxProcess, loaded: dict[str, str], changed: set[str], tree: Path | None = None
    ) -> Measurement:
        """Reprices ``--changed`` of each catalog's products (unless ``changed`` already names them: a
        baseline's turn), then syncs the last full sync's destination again, details on."""
        if not changed or tree is None:
            per_catalog = max(1, round(self.args.products * self.args.changed))
            changed.clear()
            changed.update(
                uuid
                for catalog in sandbox.catalogs
                for uuid in sandbox.remote.update_prices(catalog, per_catalog)
            )
        measurement = run_worker(
            "incremental sync", sandbox, self.sync_spec(details=True, destination=loaded), tree=tree
        )
        figures = measurement.figures
        checks = {
            "changed_in_sandbox": len(changed),
            "changed_reported": figures["changed"],
            "new_reported": figures["new"],
            "lookups_reported": figures["lookups"],
            "lookups_received": measurement.server_requests.get("lookup", 0),
        }
        ok = (
            figures["lookups"] == figures["changed"] == len(changed)
            and figures["new"] == 0
            and checks["lookups_received"] == len(changed)
        )
        measurement.extra["check"] = {**checks, "lookups_equal_changed": ok}
        print(
            f"  check: {len(changed)} products changed, {figures['changed']} reported changed, "
            f"{figures['lookups']} lookups reported, {checks['lookups_received']} received: "
            f"{'OK' if ok else 'MISMATCH'}",
            flush=True,
        )
        if "floors" not in self.args.skip and tree is None:
            self.incremental_floor(sandbox, changed)
        return measurement

    def incremental_floor(self, sandbox: SandboxProcess, changed: set[str]) -> None:
        """The bare loop looking up just the changed products: every request an incremental must make."""
        self._serial += 1
        uuids = self.workdir / f"changed_{self._serial}.json"
        uuids.write_text(json.dumps(sorted(changed)))
        spec = {
            "task": "bare",
            "page_size": self.args.page_size,
            "concurrency": self.args.concurrency,
            "lookups": self.args.lookups or DEFAULT_MAX_CONCURRENT_LOOKUPS,
            "look_up_file": str(uuids),
        }
        floor = run_worker("bare loop + changed lookups", sandbox, spec)
        self.results.setdefault("incremental-floor" + self.tag, []).append(floor)
        print(
            f"  floor{self.tag}: bare loop + {floor.server_requests.get('lookup', 0):,} changed lookups:"
            f" {floor.seconds:.2f} s",
            flush=True,
        )

    def run_rss(self) -> None:
        """Full syncs into fresh destinations at the two sizes, --rss-repeat times each; with a baseline tree
        its runs alternate with ours on the same sandbox, so both see the machine as it is."""
        self.tag = ""
        trees: list[tuple[str, Path | None]] = [("", None)]
        if self.args.baseline_tree is not None:
            trees.append(("-base", self.args.baseline_tree))
        repeats = self.args.rss_repeat
        for total in self.args.rss_sizes:
            per_catalog = math.ceil(total / self.args.catalogs)
            with sandbox_process(self.args.catalogs, per_catalog, seed=self.args.seed) as sandbox:
                for attempt in range(repeats):
                    for suffix, tree in trees:
                        spec = self.sync_spec(
                            details=self.args.rss_details, destination=self.fresh_destination()
                        )
                        measurement = run_worker(
                            f"full sync of {total:,}", sandbox, {**spec, "rss_by_phase": True}, tree=tree
                        )
                        self.results.setdefault(f"rss_{total}{suffix}", []).append(measurement)
                        label = "baseline: " if tree is not None else ""
                        self.print_rss(
                            measurement, f"{label}[{attempt + 1}/{repeats}] " if repeats > 1 else label
                        )

    def print_rss(self, measurement: Measurement, label: str = "") -> None:
        phases = ", ".join(
            f"{phase} {peak / MIB:,.0f}"
            for phase, peak in measurement.figures.get("rss_by_phase", {}).items()
        )
        print(
            f"  {label}full sync of {measurement.products:,} products: peak RSS "
            f"{measurement.peak_rss_bytes / MIB:,.0f} MiB ({measurement.seconds:.2f} s); by phase (MiB): "
            f"{phases}",
            flush=True,
        )

    def timing_ratios(self, tag: str, *, on_loopback: bool) -> list[Ratio]:
        """The ratios among the timings of one latency; at a real latency every target is 1.1 (issue 13)."""
        found = {
            key[: -len(tag)] if tag else key: runs for key, runs in self.results.items() if key.endswith(tag)
        }
        ratios: list[Ratio] = []

        def seconds(key: str) -> float | None:
            runs = found.get(key)
            return median_seconds(runs) if runs else None

        bare, full, details = seconds("bare"), seconds("full"), seconds("details")
        bare_details = seconds("bare-details")
        incremental, peer = seconds("incremental"), seconds("peer")
        if bare and full:
            ratios.append(Ratio(f"full sync / bare loop{tag}", full / bare, 1.3 if on_loopback else 1.1))
        if bare_details and details:
            ratios.append(
                Ratio(f"full sync with details / bare loop with lookups{tag}", details / bare_details, None)
            )
        if bare and incremental:
            ratios.append(
                Ratio(f"incremental / bare loop{tag}", incremental / bare, 1.1 if on_loopback else None)
            )
        dlt_floor, incremental_floor = found.get("dlt-floor"), seconds("incremental-floor")
        if bare and dlt_floor:
            load_steps = median(run.figures["dlt_normalize_load_seconds"] for run in dlt_floor)
            ratios.append(
                Ratio(
                    f"floor of a full sync: (bare loop + dlt's normalize and load) / bare loop{tag}",
                    (bare + load_steps) / bare,
                    None,
                )
            )
        if bare and incremental_floor:
            ratios.append(
                Ratio(
                    f"floor of an incremental: bare loop + changed lookups / bare loop{tag}",
                    incremental_floor / bare,
                    None,
                )
            )
        if incremental and incremental_floor:
            ratios.append(
                Ratio(
                    f"incremental / bare loop making the same requests{tag}",
                    incremental / incremental_floor,
                    None if on_loopback else 1.1,
                )
            )
        one, bare_one = seconds("one"), seconds("bare-one")
        if one and bare_one:
            ratios.append(
                Ratio(f"one catalog alone / its bare walk{tag}", one / bare_one, None if on_loopback else 1.1)
            )
        for key, against, name in (
            ("full-base", "bare", "baseline: full sync / bare loop"),
            ("incremental-base", "incremental-floor", "baseline: incremental / bare loop, same requests"),
            ("one-base", "bare-one", "baseline: one catalog alone / its bare walk"),
        ):
            mine, theirs = seconds(key), seconds(against)
            if mine and theirs:
                ratios.append(Ratio(f"{name}{tag}", mine / theirs, None))
        if full and peer:
            ratios.append(Ratio(f"peer / ours (details off){tag}", peer / full, 2.0, at_most=False))
        if incremental and peer:
            # the peer has no incremental mode: every run of it reads and merges everything again
            ratios.append(Ratio(f"peer / our incremental{tag}", peer / incremental, None))
        return ratios

    def ratios(self) -> list[Ratio]:
        ratios: list[Ratio] = []
        for latency in self.args.latency:
            ratios += self.timing_ratios(latency_tag(latency), on_loopback=latency == 0)
        found = self.results
        for suffix, prefix in (("", ""), ("-base", "baseline: ")):
            small, large = (found.get(f"rss_{size}{suffix}") for size in self.args.rss_sizes)
            if small and large:
                ratio = median_peak_rss(large) / median_peak_rss(small)
                name = f"{prefix}RSS({self.args.rss_sizes[1]:,}) / RSS({self.args.rss_sizes[0]:,})"
                ratios.append(Ratio(name, ratio, None if prefix else 1.3))
        return ratios

    def table_rows(self) -> list[tuple[str, list[Measurement]]]:
        labels = {
            "bare": "bare loop (httpx + JSON)",
            "dlt-floor": "dlt alone: rows prebuilt",
            "bare-details": "bare loop + every lookup",
            "full": "full sync, details off",
            "details": "full sync, details on",
            "incremental": f"incremental, {self.args.changed:.0%} changed",
            "incremental-floor": "bare loop + changed lookups",
            "peer": "peer: dlt rest_api",
        }
        labels["bare-one"] = "bare walk of one catalog"
        labels["one"] = "full sync of one catalog"
        labels["full-base"] = "baseline: full sync, details off"
        labels["incremental-base"] = "baseline: incremental"
        labels["one-base"] = "baseline: full sync of one catalog"
        rows = [
            (label + tag, self.results[key + tag])
            for tag in (latency_tag(latency) for latency in self.args.latency)
            for key, label in labels.items()
            if key + tag in self.results
        ]
        rows += [
            (f"{prefix}full sync for RSS, {size:,}", self.results[f"rss_{size}{suffix}"])
            for suffix, prefix in (("", ""), ("-base", "baseline: "))
            for size in self.args.rss_sizes
            if f"rss_{size}{suffix}" in self.results
        ]
        return rows


def median_peak_rss(runs: list[Measurement]) -> float:
    return median(run.peak_rss_bytes for run in runs)


def latency_tag(latency: float) -> str:
    return f"@{latency * 1000:g}ms" if latency else ""


def run_benchmark(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bench = Bench(args, workdir)
    total = args.catalogs * args.products
    print(
        f"sandbox: {args.catalogs} catalogs x {args.products:,} products = {total:,}; page size "
        f"{args.page_size}, concurrency {args.concurrency}",
        flush=True,
    )
    if set(PARTS) - {"rss"} - args.skip:
        with sandbox_process(args.catalogs, args.products, seed=args.seed) as sandbox:
            bench.run_main(sandbox)
    if "rss" not in args.skip:
        bench.run_rss()
    ratios = bench.ratios()
    print()
    print(format_table(bench.table_rows()))
    print()
    print(format_ratios(ratios) if ratios else "(no ratios: parts skipped)")
    return {
        "measurements": {key: [run.as_json() for run in runs] for key, runs in bench.results.items()},
        "ratios": [ratio.as_json() for ratio in ratios],
    }


def main(argv: list[str] | None = None) -> int:
    args = _finish_arguments(_parser().parse_args(argv))
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    machine = machine_info()
    print(f"machine: {describe_machine(machine)}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="octogen-bench-"))
    try:
        if args.soak:
            settings = SoakSettings(
                catalogs=args.catalogs,
                products=args.products,
                page_size=args.page_size,
                concurrency=args.concurrency,
                changed=args.changed,
                retry_after=args.soak_retry_after,
                latency=args.soak_latency,
                max_attempts=args.soak_max_attempts,
                seed=args.seed,
                file_format=args.file_format,
                lookups=args.lookups,
            )
            outcome = run_soak(settings, workdir)
        else:
            outcome = run_benchmark(args, workdir)
    except MeasurementFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept the DuckDB files and pipeline dirs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    record = {
        "started": stamp,
        "mode": "soak" if args.soak else "quick" if args.quick else "benchmark",
        "arguments": {
            name: sorted(value) if isinstance(value, set) else value for name, value in vars(args).items()
        },
        "machine": machine,
        "load_average_after": list(os.getloadavg()),
        **outcome,
    }
    path = write_results(RESULTS_DIR, stamp, record)
    print(f"\nresults written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0 if outcome.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
