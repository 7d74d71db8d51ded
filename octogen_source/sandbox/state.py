"""Everything a sandbox knows and every control a test has over it, behind one lock.

The server's event-loop thread and the test thread both call in here, so every public method takes the lock;
request handling holds it only for synchronous work (no awaits), so a control call waits microseconds.
Mutations advance a logical clock (deterministic, one minute per call) and draw from an rng seeded by
(seed, clock tick, mutation, catalog), so the same sequence of calls always gives the same catalog.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from octogen_source.sandbox import current_wire, wire
from octogen_source.sandbox.account import catalog_coverage, me_body, normalize_host, store_host
from octogen_source.sandbox.answers import ApiError, Reply
from octogen_source.sandbox.catalog import ATTRIBUTE_KEYS, COLORS, UPDATED_AT_ANCHOR, Product, catalog_infos
from octogen_source.sandbox.current_search import search_page
from octogen_source.sandbox.faults import DEFAULT_OVERSIZED_BYTES, ENDPOINTS, Fault, FaultPlan
from octogen_source.sandbox.generations import (
    DEFAULT_GENERATION,
    GENERATION_WIRE_SHAPES,
    ApiGeneration,
    parse_generation,
)
from octogen_source.sandbox.lookup_request import ProductUrl, parse_lookup_request, parse_product_url
from octogen_source.sandbox.lookups import indexed_answer, markdown, on_demand_answer
from octogen_source.sandbox.search_request import parse_current_search_request
from octogen_source.sandbox.store import ProductStore
from octogen_source.sandbox.validation import parse_lookup_url, parse_search_request
from octogen_source.sandbox.wire import catalog_summary, dumps, iso_timestamp

CLOCK_START = UPDATED_AT_ANCHOR + 24 * 3600  # after every generated updatedAt
CLOCK_STEP_SECONDS = 60
LATE_INDEXED_MARGIN_SECONDS = 24 * 3600


DEFAULT_RATE_LIMIT = 600  # requests per window, as /me reports it
RATE_LIMIT_WINDOW_SECONDS = 60
TOP_UP_URL = "https://platform.octogen.ai/settings/billing"
__all__ = ["ApiError", "Caller", "Reply", "SandboxState"]


@dataclass
class _ApiKey:
    grants: frozenset[str]
    forbidden: bool = False
    revoked: bool = False


@dataclass(frozen=True)
class Caller:
    """An authenticated request's key and the catalogs it may see."""

    key: str
    grants: frozenset[str]


def _make_key(seed: int, serial: int) -> str:
    digest = hashlib.sha256(f"octogen-sandbox:{seed}:{serial}".encode()).digest()
    secret = base64.urlsafe_b64encode(digest[16:]).decode().rstrip("=")
    return f"octo_live_{digest[:16].hex()}_{secret}"


def _check_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    return count


