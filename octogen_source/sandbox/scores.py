"""Query-relative scores of current search hits, spliced into cached hit bytes per request.

``rawScore`` (an Elasticsearch-like score, not comparable across queries) depends on the request's serial
number and the hit's position on the page; ``displayMatchScore`` (0..100) is normalized to the page's best
hit. So the same product gets different scores on different pages and in different requests, as on the real
API: a connector that fingerprints whole hits sees every product as changed on every walk.
"""

from __future__ import annotations

from collections.abc import Sequence

# per position on a page, the share of the page's top score a hit keeps
_DECAY_PER_POSITION = 0.004
MAX_PAGE = 100
# (share, rendered displayMatchScore and closing brace) per position: only rawScore is formatted per request
_POSITIONS: tuple[tuple[float, bytes], ...] = tuple(
    (share, b',"displayMatchScore":%d}' % round(100 * share))
    for share in (1.0 - _DECAY_PER_POSITION * position for position in range(MAX_PAGE))
)


def page_top_score(request_serial: int) -> float:
    """The best raw score of a page: deterministic in the request's serial number, in [4, 13)."""
    return 4.0 + (request_serial * 2_654_435_761 % 9_000) / 1_000


def score_suffixes(request_serial: int, count: int) -> list[bytes]:
    """``,"rawScore":R,"displayMatchScore":D}`` for each position of a page of ``count`` (<= 100) hits."""
    top = page_top_score(request_serial)
    return [b',"rawScore":%r' % round(top * share, 4) + display for share, display in _POSITIONS[:count]]


def splice(prefixes: Sequence[bytes], suffixes: Sequence[bytes]) -> bytes:
    """The page's items joined: each cached hit prefix followed by its position's score suffix."""
    return b",".join(map(bytes.__add__, prefixes, suffixes))
