"""A2A ``GetTask`` requests/s: our server beside a bare a2a-sdk server, in one run.

    python benchmarks/peers/a2a_get_task.py [--seconds 5] [--reps 3]

Both servers run at once, each in its own uvicorn process on loopback; the client measures
them in turn, alternating which goes first, the way ``benchmarks/a2a_server.py`` does: one
``SendMessage`` (a 3-task tree, built by that module) makes a finished task, then 8 concurrent
JSON-RPC ``GetTask`` calls for it over one httpx client for ``--seconds``.

Ours: ``python -m aipartnerupflow.api.main`` on a DuckDB file, as that benchmark runs it.
Bare: a2a-sdk's ``DefaultRequestHandler`` with ``InMemoryTaskStore`` and an agent executor
that completes every task at once, served by the SDK's JSON-RPC routes (``--serve-bare PORT``
runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts benchmarks/ on sys.path)
import httpx
from a2a_server import _free_port, _rpc, _send, _tree

HERE = Path(__file__).resolve()


def serve_bare(port: int) -> None:
    """The bare a2a-sdk server: in-memory store, an executor that completes at once."""
    import uvicorn
    from a2a.helpers import new_task_from_user_message
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
    from starlette.applications import Starlette

    class DoneAtOnce(AgentExecutor):
        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            task = context.current_task
            if task is None:
                assert context.message is not None
                task = new_task_from_user_message(context.message)
                await event_queue.enqueue_event(task)
            await TaskUpdater(event_queue, task.id, task.context_id).complete()

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            assert context.task_id is not None
            assert context.context_id is not None
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()

    card = AgentCard(
        name="bare",
        description="bare a2a-sdk server (benchmark)",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(
                protocol_binding="JSONRPC", protocol_version="1.0", url=f"http://127.0.0.1:{port}/"
            )
        ],
        default_input_modes=["application/json"],
        default_output_modes=["application/json"],
        capabilities=AgentCapabilities(streaming=True),
        skills=[AgentSkill(id="run", name="run", description="completes", tags=["bench"])],
    )
    handler = DefaultRequestHandler(
        agent_executor=DoneAtOnce(), task_store=InMemoryTaskStore(), agent_card=card
    )
    app = Starlette(
        routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def _ready(base: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        for _ in range(1200):
            try:
                await http.get(path)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise SystemExit(f"server at {base} did not start")


async def get_task_rps(http: httpx.AsyncClient, task_id: str, seconds: float) -> float:
    """``GetTask`` calls per second for one task, 8 at a time."""
    done = 0
    start = time.perf_counter()
    stop = start + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await _rpc(http, "GetTask", {"id": task_id})
            done += 1

    await asyncio.gather(*(caller() for _ in range(8)))
    return done / (time.perf_counter() - start)


async def compare(seconds: float, reps: int) -> dict[str, Any]:
    """Both servers' ``GetTask`` requests/s, ``reps`` samples each, and their medians."""
    with tempfile.TemporaryDirectory(prefix="a2a-peer-") as tmp:
        return await _compare(Path(tmp) / "bench.duckdb", seconds, reps)


async def _compare(db: Path, seconds: float, reps: int) -> dict[str, Any]:
    ours_port, bare_port = _free_port(), _free_port()
    env = {**os.environ, "AIPARTNERUPFLOW_DATABASE_URL": f"duckdb:///{db}"}
    ours = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aipartnerupflow.api.main",
        "--port",
        str(ours_port),
        "--log-level",
        "warning",
        env=env,
    )
    bare = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE), "--serve-bare", str(bare_port)
    )
    bases = {"ours": f"http://127.0.0.1:{ours_port}", "bare": f"http://127.0.0.1:{bare_port}"}
    samples: dict[str, list[float]] = {"ours": [], "bare": []}
    try:
        await _ready(bases["ours"], "/system/health")
        await _ready(bases["bare"], "/.well-known/agent-card.json")
        task_ids = {}
        for side, base in bases.items():
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                sent = await _rpc(http, "SendMessage", _send(_tree(3, "get"), "g"))
                task_ids[side] = sent["result"]["task"]["id"]
        for rep in range(reps):
            order = ["ours", "bare"] if rep % 2 == 0 else ["bare", "ours"]
            for side in order:
                async with httpx.AsyncClient(base_url=bases[side], timeout=60) as http:
                    rps = await get_task_rps(http, task_ids[side], seconds)
                    samples[side].append(round(rps, 1))
    finally:
        for proc in (ours, bare):
            proc.terminate()
            await proc.wait()
    ours_rps, bare_rps = statistics.median(samples["ours"]), statistics.median(samples["bare"])
    return {"samples": samples, "ours_rps": ours_rps, "bare_rps": bare_rps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    print(json.dumps(asyncio.run(compare(args.seconds, args.reps))), flush=True)


if __name__ == "__main__":
    main()
