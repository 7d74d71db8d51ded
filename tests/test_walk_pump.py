"""The walk's thread and its hand-over (octogen_source.source.walk_pump), with a walk made up here: reads are
answered by the thread taking the batches, the walk's error reaches it, and stopping ends the walk's thread
whatever it waits for (room in the queue, an answer to a read)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import AsyncGenerator
from typing import Any

import pyarrow as pa
import pytest

from octogen_source.source import walk_pump
from octogen_source.source.catalog_walk import LoadedState, WalkBatch
from octogen_source.source.walk_pump import WalkPump, WalkStopped


class _Answers:
    """A stand-in for the destination the extract would read."""

    def __init__(self) -> None:
        self.asked_from: list[str] = []

    def stored_catalog(self, catalog: str) -> dict[str, Any]:
        self.asked_from.append(threading.current_thread().name)
        return {"catalog": catalog}


def _batch(uuid: str) -> WalkBatch:
    return WalkBatch(products=[{"uuid": uuid}])


def _alive_walks() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "octogen-walk" and thread.is_alive()]


def test_reads_are_made_by_the_thread_taking_the_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = _Answers()
    monkeypatch.setattr(walk_pump, "DestinationState", lambda: answers)

    async def walk(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        stored = await asyncio.to_thread(loaded.stored_catalog, "a")
        yield _batch(f"stored {stored}")
        yield _batch("second")

    with WalkPump(walk, max_queued_rows=10) as pump:
        taken = [batch.products[0]["uuid"] for batch in pump.segment(min_rows=10, ready=lambda: True)]
    assert taken == ["stored {'catalog': 'a'}", "second"]
    assert pump.finished and answers.asked_from == [threading.current_thread().name]
    assert not _alive_walks()


def test_the_walk_queues_no_more_rows_than_allowed_and_goes_on_as_they_are_taken() -> None:
    queued_ahead: list[int] = []
    taken = 0
    threads_before = set(threading.enumerate())
    threads_during: set[str] = set()

    async def walk(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        for number in range(40):
            queued_ahead.append(number - taken)  # batches of one row yielded but not yet taken
            threads_during.update(thread.name for thread in set(threading.enumerate()) - threads_before)
            yield _batch(str(number))

    with WalkPump(walk, max_queued_rows=3) as pump:
        for batch in pump.segment(min_rows=100, ready=lambda: True):
            assert batch.products == [{"uuid": str(taken)}]
            taken += 1
    assert taken == 40
    # at most the allowed rows wait in the queue, and one more batch in the walk's hands
    assert max(queued_ahead) <= 4
    # the walk waits for room on its own loop: no thread besides its own
    assert threads_during == {"octogen-walk"}
    assert not _alive_walks()


def test_the_walks_error_is_raised_where_the_batches_are_taken() -> None:
    async def walk(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("one")
        raise LookupError("the walk failed")

    with WalkPump(walk, max_queued_rows=10) as pump:
        segment = pump.segment(min_rows=10, ready=lambda: True)
        assert next(segment).products == [{"uuid": "one"}]
        with pytest.raises(LookupError, match="the walk failed"):
            next(segment)
    assert not _alive_walks()


def test_stopping_ends_a_walk_waiting_for_room_or_for_a_read() -> None:
    waiting_for_room = threading.Event()
    read_failed: list[BaseException] = []

    async def full_queue(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        for number in range(100):
            if number == 2:
                waiting_for_room.set()
            yield _batch(str(number))

    with WalkPump(full_queue, max_queued_rows=2):
        assert waiting_for_room.wait(timeout=10)
    assert not _alive_walks()

    async def unanswered_read(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        try:
            await asyncio.to_thread(loaded.stored_catalog, "a")
        except WalkStopped as error:
            read_failed.append(error)
        yield _batch("never taken")

    with WalkPump(unanswered_read, max_queued_rows=10):
        pass  # nothing takes the batches, nothing answers the read
    assert not _alive_walks()


def test_a_segment_ends_early_only_while_it_waits_for_the_walk() -> None:
    """Queued batches beyond the minimum end the segment only once the extract has waited for the walk."""
    release = threading.Event()

    async def walk(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        for number in range(3):
            yield _batch(str(number))
        await asyncio.to_thread(release.wait)
        yield _batch("after a pause")

    segments: list[list[str]] = []
    with WalkPump(walk, max_queued_rows=100) as pump:
        threading.Timer(0.5, release.set).start()
        while not pump.finished:
            segments.append(
                [batch.products[0]["uuid"] for batch in pump.segment(min_rows=1, ready=lambda: True)]
            )
    # the pause made the extract wait: the segment holding the batches before it ended before the batch after
    assert segments[-1] == ["after a pause"]
    assert [uuid for segment in segments[:-1] for uuid in segment] == ["0", "1", "2"]

    never_ready: list[list[str]] = []
    release.clear()
    with WalkPump(walk, max_queued_rows=100) as pump:
        threading.Timer(0.5, release.set).start()
        while not pump.finished:
            never_ready.append(
                [batch.products[0]["uuid"] for batch in pump.segment(min_rows=1, ready=lambda: False)]
            )
    assert never_ready == [["0", "1", "2", "after a pause"]]


def test_the_walks_error_keeps_its_own_context_when_taken_while_another_is_handled() -> None:
    """dlt takes the next batch while handling a transformer's StopIteration: the walk's error must not get
    that StopIteration as its context (the failure line would name it as the root cause)."""

    async def walk(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        raise LookupError("the walk failed")
        yield  # an async generator

    with WalkPump(walk, max_queued_rows=10) as pump:
        segment = pump.segment(min_rows=10, ready=lambda: True)
        try:
            raise StopIteration
        except StopIteration:
            with pytest.raises(LookupError) as raised:
                next(segment)
    assert raised.value.__context__ is None


def test_the_walk_gets_the_gil_sooner_while_it_runs_and_the_interpreter_its_setting_back() -> None:
    before = sys.getswitchinterval()
    seen_by_walk: list[float] = []

    async def failing(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        seen_by_walk.append(sys.getswitchinterval())
        yield _batch("one")
        raise RuntimeError("the walk failed")

    with pytest.raises(RuntimeError, match="the walk failed"), WalkPump(failing, max_queued_rows=10) as pump:
        list(pump.segment(min_rows=10, ready=lambda: True))
    assert seen_by_walk == [walk_pump.SWITCH_INTERVAL_SECONDS] and before > walk_pump.SWITCH_INTERVAL_SECONDS
    assert sys.getswitchinterval() == before


def _converted(batch: WalkBatch) -> None:
    """A stand-in for the run's arrow conversion: the products become a table."""
    batch.product_table, batch.products = pa.Table.from_pylist(batch.products), []


