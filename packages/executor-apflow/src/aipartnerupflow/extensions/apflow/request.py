"""The inputs of ``apflow_api_executor``, checked: what to send, where, how long to wait.

Accepts the original project's names (``base_url``, ``method``/``params`` with
``tasks.execute``, ``auth_token``, ``headers``, ``wait_for_completion``, ``poll_interval``,
``timeout``, ``use_streaming``) next to the new ones (``url``, ``tasks``, ``text``, ``data``,
``streaming``, ``wait``).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executors.caps import effective_limit
from aipartnerupflow.core.limits import json_problems
from aipartnerupflow.core.service.ids import renew_ids
from aipartnerupflow.extensions.apflow.settings import ApflowSettings

__all__ = ["CARD_PATH", "RUN_NAMESPACE", "RemoteRequest", "parse_request", "run_key"]

#: Where an A2A agent publishes its card, below its base URL.
CARD_PATH = "/.well-known/agent-card.json"
#: Namespace of the deterministic ids derived from the local task id and attempt.
RUN_NAMESPACE = uuid.UUID("7c4f1f9e-52a4-4b8e-9d0c-3a2f6f0e9a11")
DEFAULT_TIMEOUT = 300.0
DEFAULT_POLL_INTERVAL = 1.0
_TREE_METHODS = {"tasks.execute", "tasks.create", "execute"}


@dataclass(slots=True)
class RemoteRequest:
    """A checked request: the agent's card URL, headers, what to send, how to wait."""

    card_url: str
    headers: dict[str, str]
    secrets: list[str]
    tasks: list[dict[str, Any]] | None
    #: The tree as the task gave it (``tasks`` is it with ids derived from the run key).
    given_tasks: list[dict[str, Any]] | None
    text: str | None
    data: Any
    streaming: bool
    wait: bool
    timeout: float
    poll_interval: float
    max_output_bytes: int
    #: Remote task id -> the id the task had in ``tasks`` (tree mode).
    original_ids: dict[str, str] = field(default_factory=dict)

    def use_key(self, key: str) -> None:
        """Derive the remote tree's ids from the run key ``key``."""
        if self.given_tasks is not None:
            self.tasks, self.original_ids = remote_tree(self.given_tasks, key)


def run_key(task_id: str | None, attempt: int | None, generation: int = 0) -> str:
    """The remote context (and root task) id of one run of one attempt of one local task.

    ``generation`` counts the runs submitted under the same attempt number (a rerun of the
    local tree starts counting attempts again).
    """
    if not task_id:
        return str(uuid.uuid4())  # no engine context: nothing to re-attach to
    return str(uuid.uuid5(RUN_NAMESPACE, f"{task_id}:{attempt or 1}:{generation}"))


def _card_url(inputs: dict[str, Any]) -> str:
    url = inputs.get("agent_card_url") or inputs.get("url") or inputs.get("base_url")
    if not isinstance(url, str) or not url.strip():
        raise InputValidationError(
            "input 'base_url' (the remote instance's URL, e.g. https://flows.example.com) or "
            "'agent_card_url' (its agent card) is required"
        )
    if any(c in url for c in "\x00\r\n"):
        raise InputValidationError("input 'base_url' contains a NUL byte or a line break")
    url = url.strip()
    if url.endswith(".json") or "/.well-known/" in url:
        return url
    return url.rstrip("/") + CARD_PATH


