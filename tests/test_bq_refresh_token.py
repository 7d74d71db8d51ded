"""``octogen-bq-autosubscribe`` on a rotating OAuth refresh token (issue 14, items 2 and 4).

A local OAuth authorization server (tests/fake_authorization_server.py: metadata, token endpoint rotating
refresh tokens, ``invalid_grant`` for a spent one) mints the access tokens the local MCP server
(tests/fake_control_plane.py) accepts. Real HTTP on 127.0.0.1 only; the CLI runs in-process and, for the
overlapping passes, as separate processes. The client-id and refresh-token files are written the way the
vendor's ``octogen-mcp-login`` writes them (one value, a newline, mode 0600).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from octogen_source.bigquery import access_tokens
from octogen_source.bigquery.access_tokens import (
    RefreshTokenFile,
    StaticAccessToken,
    TokenCommand,
    TokenOptions,
    choose_token_source,
)
from octogen_source.bigquery.autosubscribe_cli import main
from octogen_source.bigquery.control_plane import ControlPlaneClient, MissingControlPlaneTokenError
from tests.bq_support import BASE_ARGS, PREFIX, PRINCIPAL, PROJECT, clear_credentials
from tests.fake_authorization_server import FakeAuthorizationServer
from tests.fake_control_plane import FakeControlPlane

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Login:
    client_id: str
    client_id_file: Path
    refresh_token_file: Path

    @property
    def refresh_token(self) -> str:
        return self.refresh_token_file.read_text().strip()

    @property
    def lock_file(self) -> Path:
        return self.refresh_token_file.with_name(self.refresh_token_file.name + ".lock")


@pytest.fixture
def control_plane(control_plane_server: FakeControlPlane) -> FakeControlPlane:
    control_plane_server.reset()
    control_plane_server.set_tokens()  # only tokens the authorization server mints are valid
    control_plane_server.add_listing("shoes")
    control_plane_server.add_subscriber(PROJECT, PRINCIPAL)
    return control_plane_server


@pytest.fixture
def auth(auth_server: FakeAuthorizationServer) -> Iterator[FakeAuthorizationServer]:
    auth_server.token_delay = 0.0
    yield auth_server
    auth_server.token_delay = 0.0


def _vendor_write(path: Path, value: str) -> None:
    """As the vendor's octogen-mcp-login writes its files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"{value}\n")


@pytest.fixture
def login(tmp_path: Path, auth: FakeAuthorizationServer) -> Login:
    client_id = auth.register_client()
    directory = tmp_path / "config" / "octogen"
    _vendor_write(directory / "mcp.client-id", client_id)
    _vendor_write(directory / "mcp.redirect-uri", "http://127.0.0.1:8765/callback")
    _vendor_write(directory / "mcp.refresh", auth.issue_refresh_token(client_id))
    return Login(client_id, directory / "mcp.client-id", directory / "mcp.refresh")


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch,
    control_plane: FakeControlPlane,
    auth: FakeAuthorizationServer,
    login: Login,
) -> dict[str, str]:
    values = {
        "OCTOGEN_MCP_URL": control_plane.url,
        "OCTOGEN_MCP_AUTH_SERVER": auth.url,
        "OCTOGEN_MCP_CLIENT_ID_FILE": str(login.client_id_file),
        "OCTOGEN_MCP_REFRESH_TOKEN_FILE": str(login.refresh_token_file),
    }
    clear_credentials(monkeypatch)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _no_secret_in(text: str, auth: FakeAuthorizationServer) -> None:
    leaked = [secret for secret in auth.issued_secrets if secret in text]
    assert leaked == [], "a token was printed or logged"


def _run(
    capsys: pytest.CaptureFixture[str], auth: FakeAuthorizationServer, *args: str
) -> tuple[int, str, str]:
    code = main([*BASE_ARGS, *args])
    captured = capsys.readouterr()
    _no_secret_in(captured.out + captured.err, auth)
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- one pass, ten passes --------------------------------------------------------------------------------


