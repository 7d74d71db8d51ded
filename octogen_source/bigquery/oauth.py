"""OAuth 2.1 calls against the control plane's authorization server (public client, PKCE, refresh tokens).

Authorization-server metadata (RFC 8414) from ``<server>/.well-known/oauth-authorization-server``, dynamic
registration of a public client (RFC 7591, ``token_endpoint_auth_method: none``), PKCE S256, the
authorization-code exchange and the refresh-token exchange. Synchronous ``httpx``; every failure is one
:class:`OAuthError` whose message never holds a token (the server's ``error`` code and a bounded, one-line
``error_description`` at most).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from octogen_source.errors import OctogenError

DEFAULT_AUTH_SERVER = "https://auth.octogen.ai"
DEFAULT_RESOURCE = "https://mcp.octogen.ai"
DEFAULT_SCOPE = "openid profile email offline_access"
METADATA_PATH = "/.well-known/oauth-authorization-server"
HTTP_TIMEOUT_SECONDS = 30.0


class OAuthError(OctogenError):
    """An authorization-server call failed; ``error`` is the server's OAuth error code when it sent one."""

    def __init__(self, message: str, *, error: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.status_code = status_code


class RefreshTokenRejectedError(OAuthError):
    """The token endpoint refused the refresh token (``invalid_grant``): revoked, expired or already spent."""


@dataclass(frozen=True)
class ServerMetadata:
    issuer: str | None
    authorization_endpoint: str | None
    token_endpoint: str
    registration_endpoint: str | None


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    refresh_token: str | None
    expires_in: float | None

    def __repr__(self) -> str:  # never show the tokens
        return f"TokenResponse(expires_in={self.expires_in!r}, rotated={self.refresh_token is not None})"


def check_endpoint_url(url: str, *, what: str) -> str:
    """``url`` if :func:`keeps_tokens_private`, else :class:`OAuthError` naming ``what``."""
    if keeps_tokens_private(url):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        shown = f"{parts.scheme}://{host}{parts.path}" if host else url[:100]
    except ValueError:
        shown = url[:100]
    raise OAuthError(f"{what} must be an https URL (http only on 127.0.0.1/localhost), got {shown!r}")


def keeps_tokens_private(url: str) -> bool:
    """Whether a token may be sent to ``url``: https with a host, or http to a loopback host (a local server);
    never clear text over a network. An unparsable URL or port is not."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # port: ValueError when out of range
    except ValueError:
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): the only hosts plain http may go to."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_metadata(client: httpx.Client, auth_server: str) -> ServerMetadata:
    """The authorization server's RFC 8414 metadata; it must name a token endpoint."""
    check_endpoint_url(auth_server, what="the authorization server URL")
    url = auth_server.rstrip("/") + METADATA_PATH
    body = _json_object(_send(client, "GET", url, what="authorization-server metadata"), url=url)
    token_endpoint = body.get("token_endpoint")
    if not isinstance(token_endpoint, str) or not token_endpoint:
        raise OAuthError(f"authorization-server metadata at {url} names no token_endpoint")
    check_endpoint_url(token_endpoint, what="the token endpoint")

    def optional(key: str) -> str | None:
        value = body.get(key)
        return value if isinstance(value, str) and value else None

    return ServerMetadata(
        issuer=optional("issuer"),
        authorization_endpoint=optional("authorization_endpoint"),
        token_endpoint=token_endpoint,
        registration_endpoint=optional("registration_endpoint"),
    )


def register_public_client(
    client: httpx.Client, registration_endpoint: str, *, redirect_uri: str, scope: str, client_name: str
) -> str:
    """Dynamic registration of a public client (no secret); returns its ``client_id``."""
    check_endpoint_url(registration_endpoint, what="the registration endpoint")
    response = _send(
        client,
        "POST",
        registration_endpoint,
        what="client registration",
        json={
            "client_name": client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": scope,
        },
    )
    client_id = _json_object(response, url=registration_endpoint).get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise OAuthError("client registration answered without a client_id")
    return client_id


def new_pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for PKCE with S256."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=")
    return verifier, challenge.decode("ascii")


