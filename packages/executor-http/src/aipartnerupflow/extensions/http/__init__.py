"""HTTP/REST executor for aipartnerupflow: ``rest_executor``, on httpx.

Importing this package does not import httpx; the first request does. Request targets are
limited by an :class:`OutboundPolicy` (non-public addresses are denied by default); settings
are the ``AIPARTNERUPFLOW_HTTP_*`` variables (:class:`HttpSettings`).
"""

from __future__ import annotations

from aipartnerupflow.extensions.http.errors import (
    HttpConnectionError,
    HttpError,
    HttpRedirectError,
    HttpStatusError,
    HttpTimeoutError,
    HttpTlsError,
    OutboundPolicyError,
    PermanentHttpStatusError,
    RetryableHttpStatusError,
)
from aipartnerupflow.extensions.http.executor import RestExecutor
from aipartnerupflow.extensions.http.policy import (
    OutboundPolicy,
    get_default_policy,
    set_default_policy,
)
from aipartnerupflow.extensions.http.settings import HttpSettings

__all__ = [
    "HttpConnectionError",
    "HttpError",
    "HttpRedirectError",
    "HttpSettings",
    "HttpStatusError",
    "HttpTimeoutError",
    "HttpTlsError",
    "OutboundPolicy",
    "OutboundPolicyError",
    "PermanentHttpStatusError",
    "RestExecutor",
    "RetryableHttpStatusError",
    "aclose_clients",
    "get_default_policy",
    "set_default_policy",
]


async def aclose_clients() -> None:
    """Close the shared HTTP connection pools of the running event loop.

    ``aipartnerupflow.core.executors.aclose_loop_resources()`` closes them too, with every
    other executor's shared resources.
    """
    import sys

    if "aipartnerupflow.extensions.http._client" not in sys.modules:
        return  # no request was ever made: nothing to close, and no reason to import httpx
    from aipartnerupflow.extensions.http._client import aclose_clients as close

    await close()
