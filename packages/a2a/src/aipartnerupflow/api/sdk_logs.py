"""Keep task payloads out of the a2a-sdk's own log records.

At DEBUG the SDK logs whole ``Task``, ``Message`` and event objects (``active_task``'s
"Enqueuing" lines, "TASK (start)" …) and JSON-RPC request bodies: every input of every task,
tokens and passwords a caller put there included. A record hook (the kit's
:func:`wrap_log_records`: it sees every record of every logger, which a filter on the ``a2a``
logger would not) replaces such arguments of ``a2a.*`` records: a protobuf message by its type,
ids and state, never its contents; a dict (a request body) by its JSON-RPC envelope
(``jsonrpc``, ``method``, ``id``).
"""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf.message import Message as ProtoMessage

from aipartnerupflow.core.executors.secrets import wrap_log_records

__all__ = ["install_sdk_log_redaction", "summarise"]

_ID_FIELDS = ("id", "task_id", "context_id", "message_id", "artifact_id")
_installed = False


def summarise(message: ProtoMessage) -> str:
    """``<Task id=… context_id=… state=…>``: the type, its ids and state, nothing else."""
    fields: list[str] = []
    descriptor = message.DESCRIPTOR
    for name in _ID_FIELDS:
        if name in descriptor.fields_by_name:
            value = getattr(message, name)
            if value:
                fields.append(f"{name}={value}")
    status = getattr(message, "status", None)
    if isinstance(status, ProtoMessage) and "state" in status.DESCRIPTOR.fields_by_name:
        states = status.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_number
        state = states.get(status.state)
        fields.append(f"state={state.name if state else status.state}")
    if descriptor.oneofs_by_name.get("payload") is not None:
        kind = message.WhichOneof("payload")
        if kind:
            inner = getattr(message, kind)
            if isinstance(inner, ProtoMessage):
                return f"<{descriptor.name} {summarise(inner)}>"
    return f"<{descriptor.name}{' ' if fields else ''}{' '.join(fields)}>"


#: Keys of a JSON-RPC body kept in the SDK's "Request body" records; the rest is elided.
_ENVELOPE = ("jsonrpc", "method", "id")


def _clean(value: Any) -> Any:
    if isinstance(value, ProtoMessage):
        return summarise(value)
    if isinstance(value, dict):  # a request body: its envelope, never its params
        kept = {k: value[k] for k in _ENVELOPE if k in value}
        elided = len(value) - len(kept)
        return f"{kept} (+{elided} key(s) not logged)" if elided else str(kept)
    if isinstance(value, tuple | list) and any(isinstance(v, ProtoMessage) for v in value):
        return type(value)(_clean(v) for v in value)
    return value


def _redact(record: logging.LogRecord) -> None:
    if record.name != "a2a" and not record.name.startswith("a2a."):
        return
    if isinstance(record.args, tuple):
        record.args = tuple(_clean(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _clean(v) for k, v in record.args.items()}
    if isinstance(record.msg, ProtoMessage):
        record.msg = summarise(record.msg)


def install_sdk_log_redaction() -> None:
    """Summarise protobuf arguments of every ``a2a.*`` log record from now on (once)."""
    global _installed
    if not _installed:
        wrap_log_records(_redact)
        _installed = True