def authorization_url(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    state: str,
    scope: str,
    resource: str,
) -> str:
    check_endpoint_url(authorization_endpoint, what="the authorization endpoint")
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "resource": resource,
        }
    )
    separator = "&" if "?" in authorization_endpoint else "?"
    return f"{authorization_endpoint}{separator}{query}"


def exchange_code(
    client: httpx.Client,
    token_endpoint: str,
    *,
    code: str,
    code_verifier: str,
    client_id: str,
    redirect_uri: str,
) -> TokenResponse:
    return _token_request(
        client,
        token_endpoint,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": code_verifier,
        },
        secret=code,
    )


def exchange_refresh_token(
    client: httpx.Client, token_endpoint: str, *, refresh_token: str, client_id: str
) -> TokenResponse:
    """POST ``grant_type=refresh_token`` as a form; ``invalid_grant`` raises
    :class:`RefreshTokenRejectedError`."""
    return _token_request(
        client,
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
        secret=refresh_token,
    )


def _token_request(
    client: httpx.Client, token_endpoint: str, form: dict[str, str], *, secret: str
) -> TokenResponse:
    check_endpoint_url(token_endpoint, what="the token endpoint")
    try:
        response = client.post(token_endpoint, data=form, headers={"Accept": "application/json"})
        raw = _bounded_body(response)
    except httpx.TimeoutException:
        raise OAuthError(f"the token endpoint {_where(token_endpoint)} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise OAuthError(
            f"cannot reach the token endpoint {_where(token_endpoint)}: {type(exc).__name__}"
        ) from None
    body = _decode_object(raw)
    if response.status_code != 200:
        error = body.get("error") if isinstance(body, dict) else None
        code = error if isinstance(error, str) and error.isprintable() and len(error) < 100 else None
        description = body.get("error_description") if isinstance(body, dict) else None
        detail = _one_line(description, secret) if isinstance(description, str) else None
        message = (
            f"the token endpoint refused the request: HTTP {response.status_code}"
            + (f" {code}" if code else "")
            + (f" ({detail})" if detail else "")
        )
        kind = RefreshTokenRejectedError if code == "invalid_grant" else OAuthError
        raise kind(message, error=code, status_code=response.status_code)
    if not isinstance(body, dict):
        raise OAuthError(f"the token endpoint {_where(token_endpoint)} answered without a JSON object")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise OAuthError("the token endpoint answered without an access_token")
    refresh_token = body.get("refresh_token")
    expires_in = body.get("expires_in")
    return TokenResponse(
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_in=float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else None,
    )


def _send(client: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any) -> bytes:
    try:
        response = client.request(method, url, **kwargs)
        raw = _bounded_body(response)
    except httpx.TimeoutException:
        raise OAuthError(f"{what}: {_where(url)} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise OAuthError(f"{what}: cannot reach {_where(url)}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        body = _decode_object(raw)
        error = body.get("error") if isinstance(body, dict) else None
        suffix = f" {error}" if isinstance(error, str) and error.isprintable() and len(error) < 100 else ""
        raise OAuthError(
            f"{what} failed: HTTP {response.status_code}{suffix} from {_where(url)}",
            status_code=response.status_code,
        )
    return raw


def _bounded_body(response: httpx.Response) -> bytes:
    return response.content


def _json_object(raw: bytes, *, url: str) -> dict[str, Any]:
    body = _decode_object(raw)
    if not isinstance(body, dict):
        raise OAuthError(f"{_where(url)} did not answer with a JSON object")
    return body


def _decode_object(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _where(url: str) -> str:
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _one_line(text: str, secret: str, limit: int = 200) -> str:
    line = " ".join(text.replace(secret, "[redacted]").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
