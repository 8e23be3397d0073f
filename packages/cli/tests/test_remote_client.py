"""The CLI's client of the daemon's API, in-process against a scripted stand-in server.

The DuckDB file is really held by another process, so commands take the daemon path for
real; the stand-in answers ``/system/health`` and ``/tasks`` (JSON and server-sent events).
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from apflow_cli_testkit import Env

from aipartnerupflow.cli._display import Display
from aipartnerupflow.cli._remote import Remote, RemoteError, sse_data

Answer = Callable[[dict[str, Any]], Any]


@dataclass
class Sse:
    """A server-sent-event answer: raw lines, written as they are."""

    lines: list[str]


@dataclass
class FakeDaemon:
    """Answers JSON-RPC methods from ``methods``; records every call."""

    url: str = ""
    health: dict[str, Any] = field(default_factory=lambda: {"status": "healthy"})
    methods: dict[str, Answer] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def frames(*results: Any, error: dict[str, Any] | None = None) -> Sse:
    """SSE lines like sse-starlette's: CRLF endings, a ping comment first."""
    lines = [": ping - 2026-01-01 00:00:00\r\n", "\r\n"]
    for result in results:
        lines += [f"data: {json.dumps({'jsonrpc': '2.0', 'id': 1, 'result': result})}\r\n", "\r\n"]
    if error is not None:
        lines += [f"data: {json.dumps({'jsonrpc': '2.0', 'id': 1, 'error': error})}\r\n", "\r\n"]
    return Sse(lines)


@pytest.fixture
def fake_daemon(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDaemon]:
    """The stand-in server, registered as the daemon of the sandbox's (locked) database."""
    daemon = FakeDaemon()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(json.dumps(daemon.health).encode(), "application/json")

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            daemon.calls.append((request["method"], request["params"]))
            answer = daemon.methods[request["method"]](request["params"])
            if isinstance(answer, Sse):
                self._send("".join(answer.lines).encode(), "text/event-stream; charset=utf-8")
            else:
                self._send(
                    json.dumps({"jsonrpc": "2.0", "id": request["id"], **answer}).encode(),
                    "application/json",
                )

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    daemon.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr("aipartnerupflow.cli._remote.server_for", lambda state: Remote(daemon.url))
    holder = _hold(sandbox)
    try:
        yield daemon
    finally:
        holder.communicate(timeout=30)  # EOF on stdin: it lets go of the file
        server.shutdown()
        server.server_close()


