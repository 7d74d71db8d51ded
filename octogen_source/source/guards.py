"""What the walk refuses to believe of the API: records of a catalog it is not walking, and a removal sweep
that would empty a catalog (text values of absurd length are cut by the client: :mod:`bounded_body`).

Each check is one small function the walk calls beside its own work; what they catch is counted in the
catalog's report and shown in the run summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def names_other_catalog(record: Mapping[str, Any], catalog: str) -> bool:
    """Whether a hit or lookup answer says it belongs to another catalog than ``catalog``.

    The walk scopes every search to one catalog, so such a record is the API misbehaving; it is not
    written. Records without a ``catalogKey`` (seed-era hits, on-demand answers) are taken as the catalog's.
    """
    key = record.get("catalogKey")
    return isinstance(key, str) and key != catalog


def mass_removal(
    *,
    unlisted: int,
    moved: int = 0,
    listed: int,
    new: int,
    last_complete_count: int | None,
    max_share: float,
) -> str | None:
    """Why a complete walk's removal sweep must not run, or ``None`` when it may.

    ``unlisted``: live products the walk did not list and no other catalog's walk listed (the sweep would
    mark them removed); ``moved``: live products the walk did not list that another catalog's walk of the run
    listed (they moved there: accounted for); ``listed`` and ``new``: what the walk listed, and how many of
    those had no live row; ``last_complete_count``: the ``product_count`` the last complete, unfiltered walk
    stored. The sweep is refused when it would remove more than ``max_share`` of the live products, or when
    the walk listed (with the products that moved away) fewer than ``1 - max_share`` of the products of the
    last complete walk (an API that ends a walk early, an index being rebuilt).
    """
    if unlisted == 0:
        return None
    live_before = unlisted + moved + max(listed - new, 0)
    if unlisted > max_share * live_before:
        return (
            f"it would mark {unlisted:,} of {live_before:,} live products removed"
            f" ({unlisted / live_before:.0%}, more than {max_share:.0%})"
        )
    if last_complete_count and listed + moved < (1 - max_share) * last_complete_count:
        return (
            f"the walk listed {listed:,} products where the last complete walk listed"
            f" {last_complete_count:,} (fewer than {1 - max_share:.0%} of them)"
        )
    return None
