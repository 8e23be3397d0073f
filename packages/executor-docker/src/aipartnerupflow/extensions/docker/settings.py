"""Operator settings of ``docker_executor`` (``AIPARTNERUPFLOW_DOCKER_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aipartnerupflow.core.settings import Settings

__all__ = ["DockerSettings", "PullPolicy"]

PullPolicy = Literal["never", "if-missing", "always"]


class DockerSettings(Settings):
    """Which engine ``docker_executor`` uses and what tasks may ask of it."""

    env_prefix = "AIPARTNERUPFLOW_DOCKER_"

    host: str | None = Field(
        default=None,
        description="URL of the Docker-API engine (unix:///run/docker.sock, tcp://host:2376, "
        "a Podman service socket); never taken from a task. Default: DOCKER_HOST, else the "
        "platform's default socket.",
        json_schema_extra={"fallback": "DOCKER_HOST"},
    )
    api_version: str | None = Field(
        default=None, description="Engine API version to speak (default: negotiated)."
    )
    allowed_images: tuple[str, ...] = Field(
        default=(),
        description="Image patterns tasks may run (fnmatch: 'python:3.*', 'registry.local/*'); "
        "empty: any image.",
    )
    allowed_volume_paths: tuple[str, ...] = Field(
        default=(),
        description="Host directories that may be mounted into containers (with everything "
        "below them, after resolving symlinks and '..'); empty: no host volume.",
    )
    allowed_networks: tuple[str, ...] = Field(
        default=("none", "bridge"),
        description="Networks containers may join; 'host' is never allowed.",
    )
    default_network: str = Field(
        default="none", description="Network of a task that names none (no network by default)."
    )
    pull_policy: PullPolicy = Field(
        default="if-missing", description="Default pull policy: never, if-missing or always."
    )
    max_log_bytes: int = Field(
        default=1024 * 1024, ge=0, description="Most bytes kept of each of stdout and stderr."
    )
    default_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a container may run when the task sets none."
    )
