"""Run examples/pipeline.json on the embedded DuckDB store and print the results.

uv run python examples/quickstart.py [path/to/tasks.json]
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import examples.executors  # noqa: F401 - registers the example executors
from aipartnerupflow import TaskManager, create_session


async def main(tasks: list[dict[str, object]]) -> int:
    store = create_session()  # AIPARTNERUPFLOW_DATABASE_URL, else ~/.aipartnerup/data/...
    async with TaskManager(store) as manager:
        result = await manager.run_tasks(tasks, user_id="quickstart")
    print(f"tree {result.root_id}: {result.status}  (stored in {store.url})")
    for task in result.tasks:
        shown = json.dumps(task.result) if task.error is None else f"error: {task.error}"
        print(f"  {task.status:<10} {task.name:<12} {shown}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    default = Path(__file__).with_name("pipeline.json")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    sys.exit(asyncio.run(main(json.loads(path.read_text()))))
