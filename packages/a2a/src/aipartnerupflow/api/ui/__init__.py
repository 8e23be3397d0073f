"""The live dashboard served at ``/ui`` when :attr:`ServerSettings.ui` is on.

Static ES modules and CSS shipped in the wheel (no build step, nothing fetched at run time)
that read and steer task trees through the ``/tasks`` JSON-RPC API and the tree WebSocket,
with the same authentication as every other client. :class:`UiGate` serves the assets and a
login that keeps the bearer token in an HttpOnly cookie.
"""

from __future__ import annotations

from aipartnerupflow.api.ui.gate import STATIC_DIR, UI_PREFIX, UiGate
from aipartnerupflow.api.ui.session import COOKIE_NAME, UI_HEADER

__all__ = ["COOKIE_NAME", "STATIC_DIR", "UI_HEADER", "UI_PREFIX", "UiGate"]
