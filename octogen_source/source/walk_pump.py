"""The walk in a thread of its own, handed over in segments: a sync loads what has been walked while the walk
goes on (see :mod:`octogen_source.source.segments`).

dlt loads a package only once its extract is over, so a run loaded as one package waits for the whole
normalize + load after the last page. Here the walk runs on an event loop in its own thread and queues its
batches (a bounded number of rows: the walk waits when the loads fall behind); each load's extract takes
batches from the queue (:meth:`WalkPump.segment`) while the walk keeps requesting pages.

The walk's reads of the destination (loaded versions, stored rows) are not made in the walk's thread: the
pipeline's live schema is replaced in place by every ``sql_client()`` and by the loads themselves, so the
walk asks, and the extract that takes its batches answers (:class:`DestinationReads`), in the thread and
the step where the single-package source makes them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Final

from octogen_source.source.catalog_walk import LoadedState, WalkBatch
from octogen_source.source.destination_state import DestinationState
from octogen_source.source.known_versions import KnownVersions
from octogen_source.source.records import Row

WalkFactory = Callable[[LoadedState], AsyncGenerator[WalkBatch, None]]


class WalkStopped(Exception):
    """The pump was stopped (the run failed or ended) while the walk waited for it."""


@dataclass(slots=True)
class _Read:
    """A read of the destination the walk asked for, answered by the thread extracting."""

    call: Callable[[LoadedState], Any]
    answer: Future[Any] = field(default_factory=Future)

    def run(self, state: LoadedState) -> None:
        if not self.answer.set_running_or_notify_cancel():
            return
        try:
            self.answer.set_result(self.call(state))
        except BaseException as error:  # the walk raises it in its own thread
            self.answer.set_exception(error)


WAITING_SHARE = 0.4
"""The share of a segment its extract must have spent waiting for the walk before the segment may end early:
at 20 ms per request the extract waits 49-66% of the time; on loopback under 10%, and 25% once batches are
converted early (the extract's own work is then lighter: at 25% a loopback run took six loads instead of
one)."""

SWITCH_INTERVAL_SECONDS = 0.0005
"""How long a thread holding the GIL runs before one waiting for it may take it, while a walk runs (Python's
default is 5 ms; restored when the pump stops). The walk and the extract share the GIL: an answer that
arrives while the extract converts a batch waited up to 5 ms before the walk could read it and request the
next page. At 20 ms per request a full sync of 3 x 50,000 products took 17.96 s instead of 18.90 s."""

WAIT_SLICE_SECONDS = 0.1
STOP_TIMEOUT_SECONDS = 30.0

_END: Final = object()
"""Queued after the walk's last batch."""
_STOP_CONVERTING: Final = object()

ROW_BYTES = 3_200
"""The memory a waiting row holds as Python objects (≈ 3.2 KiB on average over the product and price rows of
today's API, measured with tracemalloc; ≈ 0.9 KiB as arrow): a table converted while waiting counts as its
bytes' worth of such rows against the queue's allowance."""

_Item = WalkBatch | _Read | BaseException | object


def _weight(batch: WalkBatch) -> float:
    """What a waiting batch counts against the queue's allowance: its rows, and its tables' bytes in rows."""
    return batch.python_rows + sum(table.nbytes for table in batch.tables) / ROW_BYTES


class DestinationReads:
    """The walk's :class:`LoadedState`: each read is asked of the thread taking the batches."""

    def __init__(self, pump: WalkPump) -> None:
        self._pump = pump

    def known_versions(self, catalog: str, *, details: bool) -> KnownVersions:
        result: KnownVersions = self._pump.ask(lambda state: state.known_versions(catalog, details=details))
        return result

    def stored_products(self, uuids: Sequence[str]) -> list[Row]:
        result: list[Row] = self._pump.ask(lambda state: state.stored_products(uuids))
        return result

    def stored_catalog(self, catalog: str) -> Row | None:
        result: Row | None = self._pump.ask(lambda state: state.stored_catalog(catalog))
        return result


