"""websocket_executor: N one-message round trips through the engine vs. directly with websockets.

One run, one loopback echo server (websockets, in the same process), three measurements:

* ``direct, sequential``: N times connect, send one message, receive the echo, close;
* ``direct, concurrent``: the same with at most the engine's default concurrency (64) at once;
* ``engine``: one tree of N ``websocket_executor`` tasks (creation plus execution, on a fresh
  DuckDB file), each doing the same round trip.

The difference between the last two is what the engine (validation, policy check, pinned
connection, scrubbing, durable state) costs per round trip.

    python benchmarks/websocket_executor.py [--n 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _round_trip(url: str) -> None:
    async with connect(url, proxy=None) as ws:
        await ws.send('{"ping": 1}')
        await ws.recv()


async def _direct_sequential(url: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await _round_trip(url)
    return time.perf_counter() - start


async def _direct_concurrent(url: str, n: int, limit: int) -> float:
    gate = asyncio.Semaphore(limit)

    async def one() -> None:
        async with gate:
            await _round_trip(url)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - start


async def _engine(url: str, n: int, db: Path) -> float:
    from aipartnerupflow import TaskManager, create_session

    def tree(prefix: str, size: int) -> list[dict[str, Any]]:
        method = {"method": "websocket_executor"}
        inputs = {"url": url, "message": {"ping": 1}}
        root: dict[str, Any] = {
            "id": f"{prefix}root",
            "name": "root",
            "schemas": method,
            "inputs": inputs,
        }
        children: list[dict[str, Any]] = [
            {
                "id": f"{prefix}{i}",
                "name": f"t{i}",
                "parent_id": f"{prefix}root",
                "schemas": method,
                "inputs": inputs,
            }
            for i in range(size - 1)
        ]
        return [root, *children]

    async with TaskManager(create_session(f"duckdb:///{db}")) as manager:
        warm = await manager.run_tasks(tree("warm-", 2))
        assert warm.ok, warm
        start = time.perf_counter()
        result = await manager.run_tasks(tree("run-", n))
        elapsed = time.perf_counter() - start
        failed = [t for t in result.tasks if t.status != "completed"]
        assert not failed, failed[:3]
    return elapsed


async def main(n: int) -> None:
    os.environ.setdefault("AIPARTNERUPFLOW_WEBSOCKET_ALLOW_PRIVATE", "true")  # loopback target
    async with serve(_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/echo"
        await _round_trip(url)  # warm-up
        rows = [
            ("direct, sequential", await _direct_sequential(url, n)),
            ("direct, concurrent (64)", await _direct_concurrent(url, n, 64)),
        ]
        with tempfile.TemporaryDirectory() as folder:
            rows.append(("engine (64)", await _engine(url, n, Path(folder) / "bench.duckdb")))
    print(f"{n} one-message round trips to a loopback echo server")
    print(f"{'mode':<26}{'total':>10}{'per trip':>12}{'trips/s':>10}")
    for name, seconds in rows:
        print(f"{name:<26}{seconds:>9.3f}s{seconds / n * 1000:>10.2f}ms{n / seconds:>10.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    asyncio.run(main(parser.parse_args().n))
