"""The ``apflow`` / ``aipartnerupflow`` command line.

Importing this package is cheap: the Typer application (``app``) is built on first access.
"""

from __future__ import annotations

from typing import Any

__version__ = "1.0.0"
__all__ = ["__version__", "app", "run"]


def run() -> None:
    """The console scripts' entry: Ctrl-C while the CLI is still loading exits 130 quietly.

    Root help and ``--version`` are answered without loading typer when they can be
    (:func:`aipartnerupflow.cli._root.fast_path`, the same text); once a command has returned,
    the process ends without the interpreter's module teardown
    (:func:`aipartnerupflow.cli._exit.exit_quickly`).
    """
    import sys

    from aipartnerupflow.cli._exit import exit_quickly

    try:
        from aipartnerupflow.cli._root import fast_path

        code = fast_path(sys.argv[1:])
        if code is not None:
            exit_quickly(code, run)
            raise SystemExit(code)
        from aipartnerupflow.cli.main import main
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    try:
        main()
    except SystemExit as exc:
        exit_quickly(exc.code, run)
        raise
    exit_quickly(0, run)


def __getattr__(name: str) -> Any:
    if name == "app":
        from aipartnerupflow.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
