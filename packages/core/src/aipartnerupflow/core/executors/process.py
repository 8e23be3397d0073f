"""The subprocess runner: argv only (never a shell), its own process group, nothing survives.

:func:`run_process` starts the program in a new session (so it leads its own process group),
feeds ``stdin``, collects stdout and stderr under a cap, and waits. On timeout or cancellation
it sends SIGTERM to the whole group, then SIGKILL after a grace period; after a normal exit it
kills whatever the program left running in its group, so no child outlives its task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aipartnerupflow.core.errors import ExecutorError, InputValidationError, TaskTimeoutError
from aipartnerupflow.core.executors.caps import DEFAULT_MAX_OUTPUT_BYTES, OutputCap

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "ProcessExitError",
    "ProcessResult",
    "check_argv",
    "kill_group",
    "run_process",
]

DEFAULT_GRACE_SECONDS = 2.0
_CHUNK = 64 * 1024


class ProcessExitError(ExecutorError):
    """The program exited with a status ``allowed_exit_codes`` does not accept."""

    def __init__(self, message: str, result: ProcessResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(slots=True)
class ProcessResult:
    """What a finished program did."""

    argv: list[str]
    exit_code: int
    stdout: OutputCap
    stderr: OutputCap
    duration: float

    @property
    def signal(self) -> int | None:
        """The signal that ended the program, if one did."""
        return -self.exit_code if self.exit_code < 0 else None

    def to_dict(self, encoding: str = "utf-8") -> dict[str, Any]:
        """A JSON result: exit code, decoded stdout/stderr, truncation, duration."""
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout.text(encoding),
            "stderr": self.stderr.text(encoding),
            "stdout_truncated": self.stdout.truncated,
            "stderr_truncated": self.stderr.truncated,
            "stdout_bytes": self.stdout.total,
            "stderr_bytes": self.stderr.total,
            "duration": round(self.duration, 6),
        }


def check_argv(argv: Any, *, field: str = "command") -> list[str]:
    """``argv`` as a list of strings, or a clear :class:`InputValidationError`."""
    if not isinstance(argv, list | tuple) or not argv:
        raise InputValidationError(f"input {field!r} must be a non-empty list of strings (argv)")
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):
            raise InputValidationError(f"input '{field}[{i}]' must be a string")
        if "\x00" in arg:
            raise InputValidationError(f"input '{field}[{i}]' contains a NUL byte")
    return list(argv)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig`` to process group ``pid``; False when the group no longer exists."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


async def _pump(stream: asyncio.StreamReader | None, cap: OutputCap) -> None:
    if stream is None:
        return
    while chunk := await stream.read(_CHUNK):
        cap.feed(chunk)  # keep reading past the cap: a blocked pipe would hang the program


async def _feed(stdin: asyncio.StreamWriter | None, data: bytes | None) -> None:
    if stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            stdin.write(data)
            await stdin.drain()
        stdin.close()
        await stdin.wait_closed()


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+), or None where there is none."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:  # already reaped, or no pidfd support in this kernel
        return None
    return fd


async def _exited(process: asyncio.subprocess.Process) -> None:
    """Return once the program itself has ended, even while what it left running holds its
    pipes open: asyncio's ``wait()`` also waits for the pipes (Python 3.11), so it alone would
    wait for those processes to end.
    """
    waiter = asyncio.ensure_future(process.wait())
    fd = _pidfd(process.pid)
    try:
        if fd is None:
            while process.returncode is None and not waiter.done():
                await asyncio.wait({waiter}, timeout=0.05)
            return
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, readable)
        try:
            either: set[asyncio.Future[Any]] = {waiter, ready}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
    finally:
        if fd is not None:
            os.close(fd)
        waiter.cancel()


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the group, SIGKILL it after ``grace`` seconds, and reap the leader."""
    if process.returncode is None:
        kill_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), grace)
    kill_group(process.pid, signal.SIGKILL)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - a documented input of executors
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    allowed_exit_codes: Iterable[int] | None = (0,),
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> ProcessResult:
    """Run ``argv`` to its end and return its :class:`ProcessResult`.

    ``env`` is the whole environment (nothing is inherited when it is given; pass what the
    program needs). ``allowed_exit_codes`` None accepts any status; otherwise another status
    raises :class:`ProcessExitError`. A timeout raises
    :class:`~aipartnerupflow.core.errors.TaskTimeoutError`; either way, and on cancellation,
    the whole process group is stopped before this returns or raises.
    """
    args = check_argv(list(argv))
    stdout, stderr = OutputCap(max_output_bytes), OutputCap(max_output_bytes)
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise InputValidationError(f"program not found: {args[0]!r}") from None
    except PermissionError:
        raise InputValidationError(f"program is not executable: {args[0]!r}") from None
    except NotADirectoryError:
        raise InputValidationError(f"working directory is not a directory: {cwd!s}") from None
    io = asyncio.gather(
        _feed(process.stdin, stdin), _pump(process.stdout, stdout), _pump(process.stderr, stderr)
    )
    try:
        async with asyncio.timeout(timeout):
            await _exited(process)
            kill_group(process.pid)  # what the program left running would hold the pipes open
            await io
            await process.wait()
    except TimeoutError:
        await _stop(process, grace_seconds)
        io.cancel()
        await asyncio.gather(io, return_exceptions=True)
        raise TaskTimeoutError(f"{args[0]} timed out after {timeout:g}s and was killed") from None
    except BaseException:
        await asyncio.shield(_stop(process, grace_seconds))
        io.cancel()
        await asyncio.gather(io, return_exceptions=True)
        raise
    code = process.returncode
    assert code is not None
    result = ProcessResult(args, code, stdout, stderr, time.monotonic() - started)
    allowed = None if allowed_exit_codes is None else frozenset(allowed_exit_codes)
    if allowed is not None and code not in allowed:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        tail = stderr.text().strip()[-300:]
        raise ProcessExitError(
            f"{args[0]} {how} (allowed: {', '.join(map(str, sorted(allowed)))})"
            + (f": {tail}" if tail else ""),
            result,
        )
    return result
