"""Serve an ASGI app on loopback for a test: uvicorn in a background thread, on a free port.

uvicorn is imported when a server starts, so this module (and aipartnerupflow-testing) does not
depend on it; install ``uvicorn`` in the test environment that uses it.

    with LoopbackServer(app) as server:
        response = httpx.get(server.url + "/hello")
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Literal, Self

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """An ASGI application served by uvicorn on ``127.0.0.1`` (port chosen by the OS).

    The server runs its own event loop in a daemon thread, so it works with any test event
    loop. Pass ``certfile`` and ``keyfile`` (PEM paths) to serve HTTPS, and ``lifespan="on"``
    for an app whose lifespan must run (an MCP server's session manager, for instance). ``url`` is
    ``http(s)://127.0.0.1:<port>``.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        certfile: str | None = None,
        keyfile: str | None = None,
        startup_timeout: float = 30.0,
        shutdown_timeout: float = 5.0,
        lifespan: Literal["on", "off", "auto"] = "off",
    ) -> None:
        self.app = app
        self.lifespan = lifespan
        self.host = host
        self.certfile = certfile
        self.keyfile = keyfile
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server, without a trailing slash."""
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start serving; returns once the server accepts connections."""
        import uvicorn

        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan=self.lifespan,
            ws="none",
            http="h11",
            loop="asyncio",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(max(1, self.shutdown_timeout)),
            ssl_certfile=self.certfile,
            ssl_keyfile=self.keyfile,
        )
        self._server = server = uvicorn.Server(config)

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()/stop()
                self._error = exc
            finally:
                sock.close()

        self._thread = threading.Thread(
            target=run, name=f"loopback-server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the loopback server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.shutdown_timeout + 5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
