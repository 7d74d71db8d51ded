"""What differs between the ``mcp`` SDK's 1.x and 2.x lines, in one place.

The control-plane client (and the tests' fake control plane) run on both. What 2.x changed that this package
touches: its HTTP library is ``httpx2`` (a fork of ``httpx`` with the same API; the client handed to
``streamable_http_client`` must be one, and the transport errors it raises are its own), ``McpError`` is
``MCPError``, result fields are snake_case (``is_error``, ``structured_content``), timeouts are seconds
rather than ``timedelta``, and ``JSONRPCMessage`` is a plain union validated by ``jsonrpc_message_adapter``.
An HTTP error status no longer raises ``HTTPStatusError`` there either; :mod:`.guarded_transport` raises its
own :class:`~octogen_source.bigquery.guarded_transport.RefusedRequestError` on both lines.

Type checking follows 2.x (the default environment's); 1.x is tested in ``.mcp1-venv`` (``mcp1`` group).
"""

from __future__ import annotations

import importlib.metadata
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

MCP_MAJOR = int(importlib.metadata.version("mcp").split(".")[0])

if TYPE_CHECKING or MCP_MAJOR >= 2:
    import httpx2 as httpx
    from mcp.shared.exceptions import MCPError
else:
    import httpx
    from mcp.shared.exceptions import McpError as MCPError

__all__ = [
    "MCP_MAJOR",
    "MCPError",
    "httpx",
    "is_error",
    "read_timeout",
    "structured_content",
    "validate_json_rpc_message",
]


def read_timeout(seconds: float) -> Any:
    """``ClientSession``'s ``read_timeout_seconds``: a ``timedelta`` for 1.x, seconds for 2.x."""
    return seconds if MCP_MAJOR >= 2 else timedelta(seconds=seconds)


def is_error(result: Any) -> bool:
    """A ``CallToolResult``'s error flag (``isError`` in 1.x)."""
    return bool(result.is_error if MCP_MAJOR >= 2 else result.isError)


def structured_content(result: Any) -> dict[str, Any] | None:
    """A ``CallToolResult``'s structured content (``structuredContent`` in 1.x)."""
    value = result.structured_content if MCP_MAJOR >= 2 else result.structuredContent
    return value if isinstance(value, dict) else None


def validate_json_rpc_message(document: Any) -> None:
    """Raise ``pydantic.ValidationError`` unless ``document`` is a JSON-RPC message."""
    if MCP_MAJOR >= 2:
        from mcp.types import jsonrpc_message_adapter

        jsonrpc_message_adapter.validate_python(document)
    else:
        from mcp import types

        cast(Any, types.JSONRPCMessage).model_validate(document)  # a pydantic RootModel in 1.x