class SandboxState:
    """The sandbox's catalogs, keys, faults and counters; see :class:`~octogen_source.sandbox.Sandbox`."""

    def __init__(
        self,
        catalogs: int = 3,
        products: int = 200,
        seed: int = 0,
        ungranted: int = 0,
        generation: str = DEFAULT_GENERATION,
    ) -> None:
        self._generation: ApiGeneration = parse_generation(generation)
        if catalogs < 1:
            raise ValueError(f"catalogs must be >= 1, got {catalogs}")
        if products < 0:
            raise ValueError(f"products must be >= 0, got {products}")
        if not 0 <= ungranted <= catalogs:
            raise ValueError(f"ungranted must be between 0 and catalogs ({catalogs}), got {ungranted}")
        self._lock = threading.RLock()
        self._seed = seed
        infos = catalog_infos(catalogs)
        self._store = ProductStore(infos, products, seed)
        self._keys: dict[str, _ApiKey] = {}
        self._default_grants = frozenset(info.key for info in infos[: catalogs - ungranted])
        self._api_key = self._new_key(self._default_grants, forbidden=False)
        self._tick = 0
        self._faults = FaultPlan()
        self._counts = dict.fromkeys(ENDPOINTS, 0)
        self._credit_exhausted = False
        self._rate_limit: int | None = DEFAULT_RATE_LIMIT
        self._window_start = time.time()
        self._window_requests = 0
        self._search_serial = 0
        self._walk_end: tuple[int, bool, str | None] | None = None
        self._scope_ignored = False
        self._lookups_claim: str | None = None
        self._walk_pages: dict[tuple[str, ...], int] = {}
        self._on_demand_cache: set[str] = set()

    # ---- keys ---------------------------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The default key: granted every catalog but the last ``ungranted`` ones."""
        return self._api_key

    def _new_key(self, grants: frozenset[str], *, forbidden: bool) -> str:
        key = _make_key(self._seed, len(self._keys))
        self._keys[key] = _ApiKey(grants, forbidden)
        return key

    def add_key(self, catalogs: list[str] | None = None, *, forbidden: bool = False) -> str:
        """A new key granted ``catalogs`` (None: the default key's grants; []: an org with no grants).

        A ``forbidden`` key is valid but gets 403 ``api_key_org_type_forbidden`` everywhere.
        """
        with self._lock:
            if catalogs is None:
                grants = self._default_grants
            else:
                for catalog in catalogs:
                    self._store.entry(catalog)
                grants = frozenset(catalogs)
            return self._new_key(grants, forbidden=forbidden)

    def revoke_key(self, key: str) -> None:
        with self._lock:
            if key not in self._keys:
                raise KeyError("no such API key")
            self._keys[key].revoked = True

    # ---- catalogs and truth -------------------------------------------------------------------------------

    def all_catalogs(self) -> list[str]:
        """Every catalog key, granted or not, in catalog order."""
        return list(self._store.catalogs)

    def granted_catalogs(self) -> list[str]:
        """The default key's catalogs, in catalog order."""
        return [key for key in self._store.catalogs if key in self._default_grants]

    def _catalogs_payload(self, grants: frozenset[str]) -> list[dict[str, Any]]:
        return [
            catalog_summary(entry.info, len(entry.live), entry.last_indexed_at)
            for key, entry in self._store.catalogs.items()
            if key in grants
        ]

    def _default_visible(self, uuid: str) -> Product:
        product = self._store.by_uuid.get(uuid)
        if product is None or product.catalog_key not in self._default_grants:
            raise KeyError(f"no visible product with uuid {uuid!r}")
        return product

    def truth_catalogs(self) -> list[dict[str, Any]]:
        """What the seed era's GET /catalogs returns for the default key (the current API has none)."""
        with self._lock:
            return json.loads(dumps(self._catalogs_payload(self._default_grants)))

    def truth_catalog_summaries(self) -> list[dict[str, Any]]:
        """``[{catalog, displayName, sourceBaseUrl, productCount}]`` for the default key's catalogs, in
        catalog order; the same in both generations (productCount = live products)."""
        with self._lock:
            return [
                {
                    "catalog": key,
                    "displayName": entry.info.display_name,
                    "sourceBaseUrl": entry.info.source_base_url,
                    "productCount": len(entry.live),
                }
                for key, entry in self._store.catalogs.items()
                if key in self._default_grants
            ]

    def truth_search_items(self, catalog: str) -> list[dict[str, Any]]:
        """Every live hit of a catalog granted to the default key, once each (uuid order), in the active
        generation's shape; current hits WITHOUT the query-relative ``rawScore`` and ``displayMatchScore``."""
        with self._lock:
            entry = self._store.entry(catalog)
            if catalog not in self._default_grants:
                raise ValueError(f"catalog {catalog!r} is not granted to the default key")
            if self._generation == "seed":
                return [json.loads(wire.hit_bytes(p, entry.info)) for p in entry.live]
            return [json.loads(current_wire.hit_prefix(p, entry.info) + b"}") for p in entry.live]

    def truth_product_view(self, uuid: str) -> dict[str, Any]:
        """The ``product`` object a lookup of this product returns; KeyError when removed or not visible."""
        with self._lock:
            product = self._default_visible(uuid)
            info = self._store.info_of(product)
            if self._generation == "seed":
                return json.loads(dumps(wire.product_view(product, info)))
            return json.loads(dumps(current_wire.product_view(product, info)))

    def truth_lookup(self, uuid: str) -> dict[str, Any]:
        """The whole lookup response body for a lookup of this product's productUrl; KeyError when removed
        or not visible. Current generation: the body of an indexed answer WITHOUT ``requestId`` (new per
        request), with ``requestedUrl`` = the productUrl and ``matchedVia`` = ``"exact"``."""
        with self._lock:
            product = self._default_visible(uuid)
            info = self._store.info_of(product)
            if self._generation == "seed":
                return json.loads(dumps(wire.lookup_dict(product, info)))
            body = indexed_answer(product, info, parse_product_url(product.product_url), "exact", "")
            del body["requestId"]
            return json.loads(dumps(body))

    def store_host(self, catalog: str) -> str:
        """The store host serving ``catalog`` (e.g. ``shop.northwind-apparel.example``): what
        ``GET /domains/{host}`` answers for, and where on-demand lookups resolve URLs."""
        with self._lock:
            return store_host(self._store.entry(catalog).info)

    # ---- API generation -----------------------------------------------------------------------------------

    @property
    def api_generation(self) -> ApiGeneration:
        """``"current"`` (today's API, the default) or ``"seed"`` (May 2026, as the client guide says)."""
        return self._generation

    def set_api_generation(self, name: str) -> None:
        """Switch the generation the API speaks from the next request on (``"current"`` or ``"seed"``)."""
        generation = parse_generation(name)
        with self._lock:
            self._generation = generation

    @property
    def wire_shape(self) -> str:
        """The old name of the generation: ``"v1"`` (seed) or ``"v2"`` (current)."""
        return GENERATION_WIRE_SHAPES[self._generation]

    def set_wire_shape(self, shape: str) -> None:
        """Alias of :meth:`set_api_generation`: ``"v1"`` -> seed, ``"v2"`` -> current."""
        if shape not in ("v1", "v2"):
            raise ValueError(f"unknown wire shape {shape!r}; expected one of v1, v2")
        self.set_api_generation(shape)

    # ---- credit and rate limit ----------------------------------------------------------------------------

    def exhaust_credit(self) -> None:
        """The organization's prepaid credit runs out: every billed request answers 402 insufficient_credit
        (``GET /me`` still answers) until :meth:`restore_credit`."""
        with self._lock:
            self._credit_exhausted = True

    def restore_credit(self) -> None:
        with self._lock:
            self._credit_exhausted = False

    @property
    def credit_exhausted(self) -> bool:
        return self._credit_exhausted

    def set_rate_limit(self, limit: int | None) -> None:
        """Requests per minute reported by ``/me`` and the ``X-RateLimit-*`` headers of a 429 (None: the
        limiter is off, ``rateLimit: null``). Reporting only: 429s come from :meth:`fail_next`/rates."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
        with self._lock:
            self._rate_limit = limit

    @property
    def rate_limit(self) -> int | None:
        """Requests per minute the limiter reports (None: off)."""
        return self._rate_limit

    def _rate_window(self) -> tuple[int, int, int] | None:
        """(limit, remaining, reset epoch seconds) of the current window; None when the limiter is off."""
        if self._rate_limit is None:
            return None
        now = time.time()
        if now - self._window_start >= RATE_LIMIT_WINDOW_SECONDS:
            self._window_start, self._window_requests = now, 0
        remaining = max(0, self._rate_limit - self._window_requests)
        return self._rate_limit, remaining, int(self._window_start + RATE_LIMIT_WINDOW_SECONDS)

    def rate_limit_headers(self, *, exhausted: bool) -> dict[str, str]:
        """``X-RateLimit-Limit/Remaining/Reset`` (reset in epoch seconds); remaining 0 when ``exhausted``."""
        with self._lock:
            window = self._rate_window()
            limit, remaining, reset = window or (DEFAULT_RATE_LIMIT, 0, int(time.time()) + 1)
            return {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0" if exhausted else str(remaining),
                "X-RateLimit-Reset": str(reset),
            }

    # ---- mutations ----------------------------------------------------------------------------------------

    @property
    def clock(self) -> str:
        """The logical clock (ISO-8601): the updatedAt the last mutation call gave the products it touched."""
        with self._lock:
            return iso_timestamp(self._now()) or ""

    def _now(self) -> int:
        return CLOCK_START + self._tick * CLOCK_STEP_SECONDS

    def _begin_mutation(self, name: str, catalog: str) -> tuple[int, random.Random]:
        self._tick += 1
        return self._now(), random.Random(f"{self._seed}:{self._tick}:{name}:{catalog}")

    def _touch_catalog(self, catalog: str, now: int) -> None:
        self._store.catalogs[catalog].last_indexed_at = now

    def _add(self, name: str, catalog: str, count: int, stamp: Callable[[int], int | None]) -> list[str]:
        """Add ``count`` new products; ``stamp(now)`` gives their updatedAt."""
        with self._lock:
            _check_count(count)
            self._store.entry(catalog)
            now, rng = self._begin_mutation(name, catalog)
            added = self._store.add_new(catalog, count, rng, stamp(now))
            self._touch_catalog(catalog, now)
            return [p.uuid for p in added]

    def add_products(self, catalog: str, count: int) -> list[str]:
        """``count`` new products with updatedAt = the advanced clock."""
        return self._add("add_products", catalog, count, lambda now: now)

    def add_late_indexed(self, catalog: str, count: int) -> list[str]:
        """New products whose updatedAt is one day older than every product ever in the sandbox."""
        return self._add(
            "add_late_indexed",
            catalog,
            count,
            lambda now: self._store.oldest_updated_at() - LATE_INDEXED_MARGIN_SECONDS,
        )

    def add_null_updated_at(self, catalog: str, count: int) -> list[str]:
        """New products with ``updatedAt: null``."""
        return self._add("add_null_updated_at", catalog, count, lambda now: None)

    def add_same_second(self, catalog: str, count: int) -> list[str]:
        """New products that all share one updatedAt second: the catalog's newest existing updatedAt.

        So they tie with each other and with the newest product already loaded (a high-water mark of
        "updatedAt > last seen" would miss them).
        """

        def newest_or_now(now: int) -> int:
            newest = self._store.newest_updated_at(catalog)
            return now if newest is None else newest

        return self._add("add_same_second", catalog, count, newest_or_now)

    def _choose(self, name: str, catalog: str, count: int) -> tuple[int, random.Random, list[Product]]:
        """Start mutation ``name`` on ``count`` existing products of ``catalog``, picked by its rng."""
        _check_count(count)
        live = self._store.entry(catalog).live
        now, rng = self._begin_mutation(name, catalog)
        return now, rng, rng.sample(live, min(count, len(live)))

    def update_prices(self, catalog: str, count: int) -> list[str]:
        """Reprice ``count`` products (currentPrice changes, originalPrice >= currentPrice kept);
        their updatedAt becomes the advanced clock."""
        with self._lock:
            now, rng, chosen = self._choose("update_prices", catalog, count)
            for product in chosen:
                factor = rng.choice((0.8, 0.85, 0.9, 1.1, 1.15, 1.2))
                new_price = round(product.current_price * factor, 2)
                if new_price == product.current_price:
                    new_price = round(product.current_price + 1.0, 2)
                product.current_price = new_price
                product.original_price = max(product.original_price, new_price)
                product.updated_at = now
                product.hit_cache = None
            self._touch_catalog(catalog, now)
            return [p.uuid for p in chosen]

    def recolor_products(self, catalog: str, count: int) -> list[str]:
        """Give ``count`` products other colors (each one moved to the next palette color, the order kept);
        their updatedAt becomes the advanced clock. Hits and lookups both show the new colors."""
        with self._lock:
            now, _, chosen = self._choose("recolor_products", catalog, count)
            for product in chosen:
                product.colors = tuple(
                    COLORS[(COLORS.index(color) + 1) % len(COLORS)] for color in product.colors
                )
                product.updated_at = now
                product.hit_cache = None
            self._touch_catalog(catalog, now)
            return [p.uuid for p in chosen]

    def remove_products(self, catalog: str, count: int) -> list[str]:
        """Remove ``count`` products: they vanish from search and lookup (404) until restored."""
        with self._lock:
            now, _, chosen = self._choose("remove_products", catalog, count)
            for product in chosen:
                self._store.remove(product)
            self._touch_catalog(catalog, now)
            return [p.uuid for p in chosen]

    def move_products(self, catalog: str, count: int, to_catalog: str) -> list[str]:
        """Move ``count`` products of ``catalog`` to ``to_catalog`` (updatedAt = the advanced clock): the
        first catalog stops listing them, the other lists them under the same uuid."""
        with self._lock:
            self._store.entry(to_catalog)  # an unknown catalog fails before anything moves
            now, _, chosen = self._choose("move_products", catalog, count)
            for product in chosen:
                product.updated_at = now
                product.hit_cache = None
                self._store.move(product, to_catalog)
            self._touch_catalog(catalog, now)
            self._touch_catalog(to_catalog, now)
            return [p.uuid for p in chosen]

    def restore_products(self, uuids: Iterable[str]) -> list[str]:
        """Bring removed products back (updatedAt = the advanced clock); uuids not removed are skipped."""
        with self._lock:
            wanted = list(uuids)
            now, _ = self._begin_mutation("restore_products", "*")
            restored = []
            for uuid in wanted:
                product = self._store.find_removed(uuid)
                if product is None:
                    continue
                product.updated_at = now
                product.hit_cache = None
                self._store.restore(product)
                self._touch_catalog(product.catalog_key, now)
                restored.append(uuid)
            return restored

    # ---- faults and counters ------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        kind: str | int,
        *,
        endpoint: str | None = None,
        retry_after: float | str | None = None,
        body_bytes: int = DEFAULT_OVERSIZED_BYTES,
    ) -> None:
        """The next ``count`` requests (to ``endpoint``: catalogs/search/lookup/me/domains, or any) fail
        with ``kind``. In the current generation a 429 also carries ``X-RateLimit-*`` and 429/502/504 name
        their cause (``rate_limit_exceeded``; on lookups ``product_lookup_rate_limited``,
        ``product_lookup_upstream_failed``, ``product_lookup_timed_out``).

        ``retry_after`` (429): seconds, or a string sent verbatim (an HTTP date); None sends no header.
        ``body_bytes`` (``oversized``): the size of the 200 answer's body, streamed in chunks.
        """
        with self._lock:
            self._faults.fail_next(_check_count(count), kind, endpoint, retry_after, body_bytes)

    def set_fault_rates(
        self,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        rate_drop: float = 0.0,
        latency: float = 0.0,
        retry_after: float | str | None = 1,
        seed: int = 0,
    ) -> None:
        """Random faults on every request (seeded, so a run is repeatable), plus fixed ``latency`` seconds."""
        with self._lock:
            self._faults.set_rates(
                rate_429=rate_429,
                rate_5xx=rate_5xx,
                rate_drop=rate_drop,
                latency=latency,
                retry_after=retry_after,
                seed=seed,
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._walk_end = None
            self._scope_ignored = False
            self._lookups_claim = None

    def misattribute_lookups(self, catalog: str | None) -> None:
        """Current generation: indexed lookups answer ``catalogKey: catalog`` whatever product they found (a
        broken API); None answers truthfully again, as does ``clear_faults``."""
        with self._lock:
            self._lookups_claim = catalog

    def ignore_search_scope(self, ignored: bool = True) -> None:
        """Current generation: searches answer with the products of every catalog the key can see, whatever
        ``catalogs`` asked for (hits of other catalogs, as a broken API would send). ``clear_faults`` ends
        this."""
        with self._lock:
            self._scope_ignored = ignored

    def end_walks_early(self, after_pages: int, *, empty: bool = False, catalog: str | None = None) -> None:
        """Current generation: from now on a walk (of ``catalog``, or of any) ends at its page
        ``after_pages`` (1 = the first): that page comes without ``nextCursor``, cut short, as a broken API
        would; with ``empty`` it also holds no items (the "empty page without a cursor"). Page numbers
        count from each walk's first page (a search without a cursor). ``clear_faults`` ends this."""
        if isinstance(after_pages, bool) or not isinstance(after_pages, int) or after_pages < 1:
            raise ValueError(f"after_pages must be a positive integer, got {after_pages!r}")
        with self._lock:
            self._walk_end = (after_pages, empty, catalog)

    @property
    def request_counts(self) -> dict[str, int]:
        """Requests received per endpoint ("catalogs", "search", "lookup", "me", "domains"), faulted and
        rejected ones included (also a request to a route the active generation does not have)."""
        with self._lock:
            return dict(self._counts)

    @property
    def faults_injected(self) -> dict[str, int]:
        """Faults served so far, per kind (since start or the last reset_counts)."""
        with self._lock:
            return dict(self._faults.injected)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(ENDPOINTS, 0)
            self._faults.injected.clear()

    # ---- request handling (called by the server) ----------------------------------------------------------

    def begin_request(
        self, endpoint: str, only: ApiGeneration | None = None
    ) -> tuple[Fault | None, float, ApiGeneration]:
        """Count a request and draw its fault; returns (fault or None, latency seconds, generation).

        An endpoint that exists ``only`` in another generation is counted but draws no fault (it is a 404)."""
        with self._lock:
            self._counts[endpoint] += 1
            if only is not None and only != self._generation:
                return None, 0.0, self._generation
            if self._rate_window() is not None:
                self._window_requests += 1
            return self._faults.draw(endpoint), self._faults.latency, self._generation

    def authorize(self, authorization: str | None, *, billed: bool = True) -> Caller:
        """The request's key and the catalogs it may see; ApiError 401/403, or 402 for a billed request
        while the credit is exhausted."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "Authorization Bearer token required")
        with self._lock:
            record = self._keys.get(token)
            if record is None:
                raise ApiError(401, "Invalid API key")
            if record.revoked:
                raise ApiError(401, "API key revoked" if self._generation == "current" else "Invalid API key")
            if record.forbidden:
                raise ApiError(403, "api_key_org_type_forbidden")
            if billed and self._credit_exhausted:
                raise ApiError(
                    402,
                    {
                        "code": "insufficient_credit",
                        "message": "Your organization's prepaid credit is exhausted; top up to continue.",
                        "top_up_url": TOP_UP_URL,
                    },
                )
            return Caller(token, record.grants)

    def catalogs_body(self, caller: Caller, _raw: bytes, _request_id: str) -> bytes:
        with self._lock:
            return dumps(self._catalogs_payload(caller.grants))

    def _visible_keys(self, grants: frozenset[str]) -> list[str]:
        return [key for key in self._store.catalogs if key in grants]

    def search_body(self, caller: Caller, raw: bytes, request_id: str) -> bytes:
        if self._generation == "seed":
            return self._seed_search(caller.grants, raw)
        request = parse_current_search_request(raw, ATTRIBUTE_KEYS)
        with self._lock:
            if request.catalogs is None or self._scope_ignored:
                catalog_keys = self._visible_keys(caller.grants)
            elif all(key in caller.grants for key in request.catalogs):
                catalog_keys = list(request.catalogs)
            else:
                raise ApiError(404, "catalog_not_found")
            self._search_serial += 1
            end_here, empty = self._walk_ends(request.after_uuid is None, catalog_keys)
            return search_page(
                self._store, request, catalog_keys, request_id, self._search_serial, end_here, empty
            )

    def _walk_ends(self, first_page: bool, catalog_keys: list[str]) -> tuple[bool, bool]:
        """Whether this page ends its walk early (see :meth:`end_walks_early`), and whether it is empty."""
        scope = tuple(catalog_keys)
        number = 1 if first_page else self._walk_pages.get(scope, 0) + 1
        self._walk_pages[scope] = number
        if self._walk_end is None:
            return False, False
        after_pages, empty, catalog = self._walk_end
        if (catalog is None or catalog in catalog_keys) and number >= after_pages:
            return True, empty
        return False, False

    def _seed_search(self, grants: frozenset[str], raw: bytes) -> bytes:
        request = parse_search_request(raw, ATTRIBUTE_KEYS)
        with self._lock:
            if request.catalog is None:
                catalog_keys = self._visible_keys(grants)
            elif request.catalog in grants:
                catalog_keys = [request.catalog]
            else:
                raise ApiError(404, "catalog_not_found")
            return self._store.search_page(
                request, catalog_keys, request.after_uuid, request.limit, request.fingerprint
            )

    def lookup_body(self, caller: Caller, raw: bytes, request_id: str) -> bytes | Reply:
        if self._generation == "seed":
            return self._seed_lookup(caller.grants, raw)
        request = parse_lookup_request(raw)
        url = parse_product_url(request.url)
        with self._lock:
            found = (
                None
                if request.resolution_mode == "on_demand_only"
                else self._indexed(url, request.match_mode)
            )
            if found is not None and found[0].catalog_key in caller.grants:
                product, matched_via = found
                answer = indexed_answer(product, self._store.info_of(product), url, matched_via, request_id)
                if self._lookups_claim is not None:
                    answer["catalogKey"] = self._lookups_claim
            elif request.resolution_mode == "index_only":
                raise ApiError(404, "product_not_found")
            else:
                answer = self._on_demand(url, request.cache_policy, request_id)
        if request.format == "json":
            return dumps(answer)
        headers = {"x-octogen-catalog": answer["catalogKey"] or "", "x-octogen-source": answer["source"]}
        if answer["product"]["uuid"]:
            headers["x-octogen-product-uuid"] = answer["product"]["uuid"]
        return Reply(markdown(answer), "text/markdown", headers)

    def _indexed(self, url: ProductUrl, match_mode: str) -> tuple[Product, str] | None:
        exact = self._store.by_url.get(url.requested)
        if exact is not None:
            return exact, "exact"
        if match_mode == "strict":
            return None
        product = self._store.by_url.get(url.loose)
        if product is None:
            return None
        return product, "normalized_exact" if url.normalized == product.product_url else "loose"

    def _on_demand(self, url: ProductUrl, cache_policy: str, request_id: str) -> dict[str, Any]:
        info = next((e.info for e in self._store.catalogs.values() if store_host(e.info) == url.host), None)
        if info is None:
            raise ApiError(404, "product_not_found")
        known = self._store.by_url.get(url.loose) or next(
            (
                p
                for e in self._store.catalogs.values()
                for p in e.removed.values()
                if p.product_url == url.loose
            ),
            None,
        )
        if cache_policy == "refresh":
            status = "refresh"
        else:
            status = "hit" if url.loose in self._on_demand_cache else "miss"
        self._on_demand_cache.add(url.loose)
        return on_demand_answer(url, info, known, status, request_id)

    def _seed_lookup(self, grants: frozenset[str], raw: bytes) -> bytes:
        url = parse_lookup_url(raw).strip()
        with self._lock:
            product = self._store.by_url.get(url) or self._store.by_url.get(url.rstrip("/"))
            if product is None or product.catalog_key not in grants:
                raise ApiError(404, "product_not_found")
            return dumps(wire.lookup_dict(product, self._store.info_of(product)))

    def me_body(self, caller: Caller, _raw: bytes, _request_id: str) -> bytes:
        with self._lock:
            window = self._rate_window()
            rate_limit = (
                None
                if window is None
                else {"limit": window[0], "remaining": window[1], "resetAt": iso_timestamp(window[2])}
            )
            body = me_body(caller.key, self._seed, len(self._keys), len(caller.grants), rate_limit)
            return dumps(body)

    def domain_body(self, caller: Caller, host: str) -> bytes:
        wanted = normalize_host(host)
        with self._lock:
            covering = [
                catalog_coverage(entry.info, entry.live, entry.last_indexed_at)
                for key, entry in self._store.catalogs.items()
                if key in caller.grants and store_host(entry.info) == wanted
            ]
            if not covering:
                raise ApiError(404, "domain_not_covered")
            return dumps({"host": wanted, "catalogs": covering})
