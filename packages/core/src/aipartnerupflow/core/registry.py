"""Plugin registry over entry points, plus in-process executor registration.

Listing reads package metadata only; a plugin is imported on first use and cached.

The core names no plugin. What an unknown executor id's error suggests installing comes from
*catalogues*: entry points of the ``aipartnerupflow.catalogue`` group, each pointing at a
callable (or mapping) that returns ``{"executors": {id: {"distribution": ..., "extra": ...,
"published": bool}}}``. The project's own catalogue is generated from the packages' metadata
by ``tools/gen_catalogue.py`` and shipped by the CLI; without one the error still lists the
installed executors.

:func:`load_plugins` imports the user's plugin modules (``--plugin`` and
``AIPARTNERUPFLOW_PLUGINS``) for every entry point: the CLI, the A2A server and workers.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
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
    "CATALOGUE_GROUP",
    "CLI_GROUP",
    "EXECUTOR_GROUP",
    "SERVER_GROUP",
    "CatalogueEntry",
    "ExecutorRegistry",
    "PluginEntry",
    "PluginGroup",
    "executor_register",
    "get_executor_registry",
    "import_plugin_module",
    "load_plugins",
]

EXECUTOR_GROUP = "aipartnerupflow.executors"
CLI_GROUP = "aipartnerupflow.cli"
SERVER_GROUP = "aipartnerupflow.servers"
CATALOGUE_GROUP = "aipartnerupflow.catalogue"
CORE_DISTRIBUTION = "aipartnerupflow-core"

log = logging.getLogger(__name__)

T = TypeVar("T", bound=type[ExecutableTask])


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """Where an executor id comes from, as a catalogue says (for install hints)."""

    distribution: str
    #: The meta-package extra that installs it (``pip install "aipartnerupflow[<extra>]"``).
    extra: str | None = None
    #: False for an executor of the original project whose package is not released yet.
    published: bool = True


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
    if _plainly_in_range(requires, core_version):
        return  # the usual case, decided without importing packaging (a start-up cost)
    from packaging.requirements import Requirement

    for line in requires:
        req = Requirement(line)
        if _canonical(req.name) != CORE_DISTRIBUTION or req.marker is not None:
            continue
        if req.specifier and not req.specifier.contains(core_version, prereleases=True):
            raise PluginVersionError(
                f"plugin {entry.name!r} from {entry.distribution} {entry.version} requires "
                f"{CORE_DISTRIBUTION}{req.specifier}, but {CORE_DISTRIBUTION} {core_version} is "
                f"installed. Install a version of {entry.distribution} built for core "
                f"{core_version}, or a core version that matches."
            )


_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_RELEASE = r"[0-9]+(?:\.[0-9]+)*"
_OPERATORS = ("~=", "==", "!=", "<=", ">=", "<", ">")
_SPEC = rf"(?:~=|==|!=|<=|>=|<|>)\s*{_RELEASE}"
_VARIABLE = (
    r"(?:extra|python_version|python_full_version|os_name|sys_platform|platform_system"
    r"|platform_machine|platform_python_implementation|implementation_name)"
)
_CLAUSE = rf"{_VARIABLE}\s*(?:==|!=|<=|>=|<|>)\s*(?:\"[\w.+-]+\"|'[\w.+-]+')"
#: A strict subset of PEP 508 (plain release versions, simple markers), what build backends
#: write for ordinary dependencies; anything else is left to ``packaging``.
_PLAIN_REQUIREMENT = re.compile(
    rf"\s*(?P<name>{_NAME})\s*(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?"
    rf"\s*(?P<specs>{_SPEC}(?:\s*,\s*{_SPEC})*)?"
    rf"\s*(?P<marker>;\s*{_CLAUSE}(?:\s+(?:and|or)\s+{_CLAUSE})*)?\s*",
    re.ASCII,
)


def _canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Aipartnerupflow.Core`` is the core)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _plain_spec_met(spec: str, version: tuple[int, ...]) -> bool:
    """PEP 440: plain release ``version`` meets ``spec`` (one specifier, a plain release)."""
    op = next(o for o in _OPERATORS if spec.startswith(o))
    target = tuple(int(part) for part in spec[len(op) :].strip().split("."))
    width = max(len(version), len(target))
    left = version + (0,) * (width - len(version))
    right = target + (0,) * (width - len(target))
    if op == "~=":  # >= target, and the same release up to target's last part
        prefix = target[:-1]
        return left >= right and (version + (0,) * len(prefix))[: len(prefix)] == prefix
    return {
        "==": left == right,
        "!=": left != right,
        "<=": left <= right,
        ">=": left >= right,
        "<": left < right,
        ">": left > right,
    }[op]


def _plainly_in_range(requires: list[str], core_version: str) -> bool:
    """True when every line is a plain requirement and ``core_version`` meets the core's.

    False means undecided: ``packaging`` then parses the lines and words any refusal.
    """
    if not re.fullmatch(_RELEASE, core_version):
        return False
    version = tuple(int(part) for part in core_version.split("."))
    for line in requires:
        match = _PLAIN_REQUIREMENT.fullmatch(line)
        if match is None:
            return False
        specs = [part.strip() for part in (match["specs"] or "").split(",") if part.strip()]
        if any(spec.startswith("~=") and "." not in spec for spec in specs):
            return False  # "~=1" is invalid: packaging says so
        if _canonical(match["name"]) != CORE_DISTRIBUTION or match["marker"]:
            continue
        if not all(_plain_spec_met(spec, version) for spec in specs):
            return False
    return True


class ExecutorRegistry:
    """Executors by id: installed entry points plus classes registered in-process."""

    def __init__(self, group: str = EXECUTOR_GROUP, catalogue_group: str = CATALOGUE_GROUP) -> None:
        self.plugins = PluginGroup(group)
        self.catalogues = PluginGroup(catalogue_group)
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

    def catalogue(self) -> dict[str, CatalogueEntry]:
        """Executor ids the installed catalogues know of (installed or not), for hints.

        A catalogue that fails to load or is malformed is logged and ignored: it only ever
        improves an error message.
        """
        found: dict[str, CatalogueEntry] = {}
        for name in self.catalogues.names():
            try:
                obj = self.catalogues.load(name)
                data = obj() if callable(obj) else obj
                found.update(_catalogue_entries(data))
            except Exception as exc:
                log.warning("ignoring the executor catalogue %r: %s", name, exc)
        return found

    def not_found_message(self, executor_id: str) -> str:
        """The message for an unknown executor id: installed ids, closest match, install line."""
        installed = self.ids()
        parts = [f"unknown executor {executor_id!r}."]
        catalogue = self.catalogue()
        known = catalogue.get(executor_id)
        if known is not None and known.published and known.extra:
            parts.append(
                "It is provided by an optional package: "
                f'pip install "aipartnerupflow[{known.extra}]".'
            )
        elif known is not None and known.published:
            parts.append(
                f"It is provided by an optional package: pip install {known.distribution}."
            )
        elif known is not None:
            parts.append(
                "It is an executor of the original aipartnerupflow; its package "
                f"({known.distribution}) is not published in this release. To run such tasks "
                "now, register your own executor with this id (@executor_register(), or "
                "--plugin on the CLI)."
            )
        else:
            close = difflib.get_close_matches(
                executor_id, installed + sorted(catalogue), n=1, cutoff=0.6
            )
            if close:
                parts.append(f"Did you mean {close[0]!r}?")
        listed = ", ".join(installed) if installed else "none"
        parts.append(f"Installed executors: {listed}.")
        return " ".join(parts)


def _catalogue_entries(data: Any) -> dict[str, CatalogueEntry]:
    if not isinstance(data, Mapping) or not isinstance(data.get("executors"), Mapping):
        raise TypeError('expected a mapping {"executors": {id: {...}}}')
    out = {}
    for executor_id, entry in data["executors"].items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("distribution"), str):
            raise TypeError(f"entry {executor_id!r} names no distribution")
        extra = entry.get("extra")
        out[str(executor_id)] = CatalogueEntry(
            distribution=entry["distribution"],
            extra=extra if isinstance(extra, str) and extra else None,
            published=entry.get("published", True) is not False,
        )
    return out


_registry = ExecutorRegistry()
_imported_plugins: set[str] = set()


def import_plugin_module(module: str) -> None:
    """Import one plugin module (``pkg.mod``) or file (``path/to/plugin.py``).

    Failures become :class:`PluginImportError` saying which plugin and why.
    """
    try:
        if module.endswith(".py") or os.sep in module:
            path = Path(module)
            if not path.is_file():
                raise PluginImportError(f"plugin file {module} does not exist")
            name = f"apflow_plugin_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise PluginImportError(f"cannot load plugin file {module}")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        else:
            importlib.import_module(module)
    except PluginImportError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise PluginImportError(
                f"plugin module {module!r} was not found: check the name, install it, or add "
                "its directory to PYTHONPATH"
            ) from exc
        raise PluginImportError(f"plugin module {module!r} failed to import: {exc}") from exc
    except PluginError as exc:
        raise PluginImportError(f"plugin module {module!r}: {exc}") from exc
    except Exception as exc:
        raise PluginImportError(
            f"plugin module {module!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def load_plugins(modules: Iterable[str] = (), *, from_env: bool = True) -> list[str]:
    """Import ``modules`` then ``AIPARTNERUPFLOW_PLUGINS``' modules, each once per process.

    The current directory is put on ``sys.path`` first (as ``python -m`` does), so modules
    next to the user resolve. Returns the plugin modules in effect, in order.
    """
    wanted = list(modules)
    if from_env:
        from aipartnerupflow.core.settings import CoreSettings

        wanted += CoreSettings.get().plugins
    wanted = list(dict.fromkeys(wanted))
    if wanted:
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
    for module in wanted:
        if module not in _imported_plugins:
            import_plugin_module(module)
            _imported_plugins.add(module)
    return wanted


def get_executor_registry() -> ExecutorRegistry:
    """The process-wide executor registry."""
    return _registry


def executor_register(*, override: bool = False) -> Callable[[T], T]:
    """Class decorator registering an executor in this process: ``@executor_register()``."""

    def decorate(cls: T) -> T:
        _registry.register(cls, override=override)
        return cls

    return decorate
