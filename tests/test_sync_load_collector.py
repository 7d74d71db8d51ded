"""Before each load of a sync the process hands back the memory it freed (``octogen_source.allocator`` and
``octogen_source.sync.load_collector``), and a progress collector the caller chose still sees every step."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from dlt.common.runtime.collector import DictCollector

from octogen_source import allocator
from octogen_source.allocator import glibc_version
from octogen_source.sandbox import Sandbox
from octogen_source.sync import load_collector
from tests.sync_support import ExpectedTables, SyncTarget, assert_tables_match

MIB = 2**20


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class StepsSeen(DictCollector):
    """A caller's collector: which steps it was started for and what it counted."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []
        self.counted: dict[str, int] = {}

    def _start(self, step: str) -> None:
        super()._start(step)
        self.started.append(step.split(" ")[0])

    def update(
        self,
        name: str,
        inc: int = 1,
        total: Any = None,
        inc_total: Any = None,
        message: Any = None,
        label: Any = None,
    ) -> None:
        super().update(name, inc)
        self.counted[name] = self.counted.get(name, 0) + inc


def test_memory_is_given_back_before_each_load_and_the_callers_collector_sees_every_step(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = SyncTarget(sandbox, tmp_path)
    expected = ExpectedTables(sandbox)
    given_back: list[int] = []
    real = load_collector.give_back_freed_memory

    def recording() -> None:
        real()
        given_back.append(1)

    monkeypatch.setattr(load_collector, "give_back_freed_memory", recording)
    seen = StepsSeen()
    report = target.sync(collector=seen)
    expected.observe()
    assert_tables_match(target.database, expected)
    # one load per segment (here one), each preceded by the memory given back; the history's load is its own
    assert len(given_back) == len(report.load_ids) == 1
    assert {"Extract", "Normalize", "Load"} <= set(seen.started), seen.started
    assert seen.counted, "the caller's collector counted nothing"


def test_a_sync_without_a_collector_gives_memory_back_too(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(load_collector, "give_back_freed_memory", lambda: calls.append(1))
    report = SyncTarget(sandbox, tmp_path).sync()
    assert report.total("new") > 0 and len(calls) == len(report.load_ids)


@pytest.mark.skipif(not glibc_version(), reason="malloc_trim is glibc's")
def test_freed_memory_held_between_live_blocks_goes_back_to_the_system() -> None:
    """Blocks of 2 KiB come from glibc's heap (below the mmap threshold); with one block in 16 kept alive the
    heap cannot shrink from its top, and the freed space between stays resident until it is handed back."""
    allocator.hold_malloc_thresholds()
    gc.collect()
    blocks = [bytes(2048) for _ in range(40_000)]  # ≈ 80 MiB
    kept = blocks[::16]
    del blocks
    before = resident_bytes()
    allocator.give_back_freed_memory()
    after = resident_bytes()
    assert before - after >= 40 * MIB, (before // MIB, after // MIB)
    assert len(kept) == 2500
