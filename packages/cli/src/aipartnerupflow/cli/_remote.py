"""Reaching the data through the daemon's API while it holds the embedded DuckDB file.

The A2A server answers JSON-RPC on ``POST /tasks`` (``tasks.get``, ``tasks.list``, ...; runs
stream their events as server-sent events). When a command finds the database locked by the
running ``a2a`` daemon of the same database, it asks the server instead. Only the standard
library is used (``urllib``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aipartnerupflow.cli._common import CliError, CliState, run_async

if TYPE_CHECKING:
    import urllib.request
    from http.client import HTTPResponse

    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = [
    "NOT_FOUND",
    "Remote",
    "RemoteError",
    "Unreachable",
    "daemon_refuses",
    "flatten",
    "local_or_remote",
    "model",
    "server_for",
    "sse_data",
    "tree_from_nested",
]

T = TypeVar("T")

TOKEN_ENV = "AIPARTNERUPFLOW_API_TOKEN"
NOT_FOUND = -32001
#: Seconds without a byte before a stream counts as broken (the server pings every 15 s).
STREAM_TIMEOUT = 90.0


class RemoteError(CliError):
    """The server answered with a JSON-RPC error."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Unreachable(CliError):
    """The server does not answer (or the connection broke)."""


@dataclass(slots=True)
class Remote:
    """The daemon's ``/tasks`` JSON-RPC endpoint."""

    url: str
    token: str | None = None

    def call(self, method: str, params: dict[str, Any], *, timeout: float | None = 60) -> Any:
        """Call one method; JSON-RPC errors become :class:`RemoteError`.

        ``timeout=None`` waits as long as the server works (for methods that run trees).
        """
        with self._post(method, params, timeout) as response:
            return _result(self._read_json(response))

    def stream(self, method: str, params: dict[str, Any]) -> Generator[Any, None, None]:
        """Call a method with ``use_streaming``: the result of each server-sent frame.

        An error before the stream starts, or in a frame, becomes :class:`RemoteError`.
        """
        with self._post(method, {**params, "use_streaming": True}, STREAM_TIMEOUT) as response:
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                yield _result(self._read_json(response))
                return
            for data in sse_data(self._lines(response)):
                try:
                    frame = json.loads(data)
                except ValueError:
                    raise CliError(
                        f"the server at {self.url} sent a malformed event: {data[:80]!r}"
                    ) from None
                yield _result(frame)

    def health(self) -> dict[str, Any]:
        """``GET /system/health`` (public: no token needed)."""
        import urllib.request

        request = urllib.request.Request(f"{self.url}/system/health", method="GET")
        with self._open(request, 30) as response:
            data = self._read_json(response)
        if not isinstance(data, dict):
            raise CliError(
                f"the server at {self.url} answered /system/health with "
                f"{type(data).__name__}, not a JSON object"
            )
        return data

    @contextmanager
    def _post(
        self, method: str, params: dict[str, Any], timeout: float | None
    ) -> Iterator[HTTPResponse]:
        import urllib.request

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            f"{self.url}/tasks", data=body, headers=headers, method="POST"
        )
        with self._open(request, timeout) as response:
            yield response

    @contextmanager
    def _open(
        self, request: urllib.request.Request, timeout: float | None
    ) -> Iterator[HTTPResponse]:
        import urllib.error
        import urllib.request

        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise CliError(
                    f"the server at {self.url} refused the request ({exc.code}); "
                    f"set {TOKEN_ENV} to a valid token"
                ) from None
            raise CliError(f"the server at {self.url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise self._unreachable(exc) from None
        with response:
            yield response

    def _read_json(self, response: HTTPResponse) -> Any:
        try:
            return json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise self._unreachable(exc) from None

    def _lines(self, response: HTTPResponse) -> Iterator[str]:
        try:
            for raw in response:
                yield raw.decode("utf-8", errors="replace")
        except OSError as exc:
            raise Unreachable(
                f"the connection to the daemon at {self.url} broke ({exc}); check "
                "`apflow daemon status` and `apflow daemon logs`"
            ) from None

    def _unreachable(self, exc: BaseException) -> Unreachable:
        return Unreachable(
            f"the daemon at {self.url} holds the database but does not answer "
            f"({exc}); check `apflow daemon status`"
        )


def _result(reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise CliError(f"unexpected answer from the server: {str(reply)[:80]}")
    error = reply.get("error")
    if error:
        if not isinstance(error, dict):
            raise RemoteError(str(error), 0)
        raise RemoteError(str(error.get("message", error)), int(error.get("code", 0)))
    return reply.get("result")


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event (comments and other fields are skipped)."""
    data: list[str] = []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def server_for(state: CliState) -> Remote | None:
    """The running a2a daemon serving the same database, if any."""
    from aipartnerupflow.cli._daemon import read_running_state
    from aipartnerupflow.core.storage import default_database_url

    daemon = read_running_state()
    if daemon is None or daemon.protocol != "a2a":
        return None
    if (daemon.database_url or default_database_url()) != state.resolved_database_url():
        return None
    return Remote(daemon.url, state.cli_settings.api_token)


def local_or_remote(
    state: CliState, local: Callable[[], Coroutine[Any, Any, T]], remote: Callable[[Remote], T]
) -> T:
    """Run ``local()``; if the daemon holds the DuckDB file, ``remote(server)`` instead."""
    from aipartnerupflow.core.errors import DatabaseLockedError

    try:
        return run_async(local())
    except DatabaseLockedError:
        server = server_for(state)
        if server is None:
            raise
    sys.stderr.write(f"Note: the daemon holds the database; asking its API at {server.url}.\n")
    return remote(server)


#: Why the daemon's API cannot honour an option, by option.
_REFUSED = {
    "--user-id": ", and through its API tasks belong to the authenticated user",
    "--concurrency": " and runs trees with its own concurrency limit",
}


def daemon_refuses(option: str, doing: str) -> CliError:
    """The error for an option the daemon's API cannot honour; ``doing`` what it would do here."""
    return CliError(
        f"the daemon holds the database{_REFUSED[option]}: drop {option}, or stop the daemon "
        f"(apflow daemon stop) to {doing} here"
    )


def flatten(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every task of a nested tree, depth first."""
    out, stack = [], [node]
    while stack:
        item = stack.pop()
        out.append(item)
        stack.extend(reversed(item.get("children") or []))
    return out


def model(data: dict[str, Any]) -> TaskModel:
    """A TaskModel from the server's JSON (timestamps stay ISO strings)."""
    from aipartnerupflow.core.models import TASK_COLUMNS, TaskModel

    return TaskModel(**{k: v for k, v in data.items() if k in TASK_COLUMNS})


def tree_from_nested(data: dict[str, Any]) -> TaskTreeNode:
    """A TaskTreeNode from nested dicts with ``children`` lists."""
    from aipartnerupflow.core.tree import TaskTreeNode

    node = TaskTreeNode(model(data))
    for child in data.get("children") or []:
        node.children.append(tree_from_nested(child))
    return node
