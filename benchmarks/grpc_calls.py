"""grpc_executor vs grpc.aio directly: 1,000 unary calls to a loopback server, in one run.

    python benchmarks/grpc_calls.py [--calls 1000] [--concurrency 64] [--runs 3]

The engine side is one tree: a root with ``--calls`` grpc_executor children (message types by
server reflection, looked up once per loop and target). The direct side makes the same calls
with ``grpc.aio`` and the same concurrency. The server is the demo service of the executor's
tests (``packages/executor-grpc/tests/conftest.py``), in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from _fanout import load_module, time_fanout


def _demo() -> Any:
    return load_module("packages/executor-grpc/tests/conftest.py", "grpc_demo_server")


async def _engine(target: str, calls: int, concurrency: int) -> float:
    return await time_fanout(
        "grpc_executor",
        lambda i: {"target": target, "method": "demo.Echo/Say", "request": {"text": str(i)}},
        calls,
        concurrency,
    )


async def _direct(demo: Any, target: str, calls: int, concurrency: int) -> float:
    import grpc
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    pool.Add(demo.demo_file())
    request = message_factory.GetMessageClass(pool.FindMessageTypeByName("demo.EchoRequest"))
    reply = message_factory.GetMessageClass(pool.FindMessageTypeByName("demo.EchoReply"))
    gate = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(target) as channel:
        say = channel.unary_unary(
            "/demo.Echo/Say",
            request_serializer=request.SerializeToString,
            response_deserializer=reply.FromString,
        )

        async def one(i: int) -> None:
            async with gate:
                await say(request(text=str(i)), timeout=30)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return time.perf_counter() - started


async def main(calls: int, concurrency: int, runs: int) -> None:
    os.environ["AIPARTNERUPFLOW_GRPC_ALLOW_PRIVATE"] = "true"
    from aipartnerupflow.core.settings import reload_settings

    reload_settings()
    demo = _demo()
    server, state = await demo._start()
    try:
        await _engine(state.target, 10, concurrency)  # warm-up: imports, reflection lookup
        await _direct(demo, state.target, 10, concurrency)
        engine = [await _engine(state.target, calls, concurrency) for _ in range(runs)]
        direct = [await _direct(demo, state.target, calls, concurrency) for _ in range(runs)]
    finally:
        await server.stop(0)
    e, d = statistics.median(engine), statistics.median(direct)
    print(f"{calls} unary gRPC calls, concurrency {concurrency}, median of {runs}:")
    print(f"  grpc_executor through the engine: {e:.3f} s ({calls / e:,.0f} calls/s)")
    print(f"  grpc.aio directly:                {d:.3f} s ({calls / d:,.0f} calls/s)")
    print(f"  ratio engine / direct:            {e / d:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.concurrency, args.runs))
