"""aipartnerupflow's A2A server: the orchestration engine as an A2A 1.0 agent.

``create_app()`` builds the Starlette application; ``aipartnerupflow-server``,
``python -m aipartnerupflow.api.main`` and ``apflow serve a2a`` run it with uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aipartnerupflow.api.app import create_app
    from aipartnerupflow.api.config import ServerSettings
    from aipartnerupflow.api.security import create_token
    from aipartnerupflow.api.server_plugin import serve

__all__ = ["ServerSettings", "create_app", "create_token", "serve"]

_EXPORTS = {
    "create_app": "aipartnerupflow.api.app",
    "ServerSettings": "aipartnerupflow.api.config",
    "create_token": "aipartnerupflow.api.security",
    "serve": "aipartnerupflow.api.server_plugin",
}


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
