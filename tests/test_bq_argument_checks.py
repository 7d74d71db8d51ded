"""Bad arguments of ``octogen-bq-autosubscribe`` and ``octogen-mcp-login`` are refused up front: one line,
exit 2, before any request (audit of the installed wheel). Above all, an access token never travels in clear
text: ``--mcp-url`` (and ``OCTOGEN_MCP_URL``) must be https, http only to a loopback address.

Real HTTP against the local fakes (tests/fake_control_plane.py, tests/fake_authorization_server.py), whose
request counters show that nothing was sent; the clear-text case listens on a non-loopback address of this
machine with a bare TCP socket that records every byte it receives. The CLIs run in-process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from octogen_source.bigquery.autosubscribe_cli import main
from octogen_source.bigquery.control_plane import (
    ControlPlaneClient,
    ControlPlaneError,
    resolve_control_plane_url,
)
from octogen_source.bigquery.login_cli import main as login_main
from tests.bq_support import BASE_ARGS, PREFIX, PRINCIPAL, PROJECT, control_plane_listing_shoes
from tests.fake_authorization_server import FakeAuthorizationServer
from tests.fake_control_plane import FakeControlPlane

pytestmark = pytest.mark.timeout(60)

LOGIN_PREFIX = "octogen-mcp-login: error: "


@pytest.fixture
def control_plane(
    control_plane_server: FakeControlPlane, monkeypatch: pytest.MonkeyPatch
) -> FakeControlPlane:
    return control_plane_listing_shoes(control_plane_server, monkeypatch)


def _exit_code(run: Callable[[], int]) -> Any:
    try:
        return run()
    except SystemExit as exited:
        return exited.code


def _autosubscribe(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[Any, str, str]:
    code = _exit_code(lambda: main(list(argv)))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- 1. the access token never travels in clear text ------------------------------------------------------


class _Listener:
    """A bare TCP listener on every interface that records whatever a client sends it."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("0.0.0.0", 0))
        self._socket.listen()
        self._socket.settimeout(0.1)
        self.port: int = self._socket.getsockname()[1]
        self.received = b""
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with connection:
                connection.settimeout(1)
                with contextlib.suppress(OSError):
                    self.received += connection.recv(65536)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


