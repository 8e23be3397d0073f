"""Test fixtures and the executor contract suite for aipartnerupflow packages.

* :mod:`aipartnerupflow.testing.contract` - :class:`ExecutorContract`, the tests every executor
  package subclasses (ours and third parties');
* :mod:`aipartnerupflow.testing.fixtures` - a pytest plugin module with ``task_manager``,
  ``run_tree`` and ``serve_asgi``; load it with
  ``pytest_plugins = ["aipartnerupflow.testing.fixtures"]`` in your top-level ``conftest.py``;
* :mod:`aipartnerupflow.testing.bad_inputs` - the bad-input corpus every surface (service,
  A2A API, CLI, MCP) must refuse with the same reasons;
* :mod:`aipartnerupflow.testing.server` - :class:`LoopbackServer`, an ASGI app served by uvicorn
  on 127.0.0.1 in a thread;
* :mod:`aipartnerupflow.testing.http_target` - the HTTP target server (:class:`HttpTarget`);
* :mod:`aipartnerupflow.testing.resolver` - :class:`FakeResolver`;
* :mod:`aipartnerupflow.testing.webhook` - :class:`WebhookReceiver`;
* :mod:`aipartnerupflow.testing.chat_server` - :class:`FakeChatServer`, an OpenAI-compatible
  chat server scripted with :class:`ChatReply`;
* :mod:`aipartnerupflow.testing.legacy` - a database of aipartnerupflow 0.9 written from its
  published schema (:func:`write_legacy_database`), for import tests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer, ToolCall
    from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase, OversizedCase
    from aipartnerupflow.testing.http_target import HttpTarget, TargetState, build_target_app
    from aipartnerupflow.testing.resolver import FakeResolver
    from aipartnerupflow.testing.server import LoopbackServer
    from aipartnerupflow.testing.webhook import WebhookReceiver

_WHERE = {
    "ChatReply": "aipartnerupflow.testing.chat_server",
    "FakeChatServer": "aipartnerupflow.testing.chat_server",
    "ToolCall": "aipartnerupflow.testing.chat_server",
    "ExecutorContract": "aipartnerupflow.testing.contract",
    "InvalidCase": "aipartnerupflow.testing.contract",
    "OversizedCase": "aipartnerupflow.testing.contract",
    "HttpTarget": "aipartnerupflow.testing.http_target",
    "TargetState": "aipartnerupflow.testing.http_target",
    "build_target_app": "aipartnerupflow.testing.http_target",
    "FakeResolver": "aipartnerupflow.testing.resolver",
    "LoopbackServer": "aipartnerupflow.testing.server",
    "WebhookReceiver": "aipartnerupflow.testing.webhook",
}

__all__ = [
    "ChatReply",
    "ExecutorContract",
    "FakeChatServer",
    "FakeResolver",
    "HttpTarget",
    "InvalidCase",
    "LoopbackServer",
    "OversizedCase",
    "TargetState",
    "ToolCall",
    "WebhookReceiver",
    "build_target_app",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
