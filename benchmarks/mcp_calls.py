"""mcp_executor vs the SDK's ClientSession directly: 200 tools/call requests over streamable
HTTP to a loopback FastMCP server, in one run.

    python benchmarks/mcp_calls.py [--calls 200] [--concurrency 16] [--runs 3]

The engine side is one tree: a root with ``--calls`` mcp_executor children calling ``add``
(one shared session per loop and server; the tool list is fetched once per session). The
direct side makes the same calls on one ``ClientSession`` with the same concurrency. The
server is the test server of the executor's tests
(``packages/executor-mcp/tests/mcp_server.py``), served by uvicorn in a thread of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from typing import Any

from _fanout import load_module, time_fanout


def _server_module() -> Any:
    return load_module("packages/executor-mcp/tests/mcp_server.py", "mcp_bench_server")


async def _engine(url: str, calls: int, concurrency: int) -> float:
    return await time_fanout(
        "mcp_executor",
        lambda i: {"url": url, "tool_name": "add", "arguments": {"a": i, "b": 1}},
        calls,
        concurrency,
    )


async def _direct(url: str, calls: int, concurrency: int) -> float:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as s:
        await s.initialize()

        async def one(i: int) -> None:
            async with gate:
                result = await s.call_tool("add", {"a": i, "b": 1})
                assert not result.isError

        await asyncio.gather(*(one(i) for i in range(calls)))
    return time.perf_counter() - started


async def main(calls: int, concurrency: int, runs: int) -> None:
    os.environ["AIPARTNERUPFLOW_MCP_ALLOW_PRIVATE"] = "true"
    from aipartnerupflow.core.settings import reload_settings
    from aipartnerupflow.testing.server import LoopbackServer

    reload_settings()
    logging.getLogger("mcp.server.streamable_http").setLevel(logging.CRITICAL)  # closed streams
    app = _server_module().build().streamable_http_app()
    with LoopbackServer(app, lifespan="on") as server:
        url = f"{server.url}/mcp"
        await _engine(url, 10, concurrency)  # warm-up: imports, first session
        await _direct(url, 10, concurrency)
        engine = [await _engine(url, calls, concurrency) for _ in range(runs)]
        direct = [await _direct(url, calls, concurrency) for _ in range(runs)]
    e, d = statistics.median(engine), statistics.median(direct)
    print(f"{calls} MCP tools/call, streamable HTTP, concurrency {concurrency}, median of {runs}")
    print("(each side includes opening its session):")
    print(f"  mcp_executor through the engine: {e:.3f} s ({calls / e:,.0f} calls/s)")
    print(f"  ClientSession directly:          {d:.3f} s ({calls / d:,.0f} calls/s)")
    print(f"  ratio engine / direct:           {e / d:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.concurrency, args.runs))
