"""Plugin registry over entry points, plus in-process executor registration.

Listing reads package metadata only; a plugin is imported on first use and cached.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

from aipartnerupflow.core.errors import (
    ExecutorNotFoundError,
    PluginConflictError,
    PluginError,
    PluginImportError,
    PluginVersionError,
)
from aipartnerupflow.core.executor import ExecutableTask

__all__ = [
    "CLI_GROUP",
    "EXECUTOR_GROUP",
    "KNOWN_EXECUTOR_EXTRAS",
    "SERVER_GROUP",
    "UNRELEASED_EXECUTORS",
    "ExecutorRegistry",
    "PluginEntry",
    "PluginGroup",
    "executor_register",
    "get_executor_registry",
]

EXECUTOR_GROUP = "aipartnerupflow.executors"
CLI_GROUP = "aipartnerupflow.cli"
SERVER_GROUP = "aipartnerupflow.servers"
CORE_DISTRIBUTION = "aipartnerupflow-core"

#: Executor ids of the project's own published packages, mapped to the meta-package extra that
#: installs them (a test keeps this equal to the meta-package's extras).
KNOWN_EXECUTOR_EXTRAS: dict[str, str] = {
    "rest_executor": "http",
    "command_executor": "stdio",
    "system_info_executor": "stdio",
    "websocket_executor": "websocket",
    "grpc_executor": "grpc",
    "llm_executor": "llm",
    "generate_executor": "generate",
}

#: Executor ids of the original project whose packages this release does not publish yet,
#: mapped to the distribution that will provide them.
UNRELEASED_EXECUTORS: dict[str, str] = {
    "ssh_executor": "aipartnerupflow-executor-ssh",
    "docker_executor": "aipartnerupflow-executor-docker",
    "apflow_api_executor": "aipartnerupflow-executor-apflow",
    "mcp_executor": "aipartnerupflow-executor-mcp",
    "crewai_executor": "aipartnerupflow-executor-crewai",
    "batch_crewai_executor": "aipartnerupflow-executor-crewai",
}

T = TypeVar("T", bound=type[ExecutableTask])


@dataclass(frozen=True, slots=True)
class PluginEntry:
    """One entry point, described from metadata without importing it."""

    name: str
    value: str
    distribution: str
    version: str


class PluginGroup:
    """The plugins of one entry-point group: listed from metadata, loaded lazily."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._entries: dict[str, list[PluginEntry]] | None = None
        self._loaded: dict[str, Any] = {}

    def refresh(self) -> None:
        """Forget what was read from metadata (after installing a package at run time)."""
        importlib.invalidate_caches()  # importlib.metadata and finders cache directory listings
        self._entries = None
        self._loaded.clear()

    def _scan(self) -> dict[str, list[PluginEntry]]:
        if self._entries is None:
            found: dict[str, list[PluginEntry]] = {}
            for ep in metadata.entry_points(group=self.group):
                dist = ep.dist
                entry = PluginEntry(
                    name=ep.name,
                    value=ep.value,
                    distribution=dist.name if dist is not None else "<unknown distribution>",
                    version=dist.version if dist is not None else "?",
                )
                same = found.setdefault(ep.name, [])
                if all(e.value != entry.value for e in same):  # identical entries count once
                    same.append(entry)
            self._entries = found
        return self._entries

    def names(self) -> list[str]:
        """Sorted plugin names, from metadata only."""
        return sorted(self._scan())

    def entry(self, name: str) -> PluginEntry | None:
        """The entry point behind ``name``; raises when two targets claim it."""
        entries = self._scan().get(name)
        if not entries:
            return None
        if len(entries) > 1:
            claims = ", ".join(f"{e.value} (from {e.distribution} {e.version})" for e in entries)
            raise PluginConflictError(
                f"{self.group} plugin {name!r} is claimed by more than one target: {claims}. "
                "Uninstall one of these distributions."
            )
        return entries[0]

    def load(self, name: str) -> Any:
        """Import the plugin ``name`` (once) and return the object it points at."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        if entry is None:
            raise PluginError(f"no {self.group} plugin named {name!r} is installed")
        _check_core_range(entry)
        module_name, _, attr = entry.value.partition(":")
        try:
            obj: Any = importlib.import_module(module_name.strip())
            for part in filter(None, attr.strip().split(".")):
                obj = getattr(obj, part)
        except Exception as exc:
            raise PluginImportError(
                f"{self.group} plugin {name!r} from {entry.distribution} {entry.version} failed "
                f"to import ({entry.value}): {type(exc).__name__}: {exc}"
            ) from exc
        self._loaded[name] = obj
        return obj


def _check_core_range(entry: PluginEntry) -> None:
    """Refuse a plugin whose declared aipartnerupflow-core range excludes the installed core."""
    if entry.distribution == CORE_DISTRIBUTION:
        return
    try:
        requires = metadata.requires(entry.distribution) or []
        core_version = metadata.version(CORE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return
    from packaging.requirements import Requirement

    for line in requires:
        req = Requirement(line)
        if req.name.replace("_", "-").lower() != CORE_DISTRIBUTION or req.marker is not None:
            continue
        if req.specifier and not req.specifier.contains(core_version, prereleases=True):
            raise PluginVersionError(
                f"plugin {entry.name!r} from {entry.distribution} {entry.version} requires "
                f"{CORE_DISTRIBUTION}{req.specifier}, but {CORE_DISTRIBUTION} {core_version} is "
                f"installed. Install a version of {entry.distribution} built for core "
                f"{core_version}, or a core version that matches."
            )


class ExecutorRegistry:
    """Executors by id: installed entry points plus classes registered in-process."""

    def __init__(self, group: str = EXECUTOR_GROUP) -> None:
        self.plugins = PluginGroup(group)
        self._local: dict[str, type[ExecutableTask]] = {}

    def ids(self) -> list[str]:
        """Every known executor id, without importing any plugin."""
        return sorted(set(self.plugins.names()) | set(self._local))

    def __contains__(self, executor_id: object) -> bool:
        return isinstance(executor_id, str) and (
            executor_id in self._local or self.plugins.entry(executor_id) is not None
        )

    def source(self, executor_id: str) -> str:
        """Where an executor comes from: a distribution name or ``in-process``."""
        if executor_id in self._local:
            return "in-process"
        entry = self.plugins.entry(executor_id)
        return entry.distribution if entry else "unknown"

    def register(self, cls: type[ExecutableTask], *, override: bool = False) -> None:
        """Register an executor class under ``cls.id``."""
        executor_id = getattr(cls, "id", "")
        if not isinstance(cls, type) or not issubclass(cls, ExecutableTask):
            raise PluginError(
                f"{cls!r} cannot be registered as an executor: it must subclass "
                "ExecutableTask or BaseTask"
            )
        if not executor_id or not isinstance(executor_id, str):
            raise PluginError(
                f"executor class {cls.__qualname__} has no id: set a class attribute "
                'id = "my_executor" before registering it'
            )
        if not override:
            previous = self._local.get(executor_id)
            if previous is not None and previous is not cls:
                raise PluginConflictError(
                    f"executor id {executor_id!r} is already registered by "
                    f"{previous.__module__}.{previous.__qualname__}; pass override=True to "
                    f"replace it with {cls.__module__}.{cls.__qualname__}"
                )
            entry = self.plugins.entry(executor_id)
            if entry is not None:
                raise PluginConflictError(
                    f"executor id {executor_id!r} is already provided by {entry.distribution} "
                    f"({entry.value}); pass override=True to replace it with "
                    f"{cls.__module__}.{cls.__qualname__}"
                )
        self._local[executor_id] = cls

    def unregister(self, executor_id: str) -> None:
        """Remove an in-process registration (entry points stay)."""
        self._local.pop(executor_id, None)

    def get(self, executor_id: str) -> type[ExecutableTask]:
        """The executor class for ``executor_id``; a helpful error when there is none."""
        local = self._local.get(executor_id)
        if local is not None:
            return local
        if self.plugins.entry(executor_id) is None:
            raise ExecutorNotFoundError(self.not_found_message(executor_id), executor_id)
        obj = self.plugins.load(executor_id)
        if not (isinstance(obj, type) and issubclass(obj, ExecutableTask)):
            entry = self.plugins.entry(executor_id)
            dist = entry.distribution if entry else "?"
            raise PluginError(
                f"executor plugin {executor_id!r} from {dist} points at {obj!r}, which is not "
                "an ExecutableTask subclass"
            )
        return obj

    def not_found_message(self, executor_id: str) -> str:
        """The message for an unknown executor id: installed ids, closest match, install line."""
        installed = self.ids()
        parts = [f"unknown executor {executor_id!r}."]
        extra = KNOWN_EXECUTOR_EXTRAS.get(executor_id)
        unreleased = UNRELEASED_EXECUTORS.get(executor_id)
        if extra is not None:
            parts.append(
                f'It is provided by an optional package: pip install "aipartnerupflow[{extra}]".'
            )
        elif unreleased is not None:
            parts.append(
                f"It is an executor of the original aipartnerupflow; its package ({unreleased}) "
                "is not published in this release. To run such tasks now, register your own "
                "executor with this id (@executor_register(), or --plugin on the CLI)."
            )
        else:
            known = [*KNOWN_EXECUTOR_EXTRAS, *UNRELEASED_EXECUTORS]
            close = difflib.get_close_matches(executor_id, installed + known, n=1, cutoff=0.6)
            if close:
                parts.append(f"Did you mean {close[0]!r}?")
        listed = ", ".join(installed) if installed else "none"
        parts.append(f"Installed executors: {listed}.")
        return " ".join(parts)


_registry = ExecutorRegistry()


def get_executor_registry() -> ExecutorRegistry:
    """The process-wide executor registry."""
    return _registry


def executor_register(*, override: bool = False) -> Callable[[T], T]:
    """Class decorator registering an executor in this process: ``@executor_register()``."""

    def decorate(cls: T) -> T:
        _registry.register(cls, override=override)
        return cls

    return decorate
