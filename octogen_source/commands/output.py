"""What ``octogen-sync`` prints for machines: the run result as JSON (``--json``)."""

from __future__ import annotations

import json

from octogen_source.sync import SyncError, SyncReport


def report_json(report: SyncReport) -> str:
    """The run result: ``SyncReport.as_dict()``."""
    return json.dumps(report.as_dict(), indent=2)


def failure_json(error: BaseException | None, line: str) -> str:
    """With ``--json`` a failed run prints this on stdout too (the line also goes to stderr): the failed run's
    result when it got as far as a run, else ``{"ok": false, "error": line}``."""
    if isinstance(error, SyncError) and error.report is not None:
        return report_json(error.report)
    return json.dumps({"ok": False, "error": line}, indent=2)
