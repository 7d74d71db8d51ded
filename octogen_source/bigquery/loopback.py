"""The loopback redirect of an OAuth login: a one-shot HTTP listener on 127.0.0.1 that takes ``/callback``.

Bound before the authorization URL is shown (so the redirect URI's port is known and nothing can race for
it); answers the browser with a short page and hands the query (``code`` and ``state``, or ``error``) back.
"""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CALLBACK_PATH = "/callback"


class LoopbackReceiver:
    def __init__(self, port: int = 0) -> None:
        received: dict[str, str] = {}
        self._received = received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: never log it
                return

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(parts.query).items() if values}
                if parts.path != CALLBACK_PATH or not ({"code", "error"} & query.keys()):
                    self._answer(404, "Not the login callback.")
                    return
                if not received:
                    received.update(query)
                ok = "code" in query
                self._answer(
                    200 if ok else 400,
                    "Octogen login complete: you can close this tab."
                    if ok
                    else "Octogen login failed: see the terminal.",
                )

            def _answer(self, status: int, text: str) -> None:
                body = f"<!doctype html><title>Octogen login</title><p>{text}</p>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self._server = HTTPServer(("127.0.0.1", port), Handler)
        self.port: int = self._server.server_address[1]

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    def wait(self, timeout: float) -> dict[str, str]:
        """The callback's query parameters; :class:`TimeoutError` when no callback came in time."""
        deadline = time.monotonic() + timeout
        while not self._received:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no sign-in came back to {self.redirect_uri} within {timeout:.0f} s")
            self._server.timeout = min(1.0, remaining)
            self._server.handle_request()
        return dict(self._received)

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
