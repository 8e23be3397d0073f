"""MkDocs hook: one merged ``aipartnerupflow`` source tree for the API reference.

The ``aipartnerupflow`` namespace is spread over every ``packages/*/src``; the core ships its
``__init__.py``, so a static analyser (griffe, behind mkdocstrings) that finds the core's copy
looks no further and cannot see ``aipartnerupflow.api`` or ``aipartnerupflow.extensions.http``.
Before the build, this hook links every package's subpackages into ``build/api-sources``
(what ``mkdocs.yml`` gives mkdocstrings as its path), as an installation would lay them out.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

__all__ = ["merge_sources", "on_config"]

ROOT = Path(__file__).resolve().parents[1]
MERGED = ROOT / "build" / "api-sources"


def merge_sources(root: Path = ROOT, target: Path = MERGED) -> Path:
    """Link ``packages/*/src/aipartnerupflow/**`` into one tree under ``target``."""
    shutil.rmtree(target, ignore_errors=True)
    namespace = target / "aipartnerupflow"
    namespace.mkdir(parents=True)
    for src in sorted(root.glob("packages/*/src/aipartnerupflow")):
        for entry in sorted(src.iterdir()):
            if entry.name == "extensions":  # a namespace level shared by the executors
                (namespace / "extensions").mkdir(exist_ok=True)
                # Only here, for the analyser (which skips directories without one); the
                # wheels never ship it (tools/check_wheels.py).
                (namespace / "extensions" / "__init__.py").write_text(
                    '"""Executor packages."""\n', encoding="utf-8"
                )
                for extension in sorted(entry.iterdir()):
                    (namespace / "extensions" / extension.name).symlink_to(extension)
            elif entry.name != "__pycache__":
                (namespace / entry.name).symlink_to(entry)
    return target


def on_config(config: Any) -> Any:
    """MkDocs entry point: merge the sources before mkdocstrings reads them."""
    merge_sources()
    return config


# What mkdocs.plugins.event_priority(100) sets (its decorator is untyped): run before
# mkdocstrings reads its paths, which must exist by then.
on_config.mkdocs_priority = 100  # type: ignore[attr-defined]