def _hold(sandbox: Env) -> subprocess.Popen[str]:
    """Another process holding the DuckDB file (created first, at the current schema)."""
    import asyncio

    from aipartnerupflow.core.storage import create_session

    store = create_session(sandbox.db_url)

    async def init() -> None:
        await store.initialize()
        await store.close()

    asyncio.run(init())
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); sys.stdin.read()",
            str(sandbox.db_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def _task(
    task_id: str, name: str, status: str, parent: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": name,
        "status": status,
        "parent_id": parent,
        "root_id": None if parent is None else "r1",
        "progress": 0.0,
        **extra,
    }


def _event(
    kind: str, task_id: str, name: str, status: str, seq: int, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "root_id": "r1",
        "task_id": task_id,
        "name": name,
        "status": status,
        "seq": seq,
        "timestamp": 0.0,
        "progress": 0.0,
        "message": None,
        "result": None,
        "error": None,
        **extra,
    }


def _stored_tree(status: str) -> dict[str, Any]:
    result = {"n": 1} if status == "completed" else None
    return {
        **_task("r1", "Root", status, result=result),
        "children": [{**_task("k1", "Kid", status, "r1", result=result), "children": []}],
    }


def _run_script(daemon: FakeDaemon, tail: Sse | None = None) -> None:
    trees = [_stored_tree("pending"), _stored_tree("completed")]
    daemon.methods["tasks.tree"] = lambda p: {
        "result": trees.pop(0) if len(trees) > 1 else trees[0]
    }
    daemon.methods["tasks.get"] = lambda p: {"result": _task("r1", "Root", "pending")}
    daemon.methods["tasks.execute"] = lambda p: (
        tail
        or frames(
            {"root_task_id": "r1", "status": "started", "streaming": True},
            _event("tree_started", "r1", "Root", "in_progress", 1),
            _event("task_status", "k1", "Kid", "in_progress", 2),
            _event("task_progress", "k1", "Kid", "in_progress", 3, progress=0.5, message="half"),
            _event("task_status", "k1", "Kid", "completed", 4, result={"n": 1}),
            _event("task_status", "r1", "Root", "completed", 5, result={"n": 1}),
            _event("tree_finished", "r1", "Root", "completed", 6, progress=1.0),
        )
    )


TREE = json.dumps(
    [
        {"id": "r1", "name": "Root", "schemas": {"method": "m"}},
        {"id": "k1", "name": "Kid", "parent_id": "r1", "schemas": {"method": "m"}},
    ]
)


# -- the SSE reader ------------------------------------------------------------------------


def test_sse_data_joins_lines_and_skips_comments() -> None:
    lines = [
        ": ping\r\n",
        "\r\n",
        "event: x\n",
        'data: {"a":\n',
        "data:  1}\n",
        "\n",
        "id: 3\n",
        "data:last",
    ]
    assert list(sse_data(lines)) == ['{"a":\n 1}', "last"]


def test_stream_raises_json_rpc_errors(fake_daemon: FakeDaemon) -> None:
    server = Remote(fake_daemon.url)
    fake_daemon.methods["tasks.execute"] = lambda p: {
        "error": {"code": -32602, "message": "bad tree"}
    }
    with pytest.raises(RemoteError, match="bad tree") as early:
        next(server.stream("tasks.execute", {"tasks": []}))
    assert early.value.code == -32602
    fake_daemon.methods["tasks.execute"] = lambda p: frames(
        {"root_task_id": "r1", "status": "started"},
        error={"code": -32603, "message": "the run failed: kaput"},
    )
    stream = server.stream("tasks.execute", {"task_id": "r1"})
    assert next(stream)["root_task_id"] == "r1"
    with pytest.raises(RemoteError, match="kaput"):
        next(stream)
    assert fake_daemon.calls[-1] == ("tasks.execute", {"task_id": "r1", "use_streaming": True})


# -- run flow / tasks execute: the live view -----------------------------------------------


class Recorder(Display):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def start(self, tree: Any) -> None:
        self.seen.append(f"start {tree.task.id} {len(tree.tasks())}")

    def event(self, event: Any) -> None:
        self.seen.append(f"{event.kind} {event.task_id} {event.status} {event.progress}")

    def stop(self) -> None:
        self.seen.append("stop")


def test_follow_feeds_every_streamed_event_to_the_display(fake_daemon: FakeDaemon) -> None:
    from aipartnerupflow.cli._remote_run import follow_on_server

    _run_script(fake_daemon)
    recorder = Recorder()
    outcome = follow_on_server(Remote(fake_daemon.url), {"task_id": "r1"}, recorder, "r1")
    assert recorder.seen == [
        "start r1 2",
        "tree_started r1 in_progress 0.0",
        "task_status k1 in_progress 0.0",
        "task_progress k1 in_progress 0.5",
        "task_status k1 completed 0.0",
        "task_status r1 completed 0.0",
        "tree_finished r1 completed 1.0",
        "stop",
    ]
    assert outcome.result == {
        "root_id": "r1",
        "status": "completed",
        "tasks": [
            {"id": "r1", "name": "Root", "status": "completed", "result": {"n": 1}, "error": None},
            {"id": "k1", "name": "Kid", "status": "completed", "result": {"n": 1}, "error": None},
        ],
    }
    assert not outcome.interrupted


def test_run_flow_through_the_daemon_lines_and_json(
    cli: Callable[..., Any], fake_daemon: FakeDaemon
) -> None:
    _run_script(fake_daemon)
    result = cli("run", "flow", "--no-live", "--keep-ids", "--tasks", TREE)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "Running tree r1 (2 tasks)",
        "◐ Kid in_progress",
        "✔ Kid completed",
        "✔ Root completed",
        lines[4],
    ]
    assert "✔ Tree r1 completed (2 completed)" in result.stdout
    method, params = fake_daemon.calls[0]
    assert method == "tasks.execute" and params["use_streaming"] is True
    assert [t["id"] for t in params["tasks"]] == ["r1", "k1"]

    _run_script(fake_daemon)
    as_json = cli("run", "flow", "--json", "--keep-ids", "--tasks", TREE)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["tasks"][1]["result"] == {"n": 1}


def test_a_failed_run_on_the_daemon_is_one_clear_error(
    cli: Callable[..., Any], fake_daemon: FakeDaemon
) -> None:
    _run_script(
        fake_daemon,
        frames(
            {"root_task_id": "r1", "status": "started"},
            error={"code": -32603, "message": "the run failed: kaput"},
        ),
    )
    result = cli("tasks", "execute", "r1", "--no-live")
    assert result.exit_code == 2
    assert "the run failed: kaput" in result.stderr
    assert "Traceback" not in result.output


# -- resume and db upgrade -----------------------------------------------------------------


def test_resume_through_the_daemon_reports_each_tree(
    cli: Callable[..., Any], fake_daemon: FakeDaemon
) -> None:
    fake_daemon.methods["tasks.resume"] = lambda p: {
        "result": [
            {"root_id": "a", "status": "completed", "tasks": [{}, {}]},
            {"root_id": "b", "status": "failed", "tasks": [{}]},
        ]
    }
    result = cli("tasks", "resume")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["Tree a: completed (2 tasks)", "Tree b: failed (1 tasks)"]
    assert fake_daemon.calls == [("tasks.resume", {})]


def test_db_upgrade_trusts_a_daemon_at_this_revision(
    cli: Callable[..., Any], fake_daemon: FakeDaemon
) -> None:
    from aipartnerupflow.core.storage.schema import HEAD_REVISION

    fake_daemon.health["schema_revision"] = HEAD_REVISION
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"is up to date (schema revision {HEAD_REVISION})" in result.stdout
    assert f"daemon at {fake_daemon.url} holds it" in result.stdout


@pytest.mark.parametrize(
    ("revision", "said"), [("0001", "at schema revision 0001"), (None, "an older server")]
)
def test_db_upgrade_refuses_a_daemon_at_another_revision(
    cli: Callable[..., Any], fake_daemon: FakeDaemon, revision: str | None, said: str
) -> None:
    from aipartnerupflow.core.storage.schema import HEAD_REVISION

    if revision is not None:
        fake_daemon.health["schema_revision"] = revision
    result = cli("db", "upgrade", "--json")
    assert result.exit_code == 2
    assert said in result.stderr
    assert f"expects revision {HEAD_REVISION}" in result.stderr
    assert "apflow daemon restart" in result.stderr
    assert result.stdout == ""
