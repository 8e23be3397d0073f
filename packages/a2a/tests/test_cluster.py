"""Two real server processes on one PostgreSQL database (``AIPARTNERUPFLOW_A2A_CLUSTER``),
driven by the official a2a-sdk client: a task started through replica A is read, streamed
(no gap, no duplicate) and cancelled through replica B; a killed replica's tree is taken over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from a2a.client import Client, ClientConfig, create_client
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a_helpers import send_request
from google.protobuf.json_format import MessageToDict
from test_postgres import POSTGRES_URL

pytestmark = pytest.mark.postgres

#: Executors of the replicas: a task that waits for a file (so a test decides when it ends,
#: from another process) and records which process ran it.
PLUGIN = textwrap.dedent(
    """
    import asyncio
    import os
    from pathlib import Path
    from typing import Any

    from aipartnerupflow import BaseTask, executor_register


    @executor_register(override=True)
    class WaitForFile(BaseTask):
        id = "cluster_wait"
        description = "Waits until inputs['gate'] exists."

        async def execute(self, inputs: dict[str, Any]) -> Any:
            Path(inputs["gate"] + f".started.{os.getpid()}").write_text("")
            self.report_progress(0.5, "waiting")
            while not Path(inputs["gate"]).exists():
                await asyncio.sleep(0.05)
            return {"pid": os.getpid(), "gate": inputs["gate"]}
    """
)


@dataclass
class Replica:
    port: int
    proc: asyncio.subprocess.Process
    clients: list[Client] = field(default_factory=list)
    https: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def client(self, *, streaming: bool = True) -> Client:
        http = httpx.AsyncClient(timeout=60)
        self.https.append(http)
        client = await create_client(
            self.url, client_config=ClientConfig(httpx_client=http, streaming=streaming)
        )
        self.clients.append(client)
        return client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def replicas(tmp_path: Path, schema: str) -> AsyncIterator[Callable[[], Awaitable[Replica]]]:
    """Start replicas on demand (each a ``python -m aipartnerupflow.api.main`` process on the
    test's schema); all are stopped afterwards."""
    plugin = tmp_path / "cluster_plugin.py"
    plugin.write_text(PLUGIN)
    started: list[Replica] = []
    env = {
        **os.environ,
        "PGOPTIONS": f"-csearch_path={schema}",  # every connection, workers' included
        "AIPARTNERUPFLOW_A2A_CLUSTER": "true",
        "AIPARTNERUPFLOW_LEASE_SECONDS": "1.5",
        "AIPARTNERUPFLOW_RESUME_INTERRUPTED": "false",
    }

    async def start() -> Replica:
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aipartnerupflow.api.main", "--port", str(port),
            "--database-url", POSTGRES_URL, "--plugin", str(plugin), "--log-level", "warning",
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        replica = Replica(port, proc)
        started.append(replica)
        async with httpx.AsyncClient(base_url=replica.url) as http:
            for _ in range(1200):
                with contextlib.suppress(httpx.ConnectError):
                    if (await http.get("/system/health")).status_code == 200:
                        return replica
                if proc.returncode is not None:
                    err = await proc.stderr.read() if proc.stderr else b""
                    raise AssertionError(f"the replica exited: {err.decode()}")
                await asyncio.sleep(0.05)
        raise AssertionError("the replica never answered")

    try:
        yield start
    finally:
        for replica in started:
            for client in replica.clients:
                with contextlib.suppress(Exception):
                    await client.close()
            for http in replica.https:
                await http.aclose()
            if replica.proc.returncode is None:
                replica.proc.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(replica.proc.communicate(), 60)


def gated_tree(prefix: str, gate: Path, *, max_attempts: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}root",
            "name": "root",
            "schemas": {"method": "cluster_wait"},
            "inputs": {"gate": str(gate)},
            "retry": {"max_attempts": max_attempts},
        },
        {
            "id": f"{prefix}after",
            "name": "after",
            "parent_id": f"{prefix}root",
            "dependencies": [f"{prefix}root"],
            "schemas": {"method": "cluster_wait"},
            "inputs": {"gate": str(gate)},
        },
    ]


async def _started_task(replica: Replica, tasks: list[dict[str, Any]]) -> Task:
    client = await replica.client(streaming=False)
    events = [e async for e in client.send_message(send_request(tasks, return_immediately=True))]
    assert events[0].HasField("task"), events
    return events[0].task


