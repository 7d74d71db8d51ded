"""An in-process sandbox: the state plus an aiohttp server on its own event loop in a background thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from types import TracebackType

from aiohttp import web

from octogen_source.sandbox.generations import DEFAULT_GENERATION
from octogen_source.sandbox.server import base_url, bind_socket, start_server
from octogen_source.sandbox.state import SandboxState

STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class Sandbox(SandboxState):
    """A local Octogen Platform Catalog API v1 on 127.0.0.1, with test controls.

    ``Sandbox(catalogs=3, products=200, seed=0, ungranted=0, port=0, generation="current")``: ``catalogs``
    x ``products`` deterministic synthetic products (``seed``); the last ``ungranted`` catalogs exist but the
    default key (:attr:`api_key`) is not granted them. ``port=0`` picks a free port. ``generation``:
    ``"current"`` (today's API) or ``"seed"`` (May 2026); switch later with ``set_api_generation``. Use
    ``start()``/``stop()`` or ``with Sandbox(...) as sandbox:``. The controls (keys, truth, mutations, API
    generation, credit, rate limit, faults, counters) are inherited from
    :class:`~octogen_source.sandbox.state.SandboxState` and are thread-safe.
    """

    def __init__(
        self,
        catalogs: int = 3,
        products: int = 200,
        seed: int = 0,
        ungranted: int = 0,
        *,
        port: int = 0,
        generation: str = DEFAULT_GENERATION,
    ) -> None:
        super().__init__(
            catalogs=catalogs, products=products, seed=seed, ungranted=ungranted, generation=generation
        )
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return base_url(self.port)

    @property
    def admin_url(self) -> str:
        """``http://127.0.0.1:<port>/_sandbox``: the control endpoints (see RemoteSandbox)."""
        return f"http://127.0.0.1:{self.port}/_sandbox"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> Sandbox:
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        sock = bind_socket(self._requested_port)
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[web.AppRunner] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._serve, args=(loop, sock, started), name="octogen-sandbox", daemon=True
        )
        thread.start()
        try:
            started.result(timeout=STARTUP_TIMEOUT_SECONDS)
        except BaseException:
            if thread.is_alive():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT_SECONDS)
            raise
        self._port = sock.getsockname()[1]
        self._loop, self._thread = loop, thread
        return self

    def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        started: concurrent.futures.Future[web.AppRunner],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                runner = loop.run_until_complete(start_server(self, sock))
            except BaseException as exc:
                sock.close()
                started.set_exception(exc)
                return
            started.set_result(runner)
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop serving (open connections are closed); a no-op when not running."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            raise RuntimeError("the sandbox server thread did not stop")
        self._loop = self._thread = None
        self._port = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
