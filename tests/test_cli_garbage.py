"""Every CLI answers garbage with one line, fast, without a traceback and in bounded memory; every bad
argument exits 2 (issue 13, item 2). ``pipelines/sync.py`` against the sandbox (truncated JSON, an oversized
answer, a process whose peak RSS is measured) and ``octogen-bq-subscribe`` against sockets on 127.0.0.1 that
answer its gRPC client with an HTML page, random bytes or an endless stream. ``octogen-bq-autosubscribe`` and
``octogen-mcp-login`` are covered by tests/test_bq_autosubscribe_garbage.py and tests/test_bq_mcp_login.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from octogen_source.bigquery.subscribe import ENDPOINT_ENV
from octogen_source.bigquery.subscribe_cli import main as subscribe_main
from octogen_source.sandbox import Sandbox
from tests.cli_support import KEY_VARIABLES, SCRIPT, one_error_line, peak_rss_command

FAST = 10.0
"""Seconds within which a garbage answer must be reported (the request timeout is 30 s)."""


def _timed_error(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = 1) -> str:
    started = time.monotonic()
    line = one_error_line(capsys, argv, status)
    assert time.monotonic() - started < FAST
    return line


def test_sync_truncated_json_is_one_line_at_once(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    cli_env.fail_next(1, "garbage", endpoint="lookup")
    line = _timed_error(capsys, [])
    assert "POST /products/lookup" in line and "invalid JSON" in line


def test_sync_oversized_answer_is_refused_naming_endpoint_and_limit(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    cli_env.fail_next(1, "oversized", endpoint="search", body_bytes=256 * 1024 * 1024)
    line = _timed_error(capsys, ["--max-response-bytes", "2000000"])
    assert line.startswith("error: the Octogen API answered POST /products/search with a longer body, more")
    assert "2,000,000-byte limit" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--price-min", "100", "--price-max", "10"], "--price-min (100) is above --price-max (10)"),
        (["--price-min", "nan"], "'nan' is not a number >= 0"),
        (["--max-response-bytes", "0"], "'0' is not a positive integer"),
        (["--max-response-bytes", "1e9"], "'1e9' is not a positive integer"),
        (["--dataset", "octogen_sync"], "must differ from the pipeline name 'octogen_sync'"),
        # written by dlt as octogen_sync: DuckDB could not tell it from the database of that name
        (["--dataset", "Octogen Sync"], "'Octogen Sync' (written as 'octogen_sync') must differ"),
        (["--discover", "not a host!"], "no store host"),
        (["--allow-mass-removal=yes"], "ignored explicit argument"),
    ],
)
def test_sync_bad_arguments_exit_2(
    cli_env: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("OCTO_API_KEY", cli_env.api_key)
    assert message in _timed_error(capsys, argv, status=2)
    assert cli_env.request_counts["search"] == 0


def test_sync_process_memory_stays_bounded_on_a_huge_answer(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.fail_next(1, "oversized", endpoint="search", body_bytes=1024 * 1024 * 1024)
    env = {name: value for name, value in os.environ.items() if name not in KEY_VARIABLES}
    env.update(
        OCTO_API_KEY=sandbox.api_key,
        DLT_DATA_DIR=str(tmp_path / "dlt"),
        SOURCES__OCTOGEN__BASE_URL=sandbox.base_url,
        SOURCES__OCTOGEN__CATALOGS=json.dumps(sandbox.granted_catalogs()),
        PEAK_RSS_FILE=str(tmp_path / "peak_rss_kib"),
    )
    ran = subprocess.run(
        peak_rss_command(SCRIPT),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 1 and ran.stdout == ""
    assert ran.stderr.count("\n") == 1 and "16,777,216-byte limit" in ran.stderr, ran.stderr
    # 1 GiB offered; the process reads at most the 16 MiB limit (before: 3.2 GB peak for this answer)
    peak_kib = int((tmp_path / "peak_rss_kib").read_text())
    assert peak_kib < 400 * 1024, f"peak RSS {peak_kib // 1024} MiB"


class GarbageServer:
    """A TCP server on 127.0.0.1 answering every connection with ``answer`` (or endless bytes)."""

    def __init__(self, answer: bytes | None) -> None:
        self._answer = answer
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._answer_one, args=(connection,), daemon=True).start()

    def _answer_one(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                if self._answer is not None:
                    connection.sendall(self._answer)
                    return
                chunk = b"A" * 1024 * 1024
                while not self._stop.is_set():
                    connection.sendall(chunk)
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._socket.close()


HTML = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 33\r\n\r\n"
    b"<html><body>Sign in</body></html>"
)


@pytest.fixture(params=["html", "bytes", "endless"])
def garbage_hub(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    answer = {"html": HTML, "bytes": bytes(range(256)) * 4, "endless": None}[request.param]
    server = GarbageServer(answer)
    monkeypatch.setenv(ENDPOINT_ENV, server.address)
    yield request.param
    server.close()


LISTING = "projects/octogen-share/locations/us/dataExchanges/octogen_catalogs/listings/acme-shoes"


@pytest.mark.parametrize("mode", [[], ["--apply"]], ids=["dry-run", "apply"])
def test_subscribe_answers_garbage_with_one_line_at_once(
    garbage_hub: str, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    started = time.monotonic()
    code = subscribe_main(["--listing", LISTING, "--project", "my-proj", *mode])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("octogen-bq-subscribe: error: Analytics Hub error") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert elapsed < FAST
