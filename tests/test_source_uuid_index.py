"""The compact per-product state: packed uuids, the run's listed set and the loaded versions."""

from __future__ import annotations

import random
import uuid as uuid_module

from octogen_source.source.known_versions import KnownVersions, Verdict
from octogen_source.source.uuid_index import UuidSet, pack_uuid, unpack_uuid


def _uuids(count: int, seed: int = 0) -> list[str]:
    generator = random.Random(seed)
    return [str(uuid_module.UUID(int=generator.getrandbits(128))) for _ in range(count)]


def test_only_canonical_uuids_are_packed_and_they_round_trip() -> None:
    canonical = "0123abcd-0000-4000-8000-00000000ff00"
    assert unpack_uuid(pack_uuid(canonical) or b"") == canonical
    # trailing zero bytes survive (numpy drops them from S16 values)
    zeros = "00000000-0000-0000-0000-000000000000"
    assert unpack_uuid((pack_uuid(zeros) or b"x").rstrip(b"\0")) == zeros
    for other in (canonical.upper(), canonical.replace("-", ""), " " + canonical[1:], "sku-1", ""):
        assert pack_uuid(other) is None


def test_uuid_set_reports_each_id_new_exactly_once_across_merges() -> None:
    canonical = "0123abcd-0000-4000-8000-00000000ff00"
    ids = [*_uuids(3000), "SKU-1", canonical.upper(), canonical]
    listed = UuidSet(merge_at=257)  # many merges at a small size
    order = random.Random(1)
    seen: set[str] = set()
    for _ in range(4):  # every id offered four times, in pages of 100 with repeats inside a page
        shuffled = ids + ids[:50]
        order.shuffle(shuffled)
        for start in range(0, len(shuffled), 100):
            page = shuffled[start : start + 100]
            fresh = listed.add_all(page)
            for uuid, new in zip(page, fresh, strict=True):
                assert new == (uuid not in seen), uuid
                seen.add(uuid)
    assert len(listed) == len(ids)
    assert all(uuid in listed for uuid in ids)
    assert "sku-1" not in listed and _uuids(1, seed=9)[0] not in listed


def test_known_versions_classify_like_the_loaded_rows_say() -> None:
    ids = _uuids(50_000)  # more than one fetch chunk
    known = KnownVersions()
    for number, uuid in enumerate(ids):
        known.add(uuid, number, removed=number % 7 == 0, without_images=number % 5 == 0)
    known.add("sku-unknown", None, removed=False)
    known.add(ids[1], 999, removed=False)  # added twice: the last row counts
    assert len(known) == len(ids) + 1
    # live: all but every seventh (removed), and the id that is not a uuid
    assert known.live() == len(ids) - len(range(0, len(ids), 7)) + 1
    verdicts = known.classify_all(ids[:15], list(range(15)), [True] * 15)
    expected = {0: Verdict.NEW, 7: Verdict.NEW, 14: Verdict.NEW, 1: Verdict.CHANGED}
    expected |= {5: Verdict.REWRITE, 10: Verdict.REWRITE}
    assert verdicts == [expected.get(number, Verdict.UNCHANGED) for number in range(15)]
    assert known.classify("sku-unknown", 1) is Verdict.CHANGED
    assert known.classify(_uuids(1, seed=5)[0], 1) is Verdict.NEW
    # seen in this walk: a second listing is unchanged, and no longer counts as unlisted
    assert known.classify(ids[2], 2) is Verdict.UNCHANGED
    unseen = set(known.unseen_live())
    live = {uuid for number, uuid in enumerate(ids) if number % 7}
    assert unseen == live - set(ids[:15])
