"""Reaching the data through the daemon's API while it holds the embedded DuckDB file.

The A2A server answers JSON-RPC on ``POST /tasks`` (``tasks.get``, ``tasks.list``, ...). When
a command finds the database locked by the running ``a2a`` daemon of the same database, it
asks the server instead. Only the standard library is used (``urllib``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aipartnerupflow.cli._common import CliError, CliState, run_async

if TYPE_CHECKING:
    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = [
    "NOT_FOUND",
    "Remote",
    "RemoteError",
    "flatten",
    "local_or_remote",
    "model",
    "server_for",
    "tree_from_nested",
]

T = TypeVar("T")

TOKEN_ENV = "AIPARTNERUPFLOW_API_TOKEN"
NOT_FOUND = -32001


class RemoteError(CliError):
    """The server answered with a JSON-RPC error."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Remote:
    """The daemon's ``/tasks`` JSON-RPC endpoint."""

    url: str
    token: str | None = None

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """Call one method; JSON-RPC errors become :class:`RemoteError`."""
        import urllib.error
        import urllib.request

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": params}).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(f"{self.url}/tasks", data=body, headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise CliError(f"the server at {self.url} refused the request ({exc.code}); "
                               f"set {TOKEN_ENV} to a valid token") from None
            raise CliError(f"the server at {self.url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CliError(f"the daemon at {self.url} holds the database but does not answer "
                           f"({exc}); check `apflow daemon status`") from None
        error = reply.get("error")
        if error:
            raise RemoteError(str(error.get("message", error)), int(error.get("code", 0)))
        return reply.get("result")


def server_for(state: CliState) -> Remote | None:
    """The running a2a daemon serving the same database, if any."""
    from aipartnerupflow.cli._daemon import read_running_state
    from aipartnerupflow.core.storage import default_database_url

    daemon = read_running_state()
    if daemon is None or daemon.protocol != "a2a":
        return None
    if (daemon.database_url or default_database_url()) != state.resolved_database_url():
        return None
    return Remote(daemon.url, os.environ.get(TOKEN_ENV) or None)


def local_or_remote(state: CliState, local: Callable[[], Coroutine[Any, Any, T]],
                    remote: Callable[[Remote], T]) -> T:
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
