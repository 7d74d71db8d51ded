"""What a walk did, per catalog: the figures of the run summary, collected while the walk runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from octogen_source.client import RequestStats


@dataclass
class CatalogReport:
    """One catalog's walk. ``requests`` and ``retries`` count every HTTP attempt made for this catalog."""

    catalog: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    lookups: int = 0
    walked: int = 0
    """Search hits seen."""
    listed: int = 0
    """Distinct products this walk listed (first seen in this run), less those gone by their lookup."""
    repeated: int = 0
    """Hits of a product already listed in this run (on an earlier page, or by another catalog)."""
    lookup_mismatches: int = 0
    """Lookups that answered with another product than the hit's: no details stored for it."""
    other_catalog: int = 0
    """Hits and lookup answers naming another catalog (``catalogKey``) than this one: not written."""
    removal_skipped: str | None = None
    """Why the removal sweep of this complete walk was skipped (the mass-removal guard), if it was."""
    would_remove: int = 0
    """Products the skipped sweep would have marked removed."""
    pages: int = 0
    expected: int = 0
    """Live products the destination held for this catalog when its walk began (0 before its first load):
    what the walk lists if nothing changed, against which its progress is told."""
    complete: bool = False
    """The walk reached the last page (only then, and only unfiltered, are removals marked)."""
    high_water: datetime | None = None
    """The newest updatedAt seen in this walk."""
    http: RequestStats = field(default_factory=RequestStats)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def requests(self) -> int:
        return self.http.requests

    @property
    def retries(self) -> int:
        return self.http.retries

    @property
    def clipped_values(self) -> int:
        """Text values longer than the client's limit, cut (``bounded_body.MAX_TEXT_CHARS``)."""
        return self.http.clipped_values

    def warnings(self) -> list[str]:
        """What the run summary must say of this catalog beyond its figures (one line each)."""
        lines: list[str] = []
        if self.removal_skipped is not None:
            lines.append(
                f"{self.catalog}: removal sweep skipped ({self.would_remove:,} products not marked removed):"
                f" {self.removal_skipped}; if the catalog really shrank, run again with --allow-mass-removal"
            )
        if self.other_catalog:
            lines.append(
                f"{self.catalog}: {self.other_catalog:,} hits or lookups named another catalog; not written"
            )
        if self.clipped_values:
            lines.append(f"{self.catalog}: {self.clipped_values:,} over-long text values cut")
        return lines

    @property
    def seconds(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    def see_updated_at(self, updated_at: datetime | None) -> None:
        if updated_at is not None and (self.high_water is None or updated_at > self.high_water):
            self.high_water = updated_at


ProgressCallback = Callable[[CatalogReport], None]


class WalkObserver:
    """Collects the :class:`CatalogReport` of every catalog walked; optionally told of each page."""

    def __init__(self, on_progress: ProgressCallback | None = None) -> None:
        self.catalogs: dict[str, CatalogReport] = {}
        self.overhead = RequestStats()
        """Requests not made for one catalog (listing the catalogs)."""
        self.base_url: str | None = None
        """The API the source was configured with (known once the source is created)."""
        self._on_progress = on_progress

    def start(self, catalog: str) -> CatalogReport:
        report = CatalogReport(catalog)
        self.catalogs[catalog] = report
        return report

    def progress(self, report: CatalogReport) -> None:
        if self._on_progress is not None:
            self._on_progress(report)
