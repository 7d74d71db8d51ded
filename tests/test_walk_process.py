"""The walk in a child process (octogen_source.source.walk_process), with walks made up here and run in a real
forked child: its batches arrive in order and within the allowance, its reads are made by the parent's
extracting thread, its reports, log records and errors (type, fields and cause) reach the parent, and a
child that dies or is stopped leaves no process behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from octogen_source.errors import OctogenAPIError, OctogenResponseTooLargeError
from octogen_source.source import walk_process, walk_pump
from octogen_source.source.catalog_walk import LoadedState, WalkBatch
from octogen_source.source.report import CatalogReport, WalkObserver
from octogen_source.source.walk_process import ProcessWalkPump, walk_in_process_supported

pytestmark = pytest.mark.skipif(
    not walk_in_process_supported(), reason="the walk forks a child on Linux only"
)


class _Answers:
    """A stand-in for the destination the extract would read, in the parent."""

    def __init__(self) -> None:
        self.asked_from: list[tuple[int, str]] = []

    def stored_catalog(self, catalog: str) -> dict[str, Any]:
        self.asked_from.append((os.getpid(), threading.current_thread().name))
        return {"catalog": catalog, "asked in": os.getpid()}


def _batch(uuid: str, **fields: Any) -> WalkBatch:
    return WalkBatch(products=[{"uuid": uuid, **fields}])


def _products(batch: WalkBatch) -> list[dict[str, Any]]:
    """The batch's products, rows or (converted in the child) an arrow table."""
    table = batch.product_table
    return batch.products + (table.to_pylist() if table is not None else [])


