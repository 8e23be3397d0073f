"""``ssh_executor``: run one command on a remote host over SSH (asyncssh, imported lazily).

The executor is dangerous (it runs commands elsewhere on a task's say-so), so tasks may use it
only once ``AIPARTNERUPFLOW_ENABLED_EXECUTORS`` lists ``ssh_executor``. Targets go through the
kit's outbound policy (loopback and private addresses are denied unless allowed); host keys are
checked strictly; secrets are scrubbed; a timeout or cancellation stops the remote process.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from aipartnerupflow.core.errors import ConfigurationError, OutboundPolicyError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.caps import effective_limit
from aipartnerupflow.core.executors.policy import OutboundPolicy
from aipartnerupflow.core.executors.resources import loop_resource
from aipartnerupflow.extensions.ssh.command import SETUP_FAILED, build_remote_command
from aipartnerupflow.extensions.ssh.credentials import Credentials, read_credentials
from aipartnerupflow.extensions.ssh.errors import (
    SshConnectionError,
    SshExitError,
    SshTimeoutError,
)
from aipartnerupflow.extensions.ssh.inputs import INPUT_SCHEMA, SshRequest, parse_request
from aipartnerupflow.extensions.ssh.pool import ConnectionPool
from aipartnerupflow.extensions.ssh.settings import SshSettings

if TYPE_CHECKING:
    from aipartnerupflow.extensions.ssh._session import PooledConnection, Running

__all__ = ["SshExecutor", "aclose_connections"]

_POOL_KEY = "aipartnerupflow.extensions.ssh.pool"


async def _pool(settings: SshSettings) -> ConnectionPool:
    return await loop_resource(
        (_POOL_KEY, settings.max_connections, settings.max_sessions),
        lambda: ConnectionPool(settings.max_connections, settings.max_sessions),
        lambda pool: pool.aclose(),
    )


async def aclose_connections() -> None:
    """Close the SSH connections kept for reuse by the running event loop."""
    from aipartnerupflow.core.executors.resources import forget_loop_resource, loop_resources

    for key in list(loop_resources()):
        if isinstance(key, tuple) and key and key[0] == _POOL_KEY:
            await forget_loop_resource(key)


def _policy(settings: SshSettings) -> OutboundPolicy:
    return settings.policy()


def _check_command(request: SshRequest, settings: SshSettings) -> None:
    allowed = settings.allowed_commands
    if not allowed:
        return
    if isinstance(request.command, str):
        raise OutboundPolicyError(
            "input 'command' is a shell string, but AIPARTNERUPFLOW_SSH_ALLOWED_COMMANDS is "
            "set, so only argv lists whose program is listed may run; give the command as a "
            "list"
        )
    if request.command[0] not in allowed:
        raise OutboundPolicyError(
            f"input 'command': program {request.command[0]!r} is not in "
            "AIPARTNERUPFLOW_SSH_ALLOWED_COMMANDS"
        )


def _stamp(path: Path) -> tuple[int, int] | None:
    """Changes when the known_hosts file does, so edited trust never reuses old connections."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _shown(command: str | tuple[str, ...]) -> str | list[str]:
    return command if isinstance(command, str) else list(command)


