"""The command line sent to the remote shell: quoted argv or a shell string, env, cwd.

sshd runs what it receives with the user's login shell (``$SHELL -c``), which must be POSIX
compatible (sh, bash, dash, zsh, ksh). The line first prints a marker with the shell's process
id on stderr (sshd makes it the leader of a new process group), so a cancelled task can stop
the whole group from a second channel even where the server ignores SSH signal requests.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

__all__ = [
    "PID_MARKER",
    "SETUP_FAILED",
    "build_remote_command",
    "kill_group_command",
    "split_pid_marker",
]

#: Written on stderr, followed by the remote process group id and a newline.
PID_MARKER = b"\x1e__apflow_ssh_pgid__="
#: Exit status of the line when ``export`` or ``cd`` fails (the command does not run).
SETUP_FAILED = 126
_MARKER_LINE = re.compile(re.escape(PID_MARKER) + rb"([0-9]+)\n")


def build_remote_command(
    command: str | Sequence[str], env: Mapping[str, str], cwd: str | None
) -> str:
    """The line for ``$SHELL -c``: marker, exports, ``cd``, then the command.

    An argv list is quoted with :func:`shlex.join` and run with ``exec`` (no shell
    interpretation); a string is run by the remote shell as written.
    """
    marker = PID_MARKER.decode("ascii").replace("\x1e", "\\036")
    lines = [f"printf '{marker}%s\\n' \"$$\" >&2"]
    if env:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        lines.append(f"export {exports} || exit {SETUP_FAILED}")
    if cwd is not None:
        lines.append(f"cd -- {shlex.quote(cwd)} || exit {SETUP_FAILED}")
    lines.append(command if isinstance(command, str) else "exec " + shlex.join(command))
    return "\n".join(lines)


def split_pid_marker(buffer: bytes) -> tuple[bytes, int | None, bool]:
    """(output without the marker line, process group id or None, whether the search is over).

    Called with the stderr received so far; the search is over once the marker is found, or
    once enough bytes arrived that it cannot come any more.
    """
    found = _MARKER_LINE.search(buffer)
    if found is not None:
        return buffer[: found.start()] + buffer[found.end() :], int(found.group(1)), True
    return buffer, None, len(buffer) > 64 * 1024


def kill_group_command(pgid: int, grace_seconds: float) -> str:
    """A shell line that sends SIGTERM to process group ``pgid``, then SIGKILL after a grace."""
    steps = max(1, int(grace_seconds / 0.2))
    return (
        f"kill -TERM -- -{pgid} 2>/dev/null || exit 0; i=0; "
        f"while [ $i -lt {steps} ] && kill -0 -- -{pgid} 2>/dev/null; "
        "do sleep 0.2 2>/dev/null || sleep 1; i=$((i+1)); done; "
        f"kill -KILL -- -{pgid} 2>/dev/null; exit 0"
    )
