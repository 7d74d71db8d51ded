"""The walk in a process of its own (Linux): its CPU no longer shares the GIL with dlt's extract.

In a thread (:class:`~octogen_source.source.walk_pump.WalkPump`) the walk's HTTP, JSON and row making and the
extract's arrow conversion and dlt's work take turns on one GIL: at 20 ms per request a full sync of
3 x 50,000 products held it 15.6 of 21.5 s. Here the walk runs in a child forked when the pump starts, and
a relay thread of the parent takes what the child sends and queues it exactly as the walk's thread did (the
same allowance, the same early conversion, the same segments).

What crosses the pipes (pickled, one message each; from the child, an arrow table's buffers follow its message
as frames of their own, never copied into the pickle): the walk's batches; its reads of the destination, made
by the parent in the extracting thread (as in a thread) and answered back; each catalog's report when the
walk starts it and at every progress call (the run summary and the segments read the parent's copies); the
walk's log records (re-emitted by the parent's loggers); its error (type, message and attributes, rebuilt
in the parent: the exit code and the retry advice depend on them) or its end.

The child: inherits the settings (the API key is never written anywhere), ignores SIGINT (the parent stops
it), dies with its parent (``PR_SET_PDEATHSIG``), never runs the parent's finalizers (``os._exit``), and
sends at most :data:`BATCHES_AHEAD` messages of batches ahead of what the relay took. Its walk emits small
batches (:data:`WALK_BATCH_ROWS`), each converted to arrow as soon as it comes, and sends them in groups of
about :data:`GROUP_ROWS` rows, which the parent hands dlt as they are. The pump's :meth:`stop` kills it.

While it walks, the child has a CPU of its own (:class:`_CpuSplit`, where the process may use two or more):
the parent's threads (dlt's, DuckDB's) run on the others until the child has said its last word.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import itertools
import logging
import math
import os
import pickle
import queue
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import Future
from contextlib import aclosing
from dataclasses import replace
from logging.handlers import QueueHandler
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import IO, Any

import pyarrow as pa

from octogen_source.source.catalog_walk import LoadedState, WalkBatch
from octogen_source.source.known_versions import KnownVersions
from octogen_source.source.records import Row
from octogen_source.source.report import CatalogReport, WalkObserver
from octogen_source.source.tables import WalkConverters
from octogen_source.source.walk_pump import _END, SWITCH_INTERVAL_SECONDS, WalkPump, WalkStopped, _Read

ChildWalkFactory = Callable[[LoadedState, WalkObserver], AsyncGenerator[WalkBatch, None]]

BATCHES_AHEAD = 2
"""Messages of batches the child may have sent (or be sending) that the relay has not taken yet."""
WALK_BATCH_ROWS = 500
"""The rows of a batch of the walk in the child (a thread's walk gathers ``BATCH_ROWS``). At 20 ms per request
(3 x 50,000 products, the child alone, its batches taken at once) the walk took 1.02x the bare loop with
batches of 500 rows against 1.12x with 2,000 (medians of three, interleaved): the rows of a batch waiting to
be converted are fewer and younger (fewer of them reach the collector's older generations, and they are
still in the CPU's caches). Not the length of each conversion: a batch of 2,000 converted in slices of 100 or
250 rows was no faster."""
WALK_BATCHES_WAITING = 4
"""The walk's batches waiting for the sending thread before the walk waits."""
GROUP_ROWS = 8_000
"""The rows (all tables) of a group of converted batches the child sends as one message, and the parent
hands dlt as one arrow table per table: dlt computes and validates a table's schema hints for each table it
is given (≈ 3 ms each). Groups of 8,000 rows rather than a thread's 2,000 (``BATCH_ROWS``): the sync's
process used 9.9-11.7 s of CPU against 11.5-12.2 in a full sync of 3 x 50,000 products at 20 ms per request
(four runs each, interleaved). As arrow, 8,000 rows weigh ≈ 7 MiB."""
GROUP_MAX_SECONDS = 0.5
"""How long a group's first batch waits at most for the group to fill: batches that keep coming in small
numbers (a walk finding a changed product now and then, a slow API) are sent at least this often. At 20 ms per
request a full sync's groups fill sooner (≈ 20,000 rows a second)."""
GROUP_WAIT_SECONDS = 0.05
"""How long a group of converted batches still short of ``GROUP_ROWS`` rows waits for the next batch before it
is sent as it is."""
POLL_SECONDS = 0.1
"""How long the relay waits for a message before it looks whether the child has ended."""
ENDING_SECONDS = 2.0
"""How long a child that has sent its end (or its error) may take to exit before the pump's stop kills it."""
REFILL_SECONDS = 0.005
"""How often the relay looks for room in the queue while batches wait on disk."""

_BATCH = b"b"
_KINDS: dict[str, bytes] = {
    "batch": _BATCH,
    "read": b"r",
    "end": b"e",
    "error": b"x",
    "report": b"p",
    "final": b"f",
    "overhead": b"o",
    "log": b"l",
}
"""Each message's first byte: the relay knows what it holds without unpickling it."""
_COUNT_BYTES = 4
"""After the first byte of a message from the child, the number of frames that follow it (its buffers)."""
_HEAD_BYTES = 1 + _COUNT_BYTES
_PICKLE_PROTOCOL = 5
"""Out-of-band buffers (PEP 574): an arrow table's buffers cross the pipe as they are, where an in-band pickle
copied a group's ≈ 7 MiB twice in the child (7.6 ms a group) and once more in the parent."""
_IN_ORDER = frozenset({_BATCH, b"r", b"e", b"x"})
"""The messages taken in the walk's order (through the queue, or the disk while it is full); the others
(figures and log records) are handled as they come."""
_Frames = list[bytes]
"""A message from the child as received: its head (first byte, frame count, pickle), then its buffers."""
_NOTHING_YET: _Frames = []
"""What the relay's poll gives when no message came in time (a message always has its head)."""
CHILD_FAILED = 70
"""The child's exit status when it could not even report its error."""
_PR_SET_PDEATHSIG = 1


def walk_in_process_supported() -> bool:
    """Whether the walk can run in a forked child here: Linux only (a fork elsewhere is unsafe with the
    system's own libraries, macOS's above all)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


class ProcessWalkPump(WalkPump):
    """A :class:`WalkPump` whose walk runs in a forked child process; use as a context manager."""

    def __init__(
        self,
        walk: ChildWalkFactory,
        observer: WalkObserver,
        *,
        max_queued_rows: int,
        convert: Callable[[WalkBatch], None] | None = None,
    ) -> None:
        """``walk`` is called in the child with the parent's destination reads and an observer that reports
        to ``observer``."""
        super().__init__(_never_walked, max_queued_rows=max_queued_rows, convert=convert)
        self._child_walk = walk
        self._observer = observer
        self._spill = _Spill()
        self._ended = False
        """The child's end or error has been queued."""
        self._send_lock = threading.Lock()
        self._from_child: Connection | None = None
        self._to_child: Connection | None = None
        self._pid: int | None = None
        self._reaped = threading.Lock()
        self.exit_status: int | None = None
        """The child's exit status once it has ended (negative: the signal that killed it)."""
        self._cpus: _CpuSplit | None = None

    def __enter__(self) -> ProcessWalkPump:
        self._fork()
        super().__enter__()
        return self

    def _fork(self) -> None:
        cpus = _CpuSplit.planned()
        from_child, child_sends = Pipe(duplex=False)
        child_reads, to_child = Pipe(duplex=False)
        # the child's collector never walks the parent's objects (DuckDB's, dlt's); in the parent they stay
        # frozen only if something had frozen objects before (a sync does: ``fewer_collections``)
        frozen_before = gc.get_freeze_count()
        gc.freeze()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns of fork in a process with threads: the child runs only the walk, on
                # fresh threads, and touches none of the locks the parent's threads may hold
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child (measured by the tests through what it sends)
                status = CHILD_FAILED
                try:
                    from_child.close()
                    to_child.close()
                    if cpus is not None:
                        cpus.take_the_walks()
                    status = _child_main(self._child_walk, child_sends, child_reads)
                finally:
                    os._exit(status)
        finally:
            if frozen_before == 0:
                gc.unfreeze()
        child_sends.close()
        child_reads.close()
        self._pid, self._from_child, self._to_child = pid, from_child, to_child
        if cpus is not None:
            cpus.leave_the_walks()
            self._cpus = cpus

    def stop(self) -> None:
        if self._ended:  # the child said its last word and is on its way out: it is not killed for it
            self._reap(within=ENDING_SECONDS)
        self._stopping = True
        self._kill_child()
        self._give_back_cpus()
        super().stop()
        for connection in (self._from_child, self._to_child):
            if connection is not None:
                connection.close()
        self._spill.close()

    def _kill_child(self) -> None:
        with self._reaped:
            if self._pid is not None and self.exit_status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)

    def _reap(self, *, wait: bool = True, within: float | None = None) -> bool:
        """Whether the child has ended (its status then in :attr:`exit_status`); waits for it by default
        (polling: :meth:`stop` must be able to kill it meanwhile), at most ``within`` seconds if given."""
        deadline = None if within is None else time.monotonic() + within
        while True:
            with self._reaped:
                if self._pid is None or self.exit_status is not None:
                    return True
                pid, status = os.waitpid(self._pid, os.WNOHANG)
                if pid != 0:
                    self.exit_status = os.waitstatus_to_exitcode(status)
                    return True
            if not wait or (deadline is not None and time.monotonic() >= deadline):
                return False
            time.sleep(REFILL_SECONDS)

    def _receive(self, from_child: Connection, *, wait: float) -> _Frames | None:
        """The child's next message, :data:`_NOTHING_YET` after ``wait`` seconds without one, None once it has
        ended and sent nothing more. Polled, not read until the pipe's end: a child forked meanwhile by
        another pump of this process holds the pipe open too."""
        if from_child.poll(wait):
            head = from_child.recv_bytes()
            count = int.from_bytes(head[1:_HEAD_BYTES], "little")
            return [head, *(self._frame(from_child) for _ in range(count))]
        if self._gone(from_child):
            return None
        return _NOTHING_YET

    def _frame(self, from_child: Connection) -> bytes:
        """The next frame of a message whose head came (the child sends them right after it)."""
        while not from_child.poll(POLL_SECONDS):
            if self._gone(from_child):
                raise EOFError("the walk's process ended in the middle of a message")
        return from_child.recv_bytes()

    def _gone(self, from_child: Connection) -> bool:
        """The pump stops, or the child has ended and nothing more waits in the pipe."""
        return self._stopping or (self._reap(wait=False) and not from_child.poll(0))

    def _run(self) -> None:
        """The relay: what the child sends, queued as the walk's thread would have queued it."""
        try:
            self._relay()
        except BaseException as error:  # garbage from the pipe: the child is stopped, the run fails
            self._kill_child()
            if not self._stopping:
                self._inbox.put(error)
        finally:
            self._reap()

    def _relay(self) -> None:
        from_child = self._from_child
        assert from_child is not None
        while True:
            self._refill()
            try:
                frames = self._receive(
                    from_child, wait=REFILL_SECONDS if self._spill.waiting else POLL_SECONDS
                )
            except (EOFError, OSError):
                frames = None
            if frames is None:  # the child ended (or the pump stops): what it sent before goes first
                self._reap(wait=not self._stopping)
                while self._spill.waiting and not self._stopping:
                    if not self._refill():
                        time.sleep(REFILL_SECONDS)
                if not self._stopping and not self._ended:
                    self._inbox.put(
                        RuntimeError(f"the walk's process ended without its last batch ({self._ended_how()})")
                    )
                return
            if not frames:
                continue
            kind = frames[0][:1]
            if kind not in _IN_ORDER:
                self._handle(frames)
            elif self._spill.waiting or self._queued_rows >= self._max_queued_rows:
                # the queue is full (a segment loads): the walk goes on, its batches wait on disk
                self._spill.put(frames)
                if kind == _BATCH:
                    self._send(("taken",))
            else:
                self._handle(frames)
            if self._ended and not self._spill.waiting:
                return

    def _refill(self) -> bool:
        """Moves what waits on disk to the queue while it has room; whether anything moved."""
        moved = False
        while self._spill.waiting and self._queued_rows < self._max_queued_rows and not self._stopping:
            self._handle(self._spill.take(), spilled=True)
            moved = True
        return moved

    def _handle(self, frames: _Frames, *, spilled: bool = False) -> None:
        # the tables' buffers are the frames received (or read back from disk): no copy
        message = pickle.loads(memoryview(frames[0])[_HEAD_BYTES:], buffers=frames[1:])
        kind = message[0]
        if kind == "batch":
            self._queue(message[1])
            if not spilled:
                self._send(("taken",))
        elif kind == "read":
            self._relay_read(*message[1:])
        elif kind == "report":
            report: CatalogReport = message[1]
            known = report.catalog in self._observer.catalogs
            self._observer.catalogs[report.catalog] = report
            if known:
                self._observer.progress(report)
        elif kind == "final":
            self._observer.catalogs[message[1].catalog] = message[1]
        elif kind == "overhead":
            self._observer.overhead = message[1]
        elif kind == "log":
            record: logging.LogRecord = message[1]
            logging.getLogger(record.name).handle(record)
        elif kind == "error":
            self._ended = True
            self._give_back_cpus()
            self._inbox.put(_rebuilt_error(message[1]))
        else:
            self._ended = True
            self._give_back_cpus()  # before the last segment's load, which the walk no longer competes with
            self._inbox.put(_END)

    def _give_back_cpus(self) -> None:
        if self._cpus is not None:
            self._cpus.give_back()

    def _ended_how(self) -> str:
        status = self.exit_status
        if status is None:
            return "still running"
        if status < 0:
            return f"killed by signal {-status}"
        return f"exit status {status}"

    def _relay_read(self, read_id: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        read = _Read(lambda state: getattr(state, method)(*args, **kwargs))

        def answer(done: Future[Any]) -> None:
            error = done.exception()
            self._send(("answer", read_id, None if error is not None else done.result(), error))

        read.answer.add_done_callback(answer)
        if self._stopping:
            read.answer.set_exception(WalkStopped("the sync stopped"))
            return
        self._inbox.put(read)

    def _send(self, message: tuple[Any, ...]) -> None:
        """To the child; nothing when it is gone (the relay then sees its end)."""
        to_child = self._to_child
        if to_child is None:
            return
        try:
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # an answer that does not pickle: the child raises it in the walk
            data = pickle.dumps(("answer", message[1], None, RuntimeError(f"unpicklable answer: {error}")))
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            to_child.send_bytes(data)

    def _wake_walk(self) -> None:
        pass  # the relay refills the queue from disk at its next poll (REFILL_SECONDS)


class _CpuSplit:
    """The walk's process on one CPU of those this process may use, this process's threads on the others,
    until :meth:`give_back` (as soon as the walk has ended: the last load gets every CPU). The scheduler then
    no longer moves the walk from CPU to CPU as dlt's and DuckDB's threads wake (docs/performance.md,
    seventeenth round).

    The walk's CPU is picked by this process's id, so that syncs started side by side (one Airflow task per
    catalog) do not all put their walks on the same CPU. A CPU set that cannot be changed (a container's
    policy) leaves things as they were."""

    def __init__(self, allowed: frozenset[int], walk_cpu: int) -> None:
        self.allowed = allowed
        self.walk_cpu = walk_cpu
        self._given_back = False
        self._lock = threading.Lock()

    @classmethod
    def planned(cls) -> _CpuSplit | None:
        """The split for a walk forked now; None where this process may use fewer than two CPUs."""
        try:
            allowed = frozenset(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return None
        if len(allowed) < 2:
            return None
        cpus = sorted(allowed)
        return cls(allowed, cpus[os.getpid() % len(cpus)])

    def take_the_walks(self) -> None:
        """In the child, before its threads start (they inherit it)."""
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {self.walk_cpu})

    def leave_the_walks(self) -> None:
        """In the parent, after the fork: each of its threads (threads started later inherit the CPUs of
        the thread that starts them)."""
        _set_every_threads_cpus(self.allowed - {self.walk_cpu})

    def give_back(self) -> None:
        """Every thread of the parent on every CPU again (once; from the relay or from :meth:`stop`)."""
        with self._lock:
            if self._given_back:
                return
            self._given_back = True
        _set_every_threads_cpus(self.allowed)


def _set_every_threads_cpus(cpus: frozenset[int]) -> None:
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:
        return
    for thread in threads:
        # a thread may have ended since the listing; a CPU set a container does not allow stays as it was
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(int(thread), cpus)


class _Spill:
    """Messages waiting on disk, first in first out, in an unnamed temporary file (gone when closed, or when
    the process dies): the rows the walk made while a segment loaded and the queue was full (at 20 ms per
    request ≈ 20,000 a second, ≈ 0.9 KiB each as arrow)."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._sizes: deque[list[int]] = deque()
        """Each waiting message's frame sizes."""
        self._read_at = 0

    @property
    def waiting(self) -> int:
        return len(self._sizes)

    def put(self, frames: _Frames) -> None:
        if self._file is None:
            # open until close(): written and read across calls
            self._file = tempfile.TemporaryFile(prefix="octogen-walk-")  # noqa: SIM115
        self._file.seek(0, os.SEEK_END)
        for frame in frames:
            self._file.write(frame)
        self._sizes.append([len(frame) for frame in frames])

    def take(self) -> _Frames:
        assert self._file is not None
        sizes = self._sizes.popleft()
        self._file.seek(self._read_at)
        frames = [self._file.read(size) for size in sizes]
        self._read_at += sum(sizes)
        if not self._sizes:  # all taken: the space is given back
            self._file.seek(0)
            self._file.truncate()
            self._read_at = 0
        return frames

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._sizes.clear()


async def _never_walked(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:  # pragma: no cover
    raise RuntimeError("the walk runs in the child process")
    yield WalkBatch()


# --- the child -----------------------------------------------------------------------------------------


class _ToParent:
    """The child's sending side: one thread writes every message, in the order given. The walk's batches are
    turned into arrow tables on the way (``convert``) and grouped until they hold about ``GROUP_ROWS`` rows
    (or no batch came for :data:`GROUP_WAIT_SECONDS`, or the first has waited :data:`GROUP_MAX_SECONDS`, or
    a message that must follow them is sent): a table crosses the pipe as its buffers, where rows were
    unpickled into as many Python objects again (14 ms for 1,000 products, the time their JSON took to
    parse), and the sync's process no longer converts them.

    ``sent_room`` holds a permit per message of batches the relay may not have taken yet (released by the
    thread receiving its "taken"); :attr:`walk_room`, one per batch of the walk waiting to be converted."""

    def __init__(
        self, connection: Connection, convert: Callable[[WalkBatch], None], sent_room: threading.Semaphore
    ) -> None:
        self._connection = connection
        self._convert = convert
        self._sent_room = sent_room
        self.walk_room = threading.Semaphore(WALK_BATCHES_WAITING)
        self._outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name="octogen-walk-send", daemon=True)
        self._thread.start()

    def put(self, message: tuple[Any, ...]) -> None:
        self._outbox.put(message)

    def close(self) -> None:
        self._outbox.put(None)
        self._thread.join()

    def _write(self) -> None:
        with contextlib.suppress(_ParentGone):
            self._write_until_closed()

    def _write_until_closed(self) -> None:
        group: WalkBatch | None = None
        # counted from the group's last batch (reports and log records come between batches all the time),
        # and at most GROUP_MAX_SECONDS from its first
        group_due = math.inf
        group_started = 0.0
        while True:
            if group is not None and time.monotonic() >= group_due:  # it goes as it is
                group = self._sent(group)
            try:
                # never negative: the group may have fallen due since the look above
                timeout = None if group is None else max(0.0, group_due - time.monotonic())
                message = self._outbox.get(timeout=timeout)
            except queue.Empty:
                continue
            if message is not None and message[0] == "batch":
                self.walk_room.release()
                try:
                    self._convert(message[1])
                except Exception as error:  # said to the parent, which fails the run
                    message = ("error", _portable_error(RuntimeError(f"batch: {error}")))
                else:
                    before = group
                    group = self._grouped(group, message[1])
                    now = time.monotonic()
                    if group is not before:  # a group begun by this batch
                        group_started = now
                    group_due = min(now + GROUP_WAIT_SECONDS, group_started + GROUP_MAX_SECONDS)
                    continue
            # the group goes before what must follow it: a read, the walk's end or error, the end of all
            if message is None or _KINDS[message[0]] in _IN_ORDER:
                group = self._sent(group)
            if message is None:
                return
            self._send(message)

    def _grouped(self, group: WalkBatch | None, batch: WalkBatch) -> WalkBatch | None:
        """The group with ``batch`` added (sent first when their tables do not join); None once the group
        reached :data:`GROUP_ROWS` rows and was sent."""
        if group is not None and not _joined(group, batch):
            group = self._sent(group)
        if group is None:
            group = batch
        return self._sent(group) if group.rows >= GROUP_ROWS else group

    def _sent(self, group: WalkBatch | None) -> WalkBatch | None:
        """Sends the group, if any; what is left of it: none."""
        if group is not None:
            self._send(("batch", group))
        return None

    def _send(self, message: tuple[Any, ...]) -> None:
        """Sends ``message`` (a batch once the relay has room for it); raises :class:`_ParentGone` once the
        parent is gone or stopped the walk."""
        if message[0] == "batch":
            self._sent_room.acquire()
        kind = _KINDS[message[0]]
        buffers: list[pickle.PickleBuffer] = []
        try:
            head = pickle.dumps(message, protocol=_PICKLE_PROTOCOL, buffer_callback=buffers.append)
            frames = [buffer.raw() for buffer in buffers]
        except Exception as error:  # a message that does not pickle (an error's attribute): said so
            failed = ("error", _portable_error(RuntimeError(f"{message[0]}: {error}")))
            kind, head, frames = _KINDS["error"], pickle.dumps(failed, protocol=_PICKLE_PROTOCOL), []
        try:
            self._connection.send_bytes(kind + len(frames).to_bytes(_COUNT_BYTES, "little") + head)
            for frame in frames:
                self._connection.send_bytes(frame)
        except OSError as error:
            raise _ParentGone from error


class _ParentGone(Exception):
    """The pipe to the parent is closed: nothing more can be sent."""


def _joined(group: WalkBatch, batch: WalkBatch) -> bool:
    """Adds ``batch``'s rows and tables to ``group`` where their tables concatenate; whether it did."""
    try:
        products = _concatenated(group.product_table, batch.product_table)
        prices = _concatenated(group.price_table, batch.price_table)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column typed differently in each: sent apart
        return False
    group.extend(batch)
    group.product_table, group.price_table = products, prices
    return True


def _concatenated(first: pa.Table | None, second: pa.Table | None) -> pa.Table | None:
    if first is None or second is None:
        return first if second is None else second
    # a column only one of them has is null in the other's rows
    return pa.concat_tables([first, second], promote_options="default")


class _ForwardedLogs(QueueHandler):
    """The child's only log handler: each record goes to the parent as the standard library's queue handler
    prepares it (message formatted, arguments and traceback merged into it: picklable)."""

    def __init__(self, to_parent: _ToParent) -> None:
        super().__init__(queue.SimpleQueue())  # unused: enqueue sends
        self._to_parent = to_parent

    def enqueue(self, record: logging.LogRecord) -> None:
        self._to_parent.put(("log", record))


class _ReportingObserver(WalkObserver):
    """The child's observer: each catalog's report goes to the parent when started and at every progress."""

    def __init__(self, to_parent: _ToParent) -> None:
        super().__init__()
        self._to_parent = to_parent

    def start(self, catalog: str) -> CatalogReport:
        report = super().start(catalog)
        self._send(report)
        return report

    def progress(self, report: CatalogReport) -> None:
        self._send(report)

    def _send(self, report: CatalogReport) -> None:
        # a copy as it is now: the walk goes on changing the report while the message waits to be pickled
        http = replace(report.http, by_operation=dict(report.http.by_operation))
        self._to_parent.put(("report", replace(report, http=http)))


class _ParentReads:
    """The walk's :class:`LoadedState` in the child: each read asked of the parent (from a worker thread of
    the walk's loop, as in a thread)."""

    def __init__(self, to_parent: _ToParent) -> None:
        self._to_parent = to_parent
        self._ids = itertools.count()
        self._waiting: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._gone = False

    def known_versions(self, catalog: str, *, details: bool) -> KnownVersions:
        result: KnownVersions = self._ask("known_versions", (catalog,), {"details": details})
        return result

    def stored_products(self, uuids: Sequence[str]) -> list[Row]:
        result: list[Row] = self._ask("stored_products", (list(uuids),), {})
        return result

    def stored_catalog(self, catalog: str) -> Row | None:
        result: Row | None = self._ask("stored_catalog", (catalog,), {})
        return result

    def _ask(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        answer: Future[Any] = Future()
        with self._lock:
            if self._gone:
                raise WalkStopped("the sync stopped")
            read_id = next(self._ids)
            self._waiting[read_id] = answer
        self._to_parent.put(("read", read_id, method, args, kwargs))
        return answer.result()

    def answered(self, read_id: int, value: Any, error: BaseException | None) -> None:
        with self._lock:
            answer = self._waiting.pop(read_id, None)
        if answer is None:
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(value)

    def parent_gone(self) -> None:
        with self._lock:
            self._gone = True
            waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            answer.set_exception(WalkStopped("the sync stopped"))


def _child_main(walk: ChildWalkFactory, to_parent_connection: Connection, from_parent: Connection) -> int:
    """The child's whole life: the walk, its messages, its exit status."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the parent, which stops the child
    # the walk's loop takes the GIL back from the converting thread soon after an answer arrives
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    pa.set_memory_pool(pa.system_memory_pool())
    sent_room = threading.Semaphore(BATCHES_AHEAD)
    to_parent = _ToParent(to_parent_connection, WalkConverters().convert, sent_room)
    _forward_logs(to_parent)
    reads = _ParentReads(to_parent)
    receiving = threading.Thread(
        target=_receive, args=(from_parent, reads, sent_room), name="octogen-walk-receive", daemon=True
    )
    receiving.start()

    observer = _ReportingObserver(to_parent)

    async def drive() -> None:
        async with aclosing(walk(reads, observer)) as batches:
            async for batch in batches:
                if not to_parent.walk_room.acquire(blocking=False):
                    await asyncio.to_thread(to_parent.walk_room.acquire)
                to_parent.put(("batch", batch))

    try:
        asyncio.run(drive())
    except BaseException as error:
        ended: tuple[Any, ...] = ("error", _portable_error(error))
    else:
        ended = ("end",)
    # the figures as the walk left them (a failed request's retries too), before its end or its error
    for report in observer.catalogs.values():
        to_parent.put(("final", report))
    to_parent.put(("overhead", observer.overhead))
    to_parent.put(ended)
    to_parent.close()
    return 0


def _receive(from_parent: Connection, reads: _ParentReads, room: threading.Semaphore) -> None:
    while True:
        try:
            message = pickle.loads(from_parent.recv_bytes())
        except (EOFError, OSError):
            reads.parent_gone()
            return
        if message[0] == "taken":
            room.release()
        else:
            _, read_id, value, error = message
            reads.answered(read_id, value, error)


def _die_with_parent() -> None:
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(CHILD_FAILED)


def _forward_logs(to_parent: _ToParent) -> None:
    """Every record the child's loggers would handle goes to the parent instead (its handlers write it)."""
    forward = _ForwardedLogs(to_parent)
    for logger in logging.root.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and logger.handlers:
            logger.handlers = [] if logger.propagate else [forward]
    logging.root.handlers = [forward]


# --- errors across the pipe ----------------------------------------------------------------------------


def _portable_error(error: BaseException) -> tuple[Any, ...]:
    """The error as (type, args, attributes, cause), each part picklable; rebuilt by :func:`_rebuilt_error`
    without calling its ``__init__`` (errors with keyword-only fields do not survive plain pickling)."""
    kind: type[BaseException] = type(error)
    try:
        pickle.dumps(kind)
    except Exception:
        kind = RuntimeError
    args = error.args if _pickles(error.args) else tuple(str(arg) for arg in error.args)
    attributes = {name: value for name, value in vars(error).items() if _pickles(value)}
    cause = error.__cause__
    return kind, args, attributes, _portable_error(cause) if cause is not None else None


def _rebuilt_error(portable: tuple[Any, ...]) -> BaseException:
    kind, args, attributes, cause = portable
    error: BaseException = kind.__new__(kind, *args)
    error.args = args
    vars(error).update(attributes)
    if cause is not None:
        error.__cause__ = _rebuilt_error(cause)
    return error


def _pickles(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


__all__ = ["BATCHES_AHEAD", "ProcessWalkPump", "walk_in_process_supported"]