class SshExecutor(ExecutableTask):
    """Runs one command on a remote host over SSH and returns its exit status and output."""

    id = "ssh_executor"
    name = "SSH command"
    description = (
        "Run a command on a remote host over SSH (asyncssh): password, key or agent login, "
        "strict host-key checking, capped stdout/stderr, exit-code policy."
    )
    tags: ClassVar[list[str]] = ["ssh", "remote", "command"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "disk usage on a build host",
            "inputs": {
                "host": "build-1.example.com",
                "username": "deploy",
                "private_key_env": "DEPLOY_SSH_KEY",
                "command": ["df", "-h", "/"],
                "timeout": 30,
            },
        },
        {
            "name": "shell pipeline with a pinned host key",
            "inputs": {
                "host": "10.0.0.12",
                "username": "ops",
                "password_env": "OPS_PASSWORD",
                "host_key_fingerprint": "SHA256:" + "A" * 43,
                "command": "journalctl -u app --since -1h | tail -n 50",
            },
        },
    ]
    input_schema: ClassVar[dict[str, Any] | None] = INPUT_SCHEMA
    dangerous: ClassVar[bool] = True
    max_concurrency: ClassVar[int | None] = 64

    def __init__(self, **params: Any) -> None:
        if params:
            names = ", ".join(sorted(params))
            raise TypeError(f"ssh_executor takes no params (got {names}); put them in inputs")
        self._running: Running | None = None

    async def cancel(self) -> None:
        """Stop the remote command in flight (SSH signal, then its process group)."""
        running = self._running
        if running is not None:
            await running.stop()

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        request = parse_request(inputs)
        settings = SshSettings.get()
        credentials = read_credentials(request, settings)
        _check_command(request, settings)
        policy = _policy(settings)
        host = policy.check_host(request.host)
        if request.host_key_policy == "accept_new" and not settings.allow_accept_new:
            raise ConfigurationError(
                "input 'host_key_policy': 'accept_new' is off (the operator may set "
                "AIPARTNERUPFLOW_SSH_ALLOW_ACCEPT_NEW=true); add the host to known_hosts or "
                "pin 'host_key_fingerprint'"
            )
        from aipartnerupflow.extensions.ssh import _session

        key = None
        if credentials.key_text is not None:
            key = _session.import_key(
                credentials.key_text, credentials.passphrase, credentials.key_source
            )
        check = _session.HostKeyCheck(
            mode="pinned" if request.host_key_fingerprint else request.host_key_policy,
            known_hosts=settings.known_hosts_path(),
            fingerprint=request.host_key_fingerprint,
        )
        limit = effective_limit(request.max_output_bytes, settings.max_output_bytes)
        started = time.monotonic()
        where = f"{request.username}@{host}:{request.port}"

        async def opener() -> PooledConnection:
            remaining = max(0.001, request.timeout - (time.monotonic() - started))
            connect_timeout = min(settings.connect_timeout, remaining)
            try:
                sock = await policy.connect(host, request.port, timeout=connect_timeout)
            except TimeoutError:
                raise SshTimeoutError(
                    f"connecting to {host}:{request.port} timed out after {connect_timeout:g}s"
                ) from None
            except ConnectionError as exc:
                raise SshConnectionError(str(exc)) from None
            try:
                return await _session.open_connection(
                    sock,
                    host=host,
                    port=request.port,
                    username=request.username,
                    check=check,
                    password=credentials.password,
                    key=key,
                    agent_path=_session.agent_socket() if credentials.agent else None,
                    login_timeout=connect_timeout,
                )
            except TimeoutError:
                raise SshTimeoutError(
                    f"the SSH handshake or login with {where} did not finish within "
                    f"{connect_timeout:g}s"
                ) from None

        pool_key = (
            policy,
            host,
            request.port,
            request.username,
            credentials.digest(),
            check,
            _stamp(check.known_hosts) if check.mode != "pinned" else None,
        )
        line = build_remote_command(request.command, request.env, request.cwd)
        stdin = request.stdin.encode("utf-8", "surrogateescape") if request.stdin else None
        pool = await _pool(settings)
        try:
            async with asyncio.timeout(request.timeout):
                result = await self._run(pool, pool_key, opener, line, stdin, limit, credentials)
        except TimeoutError:
            raise SshTimeoutError(
                f"the command on {where} did not finish within {request.timeout:g}s "
                "(input 'timeout'); it was stopped"
            ) from None
        return self._result(request, host, result, started)

    async def _run(
        self,
        pool: ConnectionPool,
        pool_key: tuple[Any, ...],
        opener: Any,
        line: str,
        stdin: bytes | None,
        limit: int,
        credentials: Credentials,
    ) -> Running:
        from aipartnerupflow.extensions.ssh import _session

        for attempt in (1, 2):
            async with pool.lease(pool_key, opener) as lease:
                try:
                    running = await _session.start_command(lease.connection, line, limit)
                except _session.SessionRefused:
                    raise
                except SshConnectionError:
                    lease.broken = True
                    if attempt == 1 and not lease.fresh:
                        continue  # a reused connection went stale: open a new one, once
                    raise
                self._running = running
                try:
                    await running.finish(stdin)
                except SshConnectionError:
                    lease.broken = True
                    await running.stop()
                    raise
                except BaseException:
                    await running.stop()
                    raise
                finally:
                    self._running = None
                return running
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(
        self, request: SshRequest, host: str, running: Running, started: float
    ) -> dict[str, Any]:
        process = running.process
        signal = process.exit_signal[0] if process.exit_signal else None
        code = process.exit_status if signal is None else None
        if code is not None and code < 0:
            code = None
        result: dict[str, Any] = {
            "host": host,
            "port": request.port,
            "username": request.username,
            "command": _shown(request.command),
            "exit_code": code,
            "return_code": code,
            "exit_signal": signal,
            "stdout": running.stdout.text(),
            "stderr": running.stderr.text(),
            "stdout_truncated": running.stdout.truncated,
            "stderr_truncated": running.stderr.truncated,
            "stdout_bytes": running.stdout.total,
            "stderr_bytes": running.stderr.total,
            "duration": round(time.monotonic() - started, 6),
            "success": True,
        }
        if code is None or code not in request.allowed_exit_codes:
            how = (
                f"was killed by signal {signal}"
                if signal
                else "ended without an exit status"
                if code is None
                else f"exited with status {code}"
            )
            if code == SETUP_FAILED and request.cwd is not None:
                how += " (it may not have started: check 'cwd')"
            allowed = ", ".join(map(str, sorted(request.allowed_exit_codes)))
            tail = result["stderr"].strip()[-300:]
            shown = (
                request.command if isinstance(request.command, str) else shlex.join(request.command)
            )
            if len(shown) > 80:
                shown = shown[:77] + "..."
            result["success"] = False
            raise SshExitError(
                f"{shown!r} on {request.username}@{host} {how} (allowed: {allowed})"
                + (f": {tail}" if tail else ""),
                result,
            )
        return result
