"""What the destination already holds of a catalog: uuid -> fingerprint of the loaded search hit.

Read back from the destination's ``products`` table at the start of each catalog's walk, so delta detection
survives an ephemeral worker (no local pipeline directory) and a SIGKILL (nothing to trust but the
destination). The index is three arrays sorted by uuid (16-byte uuids, 64-bit fingerprints, one byte of
flags: removed, fingerprint unknown, seen in this walk, loaded without images): 25 bytes per product
whatever the product holds (a dict of strings cost ≈ 120). Ids that are not canonical uuids (see
:mod:`uuid_index`) live in a small dict beside them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from dlt.destinations.exceptions import DatabaseTerminalException, DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase

from octogen_source.source.uuid_index import KEY, Keys, found_in, pack_uuid, unpack_uuid
from octogen_source.table_names import PRODUCT_DETAILS, PRODUCTS

PRODUCTS_TABLE = PRODUCTS
FETCH_ROWS = 20_000

_REMOVED = 1
_UNKNOWN = 2
"""Loaded without a fingerprint (a row from before fingerprints): compares as changed."""
_SEEN = 4
_WITHOUT_IMAGES = 8
_WITHOUT_DETAILS = 16


class Verdict(enum.Enum):
    NEW = "new"
    """No live row: never loaded, or loaded and marked removed (a product that came back)."""
    CHANGED = "changed"
    """A live row whose search hit differs (updatedAt or any other field)."""
    UNCHANGED = "unchanged"
    REWRITE = "rewrite"
    """Unchanged, but its loaded row has no ``images`` while the hit has some: a row loaded by 0.1 (which kept
    them in the ``products__images`` child table). Written again, flat, without a lookup."""
    UNDETAILED = "undetailed"
    """Unchanged, but never looked up: loaded by a run with details off. Looked up now (a run with details
    on), its row written again; counted as unchanged."""


class KnownVersions:
    """The loaded versions of one catalog's products; :meth:`classify` each hit of a walk once (the walk's
    set of listed uuids sees to it): a uuid classified twice reads as unchanged the second time only when
    it was loaded."""

    __slots__ = ("_chunks", "_fingerprints", "_flags", "_keys", "_other", "_pending")

    def __init__(self) -> None:
        self._keys: Keys = np.empty(0, dtype=KEY)
        self._fingerprints: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._flags: npt.NDArray[np.uint8] = np.empty(0, dtype=np.uint8)
        self._pending: list[tuple[bytes, int, int]] = []
        self._chunks: list[tuple[Keys, npt.NDArray[np.int64], npt.NDArray[np.uint8]]] = []
        """Rows added since the arrays were last built, as they came (sorted in at the first question)."""
        self._other: dict[str, list[int]] = {}
        """Ids that are not canonical uuids: [fingerprint, flags]."""

    def __len__(self) -> int:
        self._build()
        return self._keys.size + len(self._other)

    def add(self, uuid: str, fingerprint: int | None, removed: bool, without_images: bool = False) -> None:
        flags = (_REMOVED if removed else 0) | (_UNKNOWN if fingerprint is None and not removed else 0)
        flags |= _WITHOUT_IMAGES if without_images else 0
        value = 0 if fingerprint is None else fingerprint
        packed = pack_uuid(uuid)
        if packed is None:
            self._other[uuid] = [value, flags]
            return
        self._pending.append((packed, value, flags))
        if len(self._pending) >= FETCH_ROWS:
            self._chunk()

    def _chunk(self) -> None:
        rows = self._pending
        self._chunks.append(
            (
                np.array([row[0] for row in rows], dtype=KEY),
                np.array([row[1] for row in rows], dtype=np.int64),
                np.array([row[2] for row in rows], dtype=np.uint8),
            )
        )
        self._pending = []

    def _build(self) -> None:
        """Sorts the added rows into the arrays (a uuid added twice keeps its last row, as a dict would)."""
        if self._pending:
            self._chunk()
        if not self._chunks:
            return
        keys = np.concatenate([self._keys, *(chunk[0] for chunk in self._chunks)])
        fingerprints = np.concatenate([self._fingerprints, *(chunk[1] for chunk in self._chunks)])
        flags = np.concatenate([self._flags, *(chunk[2] for chunk in self._chunks)])
        self._chunks.clear()
        # last occurrence of each key: unique over the reversed arrays
        _, first_of_reversed = np.unique(keys[::-1], return_index=True)
        order = keys.size - 1 - first_of_reversed
        self._keys, self._fingerprints, self._flags = keys[order], fingerprints[order], flags[order]

    def classify(self, uuid: str, fingerprint: int, has_images: bool = False) -> Verdict:
        """How the hit compares with the loaded row; marks the uuid as seen in this walk."""
        return self.classify_all([uuid], [fingerprint], [has_images])[0]

    def classify_all(
        self, uuids: Sequence[str], fingerprints: Sequence[int], has_images: Sequence[bool]
    ) -> list[Verdict]:
        """:meth:`classify` for the hits of a page at once (one array search)."""
        self._build()
        packed = [pack_uuid(uuid) for uuid in uuids]
        canonical = [key for key in packed if key is not None]
        positions = iter(found_in(self._keys, np.array(canonical, dtype=KEY)).tolist())
        verdicts: list[Verdict] = []
        for uuid, key, fingerprint, images in zip(uuids, packed, fingerprints, has_images, strict=True):
            if key is None:
                entry = self._other.get(uuid)
                if entry is None:
                    verdicts.append(Verdict.NEW)
                    continue
                loaded, flags = entry
                entry[1] |= _SEEN
            else:
                position = next(positions)
                if position < 0:
                    verdicts.append(Verdict.NEW)
                    continue
                loaded, flags = int(self._fingerprints[position]), int(self._flags[position])
                self._flags[position] = flags | _SEEN
            verdicts.append(_verdict(loaded, flags, fingerprint, images))
        return verdicts

    def mark_without_details(self, uuids: Sequence[str] | None) -> None:
        """These live products have no ``product_details`` row (``None``: none has one)."""
        self._build()
        if uuids is None:
            self._flags[(self._flags & _REMOVED) == 0] |= _WITHOUT_DETAILS
            for entry in self._other.values():
                entry[1] |= 0 if entry[1] & _REMOVED else _WITHOUT_DETAILS
            return
        packed = [pack_uuid(uuid) for uuid in uuids]
        positions = found_in(self._keys, np.array([key for key in packed if key is not None], dtype=KEY))
        found = positions[positions >= 0]
        self._flags[found] |= _WITHOUT_DETAILS
        for uuid, key in zip(uuids, packed, strict=True):
            if key is None and uuid in self._other:
                self._other[uuid][1] |= _WITHOUT_DETAILS

    def live(self) -> int:
        """How many products are loaded as live (not marked removed)."""
        self._build()
        others = sum(1 for _, flags in self._other.values() if not flags & _REMOVED)
        return int(np.count_nonzero((self._flags & _REMOVED) == 0)) + others

    def unseen_live(self) -> list[str]:
        """Live products the walk did not list (meaningful only after a complete, unfiltered walk)."""
        self._build()
        unseen = np.flatnonzero((self._flags & (_SEEN | _REMOVED)) == 0)
        found = [unpack_uuid(key) for key in self._keys[unseen].tolist()]
        return found + [uuid for uuid, (_, flags) in self._other.items() if not flags & (_SEEN | _REMOVED)]


def _verdict(loaded: int, flags: int, fingerprint: int, has_images: bool) -> Verdict:
    if flags & _REMOVED:
        return Verdict.NEW
    if flags & _SEEN:
        # listed twice in one walk: its row is already on its way
        return Verdict.UNCHANGED
    if flags & _UNKNOWN or loaded != fingerprint:
        return Verdict.CHANGED
    if flags & _WITHOUT_DETAILS:
        return Verdict.UNDETAILED
    if has_images and flags & _WITHOUT_IMAGES:
        return Verdict.REWRITE
    return Verdict.UNCHANGED


def read_known_versions(
    sql_client: SqlClientBase[Any], catalog: str, *, details: bool = False
) -> KnownVersions:
    """The catalog's rows of the destination's ``products`` table; empty when the table does not exist yet.

    With ``details`` the live products without a ``product_details`` row (loaded by runs with details off)
    are marked: they classify as :attr:`Verdict.UNDETAILED`, and the run looks them up.
    """
    known = KnownVersions()
    for uuid, fingerprint, removed, without_images in _product_versions(sql_client, catalog):
        known.add(uuid, fingerprint, removed, without_images)
    if details and len(known):
        known.mark_without_details(_live_without_details(sql_client, catalog))
    return known


def _live_without_details(sql_client: SqlClientBase[Any], catalog: str) -> list[str] | None:
    """The catalog's live products that have no ``product_details`` row (``None``: there is no such table);
    a short list but after runs with details off."""
    products = sql_client.make_qualified_table_name(PRODUCTS_TABLE)
    details = sql_client.make_qualified_table_name(PRODUCT_DETAILS)
    query = (
        f"SELECT p.uuid FROM {products} AS p WHERE p.catalog = %s AND p.removed_at IS NULL"
        f" AND NOT EXISTS (SELECT 1 FROM {details} AS d WHERE d.uuid = p.uuid)"
    )
    try:
        return [uuid for (uuid,) in _rows(sql_client, query, catalog)]
    except DatabaseUndefinedRelation:
        return None


def _product_versions(
    sql_client: SqlClientBase[Any], catalog: str
) -> Iterator[tuple[str, int | None, bool, bool]]:
    """(uuid, hit_hash, removed, no ``images`` value) of the catalog's rows. A table loaded by 0.1 has no
    ``images`` column yet (its images are in ``products__images``): every row reads as without images."""
    table = sql_client.make_qualified_table_name(PRODUCTS_TABLE)
    selected = "uuid, hit_hash, removed_at IS NOT NULL"
    try:
        yield from _rows(
            sql_client, f"SELECT {selected}, images IS NULL FROM {table} WHERE catalog = %s", catalog
        )
    except DatabaseUndefinedRelation:
        return
    except DatabaseTerminalException:
        # no images column (any other problem fails the query below again)
        for uuid, fingerprint, removed in _rows(
            sql_client, f"SELECT {selected} FROM {table} WHERE catalog = %s", catalog
        ):
            yield uuid, fingerprint, removed, True


def _rows(sql_client: SqlClientBase[Any], query: str, *arguments: Any) -> Iterator[Any]:
    with sql_client.execute_query(query, *arguments) as cursor:
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield from rows
