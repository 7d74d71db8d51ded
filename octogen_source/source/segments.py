"""A sync loaded in segments while the walk goes on (DuckDB): the last page is followed by the load of what
arrived since the previous load, not by the whole run's.

Each segment is one ``pipeline.run`` of the source's tables fed from the walk's queue (:mod:`walk_pump`): a
load takes at least :data:`MIN_SEGMENT_ROWS` rows (or the rest of the walk), then whatever is queued, and
meanwhile the next pages arrive. When the loads keep up with the network (at real latency), segments are
small and the last one is short; when they do not (a fast API on loopback), the queue never empties and the
run is one or a few segments, as if loaded whole.

What stays as in a single-package run: a product is emitted once per run (the walk is one walk), removals are
marked only after every catalog's complete walk (in the last segment), the high-water mark moves with the
segment that loaded it, and the first segment is taken only once every catalog's walk has started (an
unknown catalog fails the run before anything is loaded). What differs: a run that fails or is killed keeps
the segments it loaded; the next run compares every hit with them and syncs only the rest.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from functools import partial
from typing import Any

import dlt
from dlt.extract import DltSource

from octogen_source.source.builder import build_source, walked_settings
from octogen_source.source.catalog_walk import CatalogWalk, LoadedState, WalkBatch
from octogen_source.source.report import WalkObserver
from octogen_source.source.settings import SourceSettings
from octogen_source.source.tables import RunConverters
from octogen_source.source.walk_process import WALK_BATCH_ROWS, ProcessWalkPump, walk_in_process_supported
from octogen_source.source.walk_pump import WalkPump

MIN_SEGMENT_ROWS = 80_000
"""Rows (all tables) a segment's load takes at least: each ``pipeline.run`` has a fixed cost whatever its
size, so a run of 300,000 rows makes at most 15 segments."""
DETAILS_SEGMENT_SECONDS = 3.0
"""How long a segment holding products' details lasts at least before it may end with fewer rows than
:data:`MIN_SEGMENT_ROWS` (and only while the walk is what its load waits for). Details are the rows whose
load costs most after the last page: dlt's normalizer splits each into ≈ 35 rows of child tables, and an
incremental's 1,500 changed products, loaded as one segment, took 0.8 s to normalize and 0.7 s to load
after the walk; loaded as they come the last segment holds only the last seconds' worth."""
SECONDS_PER_LOAD_SECOND = 3.0
"""... and at least this many times as long as the previous segment's load took (a load's own cost grows
with the tables it merges into): the loads of such segments take at most about a third of the walk's time."""
LOADS_BEFORE_THE_END = 1.25
"""A segment holding details may end sooner than :data:`SECONDS_PER_LOAD_SECOND` allows (once it has lasted
:data:`DETAILS_SEGMENT_SECONDS`) when the walk looks this many loads (the previous one's time, its checkpoint
included) from its end, by each unfinished catalog's pace against the live products its last walk listed
(:attr:`CatalogReport.expected`): its load then ends about when the walk does, and the last segment holds
only the walk's last seconds. Ended later, its load is still running at the walk's end (the walk's last
rows, and its reads of the products a catalog no longer lists, wait for the next segment), and that load,
its checkpoint and the last segment's follow the last page (docs/performance.md, fourteenth round)."""
FIRST_LOAD_SECONDS = 1.0
"""What a load is taken to last before one has been timed."""
MAX_QUEUED_ROWS = 8_000
"""Rows the walk may queue ahead of the loads (≈ 3.2 KiB of Python objects each, ≈ 25 MiB in all): little
enough for memory to stay flat. Waiting batches are converted to arrow (``RunConverters.convert_early``) and
then weigh their bytes: the same memory holds ≈ 28,000 rows, for the walk to go on at 20 ms per request
while a segment loads."""


