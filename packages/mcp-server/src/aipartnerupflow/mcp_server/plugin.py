"""The ``aipartnerupflow.servers`` entry point ``mcp``: what ``apflow serve mcp`` runs."""

from __future__ import annotations

import logging
from typing import Any

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.mcp_server.settings import McpServerSettings

__all__ = ["check_bind", "serve"]

log = logging.getLogger("aipartnerupflow.mcp_server")


def check_bind(settings: McpServerSettings, auth_enabled: bool) -> None:
    """Refuse a non-loopback bind without JWT auth unless ``insecure`` is set."""
    from aipartnerupflow.api.config import is_loopback_host

    if is_loopback_host(settings.host) or auth_enabled or settings.insecure:
        return
    raise ConfigurationError(
        f"refusing to serve MCP on {settings.host}: it is reachable from other machines and no "
        "authentication is configured. Set AIPARTNERUPFLOW_JWT_SECRET_KEY (or "
        "AIPARTNERUPFLOW_JWT_PUBLIC_KEY), bind 127.0.0.1, or pass --insecure "
        "(AIPARTNERUPFLOW_MCP_SERVER_INSECURE=true) if anyone who can reach it may run tasks"
    )


def serve(
    host: str | None = None,
    port: int | None = None,
    database_url: str | None = None,
    transport: str = "http",
    **options: Any,
) -> None:
    """Run the MCP server in the foreground: streamable HTTP (default) or ``stdio``.

    Arguments left as None come from ``AIPARTNERUPFLOW_MCP_SERVER_*`` (then 127.0.0.1:8010);
    ``options`` are other :class:`McpServerSettings` fields and ``jwt_*`` auth options.
    """
    if transport == "stdio":
        import anyio

        from aipartnerupflow.mcp_server.app import run_stdio

        anyio.run(run_stdio, database_url)
        return
    if transport != "http":
        raise ConfigurationError(f"transport must be 'http' or 'stdio', not {transport!r}")
    import uvicorn

    from aipartnerupflow.mcp_server.app import create_http_app, jwt_settings

    jwt_options = {k: options.pop(k) for k in list(options) if k.startswith("jwt_")}
    unknown = set(options) - set(McpServerSettings.model_fields)
    if unknown:
        raise ConfigurationError(
            "unknown MCP server option(s): "
            + ", ".join(sorted(unknown))
            + ". Known options: "
            + ", ".join(sorted([*McpServerSettings.model_fields, "jwt_*", "transport"]))
        )
    given = {k: v for k, v in {"host": host, "port": port, **options}.items() if v is not None}
    settings = McpServerSettings.from_env(**given)
    check_bind(settings, jwt_settings(**jwt_options).auth_enabled)
    app = create_http_app(settings, database_url=database_url, **jwt_options)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=False,
        server_header=False,
    )
