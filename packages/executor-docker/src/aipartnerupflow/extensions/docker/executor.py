"""``docker_executor``: run one command in a fresh container and return its output.

The docker SDK is blocking: every call runs in a thread, never on the event loop. Importing
this module does not import the SDK; the first task does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.errors import (
    ExecutorError,
    InputValidationError,
    PermanentError,
    RetryableError,
    TaskTimeoutError,
)
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.caps import OutputCap, effective_limit
from aipartnerupflow.core.executors.process import check_argv
from aipartnerupflow.core.executors.resources import loop_resource
from aipartnerupflow.core.executors.secrets import add_secret, is_sensitive_name
from aipartnerupflow.extensions.docker.settings import DockerSettings

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

__all__ = ["INPUT_SCHEMA", "REFUSED_OPTIONS", "ContainerExitError", "DockerExecutor"]

#: Options that would give a container power over the host: always refused.
REFUSED_OPTIONS = (
    "privileged",
    "cap_add",
    "devices",
    "device_requests",
    "network_mode",
    "pid_mode",
    "ipc_mode",
    "userns_mode",
    "uts_mode",
    "security_opt",
    "sysctls",
    "volumes_from",
    "runtime",
)
_LABEL = "aipartnerupflow.task"
_KILL_GRACE = 5

_ARGV = {
    "anyOf": [
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
        {"type": "string", "minLength": 1},
    ]
}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "docker_executor inputs",
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "minLength": 1, "description": "Image to run."},
        "command": {
            **_ARGV,
            "description": "argv list, or a string split with shlex (never given to a shell).",
        },
        "entrypoint": {**_ARGV, "description": "Overrides the image's entrypoint."},
        "env": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "working_dir": {"type": "string", "pattern": "^/"},
        "volumes": {
            "description": "{host_path: container_path} or {host_path: {bind, mode}}; host "
            "paths must lie under AIPARTNERUPFLOW_DOCKER_ALLOWED_VOLUME_PATHS.",
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "pattern": "^/"},
                    {
                        "type": "object",
                        "required": ["bind"],
                        "additionalProperties": False,
                        "properties": {
                            "bind": {"type": "string", "pattern": "^/"},
                            "mode": {"type": "string", "enum": ["ro", "rw"]},
                        },
                    },
                ]
            },
        },
        "network": {"type": "string", "minLength": 1, "description": "default: none"},
        "resources": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "memory": {"type": ["string", "integer"], "description": "e.g. 512m"},
                "cpu": {"type": ["string", "number"], "description": "CPUs, e.g. 0.5"},
                "cpus": {"type": ["string", "number"]},
                "pids": {"type": "integer", "minimum": 1},
            },
        },
        "memory": {"type": ["string", "integer"]},
        "cpus": {"type": ["string", "number"]},
        "pids_limit": {"type": "integer", "minimum": 1},
        "user": {"type": "string", "minLength": 1},
        "timeout": {"type": "number", "exclusiveMinimum": 0},
        "pull": {"type": "string", "enum": ["never", "if-missing", "always"]},
        "remove": {"type": "boolean", "default": True},
        "max_log_bytes": {"type": "integer", "minimum": 0},
        "allowed_exit_codes": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
    },
    # Dependency results arrive under their task ids: extra keys are allowed (and ignored),
    # except the options listed in REFUSED_OPTIONS, which are refused by name.
    "additionalProperties": True,
}


class ContainerExitError(ExecutorError):
    """The container exited with a status ``allowed_exit_codes`` does not accept."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class _OutOfMemory(ContainerExitError, PermanentError):
    pass


@dataclass(slots=True)
class _Plan:
    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    env: dict[str, str]
    working_dir: str | None
    volumes: dict[str, dict[str, str]]
    network: str
    mem_limit: str | int | None
    nano_cpus: int | None
    pids_limit: int | None
    user: str | None
    timeout: float
    pull: str
    remove: bool
    max_log_bytes: int
    allowed_exit_codes: frozenset[int]
    labels: dict[str, str] = field(default_factory=dict)


