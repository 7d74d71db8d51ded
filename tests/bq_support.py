"""What the tests of ``octogen-bq-autosubscribe`` and ``octogen-mcp-login`` share: the subscriber's project
and principal, the arguments every autosubscribe run needs, its error prefix, and an environment without
credentials (the fake control plane's fixture, ``control_plane_server``, is in conftest.py)."""

from __future__ import annotations

import pytest

from tests.fake_control_plane import FakeControlPlane

PROJECT = "acme-analytics"
PRINCIPAL = "serviceAccount:octogen-reader@acme-analytics.iam.gserviceaccount.com"
BASE_ARGS = ["--project", PROJECT, "--principal", PRINCIPAL]
PREFIX = "octogen-bq-autosubscribe: error: "
CREDENTIAL_VARIABLES = (
    "OCTOGEN_MCP_ACCESS_TOKEN",
    "OCTOGEN_MCP_TOKEN_COMMAND",
    "OCTOGEN_MCP_REFRESH_TOKEN_FILE",
    "OCTOGEN_MCP_CLIENT_ID_FILE",
    "OCTOGEN_MCP_CLIENT_ID",
    "OCTOGEN_MCP_AUTH_SERVER",
    "OCTOGEN_MCP_TOKEN_ENDPOINT",
)
"""Every variable the tools read a credential (or where to get one) from."""


def control_plane_listing_shoes(
    server: FakeControlPlane, monkeypatch: pytest.MonkeyPatch
) -> FakeControlPlane:
    """``server`` reset to one listing, ``shoes``, and the tools pointed at it with no credential set."""
    server.reset()
    server.add_listing("shoes")
    clear_credentials(monkeypatch)
    monkeypatch.setenv("OCTOGEN_MCP_URL", server.url)
    return server


def clear_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unsets :data:`CREDENTIAL_VARIABLES`: a test sets only the ones it means."""
    for variable in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