def _take_all(pump: ProcessWalkPump) -> list[WalkBatch]:
    return list(pump.segment(min_rows=10**9, ready=lambda: True))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_batches_come_in_order_from_another_process_and_reads_are_made_by_the_extract(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = _Answers()
    monkeypatch.setattr(walk_pump, "DestinationState", lambda: answers)

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        stored = await asyncio.to_thread(loaded.stored_catalog, "a")
        assert stored is not None
        yield _batch(
            "0", walked_in=os.getpid(), stored_catalog=stored["catalog"], asked_in=stored["asked in"]
        )
        for number in range(1, 50):
            yield _batch(str(number))

    with ProcessWalkPump(walk, WalkObserver(), max_queued_rows=5) as pump:
        batches = _take_all(pump)
    first = _products(batches[0])[0]
    # grouped on the way (fewer messages, as many rows)
    assert [row["uuid"] for batch in batches for row in _products(batch)] == [str(n) for n in range(50)]
    assert len(batches) < 50
    # converted to arrow by the child, on the way
    assert all(batch.product_table is not None and not batch.products for batch in batches)
    assert first["walked_in"] != os.getpid()
    assert (first["stored_catalog"], first["asked_in"]) == ("a", os.getpid())
    assert answers.asked_from == [(os.getpid(), threading.current_thread().name)]
    assert pump.finished and pump.exit_status == 0 and _gone(first["walked_in"])


def test_the_child_sends_its_batches_in_groups_that_keep_every_row_in_order_and_never_pass_a_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = _Answers()
    monkeypatch.setattr(walk_pump, "DestinationState", lambda: answers)
    monkeypatch.setattr(walk_process, "GROUP_ROWS", 4)
    monkeypatch.setattr(walk_process, "GROUP_WAIT_SECONDS", 60.0)  # groups end by size, a read or the end

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("0", extra=1)
        yield _batch("1", title="one")  # a column the group's table has not: null in its other rows
        yield _batch("2")
        await asyncio.to_thread(loaded.stored_catalog, "a")  # what came before is taken first
        yield _batch("3", extra=3)
        yield _batch("4", extra="four")  # the converter gives up: the rest of the run's batches stay rows
        for number in range(5, 12):
            yield _batch(str(number))

    taken: list[WalkBatch | None] = []  # None: the read, answered between the batches taken

    def stored_catalog(self: _Answers, catalog: str) -> dict[str, Any]:
        taken.append(None)
        return {"catalog": catalog}

    monkeypatch.setattr(_Answers, "stored_catalog", stored_catalog)
    with ProcessWalkPump(walk, WalkObserver(), max_queued_rows=100) as pump:
        for batch in pump.segment(min_rows=10**9, ready=lambda: True):
            taken.append(batch)
    read_at = taken.index(None)
    before = [batch for batch in taken[:read_at] if batch is not None]
    after = [batch for batch in taken[read_at + 1 :] if batch is not None]
    assert [_products(batch) for batch in before] == [
        [
            {"uuid": "0", "extra": 1, "title": None},
            {"uuid": "1", "extra": None, "title": "one"},
            {"uuid": "2", "extra": None, "title": None},
        ]
    ]
    # the group of 3 (a table) goes on with the rows of 4 and 5 (rows are handed to dlt first)
    assert after[0].product_table is not None and after[0].product_table.to_pylist() == [
        {"uuid": "3", "extra": 3}
    ]
    assert after[0].products == [{"uuid": "4", "extra": "four"}, {"uuid": "5"}, {"uuid": "6"}]
    assert [[row["uuid"] for row in _products(batch)] for batch in after[1:]] == [
        ["7", "8", "9", "10"],
        ["11"],
    ]


def test_a_group_goes_once_no_batch_came_for_a_while_even_as_reports_keep_coming(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An incremental walk finds a changed product now and then, and reports every page meanwhile: its
    group of batches must not wait for the next batch (nor for the group to fill) as long as reports come."""
    monkeypatch.setattr(walk_process, "GROUP_ROWS", 10**6)
    monkeypatch.setattr(walk_process, "GROUP_WAIT_SECONDS", 0.2)

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("changed early")
        report = observer.start("northwind")
        for _ in range(100):  # 1 s of pages, 10 ms apart, none of them with a row
            await asyncio.sleep(0.01)
            report.pages += 1
            observer.progress(report)
        yield _batch("changed late")

    with ProcessWalkPump(walk, WalkObserver(), max_queued_rows=100) as pump:
        assert [[row["uuid"] for row in _products(batch)] for batch in _take_all(pump)] == [
            ["changed early"],
            ["changed late"],
        ]


def test_the_parent_queues_no_more_rows_than_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walk_process, "GROUP_ROWS", 1)  # each batch of the walk sent alone

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        for number in range(200):
            yield _batch(str(number))

    with ProcessWalkPump(walk, WalkObserver(), max_queued_rows=3) as pump:
        segment = pump.segment(min_rows=10**9, ready=lambda: True)
        taken = [next(segment)]
        time.sleep(0.5)  # the child could send everything meanwhile: the relay queues 3 rows and waits
        queued = pump._queued_rows
        taken += list(segment)
    assert queued <= 3
    assert len(taken) == 200


def test_reports_and_log_records_reach_the_parent(caplog: pytest.LogCaptureFixture) -> None:
    progressed: list[tuple[str, int]] = []
    observer = WalkObserver(on_progress=lambda report: progressed.append((report.catalog, report.pages)))

    async def walk(loaded: LoadedState, child_observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        report = child_observer.start("northwind")
        for _ in range(3):
            report.pages += 1
            report.http.record("search", retry=False)
            child_observer.progress(report)
        logging.getLogger("octogen_source.client").warning("retrying %s in %.1f s", "search", 1.5)
        report.complete = True
        child_observer.progress(report)
        yield _batch("only")

    with (
        caplog.at_level(logging.WARNING, logger="octogen_source"),
        ProcessWalkPump(walk, observer, max_queued_rows=10) as pump,
    ):
        assert len(_take_all(pump)) == 1
    report = observer.catalogs["northwind"]
    assert isinstance(report, CatalogReport)
    assert (report.pages, report.requests, report.complete) == (3, 3, True)
    assert progressed == [("northwind", 1), ("northwind", 2), ("northwind", 3), ("northwind", 3)]
    warnings = [record for record in caplog.records if record.name == "octogen_source.client"]
    assert [record.getMessage() for record in warnings] == ["retrying search in 1.5 s"]
    assert warnings[0].process != os.getpid()


def test_the_walks_error_arrives_with_its_type_fields_and_cause() -> None:
    async def too_large(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("one")
        raise OctogenResponseTooLargeError(
            "search answered more than 1024 bytes", endpoint="/search", limit=1024
        )

    with ProcessWalkPump(too_large, WalkObserver(), max_queued_rows=10) as pump:
        segment = pump.segment(min_rows=10, ready=lambda: True)
        assert _products(next(segment)) == [{"uuid": "one"}]
        with pytest.raises(OctogenResponseTooLargeError) as raised:
            next(segment)
    assert (raised.value.endpoint, raised.value.limit) == ("/search", 1024)
    assert str(raised.value) == "search answered more than 1024 bytes"

    async def with_cause(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        try:
            raise ConnectionResetError("reset by peer")
        except ConnectionResetError as reset:
            raise OctogenAPIError("the API failed", status_code=503, detail="busy") from reset
        yield _batch("never")

    with (
        pytest.raises(OctogenAPIError, match="the API failed") as failed,
        ProcessWalkPump(with_cause, WalkObserver(), max_queued_rows=10) as pump,
    ):
        _take_all(pump)
    assert (failed.value.status_code, failed.value.detail) == (503, "busy")
    assert isinstance(failed.value.__cause__, ConnectionResetError)


def test_a_child_killed_mid_walk_fails_the_segment_with_one_line() -> None:
    async def killed(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("one")
        await asyncio.sleep(0.2)  # the batch on its way to the parent first
        os.kill(os.getpid(), signal.SIGKILL)
        yield _batch("never")

    with (
        pytest.raises(RuntimeError, match=r"ended without its last batch \(killed by signal 9\)"),
        ProcessWalkPump(killed, WalkObserver(), max_queued_rows=10) as pump,
    ):
        _take_all(pump)
    assert pump.exit_status == -signal.SIGKILL


def test_stopping_kills_a_walk_that_goes_on_and_a_read_left_unanswered() -> None:
    async def endless(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        number = 0
        while True:
            number += 1
            yield _batch(str(number), walked_in=os.getpid())

    with ProcessWalkPump(endless, WalkObserver(), max_queued_rows=2) as pump:
        child = _products(next(pump.segment(min_rows=10, ready=lambda: True)))[0]["walked_in"]
    assert pump.exit_status == -signal.SIGKILL and _gone(child)

    async def unanswered(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        await asyncio.to_thread(loaded.stored_catalog, "a")
        yield _batch("never taken")

    started = time.monotonic()
    with ProcessWalkPump(unanswered, WalkObserver(), max_queued_rows=10) as pump:
        pass  # nothing takes the batches, nothing answers the read
    assert time.monotonic() - started < 10
    assert pump.exit_status == -signal.SIGKILL
    assert not [
        thread for thread in threading.enumerate() if thread.name == "octogen-walk" and thread.is_alive()
    ]


def test_the_walk_goes_on_while_nothing_takes_its_batches_which_wait_on_disk_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(walk_process, "GROUP_ROWS", 1)  # each batch of the walk sent alone

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        for number in range(300):
            yield _batch(str(number), title="x" * walk_pump.ROW_BYTES)  # weighs a row as arrow too

    with ProcessWalkPump(walk, WalkObserver(), max_queued_rows=3) as pump:
        deadline = time.monotonic() + 20
        while pump.exit_status is None and time.monotonic() < deadline:  # as while a segment loads
            time.sleep(0.05)
        assert pump.exit_status == 0  # the child walked to its end without a batch taken
        waiting_on_disk = pump._spill.waiting
        taken = [_products(batch)[0]["uuid"] for batch in _take_all(pump)]
    assert waiting_on_disk >= 290
    assert taken == [str(number) for number in range(300)]
    assert pump._spill.waiting == 0


def test_a_converted_batchs_table_crosses_the_pipe_as_its_buffers_not_inside_the_pickle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[tuple[bytes, int, int]] = []  # (kind, head's bytes, frames' bytes) of each message
    handle = ProcessWalkPump._handle

    def recording(self: ProcessWalkPump, frames: list[bytes], *, spilled: bool = False) -> None:
        received.append((frames[0][:1], len(frames[0]), sum(len(frame) for frame in frames[1:])))
        handle(self, frames, spilled=spilled)

    monkeypatch.setattr(ProcessWalkPump, "_handle", recording)
    rows = [{"uuid": str(number), "title": f"{number:04d}" + "x" * 1_000} for number in range(2_000)]

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        yield WalkBatch(products=rows)

    with ProcessWalkPump(walk, WalkObserver(), max_queued_rows=10**6) as pump:
        batches = _take_all(pump)
    assert [product for batch in batches for product in _products(batch)] == rows
    assert all(batch.product_table is not None for batch in batches)  # converted in the child
    sent = [(head, frames) for kind, head, frames in received if kind == b"b"]
    assert sent
    # the ≈ 2 MB of titles came as the table's own buffers; the pickle holds the rest (schema, layout)
    assert sum(frames for _, frames in sent) >= 2_000 * 1_000
    assert all(head < 64 * 1024 for head, _ in sent)


def test_a_message_the_relay_cannot_read_stops_the_child_and_fails_the_segment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # stands in for garbage on the pipe (nothing else here sends any): the relay's reading fails once
    def unreadable(self: ProcessWalkPump, frames: list[bytes], *, spilled: bool = False) -> None:
        raise ValueError("unreadable message from the walk's process")

    monkeypatch.setattr(ProcessWalkPump, "_handle", unreadable)

    async def endless(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        while True:
            yield _batch("again")

    started = time.monotonic()
    with (
        pytest.raises(ValueError, match="unreadable message"),
        ProcessWalkPump(endless, WalkObserver(), max_queued_rows=10) as pump,
    ):
        _take_all(pump)
    assert time.monotonic() - started < 10
    assert pump.exit_status == -signal.SIGKILL


def test_batches_that_keep_coming_a_few_rows_at_a_time_are_sent_without_waiting_for_a_full_group() -> None:
    """A walk finding a changed product now and then: each batch comes before the group's wait for the next
    one ends, so only the group's longest wait sends it (not 8,000 rows later)."""

    async def trickle(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        while True:
            await asyncio.sleep(walk_process.GROUP_WAIT_SECONDS / 5)
            yield _batch("again")

    started = time.monotonic()
    with ProcessWalkPump(trickle, WalkObserver(), max_queued_rows=10**6) as pump:
        first = next(pump.segment(min_rows=10**9, ready=lambda: True))
    assert 1 <= first.rows < walk_process.GROUP_ROWS / 10
    assert time.monotonic() - started < 30  # a full group would take ≥ 80 s


_KILLED_PARENT = """
import asyncio, os, sys, time
from octogen_source.source.catalog_walk import WalkBatch
from octogen_source.source.report import WalkObserver
from octogen_source.source.walk_process import ProcessWalkPump

async def endless(loaded, observer):
    while True:
        await asyncio.sleep(0.01)
        yield WalkBatch(products=[{"uuid": "again", "walked_in": os.getpid()}])

with ProcessWalkPump(endless, WalkObserver(), max_queued_rows=10) as pump:
    batch = next(pump.segment(min_rows=10**9, ready=lambda: True))
    print(batch.product_table.to_pylist()[0]["walked_in"], flush=True)
    time.sleep(60)
"""


def test_the_walks_process_dies_with_a_killed_sync(tmp_path: Path) -> None:
    script = tmp_path / "killed_parent.py"
    script.write_text(_KILLED_PARENT)
    sync = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert sync.stdout is not None
        child = int(sync.stdout.readline())
        assert not _gone(child)
        sync.kill()  # SIGKILL: no finalizer, no stop()
        sync.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not _gone_or_zombie(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone_or_zombie(child)
    finally:
        sync.kill()


def _gone_or_zombie(pid: int) -> bool:
    """Ended: gone, or a zombie waiting for whoever adopted it (init, or this test's process) to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _threads_cpus() -> dict[int, frozenset[int]]:
    """The CPUs each thread of this process may run on."""
    cpus = {}
    for thread in os.listdir("/proc/self/task"):
        try:
            cpus[int(thread)] = frozenset(os.sched_getaffinity(int(thread)))
        except OSError:
            continue  # ended since the listing
    return cpus


_TWO_CPUS = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="the walk gets a CPU of its own only where the process may use two or more",
)


@_TWO_CPUS
@pytest.mark.parametrize("ending", ["end", "error", "stopped"])
def test_the_walk_has_a_cpu_of_its_own_while_it_walks_and_gives_it_back_however_it_ends(
    ending: str, tmp_path: Path
) -> None:
    allowed = frozenset(os.sched_getaffinity(0))
    looked = tmp_path / "looked"

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("first", walk_cpus=" ".join(map(str, sorted(os.sched_getaffinity(0)))))
        # the parent looks at its own threads meanwhile; the walk goes on once it has (a sleep of 0.5 s was
        # not always long enough on a loaded machine)
        async with asyncio.timeout(60):
            while not looked.exists():
                await asyncio.sleep(0.01)
        if ending == "error":
            raise OctogenAPIError("the API went away", status_code=503)
        while ending == "stopped":
            await asyncio.sleep(0.01)
            yield _batch("again")

    with (
        contextlib.suppress(OctogenAPIError),
        ProcessWalkPump(walk, WalkObserver(), max_queued_rows=10) as pump,
    ):
        batches = pump.segment(min_rows=10**9, ready=lambda: True)
        walk_cpus = frozenset(map(int, _products(next(batches))[0]["walk_cpus"].split()))
        during = _threads_cpus()
        looked.touch()
        if ending != "stopped":
            list(batches)
            assert set(_threads_cpus().values()) == {allowed}  # given back before the last load
    assert len(walk_cpus) == 1 and walk_cpus < allowed
    assert set(during.values()) == {allowed - walk_cpus}, (
        "every thread of the sync's process, off the walk's CPU"
    )
    assert set(_threads_cpus().values()) == {allowed}
    # threads started after the walk run anywhere again
    seen: list[frozenset[int]] = []
    later = threading.Thread(target=lambda: seen.append(frozenset(os.sched_getaffinity(0))))
    later.start()
    later.join()
    assert seen == [allowed]


def test_a_process_on_one_cpu_forks_its_walk_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert walk_process._CpuSplit.planned() is None

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("one")

    with ProcessWalkPump(walk, WalkObserver(), max_queued_rows=10) as pump:
        assert [row["uuid"] for batch in _take_all(pump) for row in _products(batch)] == ["one"]


@_TWO_CPUS
def test_cpus_that_cannot_be_set_leave_the_walk_and_the_sync_as_they_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container whose policy refuses a change of CPUs: the walk runs as it would have."""
    allowed = frozenset(os.sched_getaffinity(0))

    def refused(pid: int, cpus: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refused)

    async def walk(loaded: LoadedState, observer: WalkObserver) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("one", walk_cpus=" ".join(map(str, sorted(os.sched_getaffinity(0)))))

    with ProcessWalkPump(walk, WalkObserver(), max_queued_rows=10) as pump:
        rows = [row for batch in _take_all(pump) for row in _products(batch)]
    assert frozenset(map(int, rows[0]["walk_cpus"].split())) == allowed
    assert set(_threads_cpus().values()) == {allowed}
