"""Per-product state in arrays: uuids as 16-byte values, so a run's memory stays flat as catalogs grow.

A canonical uuid (36 characters, lowercase hex, hyphens at 8-13-18-23: what the API sends) is packed into
its 16 bytes; anything else (a future id format) is kept as its string, in a plain set or dict beside the
arrays, so no id is ever confused with another. Lookups are made a page at a time (one ``searchsorted`` per
page over a sorted array): a product costs 16 bytes in the arrays instead of ≈ 120 in a set of strings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

KEY = np.dtype("S16")
"""Fixed 16-byte keys; numpy compares them bytewise (trailing zero bytes are padding on both sides, so two
packed uuids compare equal exactly when their 16 bytes do)."""

Keys = npt.NDArray[np.bytes_]


def pack_uuid(uuid: str) -> bytes | None:
    """The 16 bytes of a canonical uuid; None for any other string."""
    if len(uuid) != 36 or uuid[8] != "-" or uuid[13] != "-" or uuid[18] != "-" or uuid[23] != "-":
        return None
    digits = uuid[:8] + uuid[9:13] + uuid[14:18] + uuid[19:23] + uuid[24:]
    try:
        packed = bytes.fromhex(digits)
    except ValueError:
        return None
    # fromhex accepts uppercase and skips whitespace: only the canonical spelling maps to these bytes
    return packed if packed.hex() == digits else None


def unpack_uuid(packed: bytes) -> str:
    """The canonical spelling of 16 packed bytes (numpy drops trailing zero bytes: padded back here)."""
    digits = packed.ljust(16, b"\0").hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def found_in(sorted_keys: Keys, keys: Keys) -> npt.NDArray[np.intp]:
    """For each of ``keys``, its position in ``sorted_keys``, or -1."""
    if not sorted_keys.size or not keys.size:
        return np.full(keys.size, -1, dtype=np.intp)
    positions = np.searchsorted(sorted_keys, keys)
    clipped = np.minimum(positions, sorted_keys.size - 1)
    return np.where(sorted_keys[clipped] == keys, clipped, -1)


class UuidSet:
    """The uuids seen so far in a run: a sorted array, a small set of the latest ones, merged in batches."""

    __slots__ = ("_merge_at", "_other", "_recent", "_sorted")

    def __init__(self, merge_at: int = 32_768) -> None:
        self._merge_at = merge_at
        """Latest uuids kept in a set (≈ 100 bytes each) before they are sorted into the array."""
        self._sorted: Keys = np.empty(0, dtype=KEY)
        self._recent: set[bytes] = set()
        self._other: set[str] = set()

    def __len__(self) -> int:
        return self._sorted.size + len(self._recent) + len(self._other)

    def __contains__(self, uuid: str) -> bool:
        packed = pack_uuid(uuid)
        if packed is None:
            return uuid in self._other
        if packed in self._recent:
            return True
        return bool(found_in(self._sorted, np.array([packed], dtype=KEY))[0] >= 0)

    def add_all(self, uuids: Sequence[str]) -> list[bool]:
        """Adds ``uuids``; for each, whether it was new (not seen before, nor earlier in ``uuids``)."""
        packed = [pack_uuid(uuid) for uuid in uuids]
        recent = self._recent
        candidates = [key for key in packed if key is not None and key not in recent]
        in_sorted: set[bytes] = set()
        if candidates and self._sorted.size:
            keys = np.array(candidates, dtype=KEY)
            hits = found_in(self._sorted, keys) >= 0
            in_sorted = {key for key, hit in zip(candidates, hits.tolist(), strict=True) if hit}
        fresh: list[bool] = []
        for uuid, key in zip(uuids, packed, strict=True):
            if key is None:
                new = uuid not in self._other
                self._other.add(uuid)
            else:
                new = key not in recent and key not in in_sorted
                if new:
                    recent.add(key)
            fresh.append(new)
        if len(recent) >= self._merge_at:
            self._merge()
        return fresh

    def _merge(self) -> None:
        # recent holds only keys absent from the sorted array (add_all checked each)
        keys = np.sort(np.array(list(self._recent), dtype=KEY))
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, keys), keys)
        self._recent.clear()