def _non_loopback_address() -> str:
    """This machine's address on its default route, else an unroutable TEST-NET-1 address."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # UDP: picks the route, sends nothing
        address = str(probe.getsockname()[0])
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return "192.0.2.123"


@pytest.fixture
def listener() -> Iterator[_Listener]:
    running = _Listener()
    yield running
    running.close()


@pytest.mark.parametrize("given_as", ["--mcp-url", "--control-plane-url", "OCTOGEN_MCP_URL"])
def test_plain_http_to_a_remote_host_is_refused_before_the_token_leaves(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    control_plane: FakeControlPlane,
    listener: _Listener,
    given_as: str,
) -> None:
    url = f"http://{_non_loopback_address()}:{listener.port}/mcp/"
    token = control_plane.token
    if given_as.startswith("--"):
        argv = [*BASE_ARGS, "--mcp-access-token", token, given_as, url]
    else:
        monkeypatch.setenv(given_as, url)
        argv = [*BASE_ARGS, "--mcp-access-token", token]

    code, out, err = _autosubscribe(capsys, *argv)

    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert f"control-plane URL must be an https URL (http only on 127.0.0.1/localhost), got '{url}'" in err
    assert token not in err
    assert (listener.connections, listener.received) == (0, b"")
    assert control_plane.http_requests == 0


def test_plain_http_to_a_remote_host_is_refused_before_a_refresh_token_is_spent(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    control_plane: FakeControlPlane,
    auth_server: FakeAuthorizationServer,
    listener: _Listener,
    tmp_path: Path,
) -> None:
    client_id = auth_server.register_client()
    refresh_file = tmp_path / "mcp.refresh"
    refresh_file.write_text(auth_server.issue_refresh_token(client_id) + "\n")
    requests = len(auth_server.counters.requests)
    monkeypatch.setenv("OCTOGEN_MCP_URL", f"http://{_non_loopback_address()}:{listener.port}/mcp/")

    code, _, err = _autosubscribe(
        capsys,
        *BASE_ARGS,
        "--mcp-refresh-token-file",
        str(refresh_file),
        "--mcp-client-id",
        client_id,
        "--mcp-auth-server",
        auth_server.url,
    )

    assert code == 2 and "control-plane URL must be an https URL" in err
    assert len(auth_server.counters.requests) == requests  # not even the metadata
    assert (listener.connections, listener.received) == (0, b"")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/mcp",
        "http://127.0.0.2:9/mcp",
        "http://localhost:9/mcp",
        "http://[::1]:9/mcp",
        "https://cp.example/mcp/",
        "https://203.0.113.5:8443/mcp",
    ],
)
def test_https_or_loopback_http_is_accepted(url: str) -> None:
    assert resolve_control_plane_url(url, {}) == url
    assert resolve_control_plane_url(None, {"OCTOGEN_MCP_URL": url}) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.2:8000/mcp/",
        "http://cp.example/mcp",
        "http://localhost.example/mcp",
        "http://127.0.0.1.example/mcp",
        "http://[2001:db8::1]/mcp",
        "ftp://cp.example/mcp",
        "cp.example/mcp",
        "https:///mcp",
        "http://[::1/mcp",
    ],
)
def test_clear_text_or_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ControlPlaneError, match="control-plane URL must be an https URL"):
        resolve_control_plane_url(url, {})
    with pytest.raises(ControlPlaneError, match="control-plane URL must be an https URL"):
        resolve_control_plane_url(None, {"OCTOGEN_MCP_URL": url})


def test_the_client_itself_refuses_clear_text_to_a_remote_host() -> None:
    """The Python API (``autosubscribe(...)``, ``ControlPlaneClient``) has the same rule as the CLI."""
    with pytest.raises(ControlPlaneError, match="control-plane URL must be an https URL"):
        ControlPlaneClient("http://192.0.2.123:9/mcp/", "cp_secret")


# --- 2. autosubscribe: bad arguments never reach the network ----------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        "nobody",
        "user:nobody",
        "user:@acme.example",
        "user:ops@acme",
        "serviceAccount:",
        "serviceaccount:reader@p.iam.gserviceaccount.com",
        "domain:",
        "domain:acme",
        "allUsers",
        "allAuthenticatedUsers",
        "reader@p.iam.gserviceaccount.com",
        "principal://",
    ],
)
def test_a_principal_that_is_no_iam_member_is_refused(
    capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane, principal: str
) -> None:
    code, out, err = _autosubscribe(
        capsys, "--project", PROJECT, "--principal", principal, "--mcp-access-token", control_plane.token
    )

    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert "--principal must be an IAM principal: user:EMAIL, group:EMAIL, serviceAccount:EMAIL" in err
    assert repr(principal) in err
    assert control_plane.http_requests == 0


@pytest.mark.parametrize(
    "principal",
    [
        PRINCIPAL,
        "user:ops@acme.example",
        "group:analysts@acme.example",
        "domain:acme.example",
        "principal://iam.googleapis.com/locations/global/workforcePools/acme/subject/ops@acme.example",
        "principalSet://iam.googleapis.com/locations/global/workforcePools/acme/group/analysts",
    ],
)
def test_iam_principals_are_accepted(
    capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane, principal: str
) -> None:
    control_plane.add_subscriber(PROJECT, principal)

    code, _, err = _autosubscribe(
        capsys, "--project", PROJECT, "--principal", principal, "--mcp-access-token", control_plane.token
    )

    assert (code, err) == (0, "")
    assert control_plane.http_requests > 0


def test_a_missing_refresh_token_file_is_refused_before_the_authorization_server(
    capsys: pytest.CaptureFixture[str],
    control_plane: FakeControlPlane,
    auth_server: FakeAuthorizationServer,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nonexistent" / "refresh"
    requests = len(auth_server.counters.requests)

    code, out, err = _autosubscribe(
        capsys,
        *BASE_ARGS,
        "--mcp-refresh-token-file",
        str(missing),
        "--mcp-client-id",
        "x",
        "--mcp-auth-server",
        auth_server.url,
    )

    assert (code, out, err) == (2, "", f"{PREFIX}refresh-token file {missing} does not exist\n")
    assert len(auth_server.counters.requests) == requests
    assert control_plane.http_requests == 0


def test_a_missing_refresh_token_file_is_refused_in_json_mode_too(
    capsys: pytest.CaptureFixture[str],
    control_plane: FakeControlPlane,
    auth_server: FakeAuthorizationServer,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "refresh"

    code, out, err = _autosubscribe(
        capsys,
        *BASE_ARGS,
        "--json",
        "--mcp-refresh-token-file",
        str(missing),
        "--mcp-client-id",
        "x",
        "--mcp-auth-server",
        auth_server.url,
    )

    assert code == 2
    assert '"exit_code": 2' in out and str(missing) in out
    assert err == f"{PREFIX}refresh-token file {missing} does not exist\n"


@pytest.mark.parametrize("given_as", ["--mcp-token-command", "OCTOGEN_MCP_TOKEN_COMMAND"])
def test_an_unparsable_token_command_names_where_it_came_from(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    control_plane: FakeControlPlane,
    given_as: str,
) -> None:
    if given_as.startswith("--"):
        monkeypatch.setenv("OCTOGEN_MCP_TOKEN_COMMAND", "print-token")  # ignored: the option wins
        argv = [*BASE_ARGS, given_as, "'unbalanced"]
    else:
        monkeypatch.setenv(given_as, "'unbalanced")
        argv = BASE_ARGS

    code, out, err = _autosubscribe(capsys, *argv)

    assert (code, out, err) == (2, "", f"{PREFIX}{given_as} cannot be parsed: No closing quotation\n")
    assert control_plane.http_requests == 0


@pytest.mark.parametrize("given_as", ["--mcp-token-command", "OCTOGEN_MCP_TOKEN_COMMAND"])
def test_a_token_command_that_is_not_there_is_named_in_full(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    control_plane: FakeControlPlane,
    tmp_path: Path,
    given_as: str,
) -> None:
    not_executable = tmp_path / "bin" / "print-token"
    not_executable.parent.mkdir()
    not_executable.write_text("#!/bin/sh\necho token\n")
    not_executable.chmod(0o644)
    for command, complaint in (
        ("/nonexistent/cmd", "token command not found: /nonexistent/cmd"),
        ("/nonexistent/cmd --scope mcp", "token command not found: /nonexistent/cmd"),
        ("no-such-token-tool-0xc0ffee", "token command not found: no-such-token-tool-0xc0ffee"),
        (str(not_executable), f"token command is not executable: {not_executable}"),
        (str(tmp_path), f"token command is not executable: {tmp_path}"),
    ):
        if given_as.startswith("--"):
            argv = [*BASE_ARGS, given_as, command]
        else:
            monkeypatch.setenv(given_as, command)
            argv = BASE_ARGS

        code, out, err = _autosubscribe(capsys, *argv)

        assert (code, out, err) == (2, "", f"{PREFIX}{complaint} ({given_as})\n"), command
    assert control_plane.http_requests == 0


def test_a_token_command_on_the_path_still_runs(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    control_plane: FakeControlPlane,
    tmp_path: Path,
) -> None:
    script = tmp_path / "bin" / "print-octogen-token"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nprint({control_plane.token!r})\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    control_plane.add_subscriber(PROJECT, PRINCIPAL)

    code, _, err = _autosubscribe(capsys, *BASE_ARGS, "--mcp-token-command", "print-octogen-token")

    assert (code, err) == (0, "")


# --- 3. octogen-mcp-login: checked before the authorization server is asked -------------------------------


def _login(
    capsys: pytest.CaptureFixture[str], auth_server: FakeAuthorizationServer, tmp_path: Path, *argv: str
) -> tuple[Any, str]:
    directory = tmp_path / "config"
    defaults = [
        "--auth-server",
        auth_server.url,
        "--port",
        "0",
        "--timeout",
        "1",
        "--client-id-file",
        str(directory / "mcp.client-id"),
        "--redirect-uri-file",
        str(directory / "mcp.redirect-uri"),
        "--refresh-token-file",
        str(directory / "mcp.refresh"),
    ]
    code = _exit_code(lambda: login_main([*defaults, *argv]))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "resource",
    ["not a url", "mcp.octogen.ai", "ftp://mcp.octogen.ai", "https://", "https://mcp.octogen.ai/#frag"],
)
def test_login_refuses_a_resource_that_is_no_url(
    capsys: pytest.CaptureFixture[str], auth_server: FakeAuthorizationServer, tmp_path: Path, resource: str
) -> None:
    requests = len(auth_server.counters.requests)

    code, err = _login(capsys, auth_server, tmp_path, "--resource", resource)

    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(LOGIN_PREFIX)
    assert f"--resource must be an absolute http(s) URL without a fragment, got {resource!r}" in err
    assert len(auth_server.counters.requests) == requests
    assert not (tmp_path / "config").exists()


def _not_writable(tmp_path: Path) -> list[tuple[Path, str]]:
    """(file, why it cannot be written) that hold for any user, root included."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    a_directory = tmp_path / "a-directory"
    a_directory.mkdir()
    cases = [
        (
            a_file / "dir" / "refresh",
            f"its directory {a_file / 'dir'} cannot be created ({a_file} is not a directory)",
        ),
        (a_file / "refresh", f"{a_file} is not a directory"),
        (a_directory, "it is a directory"),
    ]
    if not os.access("/", os.W_OK):  # the audit's case, as a user who cannot create /nonexistent
        cases.append(
            (
                Path("/nonexistent/dir/refresh"),
                "its directory /nonexistent/dir cannot be created (/ is not writable)",
            )
        )
    if os.geteuid() != 0:  # root writes anywhere
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o500)
        cases.append((read_only / "refresh", f"its directory {read_only} is not writable"))
        cases.append(
            (
                read_only / "octogen" / "refresh",
                f"its directory {read_only / 'octogen'} cannot be created ({read_only} is not writable)",
            )
        )
    return cases


@pytest.mark.parametrize("option", ["--refresh-token-file", "--client-id-file", "--redirect-uri-file"])
def test_login_refuses_a_file_it_could_never_write(
    capsys: pytest.CaptureFixture[str], auth_server: FakeAuthorizationServer, tmp_path: Path, option: str
) -> None:
    requests = len(auth_server.counters.requests)
    for path, why in _not_writable(tmp_path):
        code, err = _login(capsys, auth_server, tmp_path, option, str(path))

        assert (code, err) == (2, f"{LOGIN_PREFIX}{option} {path} cannot be written: {why} (see --help)\n")
    assert len(auth_server.counters.requests) == requests
