"""Large freed blocks go back to the system: glibc's mmap threshold held at its default while a sync runs.

glibc serves a block of 128 KiB or more (a search page's body, a batch's buffers) with its own ``mmap`` and
unmaps it when freed, but each such free raises the threshold to that block's size (up to 32 MiB), so the
pages that follow are carved from the heap and the threads' arenas instead, where a free leaves a hole the
process keeps. Over a walk of 1,000,000 products that kept ≈ 50 MiB more resident than the same run with the
threshold fixed (peak 552 against 501 MiB, ``bench/run.py --rss-sizes``). Setting the threshold (to
glibc's own default) turns the raising off for the process, as ``MALLOC_MMAP_THRESHOLD_`` would; a process
started with that variable keeps its own value, and elsewhere than glibc nothing is done.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter number for the threshold (glibc's ``malloc.h``)."""

MMAP_THRESHOLD_BYTES = 128 * 1024
"""glibc's default threshold, kept fixed."""


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):  # not a name this system's confstr knows: not glibc
        return False


@cache
def hold_mmap_threshold() -> bool:
    """Fixes glibc's mmap threshold for the process (once); whether it was set here."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not _is_glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)
