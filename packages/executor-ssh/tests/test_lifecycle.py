"""Through the engine against the real sshd: cancel and timeouts stop the remote process,
connection failures are clear, connections are reused, dependencies feed ssh tasks."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from ssh_testkit import Sshd, free_port, process_gone, read_text, wait_for_file, wait_gone

from aipartnerupflow import BaseTask, TaskManager, create_session
from aipartnerupflow.core.errors import RetryableError
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.ssh import (
    SshConnectionError,
    SshExecutor,
    SshHostKeyError,
    SshTimeoutError,
)


class MakeEnv(BaseTask):
    """Produces the environment of the ssh task that depends on it."""

    id = "make_env"
    name = "Make env"
    description = "Returns an env mapping for a dependent ssh task."

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"env": {"GREETING": f"hello {inputs['who']}"}}


@pytest_asyncio.fixture
async def manager() -> AsyncIterator[TaskManager]:
    registry = ExecutorRegistry()
    registry.register(MakeEnv)
    tm = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    try:
        yield tm
    finally:
        await tm.close()


def task(inputs: dict[str, Any], task_id: str = "ssh", **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": task_id,
        "schemas": {"method": "ssh_executor"},
        "inputs": inputs,
        **extra,
    }


def accepted(sshd: Sshd) -> int:
    """Logins the server accepted so far (one per SSH connection)."""
    return len(re.findall(r"Accepted (?:publickey|password) for", sshd.log()))


@pytest.fixture
def pid_file(sshd: Sshd, request: pytest.FixtureRequest) -> Path:
    path = sshd.home / f"{request.node.name}.pid"
    path.unlink(missing_ok=True)
    return path


# A shell with a child in the background: stopping only the shell would leave `sleep` running.
def sleeper(pid_file: Path) -> str:
    return f"sleep 60 & echo $$ $! > {pid_file}; wait"


async def test_cancel_stops_the_remote_process_group(
    manager: TaskManager, key_inputs: dict[str, Any], pid_file: Path
) -> None:
    run = asyncio.create_task(
        manager.run_tasks([task({**key_inputs, "command": sleeper(pid_file)})])
    )
    shell, child = map(int, (await wait_for_file(pid_file)).split())
    assert not run.done()
    await manager.cancel_task("ssh")
    outcome = (await asyncio.wait_for(run, 60)).task("ssh")
    assert outcome.status == "cancelled"
    assert await wait_gone(child), "the remote `sleep 60` survived the cancellation"
    assert await wait_gone(shell)


async def test_input_timeout_stops_the_remote_command(
    key_inputs: dict[str, Any], pid_file: Path
) -> None:
    with pytest.raises(SshTimeoutError, match="did not finish within 1s") as info:
        await SshExecutor().execute({**key_inputs, "command": sleeper(pid_file), "timeout": 1})
    assert isinstance(info.value, RetryableError)
    shell, child = map(int, read_text(pid_file).split())
    assert await wait_gone(child)
    assert await wait_gone(shell)


async def test_engine_timeout_fails_the_task_and_stops_the_command(
    manager: TaskManager, key_inputs: dict[str, Any], pid_file: Path
) -> None:
    result = await manager.run_tasks(
        [task({**key_inputs, "command": sleeper(pid_file)}, timeout_seconds=1)]
    )
    outcome = result.task("ssh")
    assert outcome.status == "failed"
    assert "timed out" in (outcome.error or "")
    _shell, child = map(int, read_text(pid_file).split())
    assert await wait_gone(child)


async def test_connection_refused_is_retryable(sshd: Sshd, known_hosts: Path) -> None:
    port = free_port()
    with pytest.raises(SshConnectionError, match=f"port {port}") as info:
        await SshExecutor().execute(
            {
                "host": "127.0.0.1",
                "port": port,
                "username": "u",
                "password": "pw",
                "command": "true",
            }
        )
    assert isinstance(info.value, RetryableError)


async def test_a_silent_server_times_out_the_handshake(monkeypatch: pytest.MonkeyPatch) -> None:
    # A TCP server that accepts and never speaks (sshd cannot be made to do that).
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_CONNECT_TIMEOUT", "0.5")
    reload_settings()
    try:
        with pytest.raises(SshTimeoutError, match="handshake or login"):
            await SshExecutor().execute(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "u",
                    "password": "pw",
                    "command": "true",
                    "host_key_fingerprint": "SHA256:" + "A" * 43,
                }
            )
        assert accepted, "the client never connected"
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_server_that_stalls_at_login_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # An in-process asyncssh server whose password check never answers: the key exchange
    # completes, then the login stalls (sshd cannot be scripted to do this).
    import asyncssh

    stalled = asyncio.Event()

    class Stall(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        async def validate_password(self, username: str, password: str) -> bool:
            stalled.set()
            await asyncio.Event().wait()
            return False

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[host_key], server_factory=Stall
    )
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_CONNECT_TIMEOUT", "1")
    reload_settings()
    try:
        with pytest.raises(SshTimeoutError, match="handshake or login"):
            await SshExecutor().execute(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "u",
                    "password": "pw",
                    "command": "true",
                    "host_key_fingerprint": host_key.get_fingerprint("sha256"),
                }
            )
        assert stalled.is_set(), "the login never reached the password check"
        # and the same server with a wrong pin is refused before any login
        with pytest.raises(SshHostKeyError, match="MISMATCH"):
            await SshExecutor().execute(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "u",
                    "password": "pw",
                    "command": "true",
                    "host_key_fingerprint": "SHA256:" + "B" * 43,
                }
            )
    finally:
        server.close()
        await server.wait_closed()


async def test_tasks_reuse_one_connection(
    manager: TaskManager, key_inputs: dict[str, Any], sshd: Sshd
) -> None:
    before = accepted(sshd)
    tasks = [
        task(
            {**key_inputs, "command": ["echo", str(i)]},
            f"t{i}",
            **({"parent_id": "t0"} if i else {}),
        )
        for i in range(25)
    ]
    result = await manager.run_tasks(tasks)
    for i in range(25):
        outcome = result.task(f"t{i}")
        assert outcome.status == "completed", outcome.error
        assert outcome.result["stdout"] == f"{i}\n"
    second = await manager.run_tasks([task({**key_inputs, "command": ["true"]}, "again")])
    assert second.task("again").status == "completed"
    assert accepted(sshd) - before == 1  # 26 tasks (25 at once), one login


async def test_a_broken_pooled_connection_is_replaced(
    key_inputs: dict[str, Any], sshd: Sshd
) -> None:
    from aipartnerupflow.core.executors.resources import loop_resources

    await SshExecutor().execute({**key_inputs, "command": ["true"]})
    (pool,) = [v for k, v in loop_resources().items() if "ssh" in str(k)]
    for entry in pool._entries.values():
        entry.connection.ssh.abort()  # the connection dies under the pool
    result = await SshExecutor().execute({**key_inputs, "command": ["echo", "fresh"]})
    assert result["stdout"] == "fresh\n"


async def test_different_credentials_get_their_own_connection(
    key_inputs: dict[str, Any], password_inputs: dict[str, Any], sshd: Sshd
) -> None:
    before = accepted(sshd)
    await SshExecutor().execute({**key_inputs, "command": ["true"]})
    await SshExecutor().execute({**password_inputs, "command": ["true"]})
    await SshExecutor().execute({**password_inputs, "command": ["true"]})
    assert accepted(sshd) - before == 2


async def test_a_dependency_feeds_the_ssh_task(
    manager: TaskManager, key_inputs: dict[str, Any]
) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "env",
                "name": "env",
                "schemas": {"method": "make_env"},
                "inputs": {"who": "dep"},
            },
            task(
                {**key_inputs, "command": 'printf %s "$GREETING"'},
                parent_id="env",
                dependencies=[{"id": "env", "required": True}],
                schemas={
                    "method": "ssh_executor",
                    "input_schema": {"type": "object", "properties": {"env": {"type": "object"}}},
                },
            ),
        ]
    )
    outcome = result.task("ssh")
    assert outcome.status == "completed", outcome.error
    assert outcome.result["stdout"] == "hello dep"


async def test_secrets_never_reach_results_errors_or_logs(
    manager: TaskManager,
    password_inputs: dict[str, Any],
    sshd: Sshd,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    leak = {**password_inputs, "command": 'echo "pw=$PW"', "env": {"PW": sshd.password}}
    bad = {**password_inputs, "password": "wrong-" + sshd.password, "command": "true"}
    fails = {**password_inputs, "command": 'echo "$PW" >&2; exit 2', "env": {"PW": sshd.password}}
    result = await manager.run_tasks(
        [
            task(leak, "leak"),
            task(bad, "bad", parent_id="leak"),
            task(fails, "fails", parent_id="leak"),
        ]
    )
    assert result.task("leak").result["stdout"] == "pw=***\n"
    assert result.task("bad").status == "failed"
    assert "refused the credentials" in (result.task("bad").error or "")
    assert result.task("fails").status == "failed"
    assert "***" in (result.task("fails").error or "")
    text = json.dumps([result.task(t).result for t in ("leak", "bad", "fails")])
    text += " ".join(result.task(t).error or "" for t in ("leak", "bad", "fails"))
    for secret in (sshd.password, "wrong-" + sshd.password):
        assert secret not in text
        assert secret not in caplog.text


async def test_a_connection_lost_mid_command_is_retryable(
    key_inputs: dict[str, Any], sshd: Sshd, pid_file: Path
) -> None:
    import os
    import signal

    offset = len(sshd.log())
    run = asyncio.create_task(
        SshExecutor().execute({**key_inputs, "command": f"echo $$ > {pid_file}; exec sleep 60"})
    )
    remote = int(await wait_for_file(pid_file))
    children = re.findall(r"User child is on pid (\d+)", sshd.log()[offset:])
    assert children, "sshd did not log the connection's process"
    try:
        os.kill(int(children[-1]), signal.SIGKILL)  # the server side of the connection dies
        with pytest.raises(SshConnectionError, match="broke") as info:
            await asyncio.wait_for(run, 60)
        assert isinstance(info.value, RetryableError)
    finally:
        if not process_gone(remote):
            os.kill(remote, signal.SIGKILL)
