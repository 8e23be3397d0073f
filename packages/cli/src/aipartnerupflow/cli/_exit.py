"""Ending the ``apflow`` process without tearing the interpreter down object by object.

Once a command has returned, its store is closed and its results are committed. What is left
for CPython's shutdown is joining threads, ``atexit`` handlers, flushing stdout and stderr, and
then garbage-collecting and deallocating every loaded module (typer, pydantic, rich, duckdb,
asyncio ...), which takes tens of milliseconds and has no effect outside the process. (CPython
does not promise to finalize objects still alive at exit.) :func:`exit_quickly` does the first
three, exactly as the interpreter would, and then ends the process with the command's status.
Whenever that might be observable it leaves the exit to Python: not the console script (a test
runner, a profiler, an embedding program), ``python -i`` / ``PYTHONINSPECT``, ``-X dev``, an
exit message instead of a status, or an error while flushing.
"""

from __future__ import annotations

import os
import sys

__all__ = ["SCRIPTS", "exit_quickly"]

#: The console scripts (``[project.scripts]``), the only programs that end this way.
SCRIPTS = frozenset({"apflow", "aipartnerupflow"})


def _status(code: object) -> int | None:
    """The process status for ``SystemExit(code)``; None when Python would print something."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return None


def _is_console_script(entry: object) -> bool:
    """``__main__`` is an installed ``apflow`` script that calls ``entry``."""
    main = sys.modules.get("__main__")
    if getattr(main, "run", None) is not entry:
        return False
    return os.path.basename(getattr(main, "__file__", None) or "") in SCRIPTS


def exit_quickly(code: object, entry: object) -> None:
    """End the process with ``SystemExit(code)``'s status after threads, atexit and flushing.

    ``entry`` is the console script's function; the quick exit is taken only when
    ``__main__`` is that script. Returns (doing nothing) when the exit is better left to Python.
    """
    status = _status(code)
    if status is None or not _is_console_script(entry):
        return
    if sys.flags.inspect or sys.flags.dev_mode or os.environ.get("PYTHONINSPECT"):
        return
    import atexit
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx calls first
    except KeyboardInterrupt:  # Ctrl-C while waiting for threads: Python stops waiting too
        return
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            # the originals too (only teardown would flush them); closed ones as Python does
            if stream is not None and not getattr(stream, "closed", False):
                stream.flush()
    except Exception:  # Python reports it at exit (status 120)
        return
    os._exit(status)
