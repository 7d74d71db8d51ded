"""The walk's reads of the destination run one at a time (octogen_source.source.destination_state).

Each ``pipeline.sql_client()`` made during dlt's extract reloads the pipeline's schema into the live schema
object in place, so two reads in two threads could meet a half-replaced schema (seen once in
tests/test_source_mutations.py: ``'NoneType' object has no attribute 'max_length'``). That interleaving
cannot be forced from a test, so this one replaces the pipeline by a stand-in that records how many reads
are inside ``sql_client()`` at once, and holds the first read until a second thread has tried to start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from octogen_source.source import destination_state
from octogen_source.source.destination_state import DestinationState
from octogen_source.source.known_versions import KnownVersions


class _StandInPipeline:
    destination = "duckdb"

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self._count = threading.Lock()

    @contextmanager
    def sql_client(self) -> Iterator[object]:
        with self._count:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            yield object()
        finally:
            with self._count:
                self.inside -= 1


def test_reads_of_the_destination_never_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = _StandInPipeline()
    monkeypatch.setattr(destination_state.dlt.current, "pipeline", lambda: pipeline)
    monkeypatch.setattr(destination_state.dlt.current, "source_schema", lambda: None)
    first_inside, second_started = threading.Event(), threading.Event()

    def read(client: Any, catalog: str, *, details: bool) -> KnownVersions:
        if catalog == "first":
            first_inside.set()
            assert second_started.wait(5)
            # a pause for the second thread to reach sql_client(); only a wrong implementation's failure
            # depends on it (with the reads serialized the test passes however long it is)
            threading.Event().wait(0.2)
        return KnownVersions()

    monkeypatch.setattr(destination_state, "read_known_versions", read)
    state = DestinationState()
    first = threading.Thread(target=state.known_versions, args=("first",), kwargs={"details": True})
    first.start()
    assert first_inside.wait(5)

    def second_read() -> None:
        second_started.set()
        state.known_versions("second", details=True)

    second = threading.Thread(target=second_read)
    second.start()
    first.join(10)
    second.join(10)
    assert pipeline.most_inside == 1
