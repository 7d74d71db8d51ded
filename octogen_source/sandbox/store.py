"""The in-memory product store: per-catalog lists sorted by uuid, indexes by uuid and URL, keyset search.

Not thread-safe on its own; :class:`~octogen_source.sandbox.state.SandboxState` serialises access.
"""

from __future__ import annotations

import gc
import heapq
import random
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter
from typing import Protocol

from octogen_source.sandbox.catalog import (
    UPDATED_AT_ANCHOR,
    CatalogInfo,
    Product,
    generate_products,
    make_product,
)
from octogen_source.sandbox.cursors import encode_cursor
from octogen_source.sandbox.wire import dumps, hit_bytes

ProductPredicate = Callable[[Product], bool]
_uuid_of = attrgetter("uuid")


class Filters(Protocol):
    """What a search filters on, in either generation's request."""

    @property
    def q_terms(self) -> tuple[str, ...]: ...
    @property
    def price_min(self) -> float | None: ...
    @property
    def price_max(self) -> float | None: ...
    @property
    def facets(self) -> tuple[tuple[str, frozenset[str]], ...]: ...


@dataclass
class CatalogEntry:
    info: CatalogInfo
    live: list[Product]  # sorted by uuid: the result order of search
    last_indexed_at: int
    next_seq: int
    removed: dict[str, Product] = field(default_factory=dict)


def _facet_check(name: str, values: frozenset[str]) -> ProductPredicate:
    if name == "brand":
        return lambda p: p.texts.brand_lowered in values
    if name == "gender":
        return lambda p: p.gender in values
    if name == "color":
        return lambda p: any(color.lowered in values for color in p.colors)
    if name == "category":
        return lambda p: not values.isdisjoint(p.kind.categories_lowered)
    return lambda p: p.attributes.get(name) in values


def _negated(check: ProductPredicate) -> ProductPredicate:
    return lambda p: not check(p)


def build_predicate(
    request: Filters, exclude: tuple[tuple[str, frozenset[str]], ...] = ()
) -> ProductPredicate | None:
    """One cheap check per active filter, combined; None when nothing filters."""
    checks: list[ProductPredicate] = []
    terms = request.q_terms
    if terms:
        checks.append(lambda p: all(term in p.texts.search_text for term in terms))
    low, high = request.price_min, request.price_max
    if low is not None:
        checks.append(lambda p: p.current_price >= low)
    if high is not None:
        checks.append(lambda p: p.current_price <= high)
    checks.extend(_facet_check(name, values) for name, values in request.facets)
    checks.extend(_negated(_facet_check(name, values)) for name, values in exclude)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda p: all(check(p) for check in checks)


