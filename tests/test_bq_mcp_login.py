"""``octogen-mcp-login`` (issue 14, item 3), a separate process, against the local authorization server.

The test plays the browser: it reads the authorization URL the command prints, follows it to the local
authorization server (which "signs the user in" and redirects to the loopback callback) and follows that
redirect to the command's listener. Then the files it wrote carry a real autosubscribe pass. Real HTTP on
127.0.0.1 only; no browser is opened.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from octogen_source.bigquery.autosubscribe_cli import main as autosubscribe_main
from octogen_source.bigquery.login_cli import main as login_main
from tests.bq_support import PRINCIPAL, PROJECT
from tests.fake_authorization_server import FakeAuthorizationServer
from tests.fake_control_plane import FakeControlPlane

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def control_plane() -> Iterator[FakeControlPlane]:
    with FakeControlPlane() as running:
        yield running


@pytest.fixture(scope="module")
def auth(control_plane: FakeControlPlane) -> Iterator[FakeAuthorizationServer]:
    with FakeAuthorizationServer(on_access_token=control_plane.allow_token) as running:
        yield running


@dataclass
class Files:
    client_id: Path
    redirect_uri: Path
    refresh_token: Path

    def argv(self) -> list[str]:
        return [
            "--client-id-file",
            str(self.client_id),
            "--redirect-uri-file",
            str(self.redirect_uri),
            "--refresh-token-file",
            str(self.refresh_token),
        ]


@pytest.fixture
def files(tmp_path: Path) -> Files:
    directory = tmp_path / "home" / ".config" / "octogen"
    return Files(directory / "mcp.client-id", directory / "mcp.redirect-uri", directory / "mcp.refresh")


class LoginProcess:
    def __init__(self, auth: FakeAuthorizationServer, files: Files, *extra: str) -> None:
        environment = {**os.environ, "PYTHONPATH": str(REPO), "BROWSER": "false"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "octogen_source.bigquery.login_cli",
                "--auth-server",
                auth.url,
                "--timeout",
                "30",
                *files.argv(),
                *extra,
            ],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.printed: list[str] = []

    def authorization_url(self) -> str:
        assert self.process.stderr is not None
        while True:
            line = self.process.stderr.readline()
            assert line, f"exited before printing the URL: {self.printed}"
            self.printed.append(line)
            if line.startswith("http"):
                return line.strip()

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, "".join(self.printed) + err


def _browser(url: str) -> httpx.Response:
    """Follow the authorization URL to the server, then its redirect to the loopback callback."""
    to_server = httpx.get(url, follow_redirects=False, timeout=10)
    assert to_server.status_code == 302, to_server.text
    location = to_server.headers["location"]
    assert location.startswith("http://127.0.0.1:")
    return httpx.get(location, timeout=10)


def test_login_writes_the_three_files_and_a_pass_runs_on_them(
    auth: FakeAuthorizationServer,
    control_plane: FakeControlPlane,
    files: Files,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registrations = auth.counters.registrations
    login = LoginProcess(auth, files, "--port", "0")

    url = login.authorization_url()
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    callback = _browser(url)
    code, out, err = login.finish()

    assert code == 0, err
    assert callback.status_code == 200 and "login complete" in callback.text
    assert url.startswith(f"{auth.url}/authorize?")
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"].startswith("http://127.0.0.1:") and query["redirect_uri"].endswith(
        "/callback"
    )
    assert query["resource"] == "https://mcp.octogen.ai"
    assert "offline_access" in query["scope"].split()
    assert auth.counters.registrations == registrations + 1  # a public client, registered dynamically
    client_id = files.client_id.read_text().strip()
    assert client_id == query["client_id"]
    assert files.redirect_uri.read_text() == query["redirect_uri"] + "\n"
    refresh_token = files.refresh_token.read_text().strip()
    assert auth.live_refresh_tokens(client_id) == [refresh_token]
    for path in (files.client_id, files.redirect_uri, files.refresh_token):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"export OCTOGEN_MCP_REFRESH_TOKEN_FILE={files.refresh_token}" in out
    for secret in auth.issued_secrets:
        assert secret not in out + err

    # the files carry a pass
    control_plane.reset()
    control_plane.set_tokens()
    monkeypatch.setenv("OCTOGEN_MCP_URL", control_plane.url)
    monkeypatch.setenv("OCTOGEN_MCP_AUTH_SERVER", auth.url)
    monkeypatch.setenv("OCTOGEN_MCP_CLIENT_ID_FILE", str(files.client_id))
    monkeypatch.setenv("OCTOGEN_MCP_REFRESH_TOKEN_FILE", str(files.refresh_token))
    for variable in ("OCTOGEN_MCP_ACCESS_TOKEN", "OCTOGEN_MCP_TOKEN_COMMAND", "OCTOGEN_MCP_CLIENT_ID"):
        monkeypatch.delenv(variable, raising=False)
    assert autosubscribe_main(["--project", PROJECT, "--principal", PRINCIPAL]) == 0, capsys.readouterr().err
    assert auth.live_refresh_tokens(client_id) == [files.refresh_token.read_text().strip()] != [refresh_token]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_second_login_on_the_same_port_reuses_the_registered_client(
    auth: FakeAuthorizationServer, files: Files
) -> None:
    port = str(_free_port())
    first = LoginProcess(auth, files, "--port", port)
    _browser(first.authorization_url())
    assert first.finish()[0] == 0
    client_id = files.client_id.read_text()
    registrations = auth.counters.registrations

    second = LoginProcess(auth, files, "--port", port, "--json")
    _browser(second.authorization_url())
    code, out, _ = second.finish()

    assert code == 0
    assert '"client_registered": false' in out
    assert auth.counters.registrations == registrations
    assert files.client_id.read_text() == client_id


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"error": "access_denied"}, "octogen-mcp-login: error: sign-in refused: access_denied\n"),
        (
            {"code": "code_forged", "state": "not-the-one-sent"},
            "octogen-mcp-login: error: the sign-in came back with the wrong state; nothing was written\n",
        ),
    ],
)
def test_a_refused_or_forged_callback_writes_nothing(
    auth: FakeAuthorizationServer, files: Files, answer: dict[str, str], message: str
) -> None:
    login = LoginProcess(auth, files, "--port", "0")
    query = parse_qs(urlsplit(login.authorization_url()).query)
    callback = f"{query['redirect_uri'][0]}?{urlencode(answer)}"

    httpx.get(callback, timeout=10)
    code, _, err = login.finish()

    assert code == 1
    assert err.endswith(message)
    assert not files.refresh_token.exists() and not files.client_id.exists()


def test_an_unreachable_authorization_server_is_one_line(files: Files) -> None:
    port = _free_port()
    login = subprocess.run(
        [
            sys.executable,
            "-m",
            "octogen_source.bigquery.login_cli",
            "--auth-server",
            f"http://127.0.0.1:{port}",
            "--port",
            "0",
            *files.argv(),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert login.returncode == 1
    assert login.stderr == (
        "octogen-mcp-login: error: authorization-server metadata: cannot reach "
        f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server: ConnectError\n"
    )


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--port", "70000"], "--port must be 0..65535"),
        (["--port", "x"], "argument --port: invalid int value"),
        (["--timeout", "0"], "--timeout must be positive"),
        (["--auth-server", "http://auth.example"], "must be an https URL"),
        (["--refresh-token-file", ""], "--refresh-token-file must not be empty"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str) -> None:
    with pytest.raises(SystemExit) as exited:
        login_main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(err.splitlines()) == 1 and complaint in err


def test_console_script_entry_point() -> None:
    script = Path(sys.executable).parent / "octogen-mcp-login"
    completed = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0
    assert "--refresh-token-file" in completed.stdout and "--open" in completed.stdout
