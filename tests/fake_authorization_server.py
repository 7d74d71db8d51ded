"""A local OAuth 2.1 authorization server like the control plane's, for tests over real HTTP on 127.0.0.1.

    with FakeAuthorizationServer(on_access_token=control_plane.allow_token) as auth:
        auth.url                              # issuer; metadata at /.well-known/oauth-authorization-server
        client_id = auth.register_client()    # or POST /register (dynamic registration, public clients only)
        refresh = auth.issue_refresh_token(client_id)
        auth.revoke_all()                     # every refresh token of every client becomes invalid_grant
        auth.live_refresh_tokens(client_id)   # the refresh tokens still usable

Endpoints: ``GET /.well-known/oauth-authorization-server``; ``POST /register`` (JSON, requires
``token_endpoint_auth_method: none`` and ``redirect_uris``); ``GET /authorize`` (the user "signs in" at once:
302 to the registered redirect URI with ``code`` and ``state``; PKCE S256 required); ``POST /oauth2/token``
(form: ``authorization_code`` with the PKCE verifier, or ``refresh_token``). Every refresh exchange
**rotates**: the presented refresh token is spent and a new one issued; a spent, revoked or unknown one
answers 400 ``invalid_grant``. ``token_delay`` slows the token endpoint (to make overlapping runs
overlap). Every token ever issued is kept in :attr:`issued_secrets` so tests can check none leaked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class _Client:
    client_id: str
    redirect_uris: list[str]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str


@dataclass
class _Counters:
    refresh_grants: int = 0
    invalid_grants: int = 0
    code_grants: int = 0
    registrations: int = 0
    concurrent_refreshes_max: int = 0
    refresh_in_flight: int = 0
    requests: list[str] = field(default_factory=list)


class FakeAuthorizationServer:
    def __init__(
        self,
        *,
        on_access_token: Callable[[str], None] | None = None,
        token_delay: float = 0.0,
        access_token_seconds: int = 300,
        rotate: bool = True,
    ) -> None:
        self.on_access_token = on_access_token
        self.token_delay = token_delay
        self.access_token_seconds = access_token_seconds
        self.rotate = rotate
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, str] = {}  # live refresh token -> client id
        self._spent: set[str] = set()
        self.issued_secrets: list[str] = []
        self.counters = _Counters()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> FakeAuthorizationServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> FakeAuthorizationServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/oauth2/token"

    # scripting ---------------------------------------------------------------------------------------------
    def register_client(self, redirect_uri: str = "http://127.0.0.1:8765/callback") -> str:
        with self._lock:
            return self._register([redirect_uri])

    def issue_refresh_token(self, client_id: str) -> str:
        with self._lock:
            return self._new_refresh(client_id)

    def revoke_all(self) -> None:
        with self._lock:
            self._spent.update(self._refresh)
            self._refresh.clear()

    def live_refresh_tokens(self, client_id: str | None = None) -> list[str]:
        with self._lock:
            return [token for token, owner in self._refresh.items() if client_id in (None, owner)]

    # internals (called with the lock held) ------------------------------------------------------------------
    def _register(self, redirect_uris: list[str]) -> str:
        client_id = f"client_{secrets.token_hex(8)}"
        self._clients[client_id] = _Client(client_id, redirect_uris)
        self.counters.registrations += 1
        return client_id

    def _new_refresh(self, client_id: str) -> str:
        token = f"rt_{secrets.token_urlsafe(24)}"
        self._refresh[token] = client_id
        self.issued_secrets.append(token)
        return token

    def _new_access(self) -> str:
        token = f"at_{secrets.token_urlsafe(24)}"
        self.issued_secrets.append(token)
        if self.on_access_token is not None:
            self.on_access_token(token)
        return token

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type")
        client_id = form.get("client_id", "")
        if grant == "refresh_token":
            with self._lock:
                self.counters.refresh_in_flight += 1
                self.counters.concurrent_refreshes_max = max(
                    self.counters.concurrent_refreshes_max, self.counters.refresh_in_flight
                )
            try:
                time.sleep(self.token_delay)
                with self._lock:
                    self.counters.refresh_grants += 1
                    presented = form.get("refresh_token", "")
                    owner = self._refresh.get(presented)
                    if owner is None or owner != client_id:
                        self.counters.invalid_grants += 1
                        return 400, {
                            "error": "invalid_grant",
                            "error_description": "refresh token is invalid",
                        }
                    body: dict[str, Any] = {
                        "access_token": self._new_access(),
                        "token_type": "Bearer",
                        "expires_in": self.access_token_seconds,
                    }
                    if self.rotate:
                        del self._refresh[presented]
                        self._spent.add(presented)
                        body["refresh_token"] = self._new_refresh(client_id)
                    return 200, body
            finally:
                with self._lock:
                    self.counters.refresh_in_flight -= 1
        if grant == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                redirect_uri = form.get("redirect_uri")
                if code is None or code.client_id != client_id or code.redirect_uri != redirect_uri:
                    return 400, {"error": "invalid_grant"}
                if _s256(verifier) != code.challenge:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
                self.counters.code_grants += 1
                return 200, {
                    "access_token": self._new_access(),
                    "token_type": "Bearer",
                    "expires_in": self.access_token_seconds,
                    "refresh_token": self._new_refresh(client_id),
                }
        return 400, {"error": "unsupported_grant_type"}

    def _authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str]]:
        with self._lock:
            client = self._clients.get(query.get("client_id", ""))
            redirect_uri = query.get("redirect_uri", "")
            if client is None or redirect_uri not in client.redirect_uris:
                return 400, {}
            if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
                return 400, {}
            if not query.get("code_challenge"):
                return 400, {}
            code = f"code_{secrets.token_urlsafe(16)}"
            self._codes[code] = _Code(client.client_id, redirect_uri, query["code_challenge"])
            self.issued_secrets.append(code)
        location = f"{redirect_uri}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        return 302, {"Location": location}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                server.counters.requests.append(f"GET {parts.path}")
                if parts.path == "/.well-known/oauth-authorization-server":
                    base = server.url
                    self._json(
                        200,
                        {
                            "issuer": base,
                            "authorization_endpoint": f"{base}/authorize",
                            "token_endpoint": f"{base}/oauth2/token",
                            "registration_endpoint": f"{base}/register",
                            "response_types_supported": ["code"],
                            "grant_types_supported": ["authorization_code", "refresh_token"],
                            "code_challenge_methods_supported": ["S256"],
                            "token_endpoint_auth_methods_supported": ["none"],
                        },
                    )
                elif parts.path == "/authorize":
                    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                    status, headers = server._authorize(query)
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                server.counters.requests.append(f"POST {parts.path}")
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if parts.path == "/register":
                    request = json.loads(raw or b"{}")
                    uris = request.get("redirect_uris")
                    if request.get("token_endpoint_auth_method") != "none" or not isinstance(uris, list):
                        self._json(400, {"error": "invalid_client_metadata"})
                        return
                    with server._lock:
                        client_id = server._register([str(uri) for uri in uris])
                    self._json(201, {"client_id": client_id, **request})
                elif parts.path == "/oauth2/token":
                    content_type = self.headers.get("Content-Type", "")
                    if not content_type.startswith("application/x-www-form-urlencoded"):
                        self._json(400, {"error": "invalid_request"})
                        return
                    form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
                    status, body = server._token(form)
                    self._json(status, body)
                else:
                    self._json(404, {"error": "not_found"})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                encoded = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(encoded)

        return Handler


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
