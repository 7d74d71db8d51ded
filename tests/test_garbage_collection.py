"""The sync's garbage-collector settings hold only while it runs (octogen_source.garbage_collection)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from octogen_source.garbage_collection import YOUNG_GENERATION_OBJECTS, fewer_collections
from octogen_source.sandbox import Sandbox
from tests.sync_support import SyncTarget, totals


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_inside_a_run_what_was_alive_is_frozen_and_the_young_generation_larger() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with fewer_collections():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (max(before[0], YOUNG_GENERATION_OBJECTS), *before[1:])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_settings_are_restored_when_the_run_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the sync failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_objects_the_process_froze_itself_stay_frozen() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with fewer_collections():
        pass
    assert gc.get_freeze_count() >= frozen


def test_a_sync_runs_with_fewer_collections_and_restores_them(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    target = SyncTarget(sandbox_factory(catalogs=1, products=5, seed=3), tmp_path)
    before = gc.get_threshold()
    seen: list[tuple[int, int]] = []
    report = target.sync(
        details=False, progress=lambda _: seen.append((gc.get_threshold()[0], gc.get_freeze_count()))
    )
    assert totals(report)["new"] == 5
    assert seen and all(young >= YOUNG_GENERATION_OBJECTS and frozen > 0 for young, frozen in seen)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
