"""A sync SIGKILLed during extract or during load (its only one, or a segment's while the walk goes on, the
walk in a thread or in a process), followed by a normal sync, leaves every table equal to the API's
truth: nothing lost, nothing duplicated. The killed sync runs in a subprocess against the sandbox."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import dlt
import pytest

from octogen_source.sandbox import Sandbox
from tests.kill_support import mutate, start_sync
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match, totals


@pytest.fixture
def target(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> SyncTarget:
    return SyncTarget(sandbox_factory(catalogs=4, products=40, ungranted=1, seed=17), tmp_path)


def test_killed_during_extract_then_resumed(target: SyncTarget) -> None:
    sandbox = target.sandbox
    expected = ExpectedTables(sandbox)
    target.sync()
    expected.observe()
    to_look_up = mutate(target)

    sandbox.reset_counts()
    sandbox.set_fault_rates(latency=0.2)  # keeps the lookups of the killed sync in flight
    sync = start_sync(target)
    deadline = time.monotonic() + 60
    while sandbox.request_counts["lookup"] < 3:
        assert sync.poll() is None, sync.communicate()
        assert time.monotonic() < deadline, "the sync never started its lookups"
        time.sleep(0.01)
    sync.send_signal(signal.SIGKILL)
    assert sync.wait(timeout=30) == -signal.SIGKILL
    sandbox.clear_faults()

    report = target.sync()
    # the killed extract loaded nothing: the normal sync finds every change again
    assert totals(report) == {"new": 5, "changed": 10, "removed": 2, "lookups": to_look_up}
    expected.observe()
    assert_tables_match(target.database, expected)


def test_killed_during_load_then_resumed(target: SyncTarget) -> None:
    expected = ExpectedTables(target.sandbox)
    target.sync()
    expected.observe()
    mutate(target)

    sync = start_sync(target, KILL_DURING_LOAD="1")
    stdout, stderr = sync.communicate(timeout=120)
    assert sync.returncode == -signal.SIGKILL, stderr
    assert "sync finished" not in stdout
    pipeline = dlt.attach("octogen_sync", pipelines_dir=str(target.pipelines_dir))
    assert pipeline.list_normalized_load_packages(), "the kill did not leave a package part-way loaded"

    report = target.sync()
    # the killed sync's package was finished first; its changes were all in it
    assert totals(report) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
    expected.observe()
    assert_tables_match(target.database, expected)
    assert target.sync().total("lookups") == 0


@pytest.mark.parametrize("walk_in_process", [False, True], ids=["walk-in-thread", "walk-in-process"])
def test_killed_in_a_load_while_the_walk_goes_on_then_resumed(
    target: SyncTarget, walk_in_process: bool
) -> None:
    sandbox = target.sandbox
    expected = ExpectedTables(sandbox)
    target.sync(page_size=2)
    pages = sandbox.request_counts["search"]  # a whole walk's (the changes below add a few)
    expected.observe()
    mutate(target)

    sandbox.reset_counts()
    sandbox.set_fault_rates(latency=0.25)  # a walk of 5 s: it outlasts the first segment and its load
    sync = start_sync(
        target,
        SMALL_SEGMENTS="1",
        KILL_DURING_LOAD="1",
        SOURCES__OCTOGEN__PAGE_SIZE="2",
        SOURCES__OCTOGEN__WALK_IN_PROCESS=str(walk_in_process).lower(),
    )
    stdout, stderr = sync.communicate(timeout=120)
    searched = sandbox.request_counts["search"]
    sandbox.clear_faults()
    assert sync.returncode == -signal.SIGKILL, stderr
    assert "sync finished" not in stdout
    assert searched < pages * 3 // 4, (
        f"the walk had nearly ended ({searched} of {pages} pages) when its load was killed"
    )
    pipeline = dlt.attach("octogen_sync", pipelines_dir=str(target.pipelines_dir))
    assert pipeline.list_normalized_load_packages(), "the kill did not leave a segment part-way loaded"

    # the killed segment's package is finished first; what the walk had not reached is found again
    target.sync()
    expected.observe()
    assert_tables_match(target.database, expected)
    assert totals(target.sync()) == {"new": 0, "changed": 0, "removed": 0, "lookups": 0}
