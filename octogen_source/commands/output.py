"""What ``octogen-sync`` prints for machines: the run result as JSON (``--json``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from octogen_source.source import CatalogReport
from octogen_source.sync import SyncReport

CATALOG_FIGURES = (
    "new",
    "changed",
    "unchanged",
    "removed",
    "lookups",
    "walked",
    "listed",
    "repeated",
    "pages",
    "complete",
    "requests",
    "retries",
    "lookup_mismatches",
    "other_catalog",
    "clipped_values",
    "removal_skipped",
    "would_remove",
)
TOTALS = ("new", "changed", "removed", "lookups")


def report_dict(report: SyncReport) -> dict[str, Any]:
    """The run result: per-catalog figures, totals, warnings and load ids (the summary, and more)."""
    return {
        "ok": True,
        "destination": report.destination,
        "dataset": report.dataset,
        "pipeline_name": report.pipeline_name,
        "seconds": round(report.seconds, 3),
        "load_ids": report.load_ids,
        "high_water": _iso(report.high_water),
        "catalogs": [_catalog(catalog) for catalog in report.catalogs],
        "totals": {
            **{name: report.total(name) for name in TOTALS},
            "requests": report.requests,
            "retries": report.retries,
        },
        "warnings": report.warnings,
    }


def report_json(report: SyncReport) -> str:
    return json.dumps(report_dict(report), indent=2)


def failure_json(line: str) -> str:
    """With ``--json`` a failed run prints this on stdout too (the line also goes to stderr)."""
    return json.dumps({"ok": False, "error": line}, indent=2)


def _catalog(report: CatalogReport) -> dict[str, Any]:
    return {
        "catalog": report.catalog,
        **{name: getattr(report, name) for name in CATALOG_FIGURES},
        "seconds": round(report.seconds, 3),
        "high_water": _iso(report.high_water),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