def test_a_pass_exchanges_the_refresh_token_and_stores_the_rotated_one(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    control_plane: FakeControlPlane,
    login: Login,
) -> None:
    caplog.set_level(logging.DEBUG)
    before = login.refresh_token
    grants = auth.counters.refresh_grants

    code, out, err = _run(capsys, auth, "--json")

    assert (code, err) == (0, ""), err
    assert f'"credentials": "refresh-token file {login.refresh_token_file}"' in out
    after = login.refresh_token
    assert after != before
    assert auth.live_refresh_tokens(login.client_id) == [after]  # the one on disk is the one valid
    assert auth.counters.refresh_grants == grants + 1
    assert _mode(login.refresh_token_file) == 0o600
    assert "GET /.well-known/oauth-authorization-server" in auth.counters.requests  # discovered
    assert control_plane.calls  # the control plane accepted the minted access token
    assert login.lock_file.exists() and login.lock_file.read_bytes() == b""
    assert _mode(login.lock_file) == 0o600
    assert sorted(p.name for p in login.refresh_token_file.parent.iterdir()) == [
        "mcp.client-id",
        "mcp.redirect-uri",
        "mcp.refresh",
        "mcp.refresh.lock",
    ]  # no temporary file left behind
    _no_secret_in(caplog.text, auth)


def test_the_options_do_the_same_with_a_token_endpoint_given(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    control_plane: FakeControlPlane,
    auth: FakeAuthorizationServer,
    login: Login,
) -> None:
    for variable in ("ACCESS_TOKEN", "TOKEN_COMMAND", "CLIENT_ID_FILE", "REFRESH_TOKEN_FILE", "AUTH_SERVER"):
        monkeypatch.delenv(f"OCTOGEN_MCP_{variable}", raising=False)
    auth.counters.requests.clear()

    code, _, err = _run(
        capsys,
        auth,
        "--mcp-url",
        control_plane.url,
        "--mcp-client-id-file",
        str(login.client_id_file),
        "--mcp-refresh-token-file",
        str(login.refresh_token_file),
        "--mcp-token-endpoint",
        auth.token_endpoint,
    )

    assert (code, err) == (0, "")
    assert auth.counters.requests == ["POST /oauth2/token"]  # no metadata lookup
    assert auth.live_refresh_tokens(login.client_id) == [login.refresh_token]


def test_ten_passes_in_a_row_rotate_the_token_each_time(
    capsys: pytest.CaptureFixture[str],
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    login: Login,
) -> None:
    seen = [login.refresh_token]
    invalid = auth.counters.invalid_grants

    for _ in range(10):
        code, _, err = _run(capsys, auth)
        assert (code, err) == (0, "")
        seen.append(login.refresh_token)

    assert len(set(seen)) == 11  # rotated every time
    assert auth.live_refresh_tokens(login.client_id) == [seen[-1]]
    assert auth.counters.invalid_grants == invalid


def test_overlapping_passes_as_processes_leave_exactly_one_valid_token(
    environment: dict[str, str], auth: FakeAuthorizationServer, login: Login, control_plane: FakeControlPlane
) -> None:
    """Eight runs started at once (cron overlap), the token endpoint slowed so the exchanges collide. The
    lock serialises them: each one reads the token its predecessor wrote; none spends a spent one."""
    auth.token_delay = 0.3
    invalid = auth.counters.invalid_grants
    grants = auth.counters.refresh_grants
    auth.counters.concurrent_refreshes_max = 0
    env = {**os.environ, **environment, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "octogen_source.bigquery.autosubscribe_cli", *BASE_ARGS]

    started = time.monotonic()
    children = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    results = [(child.wait(timeout=90), *child.communicate()) for child in children]
    elapsed = time.monotonic() - started

    for code, out, err in results:
        _no_secret_in(out + err, auth)
        assert code == 0, err
        assert err == ""
    assert auth.counters.refresh_grants == grants + 8
    assert auth.counters.invalid_grants == invalid  # nobody presented a spent token
    assert auth.counters.concurrent_refreshes_max == 1  # the exchanges never overlapped
    assert auth.live_refresh_tokens(login.client_id) == [login.refresh_token]
    assert login.lock_file.read_bytes() == b""
    assert elapsed > 8 * 0.3  # they did wait for each other


