"""Fewer cyclic garbage collections while a sync runs.

A sync allocates a few million short-lived containers (each search page decodes into ≈ 2,000 dicts and lists,
each batch of rows into as many again). Reference counting frees almost all of them, but CPython's cyclic
collector still counts every allocation and scans its generations: with the defaults it ran ≈ 2,700 times in
a 150,000-product sync and, each full collection walking every object the imports had created (dlt, pyarrow,
DuckDB, pydantic), took 8.3 s of the run's wall time (5.5 s of it in 20 full collections), under the one GIL
the walk and dlt's extract share. Measured with ``gc.callbacks`` on that sync: with the objects alive at the
start frozen (never scanned again) and a young generation of 50,000 objects, the collector took 0.9 s.

Both are undone when the run ends: the thresholds go back to what they were, and the objects frozen here to
the oldest generation (unless the process had frozen objects of its own before: those cannot be told apart
from ours, so all stay frozen, as the process wanted for its own). Cyclic garbage is collected as before, only
less often; acyclic garbage is freed at once by reference counting either way.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_GENERATION_OBJECTS = 50_000
"""Allocations (net of frees) between two young-generation collections during a sync (CPython's default:
700)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Within the block, what is alive on entry is frozen and the young generation is larger."""
    thresholds = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], YOUNG_GENERATION_OBJECTS), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if frozen_before == 0:
            gc.unfreeze()
