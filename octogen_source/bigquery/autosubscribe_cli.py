"""``octogen-bq-autosubscribe``: one unattended autosubscribe pass over the vendor's control plane.

Dry-run by default (says what it would do, changes nothing); ``--apply`` registers the reader if needed and
subscribes every catalog awaiting it. Safe to run from cron every few minutes. Exit codes: 0 ok, 1 a catalog
errored or the pass failed (e.g. the control plane rejected the token, the refresh token was revoked), 2 bad
arguments or no credentials configured. Errors are one line on stderr (and a JSON object on stdout with
``--json``), never a traceback; no token (access or refresh) is ever printed or logged. Where the access
token comes from, and which source wins: :mod:`octogen_source.bigquery.access_tokens`.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Sequence

from octogen_source.bigquery.access_tokens import (
    AUTH_SERVER_ENV,
    CLIENT_ID_ENV,
    CLIENT_ID_FILE_ENV,
    LOGIN_COMMAND,
    REFRESH_TOKEN_FILE_ENV,
    TOKEN_ENDPOINT_ENV,
    TokenOptions,
    choose_token_source,
)
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
    resolve_control_plane_url,
)
from octogen_source.bigquery.oauth import DEFAULT_AUTH_SERVER
from octogen_source.cli import OneLineArgumentParser
from octogen_source.errors import OctogenError

PROG = "octogen-bq-autosubscribe"
EXIT_OK, EXIT_ERROR, EXIT_BAD_ARGUMENTS = 0, 1, 2

_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_NO_SPACES = re.compile(r"\S+")
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
_PRINCIPAL = re.compile(
    rf"(?:user|group|serviceAccount):[^@\s:]+@{_DOMAIN}"
    rf"|domain:{_DOMAIN}"
    r"|principal(?:Set)?://iam\.googleapis\.com/\S+"
)
"""The IAM members the control plane grants the listing to (``roles/analyticshub.subscriber``) and matches
the reader by, exactly as written: an account, a group or a domain, or a workforce/workload identity
federation principal. ``allUsers``/``allAuthenticatedUsers`` name no reader."""
PRINCIPAL_FORMS = "user:EMAIL, group:EMAIL, serviceAccount:EMAIL, domain:DOMAIN or principal://..."


def _parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="One idempotent autosubscribe pass over Octogen's control plane: register the reader "
        "if missing, subscribe every catalog awaiting subscription, refresh its status. Dry-run unless "
        f"--apply. Control-plane credentials: a refresh-token file from {LOGIN_COMMAND} (rotated on every "
        f"run), a token command, or an access token; options beat the environment, and an access token beats "
        f"a token command, which beats a refresh-token file. Analytics Hub calls use Google Application "
        "Default Credentials.",
    )
    parser.add_argument("--project", required=True, help="your GCP project that gets the linked datasets")
    parser.add_argument(
        "--principal",
        required=True,
        help="the reader's IAM principal as registered with Octogen "
        f"({PRINCIPAL_FORMS}), e.g. serviceAccount:reader@p.iam.gserviceaccount.com",
    )
    parser.add_argument(
        "--catalog",
        action="append",
        default=[],
        metavar="KEY",
        help="only this catalog (repeatable or comma-separated; default: every catalog)",
    )
    parser.add_argument("--apply", action="store_true", help="register and subscribe (default: dry-run)")
    parser.add_argument("--friendly-name", metavar="NAME", help="display name of the linked datasets created")
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON object")
    parser.add_argument(
        "--mcp-url",
        "--control-plane-url",
        dest="mcp_url",
        metavar="URL",
        help=f"MCP endpoint (default: ${CONTROL_PLANE_URL_ENV} or {DEFAULT_CONTROL_PLANE_URL})",
    )
    auth = parser.add_argument_group("control-plane credentials")
    auth.add_argument(
        "--mcp-refresh-token-file",
        metavar="FILE",
        help=f"rotating OAuth refresh token written by {LOGIN_COMMAND}; exchanged for an access token and "
        f"replaced by the rotated one under FILE.lock (default: ${REFRESH_TOKEN_FILE_ENV})",
    )
    auth.add_argument(
        "--mcp-client-id-file",
        metavar="FILE",
        help=f"the OAuth client id {LOGIN_COMMAND} registered (default: ${CLIENT_ID_FILE_ENV})",
    )
    auth.add_argument(
        "--mcp-client-id", metavar="ID", help=f"the client id itself (default: ${CLIENT_ID_ENV})"
    )
    auth.add_argument(
        "--mcp-token-command",
        metavar="COMMAND",
        help="a command printing an access token (or JSON with access_token), split with shlex, no shell "
        f"(default: ${TOKEN_COMMAND_ENV})",
    )
    auth.add_argument(
        "--mcp-access-token",
        metavar="TOKEN",
        help=f"an access token (visible to other users in the process list: prefer ${ACCESS_TOKEN_ENV})",
    )
    auth.add_argument(
        "--mcp-auth-server",
        metavar="URL",
        help=f"OAuth authorization server whose metadata names the token endpoint "
        f"(default: ${AUTH_SERVER_ENV} or {DEFAULT_AUTH_SERVER})",
    )
    auth.add_argument(
        "--mcp-token-endpoint",
        metavar="URL",
        help=f"token endpoint to use without reading the server's metadata (default: ${TOKEN_ENDPOINT_ENV})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    mode = "apply" if args.apply else "dry_run"
    catalogs = [key.strip() for value in args.catalog for key in value.split(",")] if args.catalog else []
    problem = _argument_problem(args, catalogs)
    if problem:
        parser.error(problem)
    try:
        url = resolve_control_plane_url(args.mcp_url)
    except ControlPlaneError as exc:  # a malformed --mcp-url or OCTOGEN_MCP_URL
        parser.error(str(exc))
    _quiet_sdk_logging()
    try:
        token_source = choose_token_source(_token_options(args))
        token_source.check()  # a token command or file that is not there: a usage mistake, nothing sent
        token_source()  # the first access token now: a revoked refresh token fails before any call
    except ControlPlaneTokenError as exc:
        # Nothing configured is a usage mistake; a configured token source that fails is the run failing.
        code = EXIT_BAD_ARGUMENTS if isinstance(exc, MissingControlPlaneTokenError) else EXIT_ERROR
        return _fail(args.json, mode, str(exc), code)
    except KeyboardInterrupt:
        return 130
    options = AutosubscribeOptions(
        project=args.project.strip(),
        principal=args.principal.strip(),
        catalogs=tuple(catalogs),
        apply=args.apply,
        friendly_name=(args.friendly_name or "").strip() or None,
    )
    try:
        report = autosubscribe(options, control_plane_url=url, access_token=token_source)
    except OctogenError as exc:
        return _fail(args.json, mode, str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    if args.json:
        document = {
            **report.to_dict(),
            "control_plane_url": redact_url(url),
            "credentials": token_source.description,
        }
        print(json.dumps(document, indent=2))
    else:
        print(render_report(report))
    return report.exit_code


def _argument_problem(args: argparse.Namespace, catalogs: Sequence[str]) -> str | None:
    if not _PROJECT_ID.fullmatch(args.project.strip()):
        return f"--project must be a GCP project id, got {args.project!r}"
    if not _NO_SPACES.fullmatch(args.principal.strip()):
        return f"--principal must be one principal without spaces, got {args.principal!r}"
    if not _PRINCIPAL.fullmatch(args.principal.strip()):
        return f"--principal must be an IAM principal: {PRINCIPAL_FORMS}, got {args.principal!r}"
    for catalog in catalogs:
        if not _NO_SPACES.fullmatch(catalog):
            return f"--catalog must be a catalog key without spaces, got {catalog!r}"
    for option in ("mcp_refresh_token_file", "mcp_client_id_file", "mcp_token_command", "mcp_client_id"):
        value = getattr(args, option)
        if value is not None and not value.strip():
            return f"--{option.replace('_', '-')} must not be empty"
    if args.mcp_access_token is not None and not args.mcp_access_token.strip():
        return "--mcp-access-token must not be empty"
    return None


def _token_options(args: argparse.Namespace) -> TokenOptions:
    return TokenOptions(
        access_token=args.mcp_access_token,
        token_command=args.mcp_token_command,
        client_id=args.mcp_client_id,
        client_id_file=args.mcp_client_id_file,
        refresh_token_file=args.mcp_refresh_token_file,
        auth_server=args.mcp_auth_server,
        token_endpoint=args.mcp_token_endpoint,
    )


def _quiet_sdk_logging() -> None:
    """Without logging configured, Python prints the ``mcp`` SDK's errors with tracebacks to stderr; this
    command reports each failure as one line instead. A configured application (Airflow) keeps its logs."""
    sdk_logger = logging.getLogger("mcp")
    if not logging.getLogger().handlers and not sdk_logger.handlers:
        sdk_logger.addHandler(logging.NullHandler())


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