# --- failures: one line each ------------------------------------------------------------------------------


def test_a_revoked_refresh_token_is_one_line_naming_the_file_and_the_login(
    capsys: pytest.CaptureFixture[str],
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    control_plane: FakeControlPlane,
    login: Login,
) -> None:
    before = login.refresh_token
    auth.revoke_all()

    code, out, err = _run(capsys, auth)

    assert (code, out) == (1, "")
    assert err == (
        f"{PREFIX}the refresh token in {login.refresh_token_file} was rejected (invalid_grant): it was "
        "revoked, expired or already used; run octogen-mcp-login to sign in again\n"
    )
    assert login.refresh_token == before  # left as it was
    assert control_plane.http_requests == 0


def test_a_revoked_token_in_json_mode_is_a_json_error_too(
    capsys: pytest.CaptureFixture[str], environment: dict[str, str], auth: FakeAuthorizationServer
) -> None:
    auth.revoke_all()

    code, out, err = _run(capsys, auth, "--json")

    assert code == 1
    assert '"ok": false' in out and "octogen-mcp-login" in out
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("which", ["OCTOGEN_MCP_REFRESH_TOKEN_FILE", "OCTOGEN_MCP_CLIENT_ID_FILE"])
def test_a_missing_file_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    tmp_path: Path,
    which: str,
) -> None:
    """A file that is not there is a bad argument (exit 2), refused before any request."""
    missing = tmp_path / "nowhere" / "mcp.file"
    monkeypatch.setenv(which, str(missing))
    requests = len(auth.counters.requests)

    code, out, err = _run(capsys, auth)

    what = "refresh-token" if "REFRESH" in which else "client-id"
    assert (code, out, err) == (2, "", f"{PREFIX}{what} file {missing} does not exist\n")
    assert len(auth.counters.requests) == requests


def test_an_unreadable_or_empty_refresh_token_file_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    tmp_path: Path,
) -> None:
    """A file that cannot be opened is refused up front (exit 2); an empty one is found when it is read under
    its lock (another tool may be rewriting it in place): the run fails (exit 1)."""
    requests = len(auth.counters.requests)
    directory = tmp_path / "a-directory"
    directory.mkdir()
    monkeypatch.setenv("OCTOGEN_MCP_REFRESH_TOKEN_FILE", str(directory))
    code, _, err = _run(capsys, auth)
    assert (code, err) == (2, f"{PREFIX}refresh-token file {directory} is a directory\n")
    assert len(auth.counters.requests) == requests

    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.setenv("OCTOGEN_MCP_REFRESH_TOKEN_FILE", str(empty))
    code, _, err = _run(capsys, auth)
    assert (code, err) == (1, f"{PREFIX}refresh-token file {empty} is empty\n")

    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked"
        locked.write_text("rt_x\n")
        locked.chmod(0)
        monkeypatch.setenv("OCTOGEN_MCP_REFRESH_TOKEN_FILE", str(locked))
        requests = len(auth.counters.requests)
        code, _, err = _run(capsys, auth)
        assert (code, err) == (
            2,
            f"{PREFIX}refresh-token file {locked} is not readable (permission denied)\n",
        )
        assert len(auth.counters.requests) == requests


