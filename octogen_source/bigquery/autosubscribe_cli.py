"""``octogen-bq-autosubscribe``: one unattended autosubscribe pass over the vendor's control plane.

Dry-run by default (says what it would do, changes nothing); ``--apply`` registers the reader if needed and
subscribes every catalog awaiting it. Safe to run from cron every few minutes. Exit codes: 0 ok, 1 a catalog
errored or the pass failed (e.g. the control plane rejected the token), 2 bad arguments or no token
configured. Errors are one line on stderr (and a JSON object on stdout with ``--json``), never a traceback;
the access token is never printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence

from octogen_source.bigquery.autosubscribe import (
    AutosubscribeOptions,
    AutosubscribeReport,
    ReaderRegistration,
    autosubscribe,
)
from octogen_source.bigquery.control_plane import (
    ACCESS_TOKEN_ENV,
    CONTROL_PLANE_URL_ENV,
    DEFAULT_CONTROL_PLANE_URL,
    TOKEN_COMMAND_ENV,
    ControlPlaneError,
    ControlPlaneTokenError,
    MissingControlPlaneTokenError,
    redact_url,
    resolve_access_token,
    resolve_control_plane_url,
)
from octogen_source.cli import OneLineArgumentParser
from octogen_source.errors import OctogenError

PROG = "octogen-bq-autosubscribe"
EXIT_OK, EXIT_ERROR, EXIT_BAD_ARGUMENTS = 0, 1, 2

_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_NO_SPACES = re.compile(r"\S+")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="One idempotent autosubscribe pass over Octogen's control plane: register the reader "
        "if missing, subscribe every catalog awaiting subscription, refresh its status. Dry-run unless "
        f"--apply. Access token from {ACCESS_TOKEN_ENV} or the output of {TOKEN_COMMAND_ENV}; Analytics "
        "Hub calls use Google Application Default Credentials.",
    )
    parser.add_argument("--project", required=True, help="your GCP project that gets the linked datasets")
    parser.add_argument(
        "--principal",
        required=True,
        help="the reader's principal as registered with Octogen, "
        "e.g. serviceAccount:reader@p.iam.gserviceaccount.com",
    )
    parser.add_argument(
        "--catalog",
        action="append",
        default=[],
        metavar="KEY",
        help="only this catalog (repeatable; default: every catalog)",
    )
    parser.add_argument("--apply", action="store_true", help="register and subscribe (default: dry-run)")
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON object")
    parser.add_argument(
        "--control-plane-url",
        metavar="URL",
        help=f"MCP endpoint (default: ${CONTROL_PLANE_URL_ENV} or {DEFAULT_CONTROL_PLANE_URL})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    mode = "apply" if args.apply else "dry_run"
    problem = _argument_problem(args)
    if problem:
        parser.error(problem)
    try:
        url = resolve_control_plane_url(args.control_plane_url)
    except ControlPlaneError as exc:  # a malformed --control-plane-url or OCTOGEN_MCP_URL
        parser.error(str(exc))
    try:
        access_token = resolve_access_token()
    except ControlPlaneTokenError as exc:
        # Nothing configured is a usage mistake; a configured token source that fails is the run failing.
        code = EXIT_BAD_ARGUMENTS if isinstance(exc, MissingControlPlaneTokenError) else EXIT_ERROR
        return _fail(args.json, mode, str(exc), code)
    options = AutosubscribeOptions(
        project=args.project.strip(),
        principal=args.principal.strip(),
        catalogs=tuple(args.catalog),
        apply=args.apply,
    )
    try:
        report = autosubscribe(options, control_plane_url=url, access_token=access_token)
    except OctogenError as exc:
        return _fail(args.json, mode, str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps({**report.to_dict(), "control_plane_url": redact_url(url)}, indent=2))
    else:
        print(render_report(report))
    return report.exit_code


def _argument_problem(args: argparse.Namespace) -> str | None:
    if not _PROJECT_ID.fullmatch(args.project.strip()):
        return f"--project must be a GCP project id, got {args.project!r}"
    if not _NO_SPACES.fullmatch(args.principal.strip()):
        return f"--principal must be one principal without spaces, got {args.principal!r}"
    for catalog in args.catalog:
        if not _NO_SPACES.fullmatch(catalog.strip()):
            return f"--catalog must be a catalog key without spaces, got {catalog!r}"
    return None


def render_report(report: AutosubscribeReport) -> str:
    """The human-readable report: a header, a table (catalog, status, action, detail) and a summary."""
    lines: list[str] = []
    if not report.applied:
        lines.append("Dry run: nothing was changed (run again with --apply to act).")
    reader = f"Reader {report.principal} in project {report.project}"
    if report.registration is ReaderRegistration.WOULD_REGISTER:
        lines.append(f"{reader}: not registered; --apply would register it.")
    elif report.registration is ReaderRegistration.REGISTERED:
        lines.append(f"{reader}: registered now (subscriber {report.subscriber_id}).")
    else:
        state = f", {report.reader_state}" if report.reader_state else ""
        lines.append(f"{reader}: subscriber {report.subscriber_id}{state}.")
    rows = [("CATALOG", "STATUS", "ACTION", "DETAIL")]
    rows += [
        (outcome.catalog_key, outcome.status or "-", outcome.action.value, outcome.detail)
        for outcome in report.catalogs
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines += [
        "  ".join(value.ljust(width) for value, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    if not report.catalogs:
        lines.append("(no catalogs)")
    counts = Counter(outcome.action.value for outcome in report.catalogs)
    summary = ", ".join(f"{count} {action}" for action, count in sorted(counts.items()))
    noun = "catalog" if len(report.catalogs) == 1 else "catalogs"
    lines.append(f"{len(report.catalogs)} {noun}" + (f": {summary}." if summary else "."))
    return "\n".join(lines)


def _fail(as_json: bool, mode: str, message: str, exit_code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"mode": mode, "ok": False, "error": message, "exit_code": exit_code}, indent=2))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
