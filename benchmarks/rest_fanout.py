"""``rest_executor`` fan-out against a local server, beside the same requests made with httpx.

    python benchmarks/rest_fanout.py [--tasks 1000] [--concurrency 64] [--runs 3]

A uvicorn server in its own process on 127.0.0.1 answers ``GET /item/{n}`` with a small JSON
body. In one run, the same ``--tasks`` requests are made each way, at the same concurrency:

* ``engine``: a root grouping task and ``--tasks`` ``rest_executor`` children run by a
  ``TaskManager`` (``max_concurrency=--concurrency``) on a fresh DuckDB file: creation,
  execution, results stored and durable when it returns;
* ``httpx``: one ``httpx.AsyncClient`` (the same connection limits as the executor's pool) and
  an ``asyncio.Semaphore(--concurrency)``, results kept in memory;
* ``bare`` (for reference): the engine tree of ``engine`` with a five-line executor doing a bare
  ``client.get`` on that client instead of ``rest_executor``, so ``engine`` - ``bare`` is what
  ``rest_executor`` itself (policy, pinned transport, secrets, limits) costs.

Both are warmed up first (imports, connection pool), and their runs interleave in one event
loop, so a change in the machine's load hits both. Prints the best and median wall time of
``--runs`` runs of each, the median CPU time of the client process (less sensitive than wall
time to other load on the machine), and the ratios engine / httpx of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

BODY = b'{"ok": true, "item": 0, "tags": ["a", "b", "c"]}'


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal ASGI app: every GET gets a small JSON body."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def _serve(port: int) -> None:
    import uvicorn

    uvicorn.run(_app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the benchmark server exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/item/0", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit("the benchmark server did not start within 30 s")


def _tree(base: str, n: int, tag: str, method: str = "rest_executor") -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = [{"id": f"{tag}-root", "name": "root"}]
    tasks += [
        {
            "id": f"{tag}-{i}",
            "name": f"get {i}",
            "parent_id": f"{tag}-root",
            "schemas": {"method": method},
            "inputs": {"url": f"{base}/item/{i}"},
        }
        for i in range(n)
    ]
    return tasks


Times = dict[str, list[tuple[float, float]]]


async def _bench(base: str, n: int, concurrency: int, runs: int, folder: Path) -> Times:
    """Runs of each kind, interleaved (order rotating), so load changes hit all alike."""
    from aipartnerupflow import TaskManager, create_session
    from aipartnerupflow.core.executor import ExecutableTask
    from aipartnerupflow.core.executors import aclose_loop_resources
    from aipartnerupflow.core.registry import get_executor_registry
    from aipartnerupflow.extensions.http._client import LIMITS

    # the executor's pool limits, for a like-for-like client
    client = httpx.AsyncClient(limits=LIMITS, trust_env=False, timeout=30)

    class BareGet(ExecutableTask):
        """The engine with a bare httpx GET as executor: what the engine alone costs."""

        id = "bench_bare_get"
        name = "bare GET"
        description = "GET inputs.url with a shared httpx client."

        async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
            response = await client.get(inputs["url"])
            response.raise_for_status()
            return {"status_code": response.status_code, "body": response.json()}

    get_executor_registry().register(BareGet, override=True)
    manager = TaskManager(
        create_session(f"duckdb:///{folder / 'bench.duckdb'}"), max_concurrency=concurrency
    )
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> dict[str, Any]:
        async with semaphore:
            response = await client.get(f"{base}/item/{i}")
            response.raise_for_status()
            return {"status_code": response.status_code, "body": response.json()}

    async def engine(tag: str, count: int, method: str) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        result = await manager.run_tasks(_tree(base, count, tag, method))
        elapsed = (time.perf_counter() - start, time.process_time() - cpu)
        if result.status != "completed":
            raise SystemExit(f"engine run {tag} failed: {result.status}")
        return elapsed

    async def plain(tag: str, count: int) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        results = await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = (time.perf_counter() - start, time.process_time() - cpu)
        assert len(results) == count
        return elapsed

    kinds: dict[str, Callable[[str, int], Awaitable[tuple[float, float]]]] = {
        "engine": lambda tag, count: engine(tag, count, "rest_executor"),
        "httpx": plain,
        "bare": lambda tag, count: engine(tag, count, "bench_bare_get"),
    }
    times: Times = {name: [] for name in kinds}
    names = list(kinds)
    try:
        for name in names:
            await kinds[name](f"warm-{name}", 50)
        for run in range(runs):
            for name in names[run % 3 :] + names[: run % 3]:
                times[name].append(await kinds[name](f"r{run}-{name}", n))
    finally:
        await client.aclose()
        await manager.close()
        await aclose_loop_resources()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return

    os.environ["AIPARTNERUPFLOW_HTTP_ALLOW_PRIVATE"] = "true"  # the server is on loopback
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        _wait_ready(port, server)
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as folder:
            times = asyncio.run(_bench(base, args.tasks, args.concurrency, args.runs, Path(folder)))
    finally:
        server.terminate()
        server.wait(10)

    n = args.tasks
    print(f"rest fan-out: {n} GETs, concurrency {args.concurrency}, {args.runs} runs each")
    print(f"{'':8} {'best':>9} {'median':>9} {'requests/s':>11} {'client CPU (median)':>20}")
    medians: dict[str, tuple[float, float]] = {}
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        medians[name] = (wall, cpu)
        best = min(w for w, _ in runs)
        print(f"{name:8} {best:8.3f}s {wall:8.3f}s {n / wall:11,.0f} {cpu:19.3f}s")
    for name in ("engine", "bare"):
        wall_ratio = medians[name][0] / medians["httpx"][0]
        cpu_ratio = medians[name][1] / medians["httpx"][1]
        print(f"ratio {name} / httpx (medians): wall {wall_ratio:.2f}, client CPU {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
