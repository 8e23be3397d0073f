"""The MCP server over streamable HTTP (uvicorn on loopback, JWT auth on): ``tools/call``
``tasks_get`` requests per second, and the round trip of a 10-task tree (tasks_run_and_wait).

    python benchmarks/mcp_server.py [--calls 500] [--concurrency 8] [--trees 20]

The server runs in a thread of this process (aipartnerupflow.testing's LoopbackServer) on a
DuckDB file; the client is the SDK's ClientSession over one streamable HTTP session.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SECRET = "benchmark-secret-key-0123456789abcdef"


def _task(ident: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "name": ident,
        "schemas": {"method": "aggregate_results_executor"},
        **extra,
    }


async def _bench(url: str, calls: int, concurrency: int, trees: int) -> dict[str, float]:
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from aipartnerupflow.api.security import create_token

    headers = {"Authorization": f"Bearer {create_token('bench', SECRET)}"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=120) as client,
        streamable_http_client(url, http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        await session.call_tool("tasks_create", {"tasks": [_task("bench-get")]})
        sem = asyncio.Semaphore(concurrency)

        async def get() -> None:
            async with sem:
                result = await session.call_tool("tasks_get", {"task_id": "bench-get"})
                assert not result.isError

        start = time.perf_counter()
        await asyncio.gather(*(get() for _ in range(calls)))
        get_rps = calls / (time.perf_counter() - start)

        rounds = []
        for _ in range(trees):
            p = uuid.uuid4().hex[:8]
            tree = [_task(f"{p}r")] + [_task(f"{p}{i}", parent_id=f"{p}r") for i in range(9)]
            start = time.perf_counter()
            result = await session.call_tool("tasks_run_and_wait", {"tasks": tree})
            rounds.append(time.perf_counter() - start)
            assert result.structuredContent is not None
            assert result.structuredContent["status"] == "completed"
    return {
        "get_rps": get_rps,
        "tree_median_ms": statistics.median(rounds) * 1000,
        "tree_p90_ms": sorted(rounds)[int(len(rounds) * 0.9) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--trees", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from aipartnerupflow.mcp_server import McpServerSettings, create_http_app
    from aipartnerupflow.testing.server import LoopbackServer

    with tempfile.TemporaryDirectory() as tmp:
        app = create_http_app(
            McpServerSettings.from_env(),
            database_url=f"duckdb:///{Path(tmp) / 'bench.duckdb'}",
            jwt_secret_key=SECRET,
        )
        server = LoopbackServer(app, lifespan="on").start()
        try:
            figures = asyncio.run(
                _bench(f"{server.url}/mcp", args.calls, args.concurrency, args.trees)
            )
        finally:
            server.stop()
    print(
        f"tools/call tasks_get: {figures['get_rps']:.0f} req/s ({args.calls} calls, "
        f"concurrency {args.concurrency})"
    )
    print(
        f"10-task tree round trip (tasks_run_and_wait): median {figures['tree_median_ms']:.1f} ms, "
        f"p90 {figures['tree_p90_ms']:.1f} ms ({args.trees} trees)"
    )


if __name__ == "__main__":
    main()