class ProductStore:
    def __init__(self, infos: list[CatalogInfo], products_per_catalog: int, seed: int) -> None:
        self.catalogs: dict[str, CatalogEntry] = {}
        self.by_uuid: dict[str, Product] = {}
        self.by_url: dict[str, Product] = {}
        # Generation allocates only long-lived objects; cyclic GC passes over them would just cost time.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._generate(infos, products_per_catalog, seed)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _generate(self, infos: list[CatalogInfo], products_per_catalog: int, seed: int) -> None:
        for index, info in enumerate(infos):
            products = generate_products(
                info, products_per_catalog, random.Random(f"{seed}:catalog:{info.key}")
            )
            products.sort(key=_uuid_of)
            self.catalogs[info.key] = CatalogEntry(
                info=info,
                live=products,
                last_indexed_at=UPDATED_AT_ANCHOR + 60 * (index + 1),
                next_seq=products_per_catalog + 1,
            )
            for product in products:
                self.by_uuid[product.uuid] = product
                self.by_url[product.product_url] = product

    def entry(self, catalog: str) -> CatalogEntry:
        try:
            return self.catalogs[catalog]
        except KeyError:
            raise ValueError(f"unknown catalog {catalog!r}") from None

    def info_of(self, product: Product) -> CatalogInfo:
        return self.catalogs[product.catalog_key].info

    # ---- search -------------------------------------------------------------------------------------------

    def _walk_from(self, catalog_keys: list[str], after_uuid: str | None) -> Iterator[Product]:
        walks = []
        for key in catalog_keys:
            live = self.catalogs[key].live
            start = bisect_right(live, after_uuid, key=_uuid_of) if after_uuid is not None else 0
            walks.append(map(live.__getitem__, range(start, len(live))))
        if len(walks) == 1:
            return walks[0]
        return heapq.merge(*walks, key=_uuid_of)

    def _walk_back(self, catalog_keys: list[str], through_uuid: str) -> Iterator[Product]:
        """Products with uuid <= ``through_uuid``, highest uuid first, across ``catalog_keys``."""
        walks = []
        for key in catalog_keys:
            live = self.catalogs[key].live
            stop = bisect_right(live, through_uuid, key=_uuid_of)
            walks.append(map(live.__getitem__, range(stop - 1, -1, -1)))
        if len(walks) == 1:
            return walks[0]
        return heapq.merge(*walks, key=_uuid_of, reverse=True)

    def page_with_repeats(
        self,
        catalog_keys: list[str],
        after_uuid: str | None,
        limit: int,
        repeats: int,
        predicate: ProductPredicate | None,
    ) -> tuple[list[Product], bool]:
        """A current-generation page: up to ``repeats`` matches at or before ``after_uuid`` (the previous
        page's tail, served again), then new matches after it; and whether more new matches follow."""
        head: list[Product] = []
        if after_uuid is not None and repeats > 0:
            back: Iterable[Product] = self._walk_back(catalog_keys, after_uuid)
            if predicate is not None:
                back = filter(predicate, back)
            head = list(islice(back, repeats))
            head.reverse()
        stream: Iterable[Product] = self._walk_from(catalog_keys, after_uuid)
        if predicate is not None:
            stream = filter(predicate, stream)
        fresh = limit - len(head)
        tail = list(islice(stream, fresh + 1))
        more = len(tail) > fresh
        return head + tail[:fresh], more

    def search_page(
        self, request: Filters, catalog_keys: list[str], after_uuid: str | None, limit: int, fingerprint: str
    ) -> bytes:
        """The seed-era page body ``{"items": [...], "nextCursor": ...}``; nextCursor only when more match."""
        stream: Iterable[Product] = self._walk_from(catalog_keys, after_uuid)
        predicate = build_predicate(request)
        if predicate is not None:
            stream = filter(predicate, stream)
        page = list(islice(stream, limit + 1))
        next_cursor = None
        if len(page) > limit:
            del page[limit:]
            next_cursor = encode_cursor(fingerprint, page[-1].uuid)
        items = b",".join(hit_bytes(p, self.catalogs[p.catalog_key].info) for p in page)
        return b'{"items":[' + items + b'],"nextCursor":' + dumps(next_cursor) + b"}"

    # ---- mutations ----------------------------------------------------------------------------------------

    def add_new(self, catalog: str, count: int, rng: random.Random, updated_at: int | None) -> list[Product]:
        entry = self.entry(catalog)
        added = []
        for _ in range(count):
            product = make_product(entry.info, rng, entry.next_seq, updated_at)
            entry.next_seq += 1
            self._insert(entry, product)
            added.append(product)
        return added

    def _insert(self, entry: CatalogEntry, product: Product) -> None:
        insort(entry.live, product, key=_uuid_of)
        self.by_uuid[product.uuid] = product
        self.by_url[product.product_url] = product

    def remove(self, product: Product) -> None:
        entry = self.catalogs[product.catalog_key]
        index = bisect_right(entry.live, product.uuid, key=_uuid_of) - 1
        assert entry.live[index] is product
        del entry.live[index]
        del self.by_uuid[product.uuid]
        del self.by_url[product.product_url]
        entry.removed[product.uuid] = product

    def move(self, product: Product, to_catalog: str) -> None:
        """``product`` leaves its catalog's listing and joins ``to_catalog``'s (same uuid and URL)."""
        entry = self.catalogs[product.catalog_key]
        index = bisect_right(entry.live, product.uuid, key=_uuid_of) - 1
        assert entry.live[index] is product
        del entry.live[index]
        product.catalog_key = to_catalog
        self._insert(self.catalogs[to_catalog], product)

    def find_removed(self, uuid: str) -> Product | None:
        for entry in self.catalogs.values():
            if uuid in entry.removed:
                return entry.removed[uuid]
        return None

    def restore(self, product: Product) -> None:
        entry = self.catalogs[product.catalog_key]
        del entry.removed[product.uuid]
        self._insert(entry, product)

    def oldest_updated_at(self) -> int:
        stamps = [
            p.updated_at
            for entry in self.catalogs.values()
            for p in (*entry.live, *entry.removed.values())
            if p.updated_at is not None
        ]
        return min(stamps, default=UPDATED_AT_ANCHOR)

    def newest_updated_at(self, catalog: str) -> int | None:
        return max((p.updated_at for p in self.entry(catalog).live if p.updated_at is not None), default=None)
