"""The soak at small scale: syncs while the sandbox injects 10% 429 (with Retry-After), 5% 5xx and 2% dropped
connections plus latency. Each sync finishes, every table equals the sandbox's truth, and the summary reports
the retries. (The same soak at large scale: ``uv run python bench/run.py --soak``.)

The faults are drawn from a seeded generator, one draw per request in the order requests arrive: which request
gets which fault varies with the interleaving, how many faults a sync meets does not. Ten attempts per request
make a request failing ten times in a row (0.17**10) practically impossible.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from octogen_source.retries import RetryPolicy
from octogen_source.sandbox import Sandbox
from octogen_source.sync import SyncReport, format_summary
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match, totals

CATALOGS = 3
PRODUCTS_PER_CATALOG = 150
FAULT_RATES = {
    "rate_429": 0.10,
    "rate_5xx": 0.05,
    "rate_drop": 0.02,
    "latency": 0.002,
    "retry_after": 0.05,
}
SOAK_RETRY = RetryPolicy(max_attempts=10, max_total_seconds=30.0, initial_backoff=0.01, max_backoff=0.05)


def sync_under_faults(target: SyncTarget, seed: int) -> tuple[SyncReport, dict[str, int]]:
    """One sync with the fault rates on; returns its report and the faults the sandbox injected."""
    sandbox = target.sandbox
    sandbox.reset_counts()
    sandbox.set_fault_rates(**FAULT_RATES, seed=seed)
    try:
        report = target.sync(retry=SOAK_RETRY)
        injected = sandbox.faults_injected
    finally:
        sandbox.clear_faults()
    return report, injected


def assert_retries_reported(report: SyncReport, injected: dict[str, int]) -> None:
    """Each injected fault was answered by one retry, and the printed summary shows the retries."""
    assert sum(injected.values()) > 0
    # the catalogs are named: no listing request before the walks
    assert report.catalog_list_requests == report.catalog_list_retries == 0
    assert report.retries == sum(injected.values())
    total_line = next(line for line in format_summary(report).splitlines() if line.startswith("total"))
    assert int(total_line.split()[6]) == report.retries > 0


def test_syncs_under_faults_finish_with_the_truth_and_report_retries(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(catalogs=CATALOGS, products=PRODUCTS_PER_CATALOG, seed=5)
    target = SyncTarget(sandbox, tmp_path)
    expected = ExpectedTables(sandbox)
    first, second, third = sandbox.granted_catalogs()

    report, injected = sync_under_faults(target, seed=1)
    everything = CATALOGS * PRODUCTS_PER_CATALOG
    assert totals(report) == {"new": everything, "changed": 0, "removed": 0, "lookups": everything}
    assert {"429", "drop"} <= set(injected) and {"500", "503"} & set(injected), injected
    assert_retries_reported(report, injected)
    expected.observe()
    assert_tables_match(target.database, expected)

    # changes of every kind, synced under the same faults: only they are looked up, nothing else moves
    sandbox.update_prices(first, 40)
    sandbox.add_products(second, 20)
    sandbox.remove_products(third, 10)
    report, injected = sync_under_faults(target, seed=2)
    assert totals(report) == {"new": 20, "changed": 40, "removed": 10, "lookups": 60}
    assert_retries_reported(report, injected)
    expected.observe()
    assert_tables_match(target.database, expected)


def test_a_retried_catalog_listing_is_counted_in_the_summary(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # only a seed-era API lists catalogs, and only when none are named
    sandbox = sandbox_factory(catalogs=2, products=5, seed=3, generation="seed")
    target = SyncTarget(sandbox, tmp_path)
    sandbox.fail_next(1, "503", endpoint="catalogs")

    report = target.sync(retry=SOAK_RETRY, details=False, catalogs=())

    assert (report.catalog_list_requests, report.catalog_list_retries) == (2, 1)
    assert report.retries == 1
    total_line = next(line for line in format_summary(report).splitlines() if line.startswith("total"))
    assert total_line.split()[5:7] == [str(report.requests), "1"]
