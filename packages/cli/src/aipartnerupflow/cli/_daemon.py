"""Daemon bookkeeping: the per-user directory, pid/state/log files and process control.

The directory is ``$AIPARTNERUPFLOW_DAEMON_DIR``, else ``$XDG_STATE_HOME/aipartnerupflow``,
else ``~/.aipartnerup/daemon``. It holds ``daemon.pid``, ``daemon.json`` (how the daemon was
started, so ``restart`` can repeat it) and ``daemon.log``. The files are private to the user
(mode 0600): ``daemon.json`` holds the database URL, which may carry a password.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DaemonConfig",
    "DaemonState",
    "clear_files",
    "clear_stale_pid",
    "daemon_dir",
    "is_alive",
    "last_settings",
    "log_file",
    "open_log",
    "pid_file",
    "probe",
    "read_running_state",
    "read_state",
    "server_url",
    "spawn",
    "state_file",
    "tail",
    "terminate",
    "wait_ready",
    "write_state",
]

DAEMON_DIR_ENV = "AIPARTNERUPFLOW_DAEMON_DIR"


@dataclass(slots=True)
class DaemonConfig:
    """How to start the daemon."""

    protocol: str = "a2a"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None
    plugins: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DaemonState(DaemonConfig):
    """What ``daemon.json`` records about a started daemon: its settings and process."""

    pid: int = 0
    started_at: float = 0.0

    @property
    def url(self) -> str:
        """The base URL clients use."""
        return server_url(self.host, self.port)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for output, with the URL (the database password hidden)."""
        from aipartnerupflow.cli._common import redact_url

        data = asdict(self)
        if self.database_url:
            data["database_url"] = redact_url(self.database_url)
        data["url"] = self.url
        return data


def daemon_dir() -> Path:
    """The per-user directory for daemon files (not created here)."""
    from aipartnerupflow.cli.settings import CliSettings

    explicit = CliSettings.get().daemon_dir
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / "aipartnerupflow"
    return Path.home() / ".aipartnerup" / "daemon"


def pid_file() -> Path:
    """``daemon.pid``."""
    return daemon_dir() / "daemon.pid"


def state_file() -> Path:
    """``daemon.json``."""
    return daemon_dir() / "daemon.json"


def log_file() -> Path:
    """``daemon.log``."""
    return daemon_dir() / "daemon.log"


def server_url(host: str, port: int) -> str:
    """``http://host:port``, with the wildcard addresses shown as loopback."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def read_state() -> DaemonState | None:
    """The recorded daemon, running or not; None when no pid file exists."""
    try:
        pid = int(pid_file().read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    state = last_settings() or DaemonState()
    state.pid = pid
    return state


def read_running_state() -> DaemonState | None:
    """The recorded daemon if its process is alive."""
    state = read_state()
    if state is not None and is_alive(state.pid):
        return state
    return None


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in a file only the user can read (mode 0600)."""
    tmp = path.with_name(f"{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)


def open_log(path: Path) -> int:
    """Open the log for appending (created private, mode 0600); a file descriptor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o600)  # a log created by an older version may be world-readable
    return fd


def write_state(state: DaemonState) -> None:
    """Write ``daemon.json`` and then ``daemon.pid`` (both private to the user)."""
    directory = daemon_dir()
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(state_file(), json.dumps(asdict(state), indent=2))
    _write_private(pid_file(), f"{state.pid}\n")


def clear_files() -> None:
    """Remove the pid file. ``daemon.json`` stays as the last settings (for ``restart``), and
    so does the log."""
    with contextlib.suppress(FileNotFoundError):
        pid_file().unlink()


def clear_stale_pid() -> int | None:
    """Remove a pid file whose process is gone or which holds no pid; the pid it named."""
    path = pid_file()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    pid = int(text) if text.isdigit() else None
    if pid is not None and is_alive(pid):
        return None
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return pid if pid is not None else -1


def last_settings() -> DaemonState | None:
    """The settings the daemon was last started with, running or not (``daemon.json``)."""
    try:
        data = json.loads(state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    known = {k: v for k, v in data.items() if k in DaemonState.__dataclass_fields__}
    try:
        return DaemonState(**known)
    except TypeError:
        return None


def _reap(pid: int) -> bool:
    """Collect ``pid`` if it is our exited child; True when it was."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    except OSError:
        return False
    return done == pid


def is_alive(pid: int, *, check_command: bool = True) -> bool:
    """True when ``pid`` runs (zombies excluded) and, with ``check_command``, looks like an
    apflow daemon (so a recycled pid is not mistaken for it)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - no /proc, no signals
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    if _reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process took the pid
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError):
            return False
        if not check_command or not cmdline.strip():  # empty while the process execs
            return True
        return b"aipartnerupflow" in cmdline or b"apflow" in cmdline
    return True


def spawn(argv: list[str], env: dict[str, str], log: Path) -> int:
    """Start ``argv`` detached (own session), stdout and stderr appended to ``log``."""
    fd = open_log(log)
    try:
        if sys.platform == "win32":  # pragma: no cover
            import subprocess

            flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS  # type: ignore[attr-defined]
            proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, creationflags=flags
            )
            return proc.pid
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, fd, 1),
            (os.POSIX_SPAWN_DUP2, fd, 2),
            (os.POSIX_SPAWN_CLOSE, fd),
        ]
        return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    finally:
        os.close(fd)


def probe(host: str, port: int) -> bool:
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_ready(pid: int, host: str, port: int, timeout: float) -> str:
    """Wait until the server accepts connections: ``ready``, ``exited`` or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if not is_alive(pid, check_command=False):
            return "exited"
        if probe(host, port):
            return "ready"
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(0.1)


def terminate(pid: int, timeout: float) -> bool:
    """SIGTERM the daemon's process group, then SIGKILL after ``timeout``; True if it ended."""

    def send(sig: int) -> None:
        try:
            os.killpg(pid, sig)  # the daemon leads its own session and process group
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid, check_command=False):
            return True
        time.sleep(0.1)
    send(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not is_alive(pid, check_command=False):
            return True
        time.sleep(0.05)
    return not is_alive(pid, check_command=False)


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (reads from the end, not the whole file)."""
    if lines <= 0 or not path.is_file():
        return []
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        block = 8192
        data = b""
        while size > 0 and data.count(b"\n") <= lines:
            step = min(block, size)
            size -= step
            fh.seek(size)
            data = fh.read(step) + data
    text = data.decode("utf-8", errors="replace").splitlines()
    return text[-lines:]