def test_a_token_that_could_not_be_stored_is_not_spent(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    login: Login,
) -> None:
    before = login.refresh_token
    directory = login.refresh_token_file.parent
    if os.geteuid() == 0:  # root writes anywhere: make the check see what a non-root run would
        real_access = os.access
        monkeypatch.setattr(
            access_tokens.os, "access", lambda path, mode: mode != os.W_OK and real_access(path, mode)
        )
    directory.chmod(0o500)
    try:
        code, _, err = _run(capsys, auth)
    finally:
        directory.chmod(0o700)
    assert code == 1
    assert err == (
        f"{PREFIX}cannot write to the directory of the refresh-token file {login.refresh_token_file}: a "
        "rotated token could not be stored, so it is not exchanged\n"
    )
    assert auth.live_refresh_tokens(login.client_id) == [before] == [login.refresh_token]


def test_a_lock_held_by_another_tool_is_waited_for(
    capsys: pytest.CaptureFixture[str],
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    login: Login,
) -> None:
    """The vendor's tools lock ``<file>.lock`` with flock too: a pass waits for them, then reads the file."""
    login.lock_file.touch()
    with login.lock_file.open("a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        auth.revoke_all()  # the other tool spent the old token ...
        rotated_meanwhile = auth.issue_refresh_token(login.client_id)
        _vendor_write(login.refresh_token_file, rotated_meanwhile)  # ... and wrote its successor in place
        timer = threading.Timer(0.8, fcntl.flock, (held.fileno(), fcntl.LOCK_UN))
        timer.start()
        started = time.monotonic()
        code, _, err = _run(capsys, auth)
        waited = time.monotonic() - started
        timer.join()
    assert (code, err) == (0, "")
    assert waited >= 0.7
    assert auth.live_refresh_tokens(login.client_id) == [login.refresh_token]


def test_a_symlinked_refresh_token_file_stays_a_link(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    login: Login,
    tmp_path: Path,
) -> None:
    link = tmp_path / "link.refresh"
    link.symlink_to(login.refresh_token_file)
    monkeypatch.setenv("OCTOGEN_MCP_REFRESH_TOKEN_FILE", str(link))

    code, _, err = _run(capsys, auth)

    assert (code, err) == (0, "")
    assert link.is_symlink()
    assert auth.live_refresh_tokens(login.client_id) == [login.refresh_token]


# --- precedence -------------------------------------------------------------------------------------------

ENV = {
    "OCTOGEN_MCP_ACCESS_TOKEN": "at_env",
    "OCTOGEN_MCP_TOKEN_COMMAND": "print-token --env",
    "OCTOGEN_MCP_REFRESH_TOKEN_FILE": "/env/mcp.refresh",
    "OCTOGEN_MCP_CLIENT_ID": "client_env",
}


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        # the environment alone: access token, then token command, then refresh-token file
        (TokenOptions(), ENV, "access token (OCTOGEN_MCP_ACCESS_TOKEN)"),
        (
            TokenOptions(),
            {k: v for k, v in ENV.items() if k != "OCTOGEN_MCP_ACCESS_TOKEN"},
            "token command (OCTOGEN_MCP_TOKEN_COMMAND)",
        ),
        (
            TokenOptions(),
            {k: v for k, v in ENV.items() if "REFRESH" in k or "CLIENT" in k},
            "refresh-token file /env/mcp.refresh",
        ),
        # any option: the environment's sources are ignored
        (
            TokenOptions(refresh_token_file="/flag/mcp.refresh", client_id="c"),
            ENV,
            "refresh-token file /flag/mcp.refresh",
        ),
        (TokenOptions(token_command="print-token --flag"), ENV, "token command (--mcp-token-command)"),
        # among options: the same order
        (
            TokenOptions(access_token="at_flag", token_command="x", refresh_token_file="/f", client_id="c"),
            ENV,
            "access token (--mcp-access-token)",
        ),
        (
            TokenOptions(token_command="x", refresh_token_file="/f", client_id="c"),
            {},
            "token command (--mcp-token-command)",
        ),
    ],
)
def test_precedence_between_the_sources(options: TokenOptions, env: dict[str, str], expected: str) -> None:
    assert choose_token_source(options, env).description == expected


