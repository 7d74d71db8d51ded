"""Freed large blocks go back to the system: glibc's mmap and trim thresholds held fixed while a sync runs.

glibc serves a block at or above its mmap threshold with a mapping of its own and unmaps it when freed, but
by default each such free raises the threshold to the freed block's size (up to 32 MiB): after the first
large buffers of a sync are freed, the blocks that follow are carved from the heap and the threads' arenas,
where the smaller blocks allocated meanwhile (strings over 512 bytes) pin the space a freed block leaves.
Over a full sync of 1,000,000 products that kept ≈ 50 MiB more resident. Setting a threshold turns the
raising off for the process, the trim threshold's too, and glibc's default trim threshold (128 KiB) then
gives the heap's top back and takes it again all the time: the trim threshold is held at 16 MiB, what the
raising reaches for an 8 MiB block. Blocks of 512 KiB and more are then mapped each time they are made:
cheap for the few a sync makes now (``parse_wire_search_page`` no longer uses orjson, which made a ≈ 3 MiB
block for every page: those cost 5% of the CPU of a loopback sync once mapped).

Measured with ``bench/run.py --latency 0 --rss-sizes 10000,1000000``: peak 489 and 499 MiB at 1,000,000
products (375 and 385 at 10,000) against 553 (388) for the code before; the same speed (three syncs of
150,000 products on loopback each way, interleaved: 16.46 against 16.47 s).

A process started with ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` keeps its own values;
elsewhere than glibc nothing is done.
"""

from __future__ import annotations

import ctypes
import gc
import os
from functools import cache
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter numbers (glibc's ``malloc.h``)."""

MMAP_THRESHOLD_BYTES = 512 * 1024
"""Blocks from this size up are mapped on their own and unmapped when freed."""

TRIM_THRESHOLD_BYTES = 16 * 2**20
"""Free memory at the heap's top kept for reuse up to this size."""

_SET_BY_THE_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def glibc_version() -> tuple[int, ...]:
    """The process's glibc as (major, minor); () for any other C library."""
    try:
        said = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    except (ValueError, OSError):  # a name this system's confstr does not know: not glibc
        return ()
    name, _, version = said.partition(" ")
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit()) if name == "glibc" else ()


@cache
def hold_malloc_thresholds() -> bool:
    """Fixes glibc's mmap and trim thresholds for the process (once); whether they were set here."""
    if any(name in os.environ for name in _SET_BY_THE_ENVIRONMENT) or not glibc_version():
        return False
    mallopt = _c_library_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    trim_set = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    mmap_set = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    return trim_set and mmap_set


def give_back_freed_memory() -> None:
    """Hands the memory the process freed but still holds back to the system: cyclic garbage, pyarrow's pool
    and glibc's free pages in every arena (``malloc_trim``; elsewhere than glibc, not that). Before a load at
    1,000,000 products on loopback: 362 -> 328 MiB, in 0.05 s (DuckDB's memory then adds to less)."""
    import pyarrow  # what a sync imports anyway; not every command of the package does

    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    malloc_trim = _c_library_function("malloc_trim") if glibc_version() else None
    if malloc_trim is not None:
        malloc_trim.argtypes = [ctypes.c_size_t]
        malloc_trim(0)


def _c_library_function(name: str) -> Any:
    """``name`` from the process's own C library, or None where it has none."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
