"""What a person reads of a sync: the per-catalog summary table and the ``--progress`` lines."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from octogen_source.cli import format_table
from octogen_source.source import CatalogReport
from octogen_source.sync.report import SUMMARY_COLUMNS, SyncReport


def format_summary(report: SyncReport) -> str:
    """The per-catalog table the CLI prints after a sync."""
    rows = [
        [r.catalog, *(str(getattr(r, name)) for name in SUMMARY_COLUMNS[:-1]), f"{r.seconds:.1f}"]
        for r in report.catalogs
    ]
    totals = [
        "total",
        *(str(report.total(name)) for name in ("new", "changed", "removed", "lookups")),
        str(report.requests),
        str(report.retries),
        f"{report.seconds:.1f}",
    ]
    lines = format_table(["catalog", *SUMMARY_COLUMNS], [*rows, totals], right=range(1, 8))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    high_water = report.high_water.isoformat() if report.high_water else "none"
    lines.append(
        f"synced into {report.destination} dataset {report.dataset!r} (pipeline {report.pipeline_name!r});"
        f" newest updatedAt seen: {high_water}"
    )
    lines.extend(f"warning: {line}" for line in report.warnings)
    return "\n".join(lines)


def print_progress(stream: TextIO = sys.stderr) -> Callable[[CatalogReport], None]:
    """A ``SyncOptions.progress`` callback: one line per catalog at most every second, and at its end."""
    last_printed: dict[str, float] = {}

    def show(report: CatalogReport) -> None:
        now = time.monotonic()
        done = report.finished is not None
        if not done and now - last_printed.get(report.catalog, 0.0) < 1.0:
            return
        last_printed[report.catalog] = now
        state = "done" if done else "walking"
        stream.write(
            f"{report.catalog}: {state}, {report.walked} products seen, {report.new} new, "
            f"{report.changed} changed, {report.removed} removed, {report.lookups} lookups\n"
        )
        stream.flush()

    return show
