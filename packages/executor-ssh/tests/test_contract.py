"""ssh_executor passes the executor contract, against the real sshd."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ssh_testkit import Sshd, wait_for_file

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.ssh import SshExecutor
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase


class TestSshExecutorContract(ExecutorContract):
    executor_class = SshExecutor
    heavy_modules = ("asyncssh", "cryptography", "jsonschema")

    @pytest.fixture(autouse=True)
    def _enable_probe(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The contract's cancellation test registers a subclass under another id
        # (<id>__contract_probe); the opt-in gate must let that one run too.
        monkeypatch.setenv(
            "AIPARTNERUPFLOW_ENABLED_EXECUTORS", "ssh_executor,ssh_executor__contract_probe"
        )
        reload_settings()

    @pytest.fixture(autouse=True)
    def _secrets(self, sshd: Sshd) -> None:
        key_lines = [line for line in sshd.user_key.read_text().splitlines() if "-----" not in line]
        type(self).secrets = (sshd.password, *key_lines)

    @pytest.fixture
    def valid_inputs(self, key_inputs: dict[str, Any]) -> dict[str, Any]:
        return {**key_inputs, "command": ["echo", "contract"]}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        base = {"host": "127.0.0.1", "username": "u", "password": "p4ssw0rd"}
        return [
            ({"username": "u", "command": "true", "password": "p4ssw0rd"}, "host"),
            ({"host": "127.0.0.1", "command": "true", "password": "p4ssw0rd"}, "username"),
            (base, "command"),
            ({**base, "command": []}, "command"),
            ({**base, "command": "true", "port": 0}, "port"),
            ({**base, "command": "true", "timeout": -1}, "timeout"),
            ({**base, "command": "true", "env": {"1BAD": "x"}}, "env"),
            ({**base, "command": "true", "allowed_exit_codes": [256]}, "allowed_exit_codes"),
            ({**base, "command": "true", "host_key_fingerprint": "MD5:aa"}, "host_key_fingerprint"),
            ({**base, "command": "true", "host_key_policy": "yes"}, "host_key_policy"),
        ]

    @pytest.fixture
    def failing_inputs(self, password_inputs: dict[str, Any]) -> dict[str, Any]:
        return {**password_inputs, "command": "echo oops >&2; exit 3"}

    @pytest.fixture
    def pid_file(self, sshd: Sshd) -> Path:
        path = sshd.home / "contract-cancel.pid"
        path.unlink(missing_ok=True)
        return path

    @pytest.fixture
    def slow_inputs(self, key_inputs: dict[str, Any], pid_file: Path) -> dict[str, Any]:
        return {**key_inputs, "command": f"echo $$ > {pid_file}; sleep 60"}

    @pytest.fixture
    def wait_until_busy(self, pid_file: Path) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            await wait_for_file(pid_file)

        return wait
