"""llm_executor: N completions through the engine vs. N ``litellm.acompletion`` calls, in one run,
against the same fake OpenAI-compatible server (aipartnerupflow-testing, uvicorn on loopback).

* ``litellm direct``: N ``litellm.acompletion`` calls, at most the engine's default concurrency
  (64) at once;
* ``engine``: one tree of N ``llm_executor`` tasks (creation plus execution, on a fresh DuckDB
  file), each making the same call; checkpoints on (one SQLite write per call), as in
  production; ``engine, checkpoints off`` shows what they cost.

    python benchmarks/llm_completions.py [--n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from aipartnerupflow.testing.chat_server import FakeChatServer
from aipartnerupflow.testing.server import LoopbackServer

MODEL = "openai/fake-model"
LIMIT = 64


async def _direct(server: FakeChatServer, n: int) -> float:
    import litellm

    litellm.suppress_debug_info = True
    gate = asyncio.Semaphore(LIMIT)

    async def one(i: int) -> None:
        async with gate:
            await litellm.acompletion(
                model=MODEL,
                api_base=server.base_url,
                api_key=server.api_key,
                messages=[{"role": "user", "content": f"direct {i}"}],
                num_retries=0,
                max_retries=0,
            )

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start


async def _engine(server: FakeChatServer, n: int, db: Path, tag: str) -> float:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage import create_session

    inputs = {"model": MODEL, "api_base": server.base_url, "api_key": server.api_key}
    tasks: list[dict[str, Any]] = [{"id": f"{tag}-root", "name": "root"}]
    tasks += [
        {
            "id": f"{tag}-{i}",
            "name": f"ask {i}",
            "parent_id": f"{tag}-root",
            "schemas": {"method": "llm_executor"},
            "inputs": {**inputs, "prompt": f"{tag} {i}"},
        }
        for i in range(n)
    ]
    manager = TaskManager(create_session(f"duckdb:///{db}"))
    try:
        start = time.perf_counter()
        tree = await manager.run_tasks(tasks)
        elapsed = time.perf_counter() - start
    finally:
        await manager.close()
    if tree.status != "completed":
        failed = [t.error for t in tree.tasks if t.status != "completed"][:3]
        raise SystemExit(f"the engine run failed: {failed}")
    return elapsed


async def main(n: int) -> None:
    from aipartnerupflow.core.settings import reload_settings

    server = FakeChatServer()
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(server.app()) as http:
        server.url = http.url
        os.environ["AIPARTNERUPFLOW_LLM_ALLOW_PRIVATE"] = "true"
        os.environ["AIPARTNERUPFLOW_LLM_CHECKPOINT_PATH"] = str(Path(tmp) / "ckpt.sqlite3")
        reload_settings()
        await _direct(server, 5)  # warm-up: imports, connection pool
        await _engine(server, 5, Path(tmp) / "warm.duckdb", "warm")
        direct = await _direct(server, n)
        engine = await _engine(server, n, Path(tmp) / "engine.duckdb", "engine")
        os.environ["AIPARTNERUPFLOW_LLM_CHECKPOINTS"] = "false"
        reload_settings()
        engine_off = await _engine(server, n, Path(tmp) / "off.duckdb", "off")
    print(f"{n} completions against the fake server (loopback)")
    print(f"  litellm direct ({LIMIT} at once): {direct:.3f} s  ({n / direct:,.0f}/s)")
    print(f"  engine, checkpoints on:          {engine:.3f} s  ({n / engine:,.0f}/s)")
    print(f"  engine, checkpoints off:         {engine_off:.3f} s  ({n / engine_off:,.0f}/s)")
    print(f"  engine overhead per completion:  {(engine - direct) / n * 1000:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    asyncio.run(main(parser.parse_args().n))
