"""Where a run gets its control-plane access token: a token, a token command, or a rotating refresh token.

Three sources, each from a command-line option or its environment variable:

====================  ===================================  =========================================
source                option                               environment variable
====================  ===================================  =========================================
access token          ``--mcp-access-token``               ``OCTOGEN_MCP_ACCESS_TOKEN``
token command         ``--mcp-token-command``              ``OCTOGEN_MCP_TOKEN_COMMAND``
refresh-token file    ``--mcp-refresh-token-file`` with    ``OCTOGEN_MCP_REFRESH_TOKEN_FILE`` with
                      ``--mcp-client-id-file`` (or         ``OCTOGEN_MCP_CLIENT_ID_FILE`` (or
                      ``--mcp-client-id``)                 ``OCTOGEN_MCP_CLIENT_ID``)
====================  ===================================  =========================================

Precedence: if any source is given as an option, the environment's sources are ignored (so a one-off
``--mcp-access-token`` or ``--mcp-refresh-token-file`` beats whatever cron's environment holds). Among the
sources of that one level: the access token, then the token command, then the refresh-token file (the most
specific, deliberate setting first). The client id: ``--mcp-client-id``, ``--mcp-client-id-file``,
``OCTOGEN_MCP_CLIENT_ID``, ``OCTOGEN_MCP_CLIENT_ID_FILE``, first found.

The refresh-token exchange (:class:`RefreshTokenFile`) holds an exclusive lock on ``<file>.lock`` from before
it reads the refresh token until the rotated one is written back, so an overlapping run waits, then reads the
newest token instead of spending one already spent. Access tokens are cached until shortly before they
expire; a pass longer than a token's life gets a new one (the next exchange, under the lock again).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from octogen_source.bigquery.control_plane import (
    ACCESS_TOKEN_ENV,
    TOKEN_COMMAND_ENV,
    ControlPlaneTokenError,
    MissingControlPlaneTokenError,
    check_token_program,
    checked_token,
    run_token_command,
    split_token_command,
)
from octogen_source.bigquery.oauth import (
    DEFAULT_AUTH_SERVER,
    HTTP_TIMEOUT_SECONDS,
    OAuthError,
    RefreshTokenRejectedError,
    check_endpoint_url,
    exchange_refresh_token,
    fetch_metadata,
)
from octogen_source.bigquery.secret_files import (
    SecretFileError,
    check_readable_file,
    exclusive_file_lock,
    read_secret_file,
    write_secret_file,
)

CLIENT_ID_ENV = "OCTOGEN_MCP_CLIENT_ID"
CLIENT_ID_FILE_ENV = "OCTOGEN_MCP_CLIENT_ID_FILE"
REFRESH_TOKEN_FILE_ENV = "OCTOGEN_MCP_REFRESH_TOKEN_FILE"
AUTH_SERVER_ENV = "OCTOGEN_MCP_AUTH_SERVER"
TOKEN_ENDPOINT_ENV = "OCTOGEN_MCP_TOKEN_ENDPOINT"
LOGIN_COMMAND = "octogen-mcp-login"

DEFAULT_ACCESS_TOKEN_SECONDS = 300.0
EXPIRY_LEEWAY_SECONDS = 30.0


@dataclass(frozen=True)
class TokenOptions:
    """The token settings given on the command line (None: not given)."""

    access_token: str | None = None
    token_command: str | None = None
    client_id: str | None = None
    client_id_file: str | None = None
    refresh_token_file: str | None = None
    auth_server: str | None = None
    token_endpoint: str | None = None


class AccessTokenSource:
    """Callable: a valid access token now. ``description`` says where it comes from (safe to print)."""

    description = "access token"

    def __call__(self) -> str:
        raise NotImplementedError

    def check(self) -> None:
        """Configuration mistakes found without any request (a token command that is not there, a missing
        refresh-token file): :class:`MissingControlPlaneTokenError`. Nothing is run or sent."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class StaticAccessToken(AccessTokenSource):
    def __init__(self, token: str, *, origin: str) -> None:
        self._token = checked_token(token.strip(), source=origin)
        self.description = f"access token ({origin})"

    def __call__(self) -> str:
        return self._token


