"""Task-tree generator for aipartnerupflow: ``generate_executor`` and the CLI plugin
``apflow generate task-tree``. Importing it does not import LiteLLM."""

from __future__ import annotations

from aipartnerupflow.extensions.generate.executor import INPUT_SCHEMA, GenerateExecutor
from aipartnerupflow.extensions.generate.generation import Generated, check_tree, generate_tree
from aipartnerupflow.extensions.generate.prompt import available_executors, system_prompt

__all__ = [
    "INPUT_SCHEMA",
    "GenerateExecutor",
    "Generated",
    "available_executors",
    "check_tree",
    "generate_tree",
    "system_prompt",
]
