"""HTTP/REST executor for aipartnerupflow: ``rest_executor``, on httpx.

Importing this package does not import httpx; the first request does. Request targets are
limited by an :class:`OutboundPolicy` (non-public addresses are denied by default).
"""

from __future__ import annotations

from aipartnerupflow.extensions.http.errors import (
    HttpConnectionError,
    HttpError,
    HttpStatusError,
    HttpTimeoutError,
    OutboundPolicyError,
)
from aipartnerupflow.extensions.http.executor import RestExecutor
from aipartnerupflow.extensions.http.policy import (
    OutboundPolicy,
    get_default_policy,
    set_default_policy,
)

__all__ = [
    "HttpConnectionError",
    "HttpError",
    "HttpStatusError",
    "HttpTimeoutError",
    "OutboundPolicy",
    "OutboundPolicyError",
    "RestExecutor",
    "aclose_clients",
    "get_default_policy",
    "set_default_policy",
]


async def aclose_clients() -> None:
    """Close the shared HTTP connection pools of the running event loop.

    Call it before the event loop ends (for example when your application shuts down), so
    pooled connections are closed cleanly.
    """
    import sys

    if "aipartnerupflow.extensions.http._client" not in sys.modules:
        return  # no request was ever made: nothing to close, and no reason to import httpx
    from aipartnerupflow.extensions.http._client import aclose_clients as close

    await close()