async def _until(predicate: Callable[[], Awaitable[bool]], attempts: int = 1200) -> None:
    for _ in range(attempts):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never became true")


def _plain(event: StreamResponse) -> dict[str, Any]:
    plain: dict[str, Any] = MessageToDict(event)
    return plain


async def test_a_task_started_on_a_is_read_streamed_and_cancelled_through_b(
    tmp_path: Path, postgres_schema: str
) -> None:
    async with replicas(tmp_path, postgres_schema) as start:
        a, b = await start(), await start()
        client_a, client_b = await a.client(), await b.client()

        # -- read and stream through B what A started ------------------------------------
        gate = tmp_path / "gate-1"
        task = await _started_task(a, gated_tree("s-", gate))
        on_a = asyncio.create_task(_collect(client_a.subscribe(SubscribeToTaskRequest(id=task.id))))

        async def working_on_b() -> bool:
            got = await client_b.get_task(GetTaskRequest(id=task.id))
            return got.status.state == TaskState.TASK_STATE_WORKING

        await _until(working_on_b)
        on_b = asyncio.create_task(_collect(client_b.subscribe(SubscribeToTaskRequest(id=task.id))))
        await _until(lambda: _has_started(tmp_path, "gate-1"))
        await asyncio.sleep(0.5)  # B's stream is attached and tailing (no ordering relied on)
        gate.write_text("open")
        seen_a, seen_b = await asyncio.wait_for(asyncio.gather(on_a, on_b), 120)
        assert seen_b[0].HasField("task")  # the snapshot first
        snapshot = seen_b[0].task
        tail_b = [_plain(e) for e in seen_b[1:]]
        log_a = [_plain(e) for e in seen_a if not e.HasField("task")]
        assert tail_b, "B streamed nothing after its snapshot"
        assert log_a[-len(tail_b) :] == tail_b  # exactly the events after the snapshot
        assert len(tail_b) == len({str(e) for e in tail_b})  # no duplicate
        assert seen_b[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        streamed = {
            e.artifact_update.artifact.artifact_id
            for e in seen_b[1:]
            if e.HasField("artifact_update")
        }
        in_snapshot = {art.artifact_id for art in snapshot.artifacts}
        assert not streamed & in_snapshot
        assert streamed | in_snapshot == {"s-root", "s-after"}  # nothing missing
        final = await client_b.get_task(GetTaskRequest(id=task.id))
        assert final.status.state == TaskState.TASK_STATE_COMPLETED
        assert {art.artifact_id for art in final.artifacts} == {"s-root", "s-after"}

        # -- cancel through B what A started -----------------------------------------------
        never = tmp_path / "gate-never"
        doomed = await _started_task(a, gated_tree("c-", never))
        await _until(lambda: _has_started(tmp_path, "gate-never"))
        cancelled = await client_b.cancel_task(CancelTaskRequest(id=doomed.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED

        async def cancelled_on_a() -> bool:
            got = await client_a.get_task(GetTaskRequest(id=doomed.id))
            return got.status.state == TaskState.TASK_STATE_CANCELED

        await _until(cancelled_on_a)
        tree = await _tree(b, "c-root")
        assert {t["id"]: t["status"] for t in tree} == {
            "c-root": "cancelled",
            "c-after": "cancelled",
        }


async def test_a_killed_replicas_tree_is_taken_over(tmp_path: Path, postgres_schema: str) -> None:
    async with replicas(tmp_path, postgres_schema) as start:
        a = await start()
        gate = tmp_path / "gate-k"
        task = await _started_task(a, gated_tree("k-", gate, max_attempts=2))
        await _until(lambda: _has_started(tmp_path, "gate-k"))
        assert _runners(tmp_path, "gate-k") == {a.proc.pid}
        b = await start()  # started after A claimed the tree: only A could be running it
        client_b = await b.client()
        a.proc.send_signal(signal.SIGKILL)
        await a.proc.wait()

        stream = asyncio.create_task(
            _collect(client_b.subscribe(SubscribeToTaskRequest(id=task.id)))
        )
        # B's worker reclaims the expired lease and runs the task again (attempt 2 of 2)
        await _until(lambda: _runs_on(tmp_path, "gate-k", b.proc.pid), attempts=2400)
        gate.write_text("open")
        seen = await asyncio.wait_for(stream, 120)
        assert seen[0].HasField("task")
        assert seen[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        final = await client_b.get_task(GetTaskRequest(id=task.id))
        assert final.status.state == TaskState.TASK_STATE_COMPLETED
        assert {art.artifact_id for art in final.artifacts} == {"k-root", "k-after"}
        results = {art.artifact_id: MessageToDict(art.parts[0].data) for art in final.artifacts}
        assert results["k-root"]["pid"] == b.proc.pid  # the taken-over run's result


async def _collect(stream: Any) -> list[StreamResponse]:
    return [event async for event in stream]


def _runners(directory: Path, gate: str) -> set[int]:
    return {int(p.name.rsplit(".", 1)[1]) for p in directory.glob(f"{gate}.started.*")}


async def _has_started(directory: Path, gate: str) -> bool:
    return bool(_runners(directory, gate))


async def _runs_on(directory: Path, gate: str, pid: int | None) -> bool:
    return pid in _runners(directory, gate)


async def _tree(replica: Replica, root_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=replica.url, timeout=60) as http:
        body = (
            await http.post(
                "/tasks",
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tasks.tree",
                    "params": {"task_id": root_id},
                },
            )
        ).json()
    assert "result" in body, body
    nodes: list[dict[str, Any]] = []
    stack = [body["result"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("children", []))
    return nodes


async def test_versioned_store_compares_and_logs(postgres_schema: str) -> None:
    """The store's rules, on the real tables: a stale version, a second first write and a
    cancel of an ended task are refused; the log replays exactly what follows a version."""
    from a2a.server.cluster import ConcurrentTaskModificationError, TaskVersion
    from a2a.server.context import ServerCallContext
    from a2a.types import TaskStatus, TaskStatusUpdateEvent

    from aipartnerupflow.api.cluster import ClusterEventStream, ClusterTaskStore
    from aipartnerupflow.api.store import SqlTaskStore
    from aipartnerupflow.core.storage import create_session

    storage = create_session(
        POSTGRES_URL, connect_args={"options": f"-csearch_path={postgres_schema}"}
    )
    store = ClusterTaskStore(SqlTaskStore(storage))
    ctx = ServerCallContext()

    def at(state: TaskState) -> tuple[Task, TaskStatusUpdateEvent]:
        task = Task(id="t1", context_id="c1", status=TaskStatus(state=state))
        return task, TaskStatusUpdateEvent(task_id="t1", context_id="c1", status=task.status)

    try:
        await storage.initialize()
        first, _ = at(TaskState.TASK_STATE_SUBMITTED)
        v1 = await store.save(
            first, event=first, prev=None, prev_version=TaskVersion.MISSING, context=ctx
        )
        with pytest.raises(ConcurrentTaskModificationError):
            await store.save(
                first, event=first, prev=None, prev_version=TaskVersion.MISSING, context=ctx
            )
        working, event2 = at(TaskState.TASK_STATE_WORKING)
        v2 = await store.save(working, event=event2, prev=first, prev_version=v1, context=ctx)
        with pytest.raises(ConcurrentTaskModificationError):  # v1 is stale now
            await store.save(working, event=event2, prev=first, prev_version=v1, context=ctx)
        done, event3 = at(TaskState.TASK_STATE_COMPLETED)
        v3 = await store.save(done, event=event3, prev=working, prev_version=v2, context=ctx)
        cancel, event4 = at(TaskState.TASK_STATE_CANCELED)
        with pytest.raises(ConcurrentTaskModificationError):  # an ended task is not cancelled
            await store.save(cancel, event=event4, prev=done, prev_version=v3, context=ctx)
        stored = await store.get("t1", ctx)
        assert stored is not None and stored.version == v3
        assert stored.task.status.state == TaskState.TASK_STATE_COMPLETED

        stream = ClusterEventStream(store, poll_seconds=0.05)
        replayed = []
        async for item in stream.subscribe("t1", after=v1):
            replayed.append(item)
            if len(replayed) == 2:
                break
        assert [r.version for r in replayed] == [v2, v3]
        assert [r.event.status.state for r in replayed] == [  # type: ignore[union-attr]
            TaskState.TASK_STATE_WORKING,
            TaskState.TASK_STATE_COMPLETED,
        ]
        await store.delete("t1", ctx)
        assert await store.get("t1", ctx) is None
        count = await storage.run_sql(
            lambda c: c.execute(sa.text("SELECT count(*) FROM apflow_a2a_events")).scalar_one()
        )
        assert count == 0
    finally:
        await storage.close()