def run_in_segments(
    pipeline: dlt.Pipeline,
    settings: SourceSettings,
    observer: WalkObserver,
    *,
    prepare: Callable[[DltSource], object],
    run_arguments: dict[str, Any],
    load_ids: list[str],
    between_loads: Callable[[], object] | None = None,
) -> None:
    """Runs the source into ``pipeline`` in segments, adding each segment's load id to ``load_ids`` as it is
    loaded (a failed run's too). ``settings.catalogs`` must be set. ``prepare`` adds the run's hints to each
    segment's source; ``between_loads`` is called after each load but the last (e.g. a checkpoint)."""
    catalogs = settings.catalogs
    if catalogs is None:
        raise ValueError("a sync in segments walks configured catalogs")

    walked = walked_settings(settings)

    def walk(
        loaded: LoadedState, reporting_to: WalkObserver, *, batch_rows: int | None = None
    ) -> AsyncGenerator[WalkBatch, None]:
        return CatalogWalk(walked, loaded, reporting_to, batch_rows=batch_rows).batches()

    converters = RunConverters()
    pump: WalkPump
    if settings.walk_in_process and walk_in_process_supported():
        # in the child, the walk reports to an observer that sends each report to ``observer``
        pump = ProcessWalkPump(
            partial(walk, batch_rows=WALK_BATCH_ROWS),
            observer,
            max_queued_rows=MAX_QUEUED_ROWS,
            convert=converters.convert_early,
        )
    else:
        pump = WalkPump(
            partial(walk, reporting_to=observer),
            max_queued_rows=MAX_QUEUED_ROWS,
            convert=converters.convert_early,
        )
    with pump:
        ready = _every_walk_started(observer, catalogs)
        load_seconds = 0.0
        while not pump.finished:
            details_after = max(DETAILS_SEGMENT_SECONDS, SECONDS_PER_LOAD_SECOND * load_seconds)
            walk_ending = partial(
                walk_ends_within,
                observer,
                catalogs,
                LOADS_BEFORE_THE_END * max(load_seconds, FIRST_LOAD_SECONDS),
            )
            extracted = _Timed(
                pump.segment(
                    min_rows=MIN_SEGMENT_ROWS,
                    ready=ready,
                    details_after=details_after,
                    details_sooner=(DETAILS_SEGMENT_SECONDS, walk_ending),
                )
            )
            walk_resource = dlt.resource(extracted, name="catalog_walk", selected=False)
            source = build_source(settings, observer, walk=walk_resource, converters=converters)
            prepare(source)
            info = pipeline.run(source, **run_arguments)
            load_ids.extend(info.loads_ids)
            if between_loads is not None and not pump.finished:
                between_loads()
            load_seconds = time.monotonic() - extracted.ended


class _Timed(Iterator[WalkBatch]):
    """A segment's batches, and when the last was taken (its extract ended, its normalize and load began).
    An iterator, not a generator: dlt inspects a generator's module for its config section at every
    ``dlt.resource`` (≈ 0.1 s a segment)."""

    def __init__(self, batches: Iterator[WalkBatch]) -> None:
        self._batches = batches
        self.ended = time.monotonic()

    def __next__(self) -> WalkBatch:
        try:
            return next(self._batches)
        except StopIteration:
            self.ended = time.monotonic()
            raise


def walk_ends_within(observer: WalkObserver, catalogs: Sequence[str], seconds: float) -> bool:
    """Whether every catalog's walk looks likely to end within ``seconds``: it has ended, or at its pace so
    far it lists the products its last walk listed (:attr:`CatalogReport.expected`) in that time. False
    while any has not told its pace (no page yet, or nothing loaded before: a first load)."""
    now = time.monotonic()
    for catalog in catalogs:
        report = observer.catalogs.get(catalog)
        if report is None:
            return False
        if report.complete:
            continue
        if report.expected <= 0 or report.walked <= 0:
            return False
        left = report.expected - report.walked
        if left > 0 and (now - report.started) * left / report.walked > seconds:
            return False
    return True


def _every_walk_started(observer: WalkObserver, catalogs: Sequence[str]) -> Callable[[], bool]:
    """Whether each catalog's walk has had its first page (or ended): from then on its key is known good."""
    started = False

    def ready() -> bool:
        nonlocal started
        if not started:
            reports = observer.catalogs
            started = all(
                catalog in reports and (reports[catalog].pages > 0 or reports[catalog].complete)
                for catalog in catalogs
            )
        return started

    return ready


__all__ = [
    "DETAILS_SEGMENT_SECONDS",
    "FIRST_LOAD_SECONDS",
    "LOADS_BEFORE_THE_END",
    "MAX_QUEUED_ROWS",
    "MIN_SEGMENT_ROWS",
    "SECONDS_PER_LOAD_SECOND",
    "run_in_segments",
    "walk_ends_within",
]
