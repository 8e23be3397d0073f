"""One MCP client session per server and event loop, owned by a background task.

The SDK's transports and :class:`ClientSession` are async context managers built on anyio
task groups, which must be entered and left by one task. So each :class:`Connection` runs an
owner task that opens the transport, performs the ``initialize`` handshake and then waits to
be closed; task executors send their requests on its session from their own tasks. Requests
race the owner task: when the connection dies (the stdio server exits, the HTTP session
breaks) every pending request fails at once instead of waiting for its timeout.

A cancelled request sends the protocol's ``notifications/cancelled`` (see :class:`_Session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from aipartnerupflow.core.errors import OutboundPolicyError, PermanentError
from aipartnerupflow.core.executors.secrets import SecretScrubber, scrubbing
from aipartnerupflow.extensions.mcp.errors import McpConnectionError

if TYPE_CHECKING:
    from mcp import ClientSession, types

__all__ = ["Connection", "HttpServer", "StaleConnectionError", "StdioServer", "make_session_class"]

log = logging.getLogger("aipartnerupflow.extensions.mcp")

T = TypeVar("T")

#: Seconds to wait for the cancellation notice to be written.
_CANCEL_NOTICE_SECONDS = 2.0
#: Seconds a connection gets to close (stdio: the SDK waits 2 s, then kills the group).
_CLOSE_SECONDS = 10.0

_session_class: type[ClientSession] | None = None


def make_session_class() -> type[ClientSession]:
    """A :class:`ClientSession` that announces cancelled requests to the server."""
    global _session_class
    if _session_class is not None:
        return _session_class
    import anyio

    from mcp import ClientSession, types

    class _Session(ClientSession):
        async def send_request(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            request_id = self._request_id  # the id BaseSession.send_request is about to use
            try:
                return await super().send_request(request, *args, **kwargs)
            except (asyncio.CancelledError, anyio.get_cancelled_exc_class()):
                if not isinstance(request.root, types.InitializeRequest):
                    await self._announce_cancel(request_id)
                raise

        async def _announce_cancel(self, request_id: int) -> None:
            notice = types.ClientNotification(
                types.CancelledNotification(
                    params=types.CancelledNotificationParams(
                        requestId=request_id, reason="the task was cancelled"
                    )
                )
            )
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(_CANCEL_NOTICE_SECONDS),
                contextlib.suppress(Exception),
            ):
                await self.send_notification(notice)

    _session_class = _Session
    return _Session


class HttpServer:
    """How to open a streamable HTTP transport: URL, headers, the policy-checked client."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        client_factory: Callable[[], Any],
        secrets: tuple[str, ...] = (),
    ):
        self.secrets = secrets
        self.url = url
        self.headers = headers
        self.client_factory = client_factory

    async def open(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        from mcp.client.streamable_http import streamable_http_client

        client = await stack.enter_async_context(self.client_factory())
        read, write, _ = await stack.enter_async_context(
            streamable_http_client(self.url, http_client=client)
        )
        return read, write


class StdioServer:
    """How to start a stdio server: resolved program, arguments, environment, directory."""

    def __init__(
        self, argv: list[str], env: dict[str, str], cwd: str | None, secrets: tuple[str, ...] = ()
    ):
        self.secrets = secrets
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.stderr: Any = None
        self.last_stderr = ""

    async def open(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        self.stderr = tempfile.TemporaryFile("w+", errors="replace")  # noqa: SIM115
        stack.callback(self._keep_stderr)  # runs after the server has stopped
        params = StdioServerParameters(
            command=self.argv[0], args=self.argv[1:], env=self.env, cwd=self.cwd
        )
        read, write = await stack.enter_async_context(stdio_client(params, errlog=self.stderr))
        return read, write

    def _keep_stderr(self) -> None:
        self.last_stderr = self.stderr_tail()
        if self.stderr is not None:
            self.stderr.close()

    def stderr_tail(self, limit: int = 2000) -> str:
        """The end of what the server wrote to stderr (for error messages)."""
        if self.stderr is None or self.stderr.closed:
            return self.last_stderr
        try:
            self.stderr.flush()
            self.stderr.seek(0)
            return str(self.stderr.read())[-limit:].strip()
        except (OSError, ValueError):
            return ""


class StaleConnectionError(McpConnectionError):
    """The connection had ended before the request could be sent (safe to send again)."""


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class Connection:
    """An initialized session on one server, kept open until :meth:`aclose`."""

    def __init__(self, server: HttpServer | StdioServer, label: str) -> None:
        self.server = server
        self.label = label  # for messages: the redacted URL, or the program
        self.session: ClientSession | None = None
        self.server_info: dict[str, Any] = {}
        self.tools: dict[str, types.Tool] | None = None
        self.error: BaseException | None = None
        self.broken = False
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        """Whether the session is open (False once the owner task ended)."""
        return (
            not self.broken
            and self._task is not None
            and not self._task.done()
            and self.session is not None
        )

    async def start(self, timeout: float) -> Connection:  # noqa: ASYNC109 - handshake limit
        """Connect and initialize, within ``timeout`` seconds."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A fresh context: the session outlives the task that opened it, and its log records
        # are scrubbed of the connection's own secrets (header values, secret variables).
        self._task = asyncio.create_task(
            self._run(ready), name=f"mcp connection {self.label}", context=contextvars.Context()
        )
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            await self.aclose()
            raise McpConnectionError(
                f"MCP server {self.label} did not finish the initialize handshake within "
                f"{timeout:g} s{self._stderr_note()}"
            ) from None
        except BaseException:
            await self.aclose()
            raise
        if not ready.done() or ready.cancelled() or self.session is None:
            await self.aclose()
            raise self._failure("connecting to")
        return self

    async def _run(self, ready: asyncio.Future[None]) -> None:
        from mcp import types

        try:
            async with AsyncExitStack() as stack:
                stack.enter_context(scrubbing(SecretScrubber(self.server.secrets)))
                read, write = await self.server.open(stack)
                relayed = await self._relay(read, stack)
                session_class = make_session_class()
                session = await stack.enter_async_context(
                    session_class(
                        relayed,
                        write,
                        client_info=types.Implementation(name="aipartnerupflow", version="0.1"),
                    )
                )
                init = await session.initialize()
                self.server_info = init.serverInfo.model_dump(mode="json", exclude_none=True)
                self.session = session
                ready.set_result(None)
                await self._closing.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = _leaf(exc)
            log.debug("MCP connection %s ended: %r", self.label, self.error)
        finally:
            self.session = None
            if not ready.done():
                ready.set_result(None)  # start() sees no session and reports self.error

    async def _relay(self, read: Any, stack: AsyncExitStack) -> Any:
        """A copy of the transport's read stream that marks the connection broken when the
        transport's stream ends (a stdio server exited), so the next task reconnects."""
        import anyio

        send, receive = anyio.create_memory_object_stream[Any](0)

        async def pump() -> None:
            try:
                async with send:
                    async for message in read:
                        await send.send(message)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            finally:
                self.broken = True
                self._closing.set()

        group = await stack.enter_async_context(anyio.create_task_group())
        stack.push_async_callback(receive.aclose)  # after the session has stopped reading
        stack.push_async_callback(read.aclose)  # the session no longer closes it: we do
        stack.callback(group.cancel_scope.cancel)  # before the group's exit waits for pump
        group.start_soon(pump)
        return receive

    def _stderr_note(self) -> str:
        if isinstance(self.server, StdioServer):
            tail = self.server.stderr_tail()
            if tail:
                return f"; its stderr ends with: {tail}"
        return ""

    def _failure(self, doing: str) -> Exception:
        """The error to raise for a connection that ended (``doing``: what we were doing)."""
        exc = self.error
        if isinstance(exc, OutboundPolicyError | PermanentError):
            return exc
        status = getattr(getattr(exc, "response", None), "status_code", None)
        error = getattr(exc, "error", None)
        if getattr(error, "message", None) == "Session terminated":  # the SDK's word for a 404
            status = 404
        if isinstance(status, int) and status in (401, 403, 404, 405, 406, 415):
            return PermanentError(
                f"{doing} MCP server {self.label} failed: HTTP {status} (check the URL and "
                "the credentials in 'headers')"
            )
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "the connection closed"
        if isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        if isinstance(status, int):  # the SDK's message repeats the URL (it may hold a token)
            reason = f"HTTP {status}"
        return McpConnectionError(
            f"{doing} MCP server {self.label} failed ({reason}){self._stderr_note()}"
        )

    async def request(self, make: Callable[[ClientSession], Awaitable[T]]) -> T:
        """``make(session)``, failing fast when the connection dies meanwhile.

        Cancelling the caller cancels the request, which tells the server (``_Session``).
        """
        session, owner = self.session, self._task
        if session is None or owner is None:
            raise self._failure("using")

        async def run() -> T:
            return await make(session)

        call = asyncio.ensure_future(run())
        try:
            await asyncio.wait({call, owner}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            call.cancel()
            with contextlib.suppress(BaseException):
                await call
            raise
        if call.done():
            import anyio

            from mcp.shared.exceptions import McpError
            from mcp.types import CONNECTION_CLOSED

            try:
                return call.result()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                self.broken = True  # the server went away before the request was written
                raise StaleConnectionError(
                    f"the connection to MCP server {self.label} had ended{self._stderr_note()}"
                ) from None
            except McpError as exc:
                if exc.error.code != CONNECTION_CLOSED:
                    raise
                self.broken = True
                raise McpConnectionError(
                    f"the connection to MCP server {self.label} closed during the request"
                    f"{self._stderr_note()}"
                ) from None
        call.cancel()
        with contextlib.suppress(BaseException):
            await call
        raise self._failure("a request to")

    async def aclose(self) -> None:
        """Close the session and the transport (a stdio server is stopped)."""
        self._closing.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), _CLOSE_SECONDS)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
