"""What the executor benchmarks share: loading a test module by path, and timing a fan-out.

Each executor benchmark compares one tree (a root and N tasks of one executor, run by a
TaskManager on an in-memory DuckDB store) with the same work done by the SDK directly.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "load_module", "time_fanout"]

ROOT = Path(__file__).resolve().parent.parent


def load_module(relative_path: str, name: str) -> Any:
    """Import a file of the repository (a package's test server, say) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative_path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def time_fanout(
    method: str, inputs: Callable[[int], dict[str, Any]], n: int, concurrency: int
) -> float:
    """Seconds a root with ``n`` ``method`` children (``inputs(i)`` each) takes to complete."""
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage import create_session

    tasks: list[dict[str, Any]] = [{"id": "root", "name": "root"}]
    tasks += [
        {
            "id": f"c{i}",
            "name": f"c{i}",
            "parent_id": "root",
            "schemas": {"method": method},
            "inputs": inputs(i),
        }
        for i in range(n)
    ]
    manager = TaskManager(create_session("duckdb:///:memory:"), max_concurrency=concurrency)
    try:
        started = time.perf_counter()
        result = await manager.run_tasks(tasks)
        elapsed = time.perf_counter() - started
        assert result.status == "completed", result.to_dict()
    finally:
        await manager.close()
    return elapsed