def _headers(inputs: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    raw = inputs.get("headers") or {}
    if not isinstance(raw, dict):
        raise InputValidationError("input 'headers' must be an object of name: value strings")
    headers: dict[str, str] = {}
    secrets: list[str] = []
    for name, value in raw.items():
        if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
            raise InputValidationError(
                f"input 'headers.{name}' must be a string without line breaks or NUL"
            )
        if not isinstance(name, str) or not name or any(c in name for c in ":\r\n\x00 "):
            raise InputValidationError(f"input 'headers': {name!r} is not a header name")
        headers[name] = value
        secrets.append(value)
        scheme, _, credential = value.partition(" ")
        if credential and scheme.isalpha():
            secrets.append(credential.strip())
    token = inputs.get("auth_token")
    if token is not None:
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n\x00 "):
            raise InputValidationError(
                "input 'auth_token' must be a bearer token: a non-empty string without spaces, "
                "line breaks or NUL"
            )
        headers["Authorization"] = f"Bearer {token}"
        secrets += [token, headers["Authorization"]]
    return headers, secrets


def _tasks(inputs: dict[str, Any]) -> list[dict[str, Any]] | None:
    tasks = inputs.get("tasks")
    method = inputs.get("method")
    if method is not None:
        if method not in _TREE_METHODS:
            raise InputValidationError(
                f"input 'method': {method!r} is not supported; the remote instance is reached "
                "over A2A, where running a tree is the only call: give the tree in 'tasks' (or "
                "method 'tasks.execute' with params.tasks)"
            )
        params = inputs.get("params")
        if tasks is None and isinstance(params, dict):
            tasks = params.get("tasks")
    if tasks is None:
        return None
    if not isinstance(tasks, list) or not tasks:
        raise InputValidationError(
            "input 'tasks' must be a non-empty JSON array of task objects (one root)"
        )
    problems = json_problems(tasks, "tasks")
    if problems:
        raise InputValidationError(f"input 'tasks': {problems[0]}")
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise InputValidationError(f"input 'tasks[{index}]' must be a task object")
    return tasks


def _number(inputs: dict[str, Any], name: str, default: float) -> float:
    value = inputs.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputValidationError(f"input {name!r} must be a positive number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise InputValidationError(f"input {name!r} must be a positive number of seconds")
    return float(value)


def _flag(inputs: dict[str, Any], names: tuple[str, ...], default: bool) -> bool:
    for name in names:
        if name in inputs and inputs[name] is not None:
            value = inputs[name]
            if not isinstance(value, bool):
                raise InputValidationError(f"input {name!r} must be true or false")
            return value
    return default


def remote_tree(
    tasks: list[dict[str, Any]], key: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The tree with ids derived from ``key`` (its root's id is ``key``); ``{remote: given}``.

    Deterministic, so a resumed attempt sends (and recognises) the same ids; distinct per
    attempt, so a retry never collides with the tree of the attempt before.
    """
    named = [dict(t) for t in tasks]
    for index, task in enumerate(named):
        if not isinstance(task.get("id"), str) or not task["id"]:
            task["id"] = f"#{index}"
    roots = [t["id"] for t in named if not t.get("parent_id")]
    root = roots[0] if len(roots) == 1 else None

    def make_id(old: str) -> str:
        return key if old == root else str(uuid.uuid5(uuid.UUID(key), old))

    renewed, mapping = renew_ids(named, make_id=make_id)
    return renewed, {new: old for old, new in mapping.items() if not old.startswith("#")}


def parse_request(inputs: dict[str, Any], settings: ApflowSettings, key: str) -> RemoteRequest:
    """Check ``inputs``; :class:`InputValidationError` naming the offending input."""
    card_url = _card_url(inputs)
    headers, secrets = _headers(inputs)
    tasks = _tasks(inputs)
    text = inputs.get("text", inputs.get("message"))
    if text is not None and (not isinstance(text, str) or "\x00" in text):
        raise InputValidationError("input 'text' must be a string without NUL")
    data = inputs.get("data")
    if data is not None:
        problems = json_problems(data, "data")
        if problems:
            raise InputValidationError(f"input 'data': {problems[0]}")
    if tasks is None and text is None and data is None:
        raise InputValidationError(
            "input 'tasks' (a task tree for an aipartnerupflow instance) or 'text'/'data' (a "
            "message for any A2A agent) is required"
        )
    if tasks is not None and (text is not None or data is not None):
        raise InputValidationError(
            "input 'tasks' cannot be combined with 'text' or 'data': send a tree or a message"
        )
    timeout = min(_number(inputs, "timeout", DEFAULT_TIMEOUT), settings.max_timeout)
    poll = _number(inputs, "poll_interval", DEFAULT_POLL_INTERVAL)
    limit = inputs.get("max_output_bytes")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputValidationError("input 'max_output_bytes' must be a non-negative integer")
    request = RemoteRequest(
        card_url=card_url,
        headers=headers,
        secrets=secrets,
        tasks=None,
        given_tasks=tasks,
        text=text,
        data=data,
        streaming=_flag(inputs, ("streaming", "use_streaming"), True),
        wait=_flag(inputs, ("wait", "wait_for_completion"), True),
        timeout=timeout,
        poll_interval=min(poll, 30.0),
        max_output_bytes=effective_limit(limit, settings.max_output_bytes),
    )
    request.use_key(key)
    return request