def test_client_id_precedence(tmp_path: Path) -> None:
    client_id_file = tmp_path / "id"
    client_id_file.write_text("client_from_file\n")
    env = {"OCTOGEN_MCP_REFRESH_TOKEN_FILE": "/r", "OCTOGEN_MCP_CLIENT_ID_FILE": str(client_id_file)}

    def client_id(options: TokenOptions, environ: dict[str, str]) -> str:
        source = choose_token_source(options, environ)
        assert isinstance(source, RefreshTokenFile)
        return source.client_id

    assert client_id(TokenOptions(), env) == "client_from_file"
    assert client_id(TokenOptions(), {**env, "OCTOGEN_MCP_CLIENT_ID": "client_env"}) == "client_env"
    assert client_id(
        TokenOptions(client_id_file=str(client_id_file)), {**env, "OCTOGEN_MCP_CLIENT_ID": "e"}
    ) == ("client_from_file")
    assert client_id(TokenOptions(client_id="client_flag", client_id_file=str(client_id_file)), env) == (
        "client_flag"
    )
    with pytest.raises(MissingControlPlaneTokenError, match="needs the OAuth client id"):
        choose_token_source(TokenOptions(), {"OCTOGEN_MCP_REFRESH_TOKEN_FILE": "/r"})


def test_source_types() -> None:
    assert isinstance(choose_token_source(TokenOptions(access_token="a"), {}), StaticAccessToken)
    assert isinstance(choose_token_source(TokenOptions(token_command="c"), {}), TokenCommand)
    assert "at_secret" not in repr(StaticAccessToken("at_secret", origin="x"))


def test_an_option_beats_a_stale_access_token_in_the_environment(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    login: Login,
) -> None:
    """Cron's environment still holds an expired access token; the run is given the refresh-token file."""
    monkeypatch.setenv("OCTOGEN_MCP_ACCESS_TOKEN", "at_expired_long_ago")
    monkeypatch.delenv("OCTOGEN_MCP_REFRESH_TOKEN_FILE")

    code, _, err = _run(capsys, auth, "--mcp-refresh-token-file", str(login.refresh_token_file))

    assert (code, err) == (0, "")
    assert auth.live_refresh_tokens(login.client_id) == [login.refresh_token]


async def test_an_access_token_expiring_mid_pass_is_renewed_under_the_lock(
    environment: dict[str, str], auth: FakeAuthorizationServer, login: Login, control_plane: FakeControlPlane
) -> None:
    """A pass outliving its access token: the next control-plane call gets a new one (another exchange,
    under the lock, rotating the refresh token again)."""
    auth.access_token_seconds = 1  # kept for half a second
    grants = auth.counters.refresh_grants
    source = choose_token_source(TokenOptions())
    try:
        async with ControlPlaneClient(control_plane.url, source) as client:
            await client.list_subscribers()
            await asyncio.sleep(0.7)
            control_plane.set_tokens()  # every token minted so far is now rejected
            view = await client.list_subscribers()
    finally:
        auth.access_token_seconds = 300
    assert [subscriber.subscriber_project_id for subscriber in view.subscribers] == [PROJECT]
    assert auth.counters.refresh_grants - grants == 2
    assert auth.live_refresh_tokens(login.client_id) == [login.refresh_token]


def test_a_server_that_does_not_rotate_leaves_the_file_alone(
    capsys: pytest.CaptureFixture[str],
    environment: dict[str, str],
    auth: FakeAuthorizationServer,
    login: Login,
) -> None:
    before = login.refresh_token
    modified = login.refresh_token_file.stat().st_mtime_ns
    auth.rotate = False
    try:
        code, _, err = _run(capsys, auth)
    finally:
        auth.rotate = True
    assert (code, err) == (0, "")
    assert login.refresh_token == before
    assert login.refresh_token_file.stat().st_mtime_ns == modified
