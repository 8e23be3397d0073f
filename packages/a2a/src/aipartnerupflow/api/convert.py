"""Conversions between task JSON / engine values and A2A protobuf messages."""

from __future__ import annotations

import math
from typing import Any

from a2a.types import Message, Part, TaskState
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

__all__ = [
    "EVENT_KEY",
    "STATE_OF_STATUS",
    "data_part",
    "from_value",
    "parse_request",
    "parse_task_request",
    "to_value",
]

#: Key of the engine event carried by each status update's metadata (never kept on the Task).
EVENT_KEY = "aipartnerupflow_event"

#: Engine task/tree status -> A2A task state.
STATE_OF_STATUS: dict[str, int] = {
    "pending": TaskState.TASK_STATE_SUBMITTED,
    "in_progress": TaskState.TASK_STATE_WORKING,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "cancelled": TaskState.TASK_STATE_CANCELED,
}

_EXAMPLE = '{"tasks": [{"name": "hello", "schemas": {"method": "<executor id>"}, "inputs": {}}]}'


def _plain(value: Any) -> Any:
    """JSON from a protobuf ``Value``: integral numbers become ints again."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def from_value(value: Value) -> Any:
    """A protobuf ``Value`` as plain JSON data."""
    return _plain(MessageToDict(value))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def to_value(data: Any) -> Value:
    """Plain JSON data as a protobuf ``Value`` (anything else is stringified)."""
    return ParseDict(_json_safe(data), Value())


def parse_task_request(message: Message, max_tasks: int) -> list[dict[str, Any]]:
    """The task JSON array carried by a message (see :func:`parse_request`)."""
    request = parse_request(message, max_tasks)
    if "tasks" not in request:
        raise InvalidParamsError(message='expected a data part {"tasks": [...]}')
    tasks: list[dict[str, Any]] = request["tasks"]
    return tasks


def parse_request(message: Message, max_tasks: int) -> dict[str, Any]:
    """What a message asks for, or a protocol error saying what is wrong.

    The message must hold exactly one data part: ``{"tasks": [...]}`` (run a new tree) or
    ``{"rerun": "none" | "all" | "failed"}`` (run the tree named by the message's contextId
    again). Text and file parts are refused with ``ContentTypeNotSupportedError``, other
    shapes with ``InvalidParamsError``.
    """
    data_parts = [p for p in message.parts if p.HasField("data")]
    others = [p.WhichOneof("content") or "empty" for p in message.parts if not p.HasField("data")]
    if not data_parts:
        if others and all(kind == "text" for kind in others):
            raise ContentTypeNotSupportedError(
                message="this agent runs task trees and does not read text: send one data part "
                f"(media type application/json) such as {_EXAMPLE}"
            )
        raise ContentTypeNotSupportedError(
            message=f'expected one data part {{"tasks": [...]}}, got parts of kind '
            f"{', '.join(others) or 'none'}; for example {_EXAMPLE}"
        )
    if others:
        raise ContentTypeNotSupportedError(
            message=f'send only the data part {{"tasks": [...]}}; remove the '
            f"{', '.join(sorted(set(others)))} part(s)"
        )
    if len(data_parts) > 1:
        raise InvalidParamsError(
            message=f'expected one data part {{"tasks": [...]}}, got {len(data_parts)}'
        )
    data = from_value(data_parts[0].data)
    if isinstance(data, dict) and set(data) == {"rerun"}:
        if data["rerun"] not in {"none", "all", "failed"}:
            raise InvalidParamsError(message="'rerun' must be none, all or failed")
        if not message.context_id:
            raise InvalidParamsError(
                message="'rerun' runs an existing tree: set the message's contextId to the "
                "tree's root task id"
            )
        return {"rerun": data["rerun"]}
    if not isinstance(data, dict) or "tasks" not in data:
        kind = type(data).__name__ if not isinstance(data, dict) else "an object without 'tasks'"
        raise InvalidParamsError(
            message=f'the data part must be an object {{"tasks": [...]}}, got {kind}; '
            f"for example {_EXAMPLE}"
        )
    extra = sorted(set(data) - {"tasks"})
    if extra:
        raise InvalidParamsError(
            message=f"unknown key(s) in the data part: {', '.join(extra)}; only 'tasks' is read"
        )
    tasks = data["tasks"]
    if not isinstance(tasks, list) or not tasks:
        raise InvalidParamsError(message="'tasks' must be a non-empty array of task objects")
    if len(tasks) > max_tasks:
        raise InvalidParamsError(
            message=f"too many tasks: {len(tasks)} (this server accepts at most {max_tasks} "
            "per message)"
        )
    bad = [i for i, t in enumerate(tasks) if not isinstance(t, dict)]
    if bad:
        raise InvalidParamsError(
            message=f"every entry of 'tasks' must be an object; entries {bad[:10]} are not"
        )
    return {"tasks": tasks}


def data_part(data: Any) -> Part:
    """A JSON data part."""
    return Part(data=to_value(data), media_type="application/json")
