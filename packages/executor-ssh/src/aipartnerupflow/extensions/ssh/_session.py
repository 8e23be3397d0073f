"""The asyncssh side of ``ssh_executor`` (imported on the first task, never at start-up).

Host keys are checked by :class:`_Client`: a pinned fingerprint, or the entries of the
known_hosts file for the host, its address and port; "accept new" trusts a host with no
entry at all and appends its key. The TCP connection is opened by the outbound policy
(checked, pinned address) and handed to asyncssh; nothing of the user's ``~/.ssh/config``,
default keys or agent is used unless the task asks for it and the operator allows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from aipartnerupflow.core.executors.caps import OutputCap
from aipartnerupflow.extensions.ssh.command import kill_group_command, split_pid_marker
from aipartnerupflow.extensions.ssh.errors import (
    SshAuthError,
    SshConnectionError,
    SshHostKeyError,
)

__all__ = [
    "HostKeyCheck",
    "Running",
    "SessionRefused",
    "import_key",
    "open_connection",
    "start_command",
]

log = logging.getLogger("aipartnerupflow.extensions.ssh")

_CHUNK = 64 * 1024
STOP_GRACE_SECONDS = 2.0


def import_key(text: str, passphrase: str | None, where: str) -> asyncssh.SSHKey:
    """The private key in ``text``; a clear error (never the key) when it cannot be read."""
    try:
        return asyncssh.import_private_key(text, passphrase)
    except asyncssh.KeyEncryptionError as exc:
        if "requires" in str(exc):  # a missing optional library (bcrypt), not the passphrase
            raise SshAuthError(
                f"the private key ({where}) cannot be decrypted here: {exc}"
            ) from None
        raise SshAuthError(
            f"the private key ({where}) could not be decrypted: the passphrase is wrong"
        ) from None
    except asyncssh.KeyImportError as exc:
        hint = (
            "it is encrypted: give 'passphrase' or 'passphrase_env'"
            if "passphrase" in str(exc).lower()
            else "expected an OpenSSH or PEM private key"
        )
        raise SshAuthError(f"the private key ({where}) could not be read: {hint}") from None
    except (ValueError, TypeError):
        raise SshAuthError(f"the private key ({where}) could not be read") from None


@dataclass(frozen=True, slots=True)
class HostKeyCheck:
    """How the server's host key is verified."""

    mode: str  # "pinned", "strict" or "accept_new"
    known_hosts: Path
    fingerprint: str | None = None
    setting: str = "AIPARTNERUPFLOW_SSH_KNOWN_HOSTS"

    def trusted(self, host: str, address: str, port: int) -> tuple[Any, bool]:
        """(the ``known_hosts`` argument for asyncssh, whether the file lists the host)."""
        if self.mode == "pinned":
            return ([], [], []), False
        path = self.known_hosts
        if not path.is_file():
            if self.mode == "accept_new":
                return ([], [], []), False
            raise SshHostKeyError(
                f"cannot verify the host key of {host}:{port}: the known_hosts file {path} does "
                f"not exist. Add the host's key to it (ssh-keyscan -p {port} {host} >> {path}, "
                f"then check the fingerprint), point {self.setting} at another file, or pin the "
                "key with 'host_key_fingerprint'"
            )
        try:
            known = asyncssh.read_known_hosts(str(path))
        except (OSError, ValueError) as exc:
            raise SshHostKeyError(f"cannot read the known_hosts file {path}: {exc}") from None
        keys, cas, revoked, *_ = known.match(host, address, port if port != 22 else None)
        return (list(keys), list(cas), list(revoked)), bool(keys or cas)

    def entry(self, host: str, port: int, key: asyncssh.SSHKey) -> str:
        """The known_hosts line for ``key``."""
        name = host if port == 22 else f"[{host}]:{port}"
        public = key.export_public_key("openssh").decode("ascii").split()
        return f"{name} {public[0]} {public[1]}\n"


