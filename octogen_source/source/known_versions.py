"""What the destination already holds of a catalog: uuid -> fingerprint of the loaded search hit.

Read back from the destination's ``products`` table at the start of each catalog's walk, so delta detection
survives an ephemeral worker (no local pipeline directory) and a SIGKILL (nothing to trust but the
destination). The index is one dict of ``uuid -> int``: a 64-bit fingerprint for a live product, or one of
three shared sentinels (removed, seen in this walk, fingerprint unknown), so it costs the same per product
whatever the product holds, and it shrinks in use (a seen product's fingerprint is dropped).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

from dlt.destinations.exceptions import DatabaseTerminalException, DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase

PRODUCTS_TABLE = "products"
FETCH_ROWS = 20_000

# sentinels lie outside the signed 64-bit range of fingerprints, so they never collide with one
_REMOVED = 1 << 64
_SEEN = (1 << 64) + 1
_UNKNOWN = (1 << 64) + 2


class Verdict(enum.Enum):
    NEW = "new"
    """No live row: never loaded, or loaded and marked removed (a product that came back)."""
    CHANGED = "changed"
    """A live row whose search hit differs (updatedAt or any other field)."""
    UNCHANGED = "unchanged"
    REWRITE = "rewrite"
    """Unchanged, but its loaded row has no ``images`` while the hit has some: a row loaded by 0.1 (which kept
    them in the ``products__images`` child table). Written again, flat, without a lookup."""


class KnownVersions:
    """The loaded versions of one catalog's products; :meth:`classify` each hit of a walk, once."""

    __slots__ = ("_versions", "_without_images")

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._without_images: set[str] = set()

    def __len__(self) -> int:
        return len(self._versions)

    def add(self, uuid: str, fingerprint: int | None, removed: bool) -> None:
        if removed:
            self._versions[uuid] = _REMOVED
        else:
            self._versions[uuid] = _UNKNOWN if fingerprint is None else fingerprint

    def mark_without_images(self, uuid: str) -> None:
        self._without_images.add(uuid)

    def classify(self, uuid: str, fingerprint: int, has_images: bool = False) -> Verdict:
        """How the hit compares with the loaded row; marks the uuid as seen in this walk."""
        loaded = self._versions.get(uuid)
        self._versions[uuid] = _SEEN
        if loaded is None or loaded == _REMOVED:
            return Verdict.NEW
        if loaded == _SEEN:
            # listed twice in one walk: its row is already on its way
            return Verdict.UNCHANGED
        if loaded != fingerprint:
            return Verdict.CHANGED
        if has_images and uuid in self._without_images:
            return Verdict.REWRITE
        return Verdict.UNCHANGED

    def unseen_live(self) -> list[str]:
        """Live products the walk did not list (meaningful only after a complete, unfiltered walk)."""
        return [uuid for uuid, value in self._versions.items() if value not in (_SEEN, _REMOVED)]


def read_known_versions(sql_client: SqlClientBase[Any], catalog: str) -> KnownVersions:
    """The catalog's rows of the destination's ``products`` table; empty when the table does not exist yet."""
    known = KnownVersions()
    for uuid, fingerprint, removed, without_images in _product_versions(sql_client, catalog):
        known.add(uuid, fingerprint, removed)
        if without_images:
            known.mark_without_images(uuid)
    return known


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
