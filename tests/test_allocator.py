"""glibc's mmap threshold is held at its default for a sync's process (octogen_source.allocator).

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
from octogen_source.sandbox import Sandbox
from tests.sync_support import SyncTarget, totals

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
    reason="glibc's malloc only",
)

REPO_ROOT = Path(__file__).resolve().parent.parent

MAPPED_AFTER_A_LARGE_FREE = """
import ctypes, sys
from octogen_source.allocator import hold_mmap_threshold

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
print(hold_mmap_threshold() if sys.argv[1] == "hold" else "left")
libc.free(libc.malloc(8 << 20))  # a large block freed: glibc alone would raise its threshold to 8 MiB
before = libc.mallinfo2().hblks
blocks = [libc.malloc(512 << 10) for _ in range(4)]  # four blocks of a search page's size
print(libc.mallinfo2().hblks - before)
"""


def mapped_blocks(mode: str, **environment: str) -> tuple[str, int]:
    finished = subprocess.run(
        [sys.executable, "-c", MAPPED_AFTER_A_LARGE_FREE, mode],
        cwd=REPO_ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    said, mapped = finished.stdout.split()
    return said, int(mapped)


def test_large_blocks_stay_mapped_after_a_larger_one_was_freed() -> None:
    assert mapped_blocks("hold") == ("True", 4)


def test_without_it_glibc_carves_them_from_the_heap() -> None:
    # the behaviour the setting removes: the threshold rose to 8 MiB, so the blocks are kept on free
    assert mapped_blocks("leave") == ("left", 0)


def test_a_threshold_set_by_the_environment_is_left_to_it() -> None:
    # 512 KiB is under the process's own 16 MiB: not mapped, as the process asked
    assert mapped_blocks("hold", MALLOC_MMAP_THRESHOLD_=str(16 << 20)) == ("False", 0)


def test_a_sync_holds_the_threshold(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def hold() -> bool:
        calls.append("held")
        return True

    monkeypatch.setattr(sync_run, "hold_mmap_threshold", hold)
    target = SyncTarget(sandbox_factory(catalogs=1, products=5, seed=3), tmp_path)
    assert totals(target.sync(details=False))["new"] == 5
    assert calls == ["held"]
