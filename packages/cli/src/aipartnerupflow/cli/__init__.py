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
    try:
        main()
    finally:
        _settle_for_exit()


def _settle_for_exit() -> None:
    """Spare the interpreter's shutdown a garbage collection over every loaded module.

    The command is over (its store closed, its output flushed); what is still alive is module
    state that the process's exit frees anyway. Freezing it keeps the shutdown collections from
    walking (and tearing down) those objects one by one, which costs tens of milliseconds once
    pydantic, duckdb and rich are loaded. ``atexit`` handlers, thread joins and the flushing of
    stdout and stderr still run as usual.
    """
    import gc

    gc.freeze()


def __getattr__(name: str) -> Any:
    if name == "app":
        from aipartnerupflow.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
