"""``octogen-bq-autosubscribe`` when the control plane answers garbage (issue 13): an HTML page with HTTP 200,
truncated JSON, JSON that is no JSON-RPC, a body shorter than announced, an oversized answer. Each is one
line on stderr, exit 1, at once (not after the 30 s request timeout), without a traceback; an oversized
answer is refused without being read whole. And every bad argument exits 2. Real HTTP on 127.0.0.1 against
tests/fake_control_plane.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from octogen_source.bigquery import guarded_transport
from octogen_source.bigquery.autosubscribe_cli import main
from tests.bq_support import BASE_ARGS, PREFIX, PRINCIPAL, PROJECT, control_plane_listing_shoes
from tests.fake_control_plane import FakeControlPlane, RawAnswer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def control_plane(
    control_plane_server: FakeControlPlane, monkeypatch: pytest.MonkeyPatch
) -> FakeControlPlane:
    control_plane_listing_shoes(control_plane_server, monkeypatch)
    monkeypatch.setenv("OCTOGEN_MCP_ACCESS_TOKEN", control_plane_server.token)
    return control_plane_server


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code = main([*BASE_ARGS, *args])
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    return code, captured.out, captured.err, elapsed


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            RawAnswer(200, "text/html; charset=utf-8", b"<!doctype html><html><body>Sign in</body></html>"),
            "answered HTTP 200 with text/html, not JSON-RPC: is the URL the MCP endpoint?",
        ),
        (
            RawAnswer(200, "application/json", b'{"jsonrpc": "2.0", "id": 0, "result": {"protocolVers'),
            "answered HTTP 200 but its JSON is truncated or not JSON (52 characters)",
        ),
        (RawAnswer(200, "application/json", b""), "answered HTTP 200 but its JSON is empty"),
        (
            RawAnswer(200, "application/json", b'{"status": "ok"}'),
            "answered with JSON that is not a JSON-RPC message",
        ),
        (
            RawAnswer(200, "text/event-stream", b'event: message\ndata: {"jsonrpc": "2.0", "id"\n\n'),
            "answered HTTP 200 but an event's data is truncated or not JSON",
        ),
        (
            RawAnswer(200, "application/json", b'{"jsonrpc": "2.0", "id": 0, ', declared_length=4096),
            "broke off its answer (the body was shorter than announced, or the connection closed early)",
        ),
        (
            RawAnswer(200, "application/json", b"", declared_length=9 * 1024 * 1024),
            "answered with 9,437,184 bytes, more than the 8,388,608 accepted; refused unread",
        ),
    ],
    ids=["html-200", "truncated-json", "empty-body", "not-json-rpc", "sse-garbage", "short-body", "too-long"],
)
def test_garbage_answer_is_one_line_at_once(
    capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane, answer: RawAnswer, message: str
) -> None:
    control_plane.answer_raw(answer)

    code, out, err, elapsed = _run(capsys, "--apply")

    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith(PREFIX), err
    assert message in err
    assert f"control plane at {control_plane.url}" in err
    for noise in ("Traceback", "pydantic", "validation error", "ValidationError"):
        assert noise not in err
    assert elapsed < 5, f"took {elapsed:.1f} s: waited for the request timeout"
    assert control_plane.mutating_calls == []


def test_an_oversized_streamed_answer_is_cut_off_not_read_whole(
    capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane
) -> None:
    total = 256 * 1024 * 1024
    control_plane.answer_raw(RawAnswer(200, "application/json", stream_bytes=total))

    code, _, err, elapsed = _run(capsys)

    assert code == 1
    assert err == (
        f"{PREFIX}control plane at {control_plane.url} answered with more than the 8,388,608 bytes accepted; "
        "cut off\n"
    )
    time.sleep(0.2)  # the fake notices the hang-up
    # what the server managed to push: the limit plus socket buffers, nowhere near the 256 MiB offered
    assert control_plane.raw_bytes_sent < 48 * 1024 * 1024, control_plane.raw_bytes_sent
    assert elapsed < 10


def test_the_limit_is_a_module_constant(
    capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guarded_transport, "MAX_CONTROL_PLANE_RESPONSE_BYTES", 64)

    code, _, err, _ = _run(capsys)

    assert code == 1
    assert "more than the 64 accepted; refused unread" in err


def test_good_answers_pass_the_guard(
    capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane
) -> None:
    code, out, err, _ = _run(capsys, "--json")
    assert (code, err) == (0, "")
    assert '"catalog": "shoes"' in out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--project", PROJECT], "the following arguments are required: --principal"),
        ([*BASE_ARGS, "--bogus"], "unrecognized arguments: --bogus"),
        ([*BASE_ARGS, "--apply=yes"], "ignored explicit argument"),
        (["--project", "", "--principal", PRINCIPAL], "--project must be a GCP project id"),
        (["--project", PROJECT, "--principal", "user: a b"], "--principal must be one principal"),
        ([*BASE_ARGS, "--catalog", "a b"], "--catalog must be a catalog key"),
        ([*BASE_ARGS, "--catalog", "shoes,"], "--catalog must be a catalog key"),
        ([*BASE_ARGS, "--mcp-url", "ftp://cp.example/mcp"], "control-plane URL must be an https URL"),
        ([*BASE_ARGS, "--control-plane-url", "cp.example"], "control-plane URL must be an https URL"),
        ([*BASE_ARGS, "--mcp-refresh-token-file", " "], "--mcp-refresh-token-file must not be empty"),
        ([*BASE_ARGS, "--mcp-client-id-file", ""], "--mcp-client-id-file must not be empty"),
        ([*BASE_ARGS, "--mcp-access-token", ""], "--mcp-access-token must not be empty"),
        ([*BASE_ARGS, "--mcp-token-command", ""], "--mcp-token-command must not be empty"),
        (
            [*BASE_ARGS, "--mcp-refresh-token-file", "/tmp/r"],
            "a refresh-token file needs the OAuth client id",
        ),
        (
            [
                *BASE_ARGS,
                "--mcp-refresh-token-file",
                "/tmp/r",
                "--mcp-client-id",
                "c",
                "--mcp-auth-server",
                "http://auth.example",
            ],
            "must be an https URL (http only on 127.0.0.1/localhost)",
        ),
        (
            [
                *BASE_ARGS,
                "--mcp-refresh-token-file",
                "/tmp/r",
                "--mcp-client-id",
                "c",
                "--mcp-token-endpoint",
                "http://auth.example/oauth2/token",
            ],
            "must be an https URL (http only on 127.0.0.1/localhost)",
        ),
        ([*BASE_ARGS, "--mcp-access-token", "two words"], "malformed access token"),
    ],
)
def test_every_bad_argument_exits_2(
    capsys: pytest.CaptureFixture[str], control_plane: FakeControlPlane, argv: list[str], complaint: str
) -> None:
    code: Any
    try:
        code = main(argv)
    except SystemExit as exited:
        code = exited.code
    captured = capsys.readouterr()

    assert code == 2, captured.err
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and complaint in captured.err, captured.err
    assert control_plane.http_requests == 0