class _Client(asyncssh.SSHClient):
    """Verifies host keys the known_hosts entries did not already accept; tracks closing."""

    def __init__(self, check: HostKeyCheck, host: str, port: int, listed: bool) -> None:
        self.check = check
        self.host = host
        self.port = port
        self.listed = listed
        self.problem: str | None = None
        self.closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        seen = key.get_fingerprint("sha256")
        where = f"{self.host}:{self.port}"
        if self.check.mode == "pinned":
            if seen == self.check.fingerprint:
                return True
            self.problem = (
                f"HOST KEY MISMATCH for {where}: the server presented {seen}, not the pinned "
                f"{self.check.fingerprint}. Someone may be intercepting the connection, or the "
                "host key changed; update 'host_key_fingerprint' only after checking with the "
                "server's administrator"
            )
            return False
        path = self.check.known_hosts
        if self.listed:
            self.problem = (
                f"HOST KEY MISMATCH for {where}: the server presented {seen}, which is not the "
                f"key known_hosts ({path}) lists for it. Someone may be intercepting the "
                "connection, or the host key changed; fix the entry only after checking with "
                "the server's administrator"
            )
            return False
        if self.check.mode == "accept_new":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="ascii") as fh:
                    fh.write(self.check.entry(self.host, self.port, key))
            except OSError as exc:
                self.problem = f"cannot add the host key of {where} to {path}: {exc.strerror}"
                return False
            log.warning("accepted the new host key %s of %s and added it to %s", seen, where, path)
            return True
        self.problem = (
            f"the host key of {where} ({seen}) is unknown: {path} has no entry for it. Add it "
            f"(ssh-keyscan -p {self.port} {self.host} >> {path}, then compare the fingerprint), "
            "pin it with 'host_key_fingerprint', or use host_key_policy 'accept_new' where the "
            "operator allows it (AIPARTNERUPFLOW_SSH_ALLOW_ACCEPT_NEW)"
        )
        return False


class PooledConnection:
    """An asyncssh connection with the client that watches it."""

    def __init__(self, connection: asyncssh.SSHClientConnection, client: _Client) -> None:
        self.ssh = connection
        self.client = client

    def is_closed(self) -> bool:
        return self.client.closed

    def close(self) -> None:
        self.ssh.close()

    async def wait_closed(self) -> None:
        await self.ssh.wait_closed()


async def open_connection(
    sock: Any,
    *,
    host: str,
    port: int,
    username: str,
    check: HostKeyCheck,
    password: str | None,
    key: asyncssh.SSHKey | None,
    agent_path: str | None,
    login_timeout: float,
) -> PooledConnection:
    """Run the SSH handshake and login over the connected ``sock`` (closed on failure)."""
    where = f"{username}@{host}:{port}"
    try:
        known_hosts, listed = check.trusted(host, sock.getpeername()[0], port)
    except BaseException:
        sock.close()
        raise
    client = _Client(check, host, port, listed)
    # asyncssh offers agent keys only beside default ~/.ssh keys; read the agent's keys here
    # instead, so nothing but the task's key and (when asked) the agent's is ever offered.
    keys: list[Any] = [key] if key is not None else []
    agent: Any = None
    try:
        if agent_path is not None:
            agent = await asyncssh.connect_agent(agent_path)
            if agent is None:
                raise SshAuthError(f"cannot reach the ssh-agent at SSH_AUTH_SOCK ({agent_path})")
            keys.extend(await agent.get_keys())
        connection = await asyncssh.connect(
            host,
            port,
            sock=sock,
            config=None,
            client_factory=lambda: client,
            known_hosts=known_hosts,
            x509_trusted_certs=None,
            username=username,
            password=password,
            client_keys=keys or None,
            agent_path=None,
            agent_forwarding=False,
            gss_auth=False,
            gss_kex=False,
            kbdint_auth=password is not None,
            login_timeout=login_timeout,
            connect_timeout=login_timeout,
            keepalive_interval=30,
        )
    except asyncssh.HostKeyNotVerifiable:
        sock.close()
        raise SshHostKeyError(
            client.problem or f"the host key of {host}:{port} is not trusted"
        ) from None
    except asyncssh.PermissionDenied:
        sock.close()
        tried = [
            name
            for name, used in (
                ("password", password is not None),
                ("private key", key is not None),
                ("agent", agent_path is not None),
            )
            if used
        ]
        raise SshAuthError(
            f"the server refused the credentials for {where} (tried: {', '.join(tried)}); "
            "check the username and the password or key, and that the server accepts that "
            "method"
        ) from None
    except asyncssh.DisconnectError as exc:
        sock.close()
        raise SshConnectionError(f"{where} closed the connection: {exc.reason}") from None
    except TimeoutError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise SshConnectionError(
            f"the connection to {host}:{port} failed: {exc.strerror or exc}"
        ) from None
    except BaseException:
        sock.close()
        raise
    finally:
        if agent is not None:
            agent.close()
            await agent.wait_closed()
    return PooledConnection(connection, client)


