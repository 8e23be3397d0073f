"""The ``apflow`` / ``aipartnerupflow`` command line.

Importing this package is cheap: the Typer application (``app``) is built on first access.
"""

from __future__ import annotations

from typing import Any

__version__ = "1.0.0"
__all__ = ["__version__", "app", "run"]


def run() -> None:
    """The console scripts' entry: Ctrl-C while the CLI is still loading exits 130 quietly."""
    try:
        from aipartnerupflow.cli.main import main
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    main()


def __getattr__(name: str) -> Any:
    if name == "app":
        from aipartnerupflow.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
