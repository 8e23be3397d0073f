"""docker_executor against a real engine (Podman's Docker API; see conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.errors import (
    InputValidationError,
    PermanentError,
    RetryableError,
    TaskTimeoutError,
    TaskTreeValidationError,
)
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.extensions.docker import DockerExecutor
from aipartnerupflow.extensions.docker.executor import ContainerExitError
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

from .conftest import IMAGE

pytestmark = pytest.mark.usefixtures("engine")


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await DockerExecutor().execute({"image": IMAGE, **inputs})


def containers(client: Any) -> list[Any]:
    found: list[Any] = client.containers.list(all=True, filters={"label": "aipartnerupflow.task"})
    return found


async def test_run_argv_env_workdir_user(docker_client: Any) -> None:
    result = await run(
        {
            "command": ["sh", "-c", 'echo "$GREETING from $(pwd)"; echo oops >&2; id -u'],
            "env": {"GREETING": "hello"},
            "working_dir": "/tmp",
            "user": "1234",
        }
    )
    assert result["exit_code"] == 0
    assert result["stdout"] == "hello from /tmp\n1234\n"
    assert result["stderr"] == "oops\n"
    assert result["stdout_truncated"] is False
    assert result["image"] == IMAGE and result["image_id"]
    assert containers(docker_client) == []  # removed after the run


async def test_command_string_is_split_never_shelled() -> None:
    result = await run({"command": "echo 'a b' ; echo c"})
    assert result["stdout"] == "a b ; echo c\n"  # ';' is an argument of echo, not a shell


async def test_non_zero_exit_fails_unless_allowed() -> None:
    with pytest.raises(ContainerExitError, match=r"exited with status 3.*: bad thing"):
        await run({"command": ["sh", "-c", "echo bad thing >&2; exit 3"]})
    ok = await run({"command": ["sh", "-c", "exit 3"], "allowed_exit_codes": [0, 3]})
    assert ok["exit_code"] == 3


async def test_log_cap() -> None:
    result = await run({"command": ["sh", "-c", "yes x | head -c 100000"], "max_log_bytes": 1000})
    assert len(result["stdout"]) == 1000
    assert result["stdout_truncated"] is True
    assert result["stdout_bytes"] == 100000


async def test_memory_limit_oom_kill() -> None:
    # dd holds a 64 MiB block in memory: more than a 16 MiB limit allows.
    # Docker sets the OOM flag (a permanent error); Podman on cgroup v1 reports exit 137 only.
    with pytest.raises(ContainerExitError, match=r"(more than its memory limit|ran out of memory)"):
        await run(
            {
                "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                "resources": {"memory": "16m"},
            }
        )


async def test_timeout_kills_and_removes(docker_client: Any) -> None:
    with pytest.raises(TaskTimeoutError, match="timed out after 1s"):
        await run({"command": ["sleep", "300"], "timeout": 1})
    assert containers(docker_client) == []


async def test_cancel_kills_and_removes(docker_client: Any) -> None:
    executor = DockerExecutor()
    job = asyncio.create_task(executor.execute({"image": IMAGE, "command": ["sleep", "300"]}))
    for _ in range(200):
        if any(c.status == "running" for c in containers(docker_client)):
            break
        await asyncio.sleep(0.05)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert containers(docker_client) == []


async def test_missing_image_with_pull_never() -> None:
    with pytest.raises(PermanentError, match="not on the engine and the pull policy is 'never'"):
        await DockerExecutor().execute({"image": "localhost/nothing:here", "pull": "never"})


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"privileged": True}, "never runs containers with privileged"),
        ({"cap_add": ["SYS_ADMIN"]}, "cap_add"),
        ({"devices": ["/dev/sda:/dev/sda"]}, "devices"),
        ({"network_mode": "host"}, "network_mode"),
        ({"network": "host"}, "never allowed"),
        ({"volumes": {"/etc": "/host-etc"}}, "host volumes are off"),
    ],
)
async def test_refused_options(extra: dict[str, Any], words: str, docker_client: Any) -> None:
    with pytest.raises(PermanentError, match=words):
        await run({"command": ["true"], **extra})
    assert containers(docker_client) == []


async def test_volume_under_allowed_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = tmp_path / "shared"
    allowed.mkdir()
    (allowed / "in.txt").write_text("from the host\n")
    (tmp_path / "secret.txt").write_text("no\n")
    monkeypatch.setenv("AIPARTNERUPFLOW_DOCKER_ALLOWED_VOLUME_PATHS", str(allowed))
    reload_settings()
    result = await run(
        {
            "command": ["cat", "/data/in.txt"],
            "volumes": {str(allowed): {"bind": "/data", "mode": "ro"}},
        }
    )
    assert result["stdout"] == "from the host\n"
    escape = f"{allowed}/../"  # '..' resolves outside the allowed directory
    with pytest.raises(PermanentError, match="outside the allowed volume paths"):
        await run({"command": ["true"], "volumes": {escape: "/data"}})
    (allowed / "link").symlink_to(tmp_path)  # and so does a symlink
    with pytest.raises(PermanentError, match="outside the allowed volume paths"):
        await run({"command": ["true"], "volumes": {str(allowed / "link"): "/data"}})


async def test_image_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_DOCKER_ALLOWED_IMAGES", "registry.example/*")
    reload_settings()
    with pytest.raises(PermanentError, match="not in the allowed images"):
        await run({"command": ["true"]})


async def test_bad_command() -> None:
    with pytest.raises(InputValidationError, match="cannot be split"):
        await run({"command": "echo 'unclosed"})


async def test_engine_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    reload_settings()
    with pytest.raises(RetryableError, match="cannot reach the container engine"):
        await run({"command": ["true"]})


async def test_gate_refuses_until_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_ENABLED_EXECUTORS")
    reload_settings()
    registry = ExecutorRegistry()
    registry.register(DockerExecutor, override=True)
    manager = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    try:
        task = {
            "id": "d",
            "name": "d",
            "schemas": {"method": "docker_executor"},
            "inputs": {"image": IMAGE, "command": ["true"]},
        }
        with pytest.raises(TaskTreeValidationError, match="AIPARTNERUPFLOW_ENABLED_EXECUTORS"):
            await manager.run_tasks([task])
        assert await manager.task_repository.get_task_by_id("d") is None  # nothing written
    finally:
        await manager.close()


class TestDockerContract(ExecutorContract):
    executor_class = DockerExecutor
    heavy_modules = ("docker", "requests")
    secrets = ("docker-s3cret-value",)
    run_timeout = 180.0

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        return {
            "image": IMAGE,
            "command": ["sh", "-c", "echo ok"],
            "env": {"API_TOKEN": "docker-s3cret-value"},
        }

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [({"command": ["true"]}, "image"), ({"image": IMAGE, "timeout": 0}, "timeout")]

    @pytest.fixture
    def failing_inputs(self) -> dict[str, Any]:
        return {
            "image": IMAGE,
            "command": ["sh", "-c", "echo docker-s3cret-value >&2; exit 1"],
            "env": {"API_TOKEN": "docker-s3cret-value"},
        }

    @pytest.fixture
    def slow_inputs(self) -> dict[str, Any]:
        return {"image": IMAGE, "command": ["sleep", "300"]}

    @pytest.fixture
    def wait_until_busy(self, docker_client: Any) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            for _ in range(400):
                if any(c.status == "running" for c in containers(docker_client)):
                    return
                await asyncio.sleep(0.05)

        return wait