@dataclass(eq=False)
class Running:
    """One remote command in flight: its channel, output and remote process group."""

    connection: PooledConnection
    process: asyncssh.SSHClientProcess[bytes]
    stdout: OutputCap
    stderr: OutputCap
    started: float = field(default_factory=time.monotonic)
    pgid: int | None = None
    _pending: bytes = b""
    _marker_done: bool = False
    _stopping: asyncio.Task[None] | None = None

    async def _pump_stdout(self) -> None:
        while chunk := await self.process.stdout.read(_CHUNK):
            self.stdout.feed(chunk)

    async def _pump_stderr(self) -> None:
        while chunk := await self.process.stderr.read(_CHUNK):
            if self._marker_done:
                self.stderr.feed(chunk)
                continue
            data, pgid, done = split_pid_marker(self._pending + chunk)
            if done:
                self._marker_done, self.pgid, self._pending = True, pgid, b""
                self.stderr.feed(data)
            else:
                self._pending = data
        if self._pending:
            self.stderr.feed(self._pending)
            self._pending = b""

    async def _feed(self, data: bytes | None) -> None:
        with contextlib.suppress(OSError, asyncssh.Error, BrokenPipeError):
            if data:
                self.process.stdin.write(data)
                await self.process.stdin.drain()
            self.process.stdin.write_eof()

    async def finish(self, stdin: bytes | None) -> None:
        """Feed stdin, collect the output and wait for the exit status."""
        try:
            await asyncio.gather(self._feed(stdin), self._pump_stdout(), self._pump_stderr())
            await self.process.wait_closed()
        except (asyncssh.Error, OSError) as exc:
            raise SshConnectionError(f"the connection broke while the command ran: {exc}") from None
        if not self.exited() and self.connection.is_closed():
            raise SshConnectionError("the connection broke while the command ran")

    def exited(self) -> bool:
        return self.process.exit_status is not None or self.process.exit_signal is not None

    async def stop(self) -> None:
        """Stop the remote command (idempotent): SSH signal, then the whole process group
        from a second channel (SIGTERM, SIGKILL after a grace), then close the channel."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if not self.exited():
            with contextlib.suppress(Exception):
                self.process.send_signal("TERM")
            if self.pgid is not None and not self.connection.is_closed():
                line = kill_group_command(self.pgid, STOP_GRACE_SECONDS)
                try:
                    await asyncio.wait_for(
                        self.connection.ssh.run(line, check=False), STOP_GRACE_SECONDS + 10
                    )
                except Exception:
                    log.warning("could not stop the remote process group %s", self.pgid)
        with contextlib.suppress(Exception):
            self.process.close()
            if not self.connection.is_closed():
                await asyncio.wait_for(self.process.wait_closed(), 5)


class SessionRefused(SshConnectionError):
    """The server refused a new session on a working connection (its MaxSessions is reached)."""


#: Waits between attempts to open a session the server refused (it frees the slot of a
#: session that just ended a moment after the client saw it close).
_REFUSED = frozenset({asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, asyncssh.OPEN_RESOURCE_SHORTAGE})
_SESSION_RETRY_DELAYS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.2, 0.5, 0.5, 1.0, 1.0)


async def start_command(connection: PooledConnection, line: str, limit: int) -> Running:
    """Open a session channel running ``line``; a refused session is retried a few times."""
    for delay in (*_SESSION_RETRY_DELAYS, None):
        try:
            process = await connection.ssh.create_process(line, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            if connection.is_closed() or exc.code not in _REFUSED:
                raise SshConnectionError(f"the connection broke: {exc.reason}") from None
            if delay is None:
                raise SessionRefused(
                    f"the server refused a new session: {exc.reason} (lower "
                    "AIPARTNERUPFLOW_SSH_MAX_SESSIONS below the server's MaxSessions)"
                ) from None
            await asyncio.sleep(delay)
        except (asyncssh.Error, OSError) as exc:
            raise SshConnectionError(f"the connection broke: {exc}") from None
        else:
            return Running(connection, process, OutputCap(limit), OutputCap(limit))
    raise AssertionError("unreachable")  # pragma: no cover


def agent_socket() -> str | None:
    """The engine's ssh-agent socket (SSH_AUTH_SOCK), if any."""
    return os.environ.get("SSH_AUTH_SOCK") or None
