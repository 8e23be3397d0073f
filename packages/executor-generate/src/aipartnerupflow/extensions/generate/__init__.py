"""Task-tree generator for aipartnerupflow: ``generate_executor`` and the CLI plugin
``apflow generate task-tree``. Importing it does not import LiteLLM; names load lazily so
``apflow --help`` (which loads the CLI plugin) imports nothing heavy."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aipartnerupflow.extensions.generate.executor import INPUT_SCHEMA as INPUT_SCHEMA
    from aipartnerupflow.extensions.generate.executor import GenerateExecutor as GenerateExecutor
    from aipartnerupflow.extensions.generate.generation import Generated as Generated
    from aipartnerupflow.extensions.generate.generation import check_tree as check_tree
    from aipartnerupflow.extensions.generate.generation import generate_tree as generate_tree
    from aipartnerupflow.extensions.generate.prompt import (
        available_executors as available_executors,
    )
    from aipartnerupflow.extensions.generate.prompt import system_prompt as system_prompt

__all__ = [
    "INPUT_SCHEMA",
    "GenerateExecutor",
    "Generated",
    "available_executors",
    "check_tree",
    "generate_tree",
    "system_prompt",
]

_WHERE = {
    "INPUT_SCHEMA": "executor",
    "GenerateExecutor": "executor",
    "Generated": "generation",
    "check_tree": "generation",
    "generate_tree": "generation",
    "available_executors": "prompt",
    "system_prompt": "prompt",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