def _hundred_rows(number: int) -> WalkBatch:
    return WalkBatch(products=[{"uuid": f"{number}-{row}"} for row in range(100)])


def test_batches_waiting_while_no_segment_takes_them_are_converted_and_weigh_their_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(walk_pump, "ROW_BYTES", 100)
    converted_weight = pa.Table.from_pylist(_hundred_rows(0).products).nbytes / 100
    assert 2 < converted_weight < 20  # the 100 rows weigh far less than 100 once converted
    answers = _Answers()
    monkeypatch.setattr(walk_pump, "DestinationState", lambda: answers)
    walked = 0
    all_walked = threading.Event()

    async def walk(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        nonlocal walked
        for number in range(40):
            if number == 30:
                await asyncio.to_thread(loaded.stored_catalog, "a")  # answered once a segment takes
            yield _hundred_rows(number)
            walked = number + 1
        all_walked.set()

    uuids: list[str] = []
    converted: list[bool] = []
    with WalkPump(walk, max_queued_rows=150, convert=_converted) as pump:
        all_walked.wait(timeout=0.5)  # as while a segment loads: nothing takes the batches
        walked_before_taking = walked
        for batch in pump.segment(min_rows=10_000, ready=lambda: True):
            converted.append(batch.product_table is not None)
            if batch.product_table is not None:
                assert batch.products == []
                uuids += batch.product_table.column("uuid").to_pylist()
            else:
                uuids += [row["uuid"] for row in batch.products]
    assert uuids == [f"{number}-{row}" for number in range(40) for row in range(100)]
    assert answers.asked_from == [threading.current_thread().name]
    # unconverted, 1.5 batches fit in the allowance; converted, about 150 / converted_weight (and one more
    # in the walk's hands, one in the converting thread's)
    assert 5 <= walked_before_taking <= 150 // converted_weight + 3, walked_before_taking
    assert all(converted[: walked_before_taking - 2])
    # what the segment's extract takes as it comes is left to it to convert
    assert not all(converted)
    assert not _alive_threads()


def test_a_failed_conversion_is_raised_where_the_batches_are_taken() -> None:
    def broken(batch: WalkBatch) -> None:
        raise ValueError("cannot convert")

    async def walk(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        for number in range(5):
            yield _batch(str(number))

    with (
        pytest.raises(ValueError, match="cannot convert"),
        WalkPump(walk, max_queued_rows=2, convert=broken) as pump,
    ):
        time.sleep(0.2)  # the conversion is made while no segment takes the batches
        list(pump.segment(min_rows=10, ready=lambda: True))
    assert not _alive_threads()


def test_stopping_ends_the_converting_thread_whatever_the_walk_waits_for() -> None:
    async def unanswered_read(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        yield _batch("one")
        await asyncio.to_thread(loaded.stored_catalog, "a")
        yield _batch("never")

    async def full_queue(loaded: LoadedState) -> AsyncGenerator[WalkBatch, None]:
        for number in range(100):
            yield _batch(str(number))

    for walk in (unanswered_read, full_queue):
        with WalkPump(walk, max_queued_rows=2, convert=_converted):
            time.sleep(0.2)  # nothing takes the batches, nothing answers the read
        assert not _alive_threads()


def _alive_threads() -> list[threading.Thread]:
    names = ("octogen-walk", "octogen-convert")
    return [thread for thread in threading.enumerate() if thread.name in names and thread.is_alive()]
