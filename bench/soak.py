"""The soak at large scale: a full sync and an incremental one while the sandbox injects 10% 429 (with
Retry-After), 5% 5xx and 2% dropped connections plus latency. Both syncs must finish, every table must equal
the sandbox's truth, and the summary must report the retries.

The tables are compared with the same support the end-to-end tests use (``tests.sync_support``), fed from
the sandbox process's truth over its admin endpoints.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.measure import Measurement, run_worker
from bench.sandbox_process import SandboxProcess, sandbox_process
from tests.sync_support import ExpectedTables, assert_tables_match

RATE_429 = 0.10
RATE_5XX = 0.05
RATE_DROP = 0.02


@dataclass(frozen=True)
class SoakSettings:
    catalogs: int
    products: int
    page_size: int
    concurrency: int
    changed: float
    retry_after: float
    latency: float
    max_attempts: int
    seed: int
    file_format: str | None = None
    lookups: int | None = None


def _sync_under_faults(
    settings: SoakSettings, sandbox: SandboxProcess, label: str, spec: dict[str, Any]
) -> tuple[Measurement, dict[str, int]]:
    sandbox.remote.set_fault_rates(
        rate_429=RATE_429,
        rate_5xx=RATE_5XX,
        rate_drop=RATE_DROP,
        latency=settings.latency,
        retry_after=settings.retry_after,
        seed=settings.seed,
    )
    try:
        measurement = run_worker(label, sandbox, spec)
        injected = sandbox.remote.faults_injected
    finally:
        sandbox.remote.clear_faults()
    figures = measurement.figures
    print(
        f"  {label}: {measurement.seconds:.1f} s, {measurement.products:,} products, {figures['new']:,} new, "
        f"{figures['changed']:,} changed, {figures['removed']:,} removed, {figures['lookups']:,} lookups; "
        f"{figures['client_requests']:,} requests of which {figures['retries']:,} retries; "
        f"faults injected: {injected}",
        flush=True,
    )
    return measurement, injected


def _compare(database: Path, expected: ExpectedTables) -> str | None:
    """None when every table equals its expectation, else what differs (first line of the assertion)."""
    started = time.monotonic()
    try:
        assert_tables_match(database, expected)
    except AssertionError as difference:
        return str(difference).splitlines()[0] if str(difference) else "tables differ"
    finally:
        print(f"  compared the tables with the truth in {time.monotonic() - started:.1f} s", flush=True)
    return None


def run_soak(settings: SoakSettings, workdir: Path) -> dict[str, Any]:
    print(
        f"soak: {settings.catalogs} catalogs x {settings.products:,} products; faults {RATE_429:.0%} 429 "
        f"(Retry-After {settings.retry_after:g} s), {RATE_5XX:.0%} 5xx, {RATE_DROP:.0%} dropped, latency "
        f"{settings.latency:g} s; RetryPolicy(max_attempts={settings.max_attempts})",
        flush=True,
    )
    destination = {
        "duckdb_path": str(workdir / "soak.duckdb"),
        "pipelines_dir": str(workdir / "soak_pipelines"),
    }
    spec: dict[str, Any] = {
        "task": "sync",
        "page_size": settings.page_size,
        "concurrency": settings.concurrency,
        "retry": {"max_attempts": settings.max_attempts},
        "file_format": settings.file_format,
        "lookups": settings.lookups,
        **destination,
    }
    database = Path(destination["duckdb_path"])
    outcome: dict[str, Any] = {"settings": asdict(settings), "syncs": []}
    with sandbox_process(settings.catalogs, settings.products, seed=settings.seed) as sandbox:
        remote = sandbox.remote
        # ExpectedTables only calls the truth and mutation methods RemoteSandbox shares with Sandbox
        expected = ExpectedTables(remote, details=False)  # type: ignore[arg-type]

        first, injected = _sync_under_faults(
            settings, sandbox, "full sync (details off)", {**spec, "details": False}
        )
        expected.observe()
        difference = _compare(database, expected)
        outcome["syncs"].append({**first.as_json(), "faults_injected": injected, "difference": difference})

        per_catalog = max(1, round(settings.products * settings.changed))
        few = max(1, per_catalog // 10)
        for catalog in sandbox.catalogs:
            remote.update_prices(catalog, per_catalog)
            remote.add_products(catalog, few)
            remote.remove_products(catalog, few)
        # details off like the full sync: with them on, every product the full sync loaded without its
        # details is looked up (150,000 lookups, ≈ 35 min under these faults), not only the changed ones
        second, injected = _sync_under_faults(
            settings, sandbox, "incremental sync (details off)", {**spec, "details": False}
        )
        expected.observe()
        second_difference = _compare(database, expected)
        outcome["syncs"].append(
            {**second.as_json(), "faults_injected": injected, "difference": second_difference}
        )

    retries = sum(int(sync["retries"]) for sync in outcome["syncs"])
    equal = difference is None and second_difference is None
    outcome["ok"] = equal and retries > 0
    print()
    print(f"tables equal the sandbox's truth after both syncs: {'yes' if equal else 'NO'}")
    for label, found in (("full", difference), ("incremental", second_difference)):
        if found is not None:
            print(f"  after the {label} sync: {found}")
    print(f"retries reported by the summaries: {retries:,}")
    return outcome
