"""The control-plane client on its own: access tokens, tool results, error mapping; and the pass's shared
Analytics Hub client. Network tests use the real MCP client against tests/fake_control_plane.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult, TextContent

from octogen_source.bigquery._mcp_compat import httpx  # httpx2 under mcp 2.x
from octogen_source.bigquery.autosubscribe import (
    AutosubscribeOptions,
    CatalogAction,
    SharedAnalyticsHubSubscriber,
    run_autosubscribe_pass,
)
from octogen_source.bigquery.control_plane import (
    ControlPlaneClient,
    ControlPlaneError,
    ControlPlaneTokenError,
    ControlPlaneToolError,
    MissingControlPlaneTokenError,
    parse_tool_result,
    redact_url,
    resolve_access_token,
    resolve_control_plane_url,
    suggested_dataset_id,
    translate_transport_error,
)
from octogen_source.bigquery.guarded_transport import RefusedRequestError
from octogen_source.bigquery.subscribe import GoogleCredentialsMissingError
from tests.fake_control_plane import FakeControlPlane, tool_result

pytestmark = pytest.mark.timeout(60)

TOKEN = "cp_0123456789abcdef"


@pytest.fixture(scope="module")
def control_plane_server() -> Iterator[FakeControlPlane]:
    with FakeControlPlane(token=TOKEN) as running:
        yield running


@pytest.fixture
def control_plane(control_plane_server: FakeControlPlane) -> FakeControlPlane:
    control_plane_server.reset()
    return control_plane_server


def _token_script(tmp_path: Path, body: str) -> str:
    script = tmp_path / "token.py"
    script.write_text(body)
    return f"{sys.executable} {script}"


# --- tokens ------------------------------------------------------------------------------------------------


def test_token_variable_wins_over_the_command(tmp_path: Path) -> None:
    env = {"OCTOGEN_MCP_ACCESS_TOKEN": f"  {TOKEN}\n", "OCTOGEN_MCP_TOKEN_COMMAND": "/nonexistent/never-run"}
    assert resolve_access_token(env) == TOKEN


@pytest.mark.parametrize(
    "printed",
    [
        f"print({TOKEN!r})",
        f"import json; print(json.dumps({{'access_token': {TOKEN!r}, 'expires_in': 300}}))",
    ],
)
def test_token_command_output_plain_or_json(tmp_path: Path, printed: str) -> None:
    assert resolve_access_token({"OCTOGEN_MCP_TOKEN_COMMAND": _token_script(tmp_path, printed)}) == TOKEN


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"import sys; print({TOKEN!r}); sys.exit(2)", "token command python3.11 exited with status 2"),
        (f"print('Bearer ' + {TOKEN!r})", "gave a malformed access token"),
        ("print('')", "gave an empty access token"),
        (f"print('{{\"token\": \"' + {TOKEN!r} + '\"}}')", "printed JSON without an access_token field"),
    ],
)
def test_token_command_failures_never_show_the_output(tmp_path: Path, body: str, message: str) -> None:
    command = _token_script(tmp_path, body)
    with pytest.raises(ControlPlaneTokenError) as raised:
        resolve_access_token({"OCTOGEN_MCP_TOKEN_COMMAND": command})
    assert message.replace("python3.11", sys.executable) in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_token_command_not_found_and_unset() -> None:
    with pytest.raises(ControlPlaneTokenError, match=r"token command not found: /opt/x/no-such-token-tool$"):
        resolve_access_token({"OCTOGEN_MCP_TOKEN_COMMAND": "/opt/x/no-such-token-tool --scope mcp"})
    with pytest.raises(MissingControlPlaneTokenError):
        resolve_access_token({})


def test_control_plane_url_resolution() -> None:
    assert resolve_control_plane_url(None, {}) == "https://mcp.octogen.ai/mcp/"
    assert (
        resolve_control_plane_url(None, {"OCTOGEN_MCP_URL": "http://127.0.0.1:9/mcp"})
        == "http://127.0.0.1:9/mcp"
    )
    assert (
        resolve_control_plane_url("https://cp.example/mcp", {"OCTOGEN_MCP_URL": "x"})
        == "https://cp.example/mcp"
    )
    with pytest.raises(ControlPlaneError, match="must be an http"):
        resolve_control_plane_url("cp.example/mcp", {})
    assert redact_url("https://user:secret@cp.example:8443/mcp?token=abc#x") == "https://cp.example:8443/mcp"


# --- tool results ------------------------------------------------------------------------------------------


def _text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        # current servers: every value wrapped as {"result": <value>}, lists and objects alike
        (
            tool_result([], {"result": [{"catalogKey": "a"}]}),
            [{"catalogKey": "a"}],
        ),
        (
            tool_result([_text("{}")], {"result": {"subscribers": [], "cells": []}}),
            {"subscribers": [], "cells": []},
        ),
        (
            tool_result([], {"result": {"error": "not_authorized"}}),
            {"error": "not_authorized"},
        ),
        (tool_result([_text('[{"catalogKey": "a"}]')]), [{"catalogKey": "a"}]),
        # the first text part holding JSON, when others hold prose
        (
            tool_result([_text("Listings:"), _text('{"status": "source_stale"}')]),
            {"status": "source_stale"},
        ),
        (
            tool_result([_text('{"catalogKey": "a"}'), _text('{"catalogKey": "b"}')]),
            [{"catalogKey": "a"}, {"catalogKey": "b"}],
        ),
        (
            tool_result([_text("ignored")], {"status": "active"}),
            {"status": "active"},
        ),
    ],
)
def test_tool_result_json_from_structured_content_or_text(result: CallToolResult, expected: Any) -> None:
    if isinstance(expected, dict) and "error" in expected:
        with pytest.raises(ControlPlaneToolError, match="t failed: not_authorized"):
            parse_tool_result("t", result)
        return
    assert parse_tool_result("t", result) == expected


@pytest.mark.parametrize(
    ("result", "code", "detail"),
    [
        (
            tool_result([], {"error": "catalog_not_granted"}),
            "catalog_not_granted",
            None,
        ),
        (
            tool_result([_text('{"error": "not_authorized", "detail": "scope"}')]),
            "not_authorized",
            "scope",
        ),
        (tool_result([_text("Unknown tool: t")], is_error=True), "tool_failed", "Unknown tool: t"),
        (
            tool_result([_text('{"error": "request_failed"}')], is_error=True),
            "request_failed",
            None,
        ),
        (
            tool_result([], {"result": {"error": "catalog_not_granted", "message": "m"}}),
            "catalog_not_granted",
            "m",
        ),
    ],
)
def test_tool_level_errors(result: CallToolResult, code: str, detail: str | None) -> None:
    with pytest.raises(ControlPlaneToolError) as raised:
        parse_tool_result("t", result)
    assert (raised.value.tool, raised.value.code, raised.value.detail) == ("t", code, detail)


def test_tool_result_without_json_is_an_error() -> None:
    with pytest.raises(ControlPlaneError, match="t returned no JSON result"):
        parse_tool_result("t", tool_result([_text("all good")]))


@pytest.mark.parametrize("raised_by", ["guarded transport", "http library"])
def test_nested_exception_groups_become_one_error(raised_by: str) -> None:
    request = httpx.Request("POST", "https://cp.example/mcp", headers={"Authorization": f"Bearer {TOKEN}"})
    unauthorized: Exception = (
        RefusedRequestError(401)
        if raised_by == "guarded transport"
        else httpx.HTTPStatusError("401", request=request, response=httpx.Response(401, request=request))
    )
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [unauthorized])])

    error = translate_transport_error(nested, url="https://cp.example/mcp")

    assert (str(error), error.status_code) == ("control plane rejected the access token (HTTP 401)", 401)


def test_suggested_dataset_id_forms() -> None:
    assert suggested_dataset_id("octogen_shoes") == "octogen_shoes"
    assert suggested_dataset_id("acme.octogen_shoes") == "octogen_shoes"
    assert suggested_dataset_id({"projectId": "acme", "datasetId": "octogen_shoes"}) == "octogen_shoes"
    assert suggested_dataset_id(None) is None


# --- the client against the fake -------------------------------------------------------------------------


async def test_client_calls_tools_and_maps_errors(control_plane: FakeControlPlane) -> None:
    control_plane.add_listing("shoes")
    async with ControlPlaneClient(control_plane.url, TOKEN) as client:
        [listing] = await client.list_listing_resources()
        assert (listing.catalog_key, listing.location) == ("shoes", "us")
        with pytest.raises(ControlPlaneToolError) as raised:
            await client.call_tool("no_such_tool")
        assert raised.value.code == "tool_failed"
        with pytest.raises(ControlPlaneToolError) as invalid:  # the server validates arguments
            await client.call_tool("register_bigquery_subscriber", {"request": {"subscriberProjectId": "p"}})
        assert invalid.value.code == "tool_failed"
    assert "Bearer" not in repr(client) and TOKEN not in repr(client)

    async with ControlPlaneClient(control_plane.url, "cp_wrong") as rejected:
        with pytest.raises(ControlPlaneError) as unauthorized:
            await rejected.list_subscribers()
    assert unauthorized.value.status_code == 401


async def test_shared_analytics_hub_client_is_built_once_and_failures_are_per_catalog(
    control_plane: FakeControlPlane,
) -> None:
    for catalog in ("bags", "shoes"):
        control_plane.add_listing(catalog)
    reader = control_plane.add_subscriber("acme", "user:ops@acme.example")
    for catalog in ("bags", "shoes"):
        control_plane.set_cell(reader, catalog, "awaiting_subscription")
    builds: list[int] = []

    def no_credentials() -> Any:
        builds.append(1)
        raise GoogleCredentialsMissingError("no Google credentials found")

    subscriber = SharedAnalyticsHubSubscriber(no_credentials)
    async with ControlPlaneClient(control_plane.url, TOKEN) as client:
        report = await run_autosubscribe_pass(
            client,
            AutosubscribeOptions(project="acme", principal="user:ops@acme.example", apply=True),
            subscribe=subscriber,
        )

    assert [(o.catalog_key, o.action, o.detail) for o in report.catalogs] == [
        ("bags", CatalogAction.ERROR, "no Google credentials found"),
        ("shoes", CatalogAction.ERROR, "no Google credentials found"),
    ]
    assert builds == [1]
    assert report.exit_code == 1
    assert control_plane.mutating_calls == []
