"""``python -m aipartnerupflow.mcp_server [--transport stdio|http] [--host H] [--port P]``."""

from __future__ import annotations

import argparse
import sys

from aipartnerupflow.core.errors import AipartnerupflowError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the server; stdio by default (what MCP clients launch)."""
    parser = argparse.ArgumentParser(prog="python -m aipartnerupflow.mcp_server")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--host", default=None, help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default 8010)")
    parser.add_argument("--database-url", default=None, help="Task database URL")
    parser.add_argument("--insecure", action="store_true", help="Allow a public bind without auth")
    args = parser.parse_args(argv)
    from aipartnerupflow.mcp_server.plugin import serve

    options = {"insecure": True} if args.insecure else {}
    try:
        serve(args.host, args.port, args.database_url, transport=args.transport, **options)
    except AipartnerupflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
