"""Test fixtures and the executor contract suite for aipartnerupflow packages.

* :mod:`aipartnerupflow.testing.contract` - :class:`ExecutorContract`, the tests every executor
  package subclasses (ours and third parties');
* :mod:`aipartnerupflow.testing.fixtures` - a pytest plugin module with ``task_manager``,
  ``run_tree`` and ``serve_asgi``; load it with
  ``pytest_plugins = ["aipartnerupflow.testing.fixtures"]`` in your top-level ``conftest.py``;
* :mod:`aipartnerupflow.testing.bad_inputs` - the bad-input corpus every surface (service,
  A2A API, CLI, MCP) must refuse with the same reasons;
* :mod:`aipartnerupflow.testing.server` - :class:`LoopbackServer`, an ASGI app served by uvicorn
  on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase
    from aipartnerupflow.testing.server import LoopbackServer

__all__ = ["ExecutorContract", "InvalidCase", "LoopbackServer"]

_WHERE = {
    "ExecutorContract": "aipartnerupflow.testing.contract",
    "InvalidCase": "aipartnerupflow.testing.contract",
    "LoopbackServer": "aipartnerupflow.testing.server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