class _Cached(AccessTokenSource):
    """An access token kept until shortly before it expires; :meth:`_fetch` gets a new one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._valid_until = 0.0

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._valid_until:
                token, lifetime = self._fetch()
                self._token = token
                seconds = lifetime or DEFAULT_ACCESS_TOKEN_SECONDS
                self._valid_until = time.monotonic() + seconds - min(EXPIRY_LEEWAY_SECONDS, seconds / 2)
            return self._token

    def _fetch(self) -> tuple[str, float | None]:
        raise NotImplementedError


class TokenCommand(_Cached):
    def __init__(self, command: str, *, origin: str) -> None:
        super().__init__()
        self._program = split_token_command(command, origin=origin)[0]  # unparsable: a usage mistake
        self._command = command
        self._origin = origin
        self.description = f"token command ({origin})"

    def check(self) -> None:
        check_token_program(self._program, origin=self._origin)

    def _fetch(self) -> tuple[str, float | None]:
        output = run_token_command(self._command, origin=self._origin)
        return checked_token(output, source=self._origin), _expires_in_of(output)


def _expires_in_of(output: str) -> float | None:
    if not output.startswith("{"):
        return None
    try:
        document = json.loads(output)
    except ValueError:
        return None
    value = document.get("expires_in") if isinstance(document, dict) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


class RefreshTokenFile(_Cached):
    """Access tokens from the rotating refresh token in ``refresh_token_file`` (see the module docstring)."""

    def __init__(
        self,
        *,
        client_id: str,
        refresh_token_file: Path,
        auth_server: str = DEFAULT_AUTH_SERVER,
        token_endpoint: str | None = None,
        timeout: float = HTTP_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.path = refresh_token_file.expanduser()
        self._auth_server = auth_server
        self._token_endpoint = token_endpoint
        self._timeout = timeout
        self.description = f"refresh-token file {self.path}"

    def check(self) -> None:
        # Only that it can be opened: its content is read (and judged) under the lock, when it is used.
        try:
            check_readable_file(self.path, what="refresh-token")
        except SecretFileError as exc:
            raise MissingControlPlaneTokenError(str(exc)) from None

    def _fetch(self) -> tuple[str, float | None]:
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
                if self._token_endpoint is None:
                    self._token_endpoint = fetch_metadata(client, self._auth_server).token_endpoint
                return self._exchange(client, self._token_endpoint)
        except (OAuthError, SecretFileError) as exc:
            raise ControlPlaneTokenError(str(exc)) from None

    def _exchange(self, client: httpx.Client, token_endpoint: str) -> tuple[str, float | None]:
        with exclusive_file_lock(self.path):
            # Read only now: a run that waited for the lock gets the token the previous holder wrote.
            current = read_secret_file(self.path, what="refresh-token")
            if not os.access(self.path.resolve().parent, os.W_OK):
                # Spending the token without being able to store its successor would leave a dead one.
                raise ControlPlaneTokenError(
                    f"cannot write to the directory of the refresh-token file {self.path}: a rotated token "
                    "could not be stored, so it is not exchanged"
                )
            try:
                response = exchange_refresh_token(
                    client, token_endpoint, refresh_token=current, client_id=self.client_id
                )
            except RefreshTokenRejectedError as exc:
                raise ControlPlaneTokenError(
                    f"the refresh token in {self.path} was rejected ({exc.error}): it was revoked, "
                    f"expired or already used; run {LOGIN_COMMAND} to sign in again"
                ) from None
            if response.refresh_token is not None and response.refresh_token != current:
                try:
                    write_secret_file(self.path, response.refresh_token)
                except OSError as exc:
                    raise ControlPlaneTokenError(
                        f"the rotated refresh token could not be written to {self.path} "
                        f"({exc.strerror or type(exc).__name__}); run {LOGIN_COMMAND} to sign in again"
                    ) from None
            return response.access_token, response.expires_in


def choose_token_source(options: TokenOptions, env: Mapping[str, str] | None = None) -> AccessTokenSource:
    """The access-token source by the precedence in the module docstring.

    :class:`MissingControlPlaneTokenError` (a usage mistake) when nothing usable is configured, the token
    command cannot be parsed or the client-id file cannot be read. What needs the file system is checked by
    the source's :meth:`~AccessTokenSource.check`.
    """
    environ = os.environ if env is None else env

    def from_env(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    flag_level = (options.access_token, options.token_command, options.refresh_token_file)
    if any(_given(value) for value in flag_level):
        access_token, token_command, refresh_file = flag_level
        origins = ("--mcp-access-token", "--mcp-token-command", "--mcp-refresh-token-file")
    else:
        access_token = from_env(ACCESS_TOKEN_ENV)
        token_command = from_env(TOKEN_COMMAND_ENV)
        refresh_file = from_env(REFRESH_TOKEN_FILE_ENV)
        origins = (ACCESS_TOKEN_ENV, TOKEN_COMMAND_ENV, REFRESH_TOKEN_FILE_ENV)

    if _given(access_token):
        assert access_token is not None
        try:
            return StaticAccessToken(access_token, origin=origins[0])
        except ControlPlaneTokenError as exc:  # a malformed token given: a configuration mistake
            raise MissingControlPlaneTokenError(str(exc)) from None
    if _given(token_command):
        assert token_command is not None
        return TokenCommand(token_command.strip(), origin=origins[1])
    if _given(refresh_file):
        assert refresh_file is not None
        client_id = _client_id(options, from_env)
        auth_server = (options.auth_server or from_env(AUTH_SERVER_ENV) or DEFAULT_AUTH_SERVER).strip()
        token_endpoint = options.token_endpoint or from_env(TOKEN_ENDPOINT_ENV)
        try:
            check_endpoint_url(auth_server, what="the authorization server URL")
            if token_endpoint:
                check_endpoint_url(token_endpoint, what="the token endpoint")
        except OAuthError as exc:
            raise MissingControlPlaneTokenError(str(exc)) from None
        return RefreshTokenFile(
            client_id=client_id,
            refresh_token_file=Path(refresh_file.strip()),
            auth_server=auth_server,
            token_endpoint=token_endpoint.strip() if token_endpoint else None,
        )
    raise MissingControlPlaneTokenError(
        f"no control-plane credentials: set {REFRESH_TOKEN_FILE_ENV} and {CLIENT_ID_FILE_ENV} (written by "
        f"{LOGIN_COMMAND}), or {TOKEN_COMMAND_ENV}, or {ACCESS_TOKEN_ENV}"
    )


def _client_id(options: TokenOptions, from_env: Callable[[str], str | None]) -> str:
    if _given(options.client_id):
        assert options.client_id is not None
        return checked_token(options.client_id.strip(), source="--mcp-client-id")
    client_id_file = options.client_id_file
    if not _given(client_id_file):
        environment_id = from_env(CLIENT_ID_ENV)
        if environment_id:
            return checked_token(environment_id, source=CLIENT_ID_ENV)
        client_id_file = from_env(CLIENT_ID_FILE_ENV)
    if not _given(client_id_file):
        raise MissingControlPlaneTokenError(
            "a refresh-token file needs the OAuth client id: set --mcp-client-id-file or "
            f"{CLIENT_ID_FILE_ENV} (the client-id file {LOGIN_COMMAND} wrote)"
        )
    assert client_id_file is not None
    try:
        return read_secret_file(Path(client_id_file.strip()), what="client-id")
    except SecretFileError as exc:
        raise MissingControlPlaneTokenError(str(exc)) from None


def _given(value: str | None) -> bool:
    return value is not None and bool(value.strip())
