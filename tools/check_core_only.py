"""Prove that aipartnerupflow-core works on its own and drags in no optional SDK.

Run inside an environment holding only the core wheel (plus test tools): imports
``aipartnerupflow`` and every public name, lists and loads every installed plugin of our
entry-point groups, then fails if a forbidden SDK is installed or was imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib import metadata

#: Top-level module -> distribution names that provide it.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "crewai": ("crewai",),
    "litellm": ("litellm",),
    "openai": ("openai",),
    "a2a": ("a2a-sdk",),
    "mcp": ("mcp",),
    "docker": ("docker",),
    "asyncssh": ("asyncssh",),
    "grpc": ("grpcio",),
    "httpx": ("httpx",),
}
GROUPS = ("aipartnerupflow.executors", "aipartnerupflow.cli", "aipartnerupflow.servers")


def _normalise(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def check_public_api() -> list[str]:
    """Import every public name of ``aipartnerupflow`` and ``aipartnerupflow.core``."""
    problems: list[str] = []
    for module_name in ("aipartnerupflow", "aipartnerupflow.core"):
        module = importlib.import_module(module_name)
        names = list(getattr(module, "__all__", []))
        if not names:
            problems.append(f"{module_name} exports nothing (__all__ is empty)")
        for name in names:
            try:
                getattr(module, name)
            except Exception as exc:
                problems.append(f"{module_name}.{name}: {type(exc).__name__}: {exc}")
        print(f"{module_name}: {len(names)} public names imported")
    return problems


def check_plugins() -> list[str]:
    """List and load every plugin in our groups through the core registry."""
    from aipartnerupflow.core.registry import ExecutorRegistry, PluginGroup

    problems: list[str] = []
    registry = ExecutorRegistry()
    for executor_id in registry.ids():
        try:
            cls = registry.get(executor_id)
        except Exception as exc:
            problems.append(f"executor {executor_id}: {type(exc).__name__}: {exc}")
        else:
            print(f"executor {executor_id} -> {cls.__module__}.{cls.__qualname__}")
    for group in GROUPS[1:]:
        plugins = PluginGroup(group)
        for name in plugins.names():
            try:
                plugins.load(name)
            except Exception as exc:
                problems.append(f"{group} {name}: {type(exc).__name__}: {exc}")
            else:
                print(f"{group} {name} loaded")
    return problems


def check_forbidden() -> list[str]:
    """Optional SDKs must be neither installed nor imported."""
    problems: list[str] = []
    installed = {_normalise(d.metadata["Name"] or ""): d.version for d in metadata.distributions()}
    for module, dists in FORBIDDEN.items():
        for dist in dists:
            if dist in installed:
                problems.append(f"forbidden distribution installed: {dist} {installed[dist]}")
        if module in sys.modules:
            problems.append(f"forbidden module imported: {module}")
        elif importlib.util.find_spec(module) is not None:
            problems.append(f"forbidden module importable: {module}")
    return problems


def main() -> int:
    """Run every check and report all problems at once."""
    problems = check_public_api() + check_plugins() + check_forbidden()
    if problems:
        print("core-only check FAILED:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print("core-only check passed: no optional SDK installed or imported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
