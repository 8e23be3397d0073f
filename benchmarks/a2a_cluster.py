"""A2A server on PostgreSQL: one process vs two cluster replicas (``AIPARTNERUPFLOW_A2A_CLUSTER``).

    python benchmarks/a2a_cluster.py [--runs 20] [--url postgresql://postgres@127.0.0.1:5432/postgres]

Each setup gets a fresh schema (dropped afterwards) and real server processes on loopback:

* ``send_10``: end-to-end latency of a blocking ``SendMessage`` running a 10-task no-op tree
  (single process: the tree runs in-process; cluster: on the replicas' queue workers);
* ``get_task_via_other``: latency of ``GetTask`` through the replica that did not take the
  message (cluster only; the single process answers from its own tables the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(__file__))
from a2a_server import V1, _send, _tree


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start(url: str, schema: str, cluster: bool) -> tuple[asyncio.subprocess.Process, str]:
    port = _free_port()
    env = {
        **os.environ,
        "PGOPTIONS": f"-csearch_path={schema}",
        "AIPARTNERUPFLOW_A2A_CLUSTER": "true" if cluster else "false",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aipartnerupflow.api.main", "--port", str(port),
        "--database-url", url, "--log-level", "warning", env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(1200):
            try:
                if (await http.get("/system/health")).status_code == 200:
                    return proc, base
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the server never answered")


async def _measure(bases: list[str], runs: int) -> dict[str, Any]:
    send, get = [], []
    async with (
        httpx.AsyncClient(base_url=bases[0], timeout=120, headers=V1) as first,
        httpx.AsyncClient(base_url=bases[-1], timeout=120, headers=V1) as other,
    ):
        for i in range(runs + 2):  # two warm-up runs
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage"}
            body["params"] = _send(_tree(10, f"b{i}-{uuid.uuid4().hex[:6]}"), f"m{i}")
            started = time.perf_counter()
            answer = (await first.post("/", json=body)).json()
            sent = time.perf_counter() - started
            task = answer["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED", answer
            started = time.perf_counter()
            got = (
                await other.post(
                    "/",
                    json={
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "GetTask",
                        "params": {"id": task["id"]},
                    },
                )
            ).json()
            fetched = time.perf_counter() - started
            assert got["result"]["status"]["state"] == "TASK_STATE_COMPLETED", got
            if i >= 2:
                send.append(sent)
                get.append(fetched)
    return {
        "send_10_median_ms": round(statistics.median(send) * 1000, 1),
        "send_10_p90_ms": round(sorted(send)[int(len(send) * 0.9) - 1] * 1000, 1),
        "get_task_via_other_median_ms": round(statistics.median(get) * 1000, 1),
    }


async def run_setup(url: str, cluster: bool, runs: int) -> dict[str, Any]:
    schema = f"apflow_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    procs: list[asyncio.subprocess.Process] = []
    try:
        bases = []
        for _ in range(2 if cluster else 1):
            proc, base = await _start(url, schema, cluster)
            procs.append(proc)
            bases.append(base)
        return await _measure(bases, runs)
    finally:
        for proc in procs:
            proc.terminate()
            await proc.wait()
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    results = {
        "single_process": await run_setup(args.url, False, args.runs),
        "two_replicas_cluster": await run_setup(args.url, True, args.runs),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
