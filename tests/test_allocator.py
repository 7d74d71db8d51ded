"""glibc's mmap and trim thresholds are held fixed for a sync's process (octogen_source.allocator).

Each check runs in a fresh interpreter: the setting is process-wide and cannot be undone, and the test
process's own allocations must not decide what the check sees. glibc reports its mapped blocks through
``mallinfo2`` (glibc 2.33 and later), so what is measured is glibc's own account, not a timing or an RSS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import octogen_source.sync.run as sync_run
from octogen_source.allocator import glibc_version
from octogen_source.sandbox import Sandbox
from tests.sync_support import SyncTarget, totals

pytestmark = pytest.mark.skipif(glibc_version() < (2, 33), reason="glibc's malloc, with mallinfo2 (2.33)")

REPO_ROOT = Path(__file__).resolve().parent.parent

MAPPED_AFTER_A_LARGE_FREE = """
import ctypes, sys
from octogen_source.allocator import hold_malloc_thresholds

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
print(hold_malloc_thresholds() if sys.argv[1] == "hold" else "left")
libc.free(libc.malloc(8 << 20))  # a large block freed: glibc alone would raise its threshold to 8 MiB
before = libc.mallinfo2().hblks
blocks = [libc.malloc(1 << 20) for _ in range(4)]  # four blocks of 1 MiB
print(libc.mallinfo2().hblks - before)
small = [libc.malloc(256 << 10) for _ in range(40)]  # 10 MiB under either threshold: from the heap's top
for block in reversed(small):
    libc.free(block)
print(libc.mallinfo2().keepcost >> 20)  # MiB of free memory kept at the heap's top for the next blocks
"""


def mapped_blocks(mode: str, **environment: str) -> tuple[str, int, int]:
    """What the script prints: whether the thresholds were set, blocks mapped, MiB kept at the top."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}
    finished = subprocess.run(
        [sys.executable, "-c", MAPPED_AFTER_A_LARGE_FREE, mode],
        cwd=REPO_ROOT,
        env={**inherited, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    said, mapped, kept = finished.stdout.split()
    return said, int(mapped), int(kept)


def test_large_blocks_stay_mapped_and_the_heap_top_is_kept_for_reuse() -> None:
    said, mapped, kept = mapped_blocks("hold")
    assert (said, mapped) == ("True", 4)
    assert kept >= 10


def test_without_it_glibc_carves_large_blocks_from_the_heap() -> None:
    # the behaviour held off: the threshold rose to 8 MiB with the first free, so 1 MiB blocks are kept
    said, mapped, kept = mapped_blocks("leave")
    assert (said, mapped) == ("left", 0)
    assert kept >= 10


def test_thresholds_set_by_the_environment_are_left_to_it() -> None:
    # 1 MiB is under the process's own 16 MiB: not mapped; and glibc's default trim threshold (128 KiB),
    # fixed by the variable, gives the heap's top back at once (the cost the held 16 MiB avoids)
    said, mapped, kept = mapped_blocks("hold", MALLOC_MMAP_THRESHOLD_=str(16 << 20))
    assert (said, mapped, kept) == ("False", 0, 0)


def test_a_sync_holds_the_thresholds(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def hold() -> bool:
        calls.append("held")
        return True

    monkeypatch.setattr(sync_run, "hold_malloc_thresholds", hold)
    target = SyncTarget(sandbox_factory(catalogs=1, products=5, seed=3), tmp_path)
    assert totals(target.sync(details=False))["new"] == 5
    assert calls == ["held"]
