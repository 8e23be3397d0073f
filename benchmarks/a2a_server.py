"""A2A server benchmarks, against a real server process on loopback (DuckDB file).

    python benchmarks/a2a_server.py [--seconds 10] [--stream-seconds 30]

* ``get_task``: requests per second of JSON-RPC ``GetTask`` (8 concurrent connections);
* ``send_10``: end-to-end latency of a blocking ``SendMessage`` running a 10-task no-op tree;
* ``stream_50``: 50 concurrent clients sending streaming messages in a loop for
  ``--stream-seconds``; reports errors and the server's RSS at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

V1 = {"A2A-Version": "1.0"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(n: int, tag: str) -> list[dict[str, Any]]:
    """A grouping root and n-1 children running the built-in aggregate executor (which, with
    no dependencies, returns at once): a near no-op tree. Leaves need an executor."""
    tasks: list[dict[str, Any]] = [{"id": f"{tag}-0", "name": f"noop {tag} 0"}]
    tasks += [
        {
            "id": f"{tag}-{i}",
            "name": f"noop {tag} {i}",
            "parent_id": f"{tag}-0",
            "schemas": {"method": "aggregate_results_executor"},
        }
        for i in range(1, n)
    ]
    return tasks


def _send(tasks: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
    return {
        "message": {
            "role": "ROLE_USER",
            "messageId": message_id,
            "parts": [{"data": {"tasks": tasks}}],
        }
    }


async def _rpc(http: httpx.AsyncClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(
        "/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, headers=V1
    )
    body: dict[str, Any] = response.json()
    if "error" in body:
        raise RuntimeError(body["error"])
    return body


async def bench_get_task(http: httpx.AsyncClient, seconds: float) -> dict[str, Any]:
    task = (await _rpc(http, "SendMessage", _send(_tree(3, "get"), "g")))["result"]["task"]
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await _rpc(http, "GetTask", {"id": task["id"]})
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(8)))
    elapsed = time.perf_counter() - start
    return {"requests": done, "rps": round(done / elapsed, 1)}


async def bench_send(http: httpx.AsyncClient, runs: int) -> dict[str, Any]:
    latencies = []
    for i in range(runs):
        start = time.perf_counter()
        body = await _rpc(http, "SendMessage", _send(_tree(10, f"s{i}"), f"s{i}"))
        latencies.append(time.perf_counter() - start)
        assert body["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    latencies.sort()
    return {
        "runs": runs,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
    }


async def bench_streams(base: str, seconds: float, server: psutil.Process) -> dict[str, Any]:
    rss_start = server.memory_info().rss
    errors = 0
    streams = 0
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors, streams
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            i = 0
            while time.perf_counter() < stop:
                i += 1
                payload = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "SendStreamingMessage",
                    "params": _send(_tree(3, f"c{n}-{i}"), f"c{n}-{i}"),
                }
                try:
                    async with http.stream("POST", "/", json=payload, headers=V1) as response:
                        last = None
                        async for line in response.aiter_lines():
                            if line.startswith("data:"):
                                last = json.loads(line[5:])
                    state = (
                        (last or {})
                        .get("result", {})
                        .get("statusUpdate", {})
                        .get("status", {})
                        .get("state")
                    )
                    if state != "TASK_STATE_COMPLETED":
                        errors += 1
                    streams += 1
                except httpx.HTTPError:
                    errors += 1

    await asyncio.gather(*(client(n) for n in range(50)))
    rss_end = server.memory_info().rss
    return {
        "clients": 50,
        "streams": streams,
        "errors": errors,
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--send-runs", type=int, default=50)
    parser.add_argument("--stream-seconds", type=float, default=30.0)
    args = parser.parse_args()
    port = _free_port()
    db = Path(tempfile.mkdtemp()) / "bench.duckdb"
    env = {**os.environ, "AIPARTNERUPFLOW_DATABASE_URL": f"duckdb:///{db}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aipartnerupflow.api.main",
        "--port",
        str(port),
        "--log-level",
        "warning",
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for _ in range(600):
                try:
                    await http.get("/system/health")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            results = {
                "get_task": await bench_get_task(http, args.seconds),
                "send_10": await bench_send(http, args.send_runs),
                "stream_50": await bench_streams(
                    base, args.stream_seconds, psutil.Process(proc.pid)
                ),
            }
        print(json.dumps(results, indent=2))
    finally:
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
