"""The printed table of figures and ratios, and the JSON record of a run."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from bench.measure import Measurement

MIB = 2**20


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float
    target: float | None
    """None: shown for information, no target."""
    at_most: bool = True
    """The target is an upper bound (else a lower bound)."""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        compare: Callable[[float, float], bool] = operator.le if self.at_most else operator.ge
        return compare(self.value, self.target)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 3),
            "target": self.target,
            "at_most": self.at_most,
            "met": self.met,
        }


def typical(runs: Sequence[Measurement]) -> Measurement:
    """The run of median duration (the lower median for an even count)."""
    ordered = sorted(runs, key=lambda run: run.seconds)
    return ordered[(len(ordered) - 1) // 2]


def median_seconds(runs: Sequence[Measurement]) -> float:
    return median(run.seconds for run in runs)


_COLUMNS = (
    ("measurement", "<"),
    ("seconds", ">"),
    ("products", ">"),
    ("products/s", ">"),
    ("requests", ">"),
    ("lookups", ">"),
    ("client CPU s", ">"),
    ("walk process CPU s", ">"),
    ("sandbox CPU s", ">"),
    ("machine CPU", ">"),
    ("peak RSS MiB", ">"),
    ("other load", ">"),
)


def _row(label: str, runs: Sequence[Measurement]) -> list[str]:
    run = typical(runs)
    seconds = median_seconds(runs)
    spread = (
        "" if len(runs) == 1 else f" ({min(r.seconds for r in runs):.2f}-{max(r.seconds for r in runs):.2f})"
    )
    return [
        label,
        f"{seconds:.2f}{spread}",
        f"{run.products:,}",
        f"{run.products / seconds:,.0f}" if seconds > 0 else "-",
        f"{run.requests:,}",
        f"{run.server_requests.get('lookup', 0):,}",
        f"{run.figures.get('client_cpu_seconds', 0.0):.2f}",
        f"{run.figures['children_cpu_seconds']:.2f}" if run.figures.get("children_cpu_seconds") else "-",
        f"{run.sandbox_cpu_seconds:.2f}",
        f"{run.machine_cpu_share:.0%}",
        f"{run.peak_rss_bytes / MIB:,.0f}",
        f"{run.background_cpu:.0%}",
    ]


def format_table(rows: Sequence[tuple[str, Sequence[Measurement]]]) -> str:
    header = [name for name, _ in _COLUMNS]
    body = [_row(label, runs) for label, runs in rows if runs]
    table = [header, *body]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if _COLUMNS[i][1] == "<" else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        )
        for line in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_ratios(ratios: Sequence[Ratio]) -> str:
    width = max(len(ratio.name) for ratio in ratios)
    lines = []
    for ratio in ratios:
        if ratio.target is None:
            target, verdict = "(no target)", ""
        else:
            target = f"target {'<=' if ratio.at_most else '>='} {ratio.target:g}"
            verdict = "met" if ratio.met else "MISSED"
        lines.append(f"{ratio.name.ljust(width)}  {ratio.value:6.2f}x  {target:<16} {verdict}")
    return "\n".join(lines)


def write_results(directory: Path, stamp: str, record: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
