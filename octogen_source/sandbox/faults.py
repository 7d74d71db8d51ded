"""Fault injection: queued one-off faults and seeded random fault rates, per endpoint.

Kinds: ``"429"`` (with ``Retry-After`` when given), ``"500"``, ``"502"``, ``"503"``, ``"504"``, ``"drop"``
(the connection is closed without a response), ``"garbage"`` (200 with a body that is not JSON) and
``"oversized"`` (200 with a JSON-looking body of ``body_bytes`` bytes, streamed without a length).
Not thread-safe on its own: :class:`~octogen_source.sandbox.state.SandboxState` calls it under its lock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ENDPOINTS = ("catalogs", "search", "lookup", "me", "domains")
FAULT_KINDS = ("429", "500", "502", "503", "504", "drop", "garbage", "oversized")
DEFAULT_OVERSIZED_BYTES = 64 * 1024 * 1024
_ENDPOINT_ALIASES = {
    "catalogs": "catalogs",
    "list_catalogs": "catalogs",
    "/catalogs": "catalogs",
    "search": "search",
    "search_products": "search",
    "/products/search": "search",
    "lookup": "lookup",
    "lookup_product": "lookup",
    "/products/lookup": "lookup",
    "me": "me",
    "get_me": "me",
    "/me": "me",
    "domains": "domains",
    "get_domain": "domains",
    "/domains": "domains",
}


@dataclass(frozen=True)
class Fault:
    kind: str
    # seconds (sent as an integer when whole) or a string sent verbatim (e.g. an HTTP date); None: no header
    retry_after: float | str | None = None
    body_bytes: int = DEFAULT_OVERSIZED_BYTES
    """The size of an ``oversized`` answer."""

    def retry_after_header(self) -> str | None:
        if self.retry_after is None or isinstance(self.retry_after, str):
            return self.retry_after
        seconds = float(self.retry_after)
        return str(int(seconds)) if seconds.is_integer() else f"{seconds:g}"


def normalize_endpoint(endpoint: str | None) -> str | None:
    if endpoint is None:
        return None
    try:
        return _ENDPOINT_ALIASES[endpoint]
    except KeyError:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}") from None


def normalize_kind(kind: str | int) -> str:
    text = str(kind)
    if text not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    return text


def _check_rate(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return float(value)


class FaultPlan:
    def __init__(self) -> None:
        self._queue: list[tuple[str | None, Fault]] = []
        self._rate_429 = self._rate_5xx = self._rate_drop = 0.0
        self._latency = 0.0
        self._rates_retry_after: float | str | None = 1
        self._rng = random.Random(0)
        self.injected: dict[str, int] = {}

    def fail_next(
        self,
        count: int,
        kind: str | int,
        endpoint: str | None = None,
        retry_after: float | str | None = None,
        body_bytes: int = DEFAULT_OVERSIZED_BYTES,
    ) -> None:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if isinstance(body_bytes, bool) or not isinstance(body_bytes, int) or body_bytes < 0:
            raise ValueError(f"body_bytes must be a non-negative integer, got {body_bytes!r}")
        fault = Fault(normalize_kind(kind), retry_after, body_bytes)
        target = normalize_endpoint(endpoint)
        self._queue.extend((target, fault) for _ in range(count))

    def set_rates(
        self,
        *,
        rate_429: float,
        rate_5xx: float,
        rate_drop: float,
        latency: float,
        retry_after: float | str | None,
        seed: int,
    ) -> None:
        self._rate_429 = _check_rate("rate_429", rate_429)
        self._rate_5xx = _check_rate("rate_5xx", rate_5xx)
        self._rate_drop = _check_rate("rate_drop", rate_drop)
        if self._rate_429 + self._rate_5xx + self._rate_drop > 1.0:
            raise ValueError("rate_429 + rate_5xx + rate_drop must not exceed 1")
        if latency < 0:
            raise ValueError(f"latency must be >= 0, got {latency}")
        self._latency = float(latency)
        self._rates_retry_after = retry_after
        self._rng = random.Random(seed)

    def clear(self) -> None:
        self._queue.clear()
        self.set_rates(rate_429=0.0, rate_5xx=0.0, rate_drop=0.0, latency=0.0, retry_after=1, seed=0)

    @property
    def latency(self) -> float:
        return self._latency

    def draw(self, endpoint: str) -> Fault | None:
        """The fault for this request to ``endpoint``, if any: queued faults first, then the random rates."""
        fault = self._take_queued(endpoint) or self._draw_random()
        if fault is not None:
            self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
        return fault

    def _take_queued(self, endpoint: str) -> Fault | None:
        for index, (target, fault) in enumerate(self._queue):
            if target is None or target == endpoint:
                del self._queue[index]
                return fault
        return None

    def _draw_random(self) -> Fault | None:
        if not (self._rate_429 or self._rate_5xx or self._rate_drop):
            return None
        draw = self._rng.random()
        if draw < self._rate_429:
            return Fault("429", self._rates_retry_after)
        if draw < self._rate_429 + self._rate_5xx:
            return Fault("500" if self._rng.random() < 0.5 else "503")
        if draw < self._rate_429 + self._rate_5xx + self._rate_drop:
            return Fault("drop")
        return None
