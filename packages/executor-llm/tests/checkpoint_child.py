"""Child process of the kill -9 checkpoint test (not a test module).

``python checkpoint_child.py start <db_url> <api_base> <marker>``: runs a two-call task (a JSON
answer with one repair); once the first call's checkpoint is stored it writes ``marker`` and
waits to be killed. ``python checkpoint_child.py resume <db_url>``: resumes the interrupted
tree and prints its result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.extensions.llm.checkpoints import CheckpointStore

SCHEMA = {"type": "object", "required": ["age"], "properties": {"age": {"type": "integer"}}}


async def start(db_url: str, api_base: str, marker: str) -> None:
    real_save = CheckpointStore._save

    def save_then_wait(self: Any, task_id: str, position: int, digest: str, answer: Any) -> None:
        real_save(self, task_id, position, digest, answer)
        if position == 0:
            Path(marker).write_text("saved")
            while True:  # between the two calls: the parent kills us here
                time.sleep(1)

    CheckpointStore._save = save_then_wait  # type: ignore[method-assign]
    manager = TaskManager(create_session(db_url))
    await manager.run_tasks(
        [
            {
                "id": "two-calls",
                "name": "two-calls",
                "schemas": {"method": "llm_executor"},
                "retry": {"max_attempts": 3, "backoff_seconds": 0},
                "inputs": {
                    "model": "openai/fake-model",
                    "api_base": api_base,
                    "api_key": "sk-fake-test-key",
                    "prompt": "How old is Ada?",
                    "json_schema": SCHEMA,
                },
            }
        ]
    )


async def resume(db_url: str) -> None:
    manager = TaskManager(create_session(db_url))
    try:
        results = await manager.resume_interrupted()
        print(json.dumps([r.to_dict() for r in results], default=str))
    finally:
        await manager.close()


if __name__ == "__main__":
    if sys.argv[1] == "start":
        asyncio.run(start(*sys.argv[2:5]))
    else:
        asyncio.run(resume(sys.argv[2]))
