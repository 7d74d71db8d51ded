"""What a sync did: ``SyncReport`` (per-catalog figures, the rows of ``sync_runs``, the JSON result)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from octogen_source.source import CatalogReport

SUMMARY_COLUMNS = ("new", "changed", "removed", "lookups", "requests", "retries", "seconds")
"""The figures of the summary table and of ``sync_runs``, per catalog."""
DETAIL_FIGURES = (
    "unchanged",
    "walked",
    "listed",
    "repeated",
    "pages",
    "complete",
    "lookup_mismatches",
    "other_catalog",
    "clipped_values",
    "removal_skipped",
    "would_remove",
)
"""Further per-catalog figures of the JSON result (``as_dict``), not kept in ``sync_runs``."""


@dataclass
class SyncReport:
    """What one sync did."""

    catalogs: list[CatalogReport]
    destination: str
    dataset: str
    pipeline_name: str
    seconds: float
    load_ids: list[str]
    high_water: datetime | None
    """The newest updatedAt any sync of this pipeline has seen (kept in the ``products`` resource state)."""
    catalog_list_requests: int = 0
    """Requests spent listing the catalogs (not attributed to one catalog)."""
    catalog_list_retries: int = 0
    """Retried requests among those."""
    notices: list[str] = field(default_factory=list)
    """What the run did before syncing that the user must know (a failed earlier load it cleared)."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """This run's id in ``sync_runs`` (one row per catalog)."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    error: str | None = None
    """The one-line error of a failed run (then ``outcome`` is ``failed``)."""
    requested_catalogs: tuple[str, ...] = ()
    """The catalogs the run was asked for: a failed run reports those it never reached with zero figures."""

    def total(self, name: str) -> int:
        return sum(getattr(report, name) for report in self.catalogs)

    @property
    def requests(self) -> int:
        return self.total("requests") + self.catalog_list_requests

    @property
    def retries(self) -> int:
        return self.total("retries") + self.catalog_list_retries

    @property
    def warnings(self) -> list[str]:
        """One line each: skipped removal sweeps, records refused or cut, an earlier load cleared."""
        return [*self.notices, *(line for report in self.catalogs for line in report.warnings())]

    @property
    def outcome(self) -> str:
        """``failed`` (see ``error``), ``warnings`` (see ``warnings``) or ``ok``."""
        if self.error is not None:
            return "failed"
        return "warnings" if self.warnings else "ok"

    def catalog_records(self) -> list[dict[str, Any]]:
        """One JSON-ready record per catalog: the rows this run appends to ``sync_runs``.

        A failed run also lists the requested catalogs it never reached (zero figures), or, when it knew
        none, one record whose ``catalog`` is ``None``.
        """
        finished_at = self.finished_at or datetime.now(UTC)
        base: dict[str, Any] = {
            "run_id": self.run_id,
            "pipeline_name": self.pipeline_name,
            "load_id": self.load_ids[-1] if self.load_ids else None,
            "outcome": self.outcome,
            "error": self.error,
            "destination": self.destination,
            "dataset": self.dataset,
        }
        records: list[dict[str, Any]] = []
        for report in self.catalogs:
            started_at = self.started_at + timedelta(seconds=max(0.0, report.started - self._clock))
            finished = (
                started_at + timedelta(seconds=report.seconds) if report.finished is not None else finished_at
            )
            warnings = [*self.notices, *report.warnings()]
            outcome = base["outcome"] if self.error is not None or not warnings else "warnings"
            records.append(
                {
                    **base,
                    "catalog": report.catalog,
                    "started_at": started_at,
                    "finished_at": finished,
                    **{name: getattr(report, name) for name in SUMMARY_COLUMNS[:-1]},
                    "seconds": round(report.seconds, 3),
                    "outcome": outcome,
                    "warnings": warnings,
                }
            )
        reached = {report.catalog for report in self.catalogs}
        missing = [catalog for catalog in self.requested_catalogs if catalog not in reached]
        if self.error is not None and not records and not missing:
            missing = [None]  # type: ignore[list-item]
        for catalog in missing if self.error is not None else ():
            records.append(
                {
                    **base,
                    "catalog": catalog,
                    "started_at": self.started_at,
                    "finished_at": finished_at,
                    **dict.fromkeys(SUMMARY_COLUMNS[:-1], 0),
                    "seconds": 0.0,
                    "warnings": list(self.notices),
                }
            )
        return records

    def as_dict(self) -> dict[str, Any]:
        """The whole run as JSON-ready values (``json.dumps(report.as_dict())``): what ``--json`` prints, a
        failed run's too (``ok`` false, ``error`` its line); ``catalogs`` holds the rows of ``sync_runs`` and
        more."""
        details = {
            report.catalog: {
                **{name: getattr(report, name) for name in DETAIL_FIGURES},
                "high_water": report.high_water.isoformat() if report.high_water else None,
            }
            for report in self.catalogs
        }
        return {
            "ok": self.error is None,
            "run_id": self.run_id,
            "pipeline_name": self.pipeline_name,
            "destination": self.destination,
            "dataset": self.dataset,
            "started_at": self.started_at.isoformat(),
            "finished_at": (self.finished_at or datetime.now(UTC)).isoformat(),
            "seconds": round(self.seconds, 3),
            "outcome": self.outcome,
            "error": self.error,
            "warnings": self.warnings,
            "load_ids": list(self.load_ids),
            "high_water": self.high_water.isoformat() if self.high_water else None,
            "totals": {
                **{name: self.total(name) for name in ("new", "changed", "removed", "lookups")},
                "requests": self.requests,
                "retries": self.retries,
            },
            "catalogs": [
                {
                    **{
                        name: value.isoformat() if isinstance(value, datetime) else value
                        for name, value in record.items()
                        if name not in ("run_id", "pipeline_name", "destination", "dataset", "error")
                    },
                    **details.get(record["catalog"], {}),
                }
                for record in self.catalog_records()
            ],
        }

    _clock: float = field(default_factory=time.monotonic, repr=False)
    """``time.monotonic()`` at ``started_at`` (the catalogs' clocks are monotonic)."""
