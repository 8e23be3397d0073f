"""Safety: the opt-in gate, the outbound policy and the command allow-list, before connecting."""

from __future__ import annotations

from typing import Any

import pytest

from aipartnerupflow import TaskManager
from aipartnerupflow.core.errors import OutboundPolicyError
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.ssh import SshExecutor


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await SshExecutor().execute({"command": ["true"], **inputs})


def task(inputs: dict[str, Any], task_id: str = "ssh") -> dict[str, Any]:
    return {"id": task_id, "name": task_id, "schemas": {"method": "ssh_executor"}, "inputs": inputs}


async def test_the_executor_is_off_until_enabled(
    task_manager: TaskManager, key_inputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_ENABLED_EXECUTORS")
    reload_settings()
    try:
        result = await task_manager.run_tasks([task({**key_inputs, "command": ["true"]})])
    except Exception as exc:  # refused when the tree is created
        message = str(exc)
    else:
        outcome = result.task("ssh")
        assert outcome.status == "failed"
        message = outcome.error or ""
    assert "AIPARTNERUPFLOW_ENABLED_EXECUTORS" in message


async def test_loopback_is_denied_by_default(
    key_inputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_SSH_ALLOW_PRIVATE")
    reload_settings()
    for host in ("127.0.0.1", "localhost", "2130706433", "0x7f.1", "::1", "[::ffff:127.0.0.1]"):
        with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_SSH_ALLOW_PRIVATE"):
            await run({**key_inputs, "host": host})


async def test_the_global_allow_private_is_the_fallback(
    key_inputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_SSH_ALLOW_PRIVATE")
    monkeypatch.setenv("AIPARTNERUPFLOW_ALLOW_PRIVATE", "true")
    reload_settings()
    assert (await run(key_inputs))["exit_code"] == 0
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOW_PRIVATE", "false")  # its own variable wins
    reload_settings()
    with pytest.raises(OutboundPolicyError):
        await run(key_inputs)


async def test_metadata_endpoints_stay_denied(key_inputs: dict[str, Any]) -> None:
    with pytest.raises(OutboundPolicyError, match="metadata"):
        await run({**key_inputs, "host": "169.254.169.254"})


async def test_allowed_hosts(key_inputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOWED_HOSTS", "10.0.0.0/8,build.example.com")
    reload_settings()
    with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_SSH_ALLOWED_HOSTS"):
        await run(key_inputs)
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOWED_HOSTS", "127.0.0.0/8")
    reload_settings()
    assert (await run(key_inputs))["exit_code"] == 0


async def test_command_allow_list(
    key_inputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOWED_COMMANDS", "echo,uptime")
    reload_settings()
    assert (await run({**key_inputs, "command": ["echo", "ok"]}))["stdout"] == "ok\n"
    with pytest.raises(OutboundPolicyError, match="not in AIPARTNERUPFLOW_SSH_ALLOWED_COMMANDS"):
        await run({**key_inputs, "command": ["rm", "-rf", "/tmp/x"]})
    with pytest.raises(OutboundPolicyError, match="shell string"):
        await run({**key_inputs, "command": "echo ok; rm -rf /tmp/x"})


async def test_params_are_refused(task_manager: TaskManager, key_inputs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="no params"):
        SshExecutor(host="x")
