"""Check that the API reference (docs/reference/api*.md) documents every public name.

Public means: listed in ``__all__`` of ``aipartnerupflow`` (the core's flat API) or of a
package's top-level module (``aipartnerupflow.api``, ``aipartnerupflow.extensions.http``...).
A name is documented when one of the page's ``::: module`` directives renders it: the module
lists the same object in its ``__all__``, or is the module that defines it. The ``docs``
session runs ``python tools/check_api_reference.py``; it exits 1 listing what to add.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["PUBLIC_MODULES", "documented_modules", "main", "missing"]

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs" / "reference").glob("api*.md"))
DIRECTIVE = re.compile(r"^::: (?P<module>[\w.]+)\s*$", re.M)
#: Modules whose ``__all__`` is public API: the core's flat namespace and each package's root.
PUBLIC_MODULES = (
    "aipartnerupflow",
    "aipartnerupflow.api",
    "aipartnerupflow.mcp_server",
    "aipartnerupflow.testing",
    "aipartnerupflow.extensions.apflow",
    "aipartnerupflow.extensions.crewai",
    "aipartnerupflow.extensions.docker",
    "aipartnerupflow.extensions.generate",
    "aipartnerupflow.extensions.grpc",
    "aipartnerupflow.extensions.http",
    "aipartnerupflow.extensions.llm",
    "aipartnerupflow.extensions.mcp",
    "aipartnerupflow.extensions.ssh",
    "aipartnerupflow.extensions.stdio",
    "aipartnerupflow.extensions.websocket",
)


def documented_modules(pages: list[Path] = PAGES) -> list[str]:
    """The modules the pages render with ``::: module``."""
    return [m for page in pages for m in DIRECTIVE.findall(page.read_text(encoding="utf-8"))]


def _exports(module: ModuleType) -> dict[str, object]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")]
    return {name: getattr(module, name) for name in names if hasattr(module, name)}


def missing(pages: list[Path] = PAGES) -> list[str]:
    """Public names no directive of the pages renders, each with the directive to add."""
    rendered_ids: set[int] = set()
    rendered_modules = set()
    for name in documented_modules(pages):
        module = importlib.import_module(name)
        rendered_modules.add(name)
        rendered_ids.update(id(obj) for obj in _exports(module).values())
    problems = []
    for public in PUBLIC_MODULES:
        module = importlib.import_module(public)
        for name, obj in _exports(module).items():
            if name.startswith("__"):
                continue
            home = getattr(obj, "__module__", None)
            if id(obj) in rendered_ids or home in rendered_modules:
                continue
            where = home if isinstance(home, str) and home.startswith("aipartnerupflow") else public
            problems.append(f"{public}.{name} is not in docs/reference/api*.md: add `::: {where}`")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    problems = missing()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"docs/reference/api*.md document every public name of {len(PUBLIC_MODULES)} modules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
