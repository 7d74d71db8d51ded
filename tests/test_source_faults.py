"""A small soak: the sandbox answers 10% 429 (with Retry-After), 5% 5xx and drops 2% of the connections; the
sync still finishes, the tables equal the truth, and the report counts the retries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from octogen_source.retries import RetryPolicy
from octogen_source.sandbox import Sandbox
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match, totals

PATIENT_RETRY = RetryPolicy(max_attempts=10, max_total_seconds=30.0, initial_backoff=0.01, max_backoff=0.05)


def test_a_sync_under_faults_is_complete_and_reports_its_retries(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(catalogs=4, products=40, ungranted=1, seed=23)
    target = SyncTarget(sandbox, tmp_path)
    sandbox.set_fault_rates(rate_429=0.10, rate_5xx=0.05, rate_drop=0.02, retry_after=0.05, seed=7)

    report = target.sync(retry=PATIENT_RETRY, page_size=10)
    assert totals(report) == {"new": 120, "changed": 0, "removed": 0, "lookups": 120}
    retries = report.total("retries")
    assert retries > 0
    assert report.catalog_list_requests == 0  # named catalogs: nothing listed
    assert report.total("requests") == sum(sandbox.request_counts.values())
    assert sum(sandbox.faults_injected.values()) == retries

    sandbox.clear_faults()
    expected = ExpectedTables(sandbox)
    expected.observe()
    assert_tables_match(target.database, expected)