class WalkPump:
    """Runs one walk in a daemon thread; :meth:`segment` hands its batches over, one load at a time.

    Use as a context manager: leaving it stops the walk (cancelled where it is) and waits for its thread.
    """

    def __init__(
        self,
        walk: WalkFactory,
        *,
        max_queued_rows: int,
        convert: Callable[[WalkBatch], None] | None = None,
    ) -> None:
        """The walk queues at most ``max_queued_rows`` rows ahead of the extract taking them. ``convert``
        (arrow conversion, in place) is applied to each batch by a thread of its own while it waits: a
        converted batch weighs its arrow bytes (``ROW_BYTES`` a row) instead of its rows, so the queue holds
        more rows in the same memory, and the walk goes on longer while a segment loads."""
        self._walk = walk
        self._max_queued_rows = max_queued_rows
        self._switch_interval = sys.getswitchinterval()
        self._items: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        """What the extract takes, in the walk's order."""
        self._convert = convert
        self._taking = False
        """A segment is taking batches (its extract converts them itself, unless the walk is the bound)."""
        self._walk_is_the_bound = False
        """A segment ended early: its load waited for the walk (:data:`WAITING_SHARE`)."""
        self._unconverted: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        """What the walk queued and the converting thread has not handed on (with ``convert`` only)."""
        self._converter = (
            threading.Thread(target=self._run_conversions, name="octogen-convert", daemon=True)
            if convert is not None
            else None
        )
        self._queued_rows_lock = threading.Lock()
        self._has_room = asyncio.Event()
        self._queued_rows = 0.0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="octogen-walk", daemon=True)
        self.finished = False
        """The walk's end (or its error) has been handed over."""

    def __enter__(self) -> WalkPump:
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_SECONDS))
        if self._converter is not None:
            self._converter.start()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            sys.setswitchinterval(self._switch_interval)

    def segment(
        self,
        *,
        min_rows: int,
        ready: Callable[[], bool],
        details_after: float = math.inf,
        details_sooner: tuple[float, Callable[[], bool]] = (math.inf, lambda: False),
    ) -> Iterator[WalkBatch]:
        """The batches of one load: at least ``min_rows`` rows, and not before ``ready()``, unless the walk
        ends first; then those already queued, but only while the walk is what the load waits for (the
        extract spent at least :data:`WAITING_SHARE` of the segment waiting for batches): when the walk is
        faster than the loads, ending a segment early only adds a load's fixed cost, and the run goes on as
        one package. A segment holding products' details may end likewise with fewer rows once it has lasted
        ``details_after`` seconds (from its first batch), or sooner, once it has lasted the first of
        ``details_sooner`` and its second tells so. Reads the walk asks for meanwhile are made here (in the
        extract step of the load). Raises the walk's error."""
        self._taking = True
        try:
            yield from self._batches_of_segment(min_rows, ready, details_after, details_sooner)
        finally:
            self._taking = False

    def _batches_of_segment(
        self,
        min_rows: int,
        ready: Callable[[], bool],
        details_after: float,
        details_sooner: tuple[float, Callable[[], bool]],
    ) -> Iterator[WalkBatch]:
        sooner_after, sooner = details_sooner
        state: DestinationState | None = None
        rows = details = 0
        # the waiting counts from the segment's first batch: a walk's start (connections, the first pages,
        # every catalog's first answer) makes any extract wait, however fast the API
        started: float | None = None
        waited = 0.0
        while not self.finished:
            lasted = 0.0 if started is None else time.monotonic() - started
            may_end = (
                started is not None
                and (
                    rows >= min_rows
                    or (details > 0 and (lasted >= details_after or (lasted >= sooner_after and sooner())))
                )
                and ready()
                and waited >= WAITING_SHARE * lasted
            )
            if may_end:
                try:
                    item = self._items.get_nowait()
                except queue.Empty:
                    self._walk_is_the_bound = True
                    return
            else:
                asked = time.monotonic()
                try:
                    # in slices: waiting long enough may itself allow the segment to end
                    item = self._items.get(timeout=WAIT_SLICE_SECONDS)
                except queue.Empty:
                    if self._walk_gone() and self._items.empty():
                        self.finished = True
                        raise RuntimeError("the walk's thread ended without its last batch") from None
                    continue
                finally:
                    if started is not None:
                        waited += time.monotonic() - asked
            if isinstance(item, _Read):
                if state is None:
                    state = DestinationState()
                item.run(state)
            elif isinstance(item, WalkBatch):
                if started is None:
                    started = time.monotonic()
                self._taken(_weight(item))
                rows += item.rows
                details += len(item.details)
                yield item
            elif isinstance(item, BaseException):
                self.finished = True
                # raised here while dlt may be handling a transformer's StopIteration: that would become the
                # error's context (and read as its cause); it keeps the context it had in the walk
                context = item.__context__
                try:
                    raise item
                finally:
                    item.__context__ = context
            else:
                self.finished = True

    def ask(self, call: Callable[[LoadedState], Any]) -> Any:
        """Blocks the asking thread (one of the walk's) until the thread taking the batches answers."""
        if self._stopping:
            raise WalkStopped("the sync stopped")
        read = _Read(call)
        self._inbox.put(read)
        return read.answer.result()

    @property
    def _inbox(self) -> queue.SimpleQueue[_Item]:
        """Where the walk's batches, reads, error and end go: through the converting thread, if any."""
        return self._unconverted if self._converter is not None else self._items

    def _walk_gone(self) -> bool:
        """The walk's thread (and the converting thread handing its last items on) ended."""
        return not self._thread.is_alive() and (self._converter is None or not self._converter.is_alive())

    def stop(self) -> None:
        self._stopping = True
        # the cancellation ends a wait for room as well (it is made on the walk's loop)
        loop, task = self._loop, self._task
        if loop is not None and task is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the walk is over
                loop.call_soon_threadsafe(task.cancel)
        # bounded: a call the cancelled walk cannot interrupt (a name lookup in a worker thread) is left
        # to end in the daemon thread
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._fail_waiting_reads()
            self._thread.join(timeout=0.05)
        if self._converter is not None:
            self._unconverted.put(_STOP_CONVERTING)
            self._converter.join(timeout=max(deadline - time.monotonic(), 0.05))
        self._fail_waiting_reads()

    def _fail_waiting_reads(self) -> None:
        for waiting in (self._unconverted, self._items):
            while True:
                try:
                    item = waiting.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Read) and item.answer.set_running_or_notify_cancel():
                    item.answer.set_exception(WalkStopped("the sync stopped"))

    def _run(self) -> None:
        try:
            asyncio.run(self._drive())
        except BaseException as error:  # the loop itself failed: the extract must not wait for the walk
            if not self._stopping:
                self._inbox.put(error)

    def _run_conversions(self) -> None:
        """Hands the walk's items on to the extract in their order, each batch converted on the way while no
        segment is taking them (while one loads), and all the time once the walk is what the loads wait for
        (a segment ended early). Until then a segment's extract converts what it takes itself: when the
        walk is faster than the loads (loopback), a third thread converting only made the three contend for
        the GIL (the full sync took 16.4 s instead of 15.1 s); when it is slower (20 ms per request), the
        batches converted early make room for the walk sooner (17.9 s instead of 19.5 s)."""
        convert = self._convert
        assert convert is not None
        while True:
            item = self._unconverted.get()
            if item is _STOP_CONVERTING:
                return
            if isinstance(item, WalkBatch) and (self._walk_is_the_bound or not self._taking):
                weight = _weight(item)
                try:
                    convert(item)
                except BaseException as error:
                    self._items.put(error)
                    return
                self._reweigh(weight, _weight(item))
            self._items.put(item)
            if item is _END or isinstance(item, BaseException):
                return

    async def _drive(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._stopping:
            return
        try:
            async with aclosing(self._walk(DestinationReads(self))) as batches:
                async for batch in batches:
                    if not await self._room_for_batch():
                        return
                    self._queue(batch)
        except BaseException as error:
            # a cancellation not made by stop() too: the consumer must not wait for a batch that never comes
            if not self._stopping:
                self._inbox.put(error)
            return
        self._inbox.put(_END)

    async def _room_for_batch(self) -> bool:
        """Waits on the walk's own loop until the queue has room: the taking thread wakes it
        (``call_soon_threadsafe``) only when it frees room in a full queue, where a wait in the loop's
        executor cost a thread hop for every batch."""
        while True:
            with self._queued_rows_lock:
                if self._stopping:
                    return False
                if self._queued_rows < self._max_queued_rows:
                    return True
                self._has_room.clear()
            await self._has_room.wait()

    def _queue(self, batch: WalkBatch) -> None:
        with self._queued_rows_lock:
            self._queued_rows += _weight(batch)
        self._inbox.put(batch)

    def _taken(self, weight: float) -> None:
        self._reweigh(weight, 0.0)

    def _reweigh(self, before: float, after: float) -> None:
        """A waiting batch's weight changed (taken: 0): wakes the walk if that makes room in a full queue."""
        with self._queued_rows_lock:
            self._queued_rows += after - before
            was_full = self._queued_rows - after + before >= self._max_queued_rows
            has_room = self._queued_rows < self._max_queued_rows
        if was_full and has_room:
            self._wake_walk()

    def _wake_walk(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the walk is over
                loop.call_soon_threadsafe(self._has_room.set)
