"""The ``aipartnerupflow.servers`` entry point ``a2a``: what ``apflow serve a2a`` runs."""

from __future__ import annotations

import logging
from typing import Any

from aipartnerupflow.api.config import ServerSettings, is_loopback_host

__all__ = ["serve"]

log = logging.getLogger("aipartnerupflow.api")


def serve(
    host: str | None = None,
    port: int | None = None,
    database_url: str | None = None,
    **options: Any,
) -> None:
    """Run the A2A server in the foreground until interrupted.

    Arguments left as None come from ``AIPARTNERUPFLOW_*`` variables (then 127.0.0.1:8000);
    ``options`` are any other :class:`ServerSettings` fields (``insecure``, ``base_url``,
    ``jwt_secret_key``, ``agent``...). A non-loopback ``host`` without JWT auth is refused
    unless ``insecure=True``.
    """
    import uvicorn

    from aipartnerupflow.api.app import create_app

    settings = ServerSettings.from_env(host=host, port=port, database_url=database_url, **options)
    settings.check_bind()
    if not is_loopback_host(settings.host) and not settings.auth_enabled:
        banner = "!" * 78
        log.warning(
            "\n%s\nINSECURE: serving %s:%d WITHOUT AUTHENTICATION. Anyone who can reach this "
            "address can run tasks.\n%s",
            banner,
            settings.host,
            settings.port,
            banner,
        )
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=False,
        server_header=False,
    )