def _argv(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise InputValidationError(f"input {name!r} cannot be split: {exc}") from None
    return check_argv(value, field=name)


def _cpus(value: Any) -> int | None:
    if value is None:
        return None
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise InputValidationError("input 'resources.cpu' must be a number of CPUs") from None
    if not 0 < cpus <= 1024:
        raise InputValidationError("input 'resources.cpu' must be above 0")
    return int(cpus * 1_000_000_000)


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _volumes(raw: Any, settings: DockerSettings) -> dict[str, dict[str, str]]:
    if not raw:
        return {}
    roots = tuple(os.path.realpath(p) for p in settings.allowed_volume_paths)
    volumes: dict[str, dict[str, str]] = {}
    for host, spec in raw.items():
        bind, mode = (
            (spec, "rw") if isinstance(spec, str) else (spec["bind"], spec.get("mode", "rw"))
        )
        if not os.path.isabs(host):
            raise InputValidationError(f"input 'volumes': host path {host!r} must be absolute")
        resolved = os.path.realpath(host)
        if not roots:
            raise PermanentError(
                f"input 'volumes': host volumes are off; the operator may allow directories "
                f"in AIPARTNERUPFLOW_DOCKER_ALLOWED_VOLUME_PATHS (refused: {host})"
            )
        if not _inside(resolved, roots):
            raise PermanentError(
                f"input 'volumes': host path {host!r} (resolved: {resolved}) is outside the "
                "allowed volume paths (AIPARTNERUPFLOW_DOCKER_ALLOWED_VOLUME_PATHS)"
            )
        volumes[resolved] = {"bind": bind, "mode": mode}
    return volumes


def _plan(inputs: dict[str, Any], settings: DockerSettings, task_id: str | None) -> _Plan:
    refused = [key for key in REFUSED_OPTIONS if key in inputs]
    if refused:
        raise PermanentError(
            f"docker_executor never runs containers with {', '.join(refused)}: no privileged "
            "mode, host namespaces, added capabilities or devices"
        )
    image = str(inputs["image"])
    if settings.allowed_images and not any(
        fnmatch.fnmatchcase(image, pattern) for pattern in settings.allowed_images
    ):
        raise PermanentError(
            f"image {image!r} is not in the allowed images (AIPARTNERUPFLOW_DOCKER_ALLOWED_IMAGES)"
        )
    network = str(inputs.get("network") or settings.default_network)
    if network == "host" or network.startswith("container:"):
        raise PermanentError(f"network {network!r} is never allowed (it shares the host's)")
    if network not in settings.allowed_networks:
        raise PermanentError(
            f"network {network!r} is not in AIPARTNERUPFLOW_DOCKER_ALLOWED_NETWORKS "
            f"({', '.join(settings.allowed_networks) or 'none listed'})"
        )
    env: dict[str, str] = {}
    for key, value in (inputs.get("env") or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if "\x00" in text or "\x00" in key or "=" in key or not key:
            raise InputValidationError(f"input 'env.{key}' is not a valid variable")
        if is_sensitive_name(key):
            add_secret(text)
        env[key] = text
    resources = inputs.get("resources") or {}
    pids = resources.get("pids", inputs.get("pids_limit"))
    timeout = inputs.get("timeout")
    codes = inputs.get("allowed_exit_codes", [0])
    return _Plan(
        image=image,
        command=_argv(inputs.get("command"), "command"),
        entrypoint=_argv(inputs.get("entrypoint"), "entrypoint"),
        env=env,
        working_dir=inputs.get("working_dir"),
        volumes=_volumes(inputs.get("volumes"), settings),
        network=network,
        mem_limit=resources.get("memory", inputs.get("memory")),
        nano_cpus=_cpus(resources.get("cpu", resources.get("cpus", inputs.get("cpus")))),
        pids_limit=int(pids) if pids is not None else None,
        user=inputs.get("user"),
        timeout=float(timeout) if timeout is not None else settings.default_timeout,
        pull=str(inputs.get("pull") or settings.pull_policy),
        remove=bool(inputs.get("remove", True)),
        max_log_bytes=effective_limit(inputs.get("max_log_bytes"), settings.max_log_bytes),
        allowed_exit_codes=frozenset(int(c) for c in codes),
        labels={_LABEL: task_id or ""},
    )


def _client(settings: DockerSettings) -> docker.DockerClient:
    import docker

    base_url = settings.host or docker.constants.DEFAULT_UNIX_SOCKET
    for prefix in ("unix://", "http+unix://"):
        # The SDK leaks its socket when a unix socket is missing; say so before it tries.
        if base_url.startswith(prefix) and not os.path.exists(base_url[len(prefix) :]):
            raise RetryableError(_unreachable(settings, FileNotFoundError("no such socket")))
    try:
        client = docker.DockerClient(
            base_url=base_url,
            version=settings.api_version or "auto",
            timeout=60,
        )
    except docker.errors.DockerException as exc:
        raise RetryableError(_unreachable(settings, exc)) from None
    return client


def _unreachable(settings: DockerSettings, exc: BaseException) -> str:
    where = settings.host or "the default socket"
    return (
        f"cannot reach the container engine at {where}: {exc}; start it, or point "
        "AIPARTNERUPFLOW_DOCKER_HOST (or DOCKER_HOST) at a running Docker or Podman service"
    )


def _ensure_image(client: docker.DockerClient, image: str, pull: str) -> Any:
    import docker

    if pull != "always":
        try:
            return client.images.get(image)
        except docker.errors.ImageNotFound:
            if pull == "never":
                raise PermanentError(
                    f"image {image!r} is not on the engine and the pull policy is 'never' "
                    "(load it first, or use pull: if-missing)"
                ) from None
    try:
        return client.images.pull(image)
    except docker.errors.ImageNotFound:
        raise PermanentError(f"image {image!r} does not exist in its registry") from None
    except docker.errors.APIError as exc:
        raise RetryableError(f"pulling image {image!r} failed: {exc.explanation or exc}") from None


def _collect(container: Container, plan: _Plan) -> tuple[OutputCap, OutputCap]:
    out, err = OutputCap(plan.max_log_bytes), OutputCap(plan.max_log_bytes)
    for cap, which in (
        (out, {"stdout": True, "stderr": False}),
        (err, {"stdout": False, "stderr": True}),
    ):
        for chunk in container.logs(stream=True, follow=False, **which):
            cap.feed(chunk)
    return out, err


def _remove(container: Container) -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)


def _kill(container: Container) -> None:
    import docker

    with contextlib.suppress(docker.errors.APIError):  # already stopped
        container.kill()


class DockerExecutor(ExecutableTask):
    """Run a command in a new container (never privileged) and return its output."""

    id = "docker_executor"
    name = "Docker container"
    description = (
        "Run a command in a fresh container on a Docker-API engine (Docker or Podman) and "
        "return its exit code and output. Never privileged; no host network; host volumes "
        "only under allowed paths. Off until enabled."
    )
    tags = ["docker", "container", "podman", "command"]
    examples = [
        {
            "title": "Run a command",
            "inputs": {
                "image": "python:3.12-slim",
                "command": ["python", "-c", "print(6 * 7)"],
                "resources": {"memory": "256m", "cpu": 0.5},
                "timeout": 60,
            },
        }
    ]
    input_schema = INPUT_SCHEMA
    params_schema = {"type": "object", "additionalProperties": False, "properties": {}}
    dangerous = True

    def __init__(self) -> None:
        self._container: Container | None = None

    async def cancel(self) -> None:
        """Kill the running container (it is then removed)."""
        container = self._container
        if container is not None:
            await asyncio.to_thread(_kill, container)

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run the container described by ``inputs`` to its end."""
        settings = DockerSettings.get()
        ctx = self.context
        plan = _plan(inputs, settings, ctx.task_id if ctx else None)
        import docker

        client: docker.DockerClient = await loop_resource(
            ("docker", settings.host, settings.api_version),
            lambda: asyncio.to_thread(_client, settings),
            lambda c: asyncio.to_thread(c.close),
        )
        started = time.monotonic()
        try:
            image = await asyncio.to_thread(_ensure_image, client, plan.image, plan.pull)
            container = await asyncio.to_thread(
                client.containers.create,
                plan.image,
                command=plan.command,
                entrypoint=plan.entrypoint,
                environment=plan.env,
                working_dir=plan.working_dir,
                volumes=plan.volumes or None,
                network_mode=plan.network,
                mem_limit=plan.mem_limit,
                nano_cpus=plan.nano_cpus,
                pids_limit=plan.pids_limit,
                user=plan.user,
                labels=plan.labels,
                security_opt=["no-new-privileges"],
                detach=True,
            )
        except (docker.errors.ImageNotFound, docker.errors.NotFound) as exc:
            raise PermanentError(f"image {plan.image!r}: {exc.explanation or exc}") from None
        except docker.errors.APIError as exc:
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise PermanentError(
                    f"the engine refused the container: {exc.explanation}"
                ) from None
            raise RetryableError(f"the engine failed: {exc.explanation or exc}") from None
        except docker.errors.DockerException as exc:
            raise RetryableError(_unreachable(settings, exc)) from None
        except OSError as exc:
            raise RetryableError(_unreachable(settings, exc)) from None
        self._container = container
        try:
            return await self._run(container, plan, image, started)
        finally:
            self._container = None
            if plan.remove:
                await asyncio.shield(asyncio.to_thread(_remove, container))

    async def _run(
        self, container: Container, plan: _Plan, image: Any, started: float
    ) -> dict[str, Any]:
        await asyncio.to_thread(container.start)
        waiter = asyncio.ensure_future(asyncio.to_thread(container.wait))
        try:
            status = await asyncio.wait_for(asyncio.shield(waiter), plan.timeout)
        except TimeoutError:
            await asyncio.to_thread(_kill, container)
            await asyncio.gather(waiter, return_exceptions=True)
            raise TaskTimeoutError(
                f"container of {plan.image} timed out after {plan.timeout:g}s and was killed"
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(_kill, container))
            await asyncio.gather(waiter, return_exceptions=True)
            raise
        code = int(status.get("StatusCode", -1))
        await asyncio.to_thread(container.reload)
        oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        out, err = await asyncio.to_thread(_collect, container, plan)
        result = {
            "exit_code": code,
            "stdout": out.text(),
            "stderr": err.text(),
            "stdout_truncated": out.truncated,
            "stderr_truncated": err.truncated,
            "stdout_bytes": out.total,
            "stderr_bytes": err.total,
            "oom_killed": oom,
            "duration": round(time.monotonic() - started, 6),
            "image": plan.image,
            "image_id": getattr(image, "id", None),
            "container_id": container.id,
        }
        if oom:
            raise _OutOfMemory(
                f"container of {plan.image} was killed for using more than its memory limit "
                f"({plan.mem_limit}); raise resources.memory",
                result,
            )
        if code == 137 and plan.mem_limit is not None and code not in plan.allowed_exit_codes:
            # Podman (cgroup v1) does not always set the OOM flag: say what is most likely.
            raise ContainerExitError(
                f"container of {plan.image} was killed (exit 137) while limited to "
                f"{plan.mem_limit} of memory: most likely it ran out of memory; raise "
                "resources.memory",
                result,
            )
        if code not in plan.allowed_exit_codes:
            tail = err.text().strip()[-300:]
            raise ContainerExitError(
                f"container of {plan.image} exited with status {code} (allowed: "
                f"{', '.join(map(str, sorted(plan.allowed_exit_codes)))})"
                + (f": {tail}" if tail else ""),
                result,
            )
        return result
