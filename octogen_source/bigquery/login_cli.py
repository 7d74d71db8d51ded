"""``octogen-mcp-login``: the one-time interactive sign-in that unattended autosubscribe runs live on.

Reads the authorization server's metadata, registers a public OAuth client (no secret) unless the client
registered earlier for the same redirect URI can be reused, listens on a loopback redirect
(``http://127.0.0.1:<port>/callback``), prints the authorization URL (opens a browser only with ``--open``),
exchanges the returned code with its PKCE verifier and writes three one-line, owner-only files: the client
id, the redirect URI and the rotating refresh token; the same files and formats as the vendor's
``octogen-mcp-login``, so either tool's files serve ``octogen-bq-autosubscribe``. No token is printed.

Exit codes: 0 signed in and files written, 1 the sign-in failed (one line on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from octogen_source.bigquery.access_tokens import (
    AUTH_SERVER_ENV,
    CLIENT_ID_FILE_ENV,
    REFRESH_TOKEN_FILE_ENV,
)
from octogen_source.bigquery.loopback import LoopbackReceiver
from octogen_source.bigquery.oauth import (
    DEFAULT_AUTH_SERVER,
    DEFAULT_RESOURCE,
    DEFAULT_SCOPE,
    HTTP_TIMEOUT_SECONDS,
    OAuthError,
    ServerMetadata,
    authorization_url,
    check_endpoint_url,
    exchange_code,
    fetch_metadata,
    new_pkce_pair,
    register_public_client,
)
from octogen_source.bigquery.secret_files import (
    SecretFileError,
    exclusive_file_lock,
    read_secret_file,
    unwritable_reason,
    write_secret_file,
)
from octogen_source.cli import OneLineArgumentParser

PROG = "octogen-mcp-login"
EXIT_OK, EXIT_ERROR, EXIT_BAD_ARGUMENTS = 0, 1, 2
REDIRECT_URI_FILE_ENV = "OCTOGEN_MCP_REDIRECT_URI_FILE"
CONFIG_DIRECTORY = Path("~/.config/octogen")
DEFAULT_PORT = 8765
CLIENT_NAME = "octogen-dlt autosubscribe"


def _parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Sign in to Octogen's control plane once (OAuth with PKCE, loopback redirect) and write "
        "the client-id, redirect-URI and refresh-token files that octogen-bq-autosubscribe runs on.",
    )
    parser.add_argument(
        "--auth-server",
        "--authkit-domain",
        dest="auth_server",
        metavar="URL",
        default=os.environ.get(AUTH_SERVER_ENV) or DEFAULT_AUTH_SERVER,
        help=f"OAuth authorization server (default: ${AUTH_SERVER_ENV} or {DEFAULT_AUTH_SERVER})",
    )
    parser.add_argument(
        "--resource", default=DEFAULT_RESOURCE, help=f"resource (default: {DEFAULT_RESOURCE})"
    )
    parser.add_argument("--scope", default=DEFAULT_SCOPE, help=f"scopes (default: {DEFAULT_SCOPE!r})")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"loopback port of the redirect (default: {DEFAULT_PORT}; 0: any free port)",
    )
    files = parser.add_argument_group("files written (one line each, mode 0600)")
    for option, variable, name in (
        ("--client-id-file", CLIENT_ID_FILE_ENV, "mcp.client-id"),
        ("--redirect-uri-file", REDIRECT_URI_FILE_ENV, "mcp.redirect-uri"),
        ("--refresh-token-file", REFRESH_TOKEN_FILE_ENV, "mcp.refresh"),
    ):
        default = os.environ.get(variable) or str(CONFIG_DIRECTORY / name)
        files.add_argument(
            option, metavar="FILE", default=default, help=f"(default: ${variable} or {default})"
        )
    parser.add_argument("--open", action="store_true", help="also open the URL in this machine's browser")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the sign-in (default: 300)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, got {args.port}")
    if not args.timeout > 0:
        parser.error("--timeout must be positive")
    for option in ("client_id_file", "redirect_uri_file", "refresh_token_file", "scope", "resource"):
        if not str(getattr(args, option)).strip():
            parser.error(f"--{option.replace('_', '-')} must not be empty")
    try:
        check_endpoint_url(args.auth_server, what="--auth-server")
    except OAuthError as exc:
        parser.error(str(exc))
    if not _is_resource_url(args.resource):
        parser.error(f"--resource must be an absolute http(s) URL without a fragment, got {args.resource!r}")
    paths = {
        "client_id_file": Path(args.client_id_file).expanduser(),
        "redirect_uri_file": Path(args.redirect_uri_file).expanduser(),
        "refresh_token_file": Path(args.refresh_token_file).expanduser(),
    }
    for option, path in paths.items():  # the sign-in is not worth starting if its files cannot be kept
        reason = unwritable_reason(path)
        if reason:
            parser.error(f"--{option.replace('_', '-')} {path} cannot be written: {reason}")
    try:
        client_id, redirect_uri, reused = _sign_in(args, paths)
    except (OAuthError, SecretFileError, TimeoutError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    result = {
        "client_id_file": str(paths["client_id_file"]),
        "redirect_uri_file": str(paths["redirect_uri_file"]),
        "refresh_token_file": str(paths["refresh_token_file"]),
        "redirect_uri": redirect_uri,
        "client_registered": not reused,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("Signed in. Files written (mode 0600):")
        for key in ("client_id_file", "redirect_uri_file", "refresh_token_file"):
            print(f"  {key.replace('_', ' ')}: {result[key]}")
        print("For octogen-bq-autosubscribe (cron, Airflow):")
        print(f"  export {CLIENT_ID_FILE_ENV}={paths['client_id_file']}")
        print(f"  export {REFRESH_TOKEN_FILE_ENV}={paths['refresh_token_file']}")
        print(f"Client id: {client_id}. The refresh token rotates on every run: keep its file writable.")
    return EXIT_OK


def _sign_in(args: argparse.Namespace, paths: dict[str, Path]) -> tuple[str, str, bool]:
    with (
        LoopbackReceiver(args.port) as receiver,
        httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as client,
    ):
        metadata = fetch_metadata(client, args.auth_server)
        if metadata.authorization_endpoint is None:
            raise OAuthError("the authorization server's metadata names no authorization_endpoint")
        redirect_uri = receiver.redirect_uri
        client_id = _registered_client(paths, redirect_uri)
        reused = client_id is not None
        if client_id is None:
            client_id = _register(client, metadata, redirect_uri, args.scope)
        verifier, challenge = new_pkce_pair()
        state = secrets.token_urlsafe(24)
        url = authorization_url(
            metadata.authorization_endpoint,
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge=challenge,
            state=state,
            scope=args.scope,
            resource=args.resource,
        )
        print("Open this URL in a browser and sign in with your Octogen account:", file=sys.stderr)
        print(url, file=sys.stderr, flush=True)
        print(f"Waiting for the sign-in to return to {redirect_uri} ...", file=sys.stderr, flush=True)
        if args.open:
            webbrowser.open(url)
        answer = receiver.wait(args.timeout)
        if "error" in answer:
            raise OAuthError(f"sign-in refused: {_printable(answer['error'])}")
        if answer.get("state") != state:
            raise OAuthError("the sign-in came back with the wrong state; nothing was written")
        tokens = exchange_code(
            client,
            metadata.token_endpoint,
            code=answer["code"],
            code_verifier=verifier,
            client_id=client_id,
            redirect_uri=redirect_uri,
        )
    if tokens.refresh_token is None:
        raise OAuthError("the authorization server issued no refresh token (is offline_access granted?)")
    write_secret_file(paths["client_id_file"], client_id)
    write_secret_file(paths["redirect_uri_file"], redirect_uri)
    with exclusive_file_lock(paths["refresh_token_file"]):  # a running pass may be rotating the old one
        write_secret_file(paths["refresh_token_file"], tokens.refresh_token)
    return client_id, redirect_uri, reused


def _registered_client(paths: dict[str, Path], redirect_uri: str) -> str | None:
    """The client id registered earlier for this very redirect URI, if both files say so."""
    try:
        client_id = read_secret_file(paths["client_id_file"], what="client-id")
        registered_uri = read_secret_file(paths["redirect_uri_file"], what="redirect-URI")
    except SecretFileError:
        return None
    return client_id if registered_uri == redirect_uri else None


def _register(client: httpx.Client, metadata: ServerMetadata, redirect_uri: str, scope: str) -> str:
    if metadata.registration_endpoint is None:
        raise OAuthError("the authorization server offers no dynamic client registration")
    return register_public_client(
        client,
        metadata.registration_endpoint,
        redirect_uri=redirect_uri,
        scope=scope,
        client_name=CLIENT_NAME,
    )


def _is_resource_url(resource: str) -> bool:
    """An RFC 8707 resource indicator: an absolute URL (the MCP server's), no fragment."""
    try:
        parts = urlsplit(resource)
        return parts.scheme in ("https", "http") and bool(parts.hostname) and not parts.fragment
    except ValueError:
        return False


def _printable(text: str) -> str:
    return "".join(character for character in text if character.isprintable())[:100]


if __name__ == "__main__":
    sys.exit(main())
