"""``aipartnerupflow-server`` / ``python -m aipartnerupflow.api.main``: run the A2A server.

``uvicorn aipartnerupflow.api.main:app`` also works: ``app`` is built on first access from
``AIPARTNERUPFLOW_*`` variables. Every way in reads ``./.env`` (variables already set win) and
imports the plugin modules of ``--plugin`` and ``AIPARTNERUPFLOW_PLUGINS``, as the CLI does.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from aipartnerupflow.core.errors import AipartnerupflowError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (each falls back to its ``AIPARTNERUPFLOW_*`` variable)."""
    parser = argparse.ArgumentParser(
        prog="aipartnerupflow-server",
        description="Serve aipartnerupflow as an A2A agent (JSON-RPC and HTTP+JSON).",
    )
    parser.add_argument(
        "--host", help="address to bind (default 127.0.0.1; AIPARTNERUPFLOW_API_HOST)"
    )
    parser.add_argument("--port", type=int, help="port (default 8000; AIPARTNERUPFLOW_API_PORT)")
    parser.add_argument("--database-url", help="task database (AIPARTNERUPFLOW_DATABASE_URL)")
    parser.add_argument(
        "--base-url", help="public URL for the agent card (AIPARTNERUPFLOW_BASE_URL)"
    )
    parser.add_argument(
        "--agent",
        choices=["flow", "tck"],
        help="'flow' runs task trees (default); 'tck' is the A2A TCK sample agent",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow a non-loopback bind without authentication",
    )
    parser.add_argument(
        "--ui",
        action="store_true",
        default=None,
        help="serve the live dashboard at /ui (AIPARTNERUPFLOW_UI)",
    )
    parser.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module (or .py file) that registers executors with "
        "@executor_register(); repeatable (AIPARTNERUPFLOW_PLUGINS)",
    )
    parser.add_argument(
        "--env-file", metavar="FILE", help="read this file instead of ./.env (if present)"
    )
    return parser


def _start(plugins: Sequence[str] = (), env_file: str | None = None) -> None:
    """What every entry point does first: read ``.env``, import the plugin modules."""
    from aipartnerupflow.core.registry import load_plugins
    from aipartnerupflow.core.settings import load_dotenv

    load_dotenv(env_file)
    load_plugins(plugins)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and serve until interrupted; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        _start(args.plugin, args.env_file)
        from aipartnerupflow.core.settings import CoreSettings

        level = args.log_level or CoreSettings.get().log_level or "info"
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        from aipartnerupflow.api.server_plugin import serve

        serve(
            host=args.host,
            port=args.port,
            database_url=args.database_url,
            base_url=args.base_url,
            agent=args.agent,
            insecure=args.insecure,
            ui=args.ui,
            log_level=args.log_level,
        )
    except AipartnerupflowError as exc:
        print(f"aipartnerupflow-server: error: {exc}", file=sys.stderr)
        return 2
    return 0


_app: Any = None


def __getattr__(name: str) -> Any:
    global _app
    if name == "app":
        if _app is None:
            from aipartnerupflow.api.app import create_app

            _start()
            _app = create_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
