"""The real A2A daemon holding the DuckDB file: run, create, execute, watch, resume, db upgrade
go through its API (real ``apflow`` processes, the daemon really started and stopped)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest
from apflow_cli_testkit import PLUGIN, Env, free_port, slow_tree, start_apflow, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]

TWO = json.dumps(
    [
        {"id": "root", "name": "Root", "schemas": {"method": "cli_echo"}, "inputs": {"text": "x"}},
        {
            "id": "kid",
            "name": "Kid",
            "parent_id": "root",
            "schemas": {"method": "cli_echo"},
            "inputs": {"text": "y"},
        },
    ]
)


@pytest.fixture
def daemon(apflow: Run) -> Iterator[Callable[..., str]]:
    """Start the a2a daemon (with the test executors) on demand; always stopped afterwards."""
    started: list[bool] = []

    def start(**env: str) -> str:
        port = free_port()
        proc = apflow(
            "--plugin", PLUGIN, "daemon", "start", "--port", str(port), timeout=120, **env
        )
        assert proc.returncode == 0, proc.stderr
        started.append(True)
        return f"http://127.0.0.1:{port}"

    yield start
    if started:
        stopped = apflow("daemon", "stop")
        assert stopped.returncode == 0, stopped.stderr


def test_run_flow_through_the_daemon_shows_the_run_live(
    apflow: Run, daemon: Callable[..., str]
) -> None:
    url = daemon()
    proc = apflow("run", "flow", "--no-live", "--tasks", TWO)
    assert proc.returncode == 0, proc.stderr
    assert f"running the tree on it at {url}" in proc.stderr
    assert "no live view" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Running tree root (2 tasks)"
    # status lines come from the streamed events, before the summary
    assert lines.index("◐ Kid in_progress") < lines.index("✔ Kid completed")
    assert lines.index("✔ Root completed") < next(
        i for i, x in enumerate(lines) if x.startswith("TASK")
    )
    assert '{"echo": {"text": "y"}}' in proc.stdout
    assert "✔ Tree root completed (2 completed)" in proc.stdout

    live = apflow("run", "flow", "--live", "--tasks", TWO)
    assert live.returncode == 0, live.stderr
    assert "fresh ids" in live.stderr
    assert "Kid completed" in live.stdout and "└──" in live.stdout

    failing = json.dumps([{"id": "bad", "name": "Bad", "schemas": {"method": "cli_fail"}}])
    failed = apflow("run", "flow", "--no-live", "--tasks", failing)
    assert failed.returncode == 1
    assert "✘ Bad failed: " in failed.stdout and "boom" in failed.stdout

    as_json = apflow("run", "flow", "--json", "--new-ids", "--tasks", TWO)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)  # one document, nothing else on stdout
    assert data["status"] == "completed"
    assert [t["name"] for t in data["tasks"]] == ["Root", "Kid"]
    assert data["tasks"][1]["result"] == {"echo": {"text": "y"}}

    refused = apflow("run", "flow", "--concurrency", "2", "--new-ids", "--tasks", TWO)
    assert refused.returncode == 2
    assert "own concurrency limit" in refused.stderr and "apflow daemon stop" in refused.stderr


def test_ctrl_c_on_a_live_run_through_the_daemon(
    sandbox: Env, apflow: Run, daemon: Callable[..., str]
) -> None:
    daemon()
    marker = sandbox.root / "started"
    proc = start_apflow(sandbox, "run", "flow", "--no-live", "--tasks", slow_tree(marker))
    try:
        wait_for(marker)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Cancelling the tree on the daemon" in out + err
    assert "Traceback" not in err
    assert "⊘ Tree root cancelled" in out
    statuses = json.loads(apflow("tasks", "status", "root", "kid", "after", "--json").stdout)
    assert {s["status"] for s in statuses} == {"cancelled"}


def test_create_execute_and_watch_through_the_daemon(
    sandbox: Env, apflow: Run, daemon: Callable[..., str]
) -> None:
    daemon()
    created = apflow("tasks", "create", "--json", "--tasks", TWO)
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    assert data["root_id"] == "root"
    assert {t["status"] for t in data["tasks"]} == {"pending"}
    human = apflow("tasks", "create", "--new-ids", "--tasks", TWO)
    assert human.returncode == 0 and "Created tree" in human.stdout
    assert apflow("tasks", "create", "--user-id", "u", "--new-ids", "--tasks", TWO).returncode == 2

    executed = apflow("tasks", "execute", "kid", "--no-live")
    assert executed.returncode == 0, executed.stderr
    assert "Running tree root (2 tasks)" in executed.stdout
    assert "✔ Root completed" in executed.stdout
    assert "✔ Tree root completed" in executed.stdout
    again = apflow("tasks", "execute", "root", "--rerun", "all", "--json")
    assert json.loads(again.stdout)["status"] == "completed"
    assert apflow("tasks", "execute", "root", "--rerun", "all", "-c", "2").returncode == 2
    missing = apflow("tasks", "execute", "nope")
    assert missing.returncode == 2 and "no task with id 'nope'" in missing.stderr

    marker = sandbox.root / "started"
    slow = json.loads(slow_tree(marker, seconds=2))
    slow[-1]["inputs"]["text"] = "done"
    for task in slow:
        task["id"] = f"w-{task['id']}"
        if task.get("parent_id"):
            task["parent_id"] = f"w-{task['parent_id']}"
        if task.get("dependencies"):
            task["dependencies"] = [f"w-{d}" for d in task["dependencies"]]
    runner = start_apflow(sandbox, "run", "flow", "--json", "--tasks", json.dumps(slow))
    try:
        wait_for(marker)
        watched = apflow("tasks", "watch", "w-kid", "--interval", "0.1", "--json")
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert watched.returncode == 0, watched.stderr
    result = json.loads(watched.stdout)
    assert result["root_id"] == "w-root" and result["status"] == "completed"
    after = {t["name"]: t["result"] for t in result["tasks"]}["After"]
    assert after["echo"]["text"] == "done"
    assert runner.returncode == 0, err
    assert json.loads(out)["status"] == "completed"


def test_resume_through_the_daemon(sandbox: Env, apflow: Run, daemon: Callable[..., str]) -> None:
    marker = sandbox.root / "started"
    crashed = start_apflow(
        sandbox,
        "--plugin",
        PLUGIN,
        "run",
        "flow",
        "--json",
        "--tasks",
        slow_tree(marker, seconds=2),
    )
    wait_for(marker)  # the task runs, so its in_progress state was committed before (write-ahead)
    crashed.kill()  # SIGKILL: tasks stay in_progress, owned by a dead process
    crashed.communicate()
    daemon(AIPARTNERUPFLOW_RESUME_INTERRUPTED="0")
    before = json.loads(apflow("tasks", "status", "root", "--json").stdout)
    assert before[0]["status"] == "in_progress"
    resumed = apflow("tasks", "resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads(resumed.stdout)
    assert [r["root_id"] for r in results] == ["root"]
    assert results[0]["status"] == "completed"
    nothing = apflow("tasks", "resume")
    assert nothing.returncode == 0 and "No interrupted trees." in nothing.stdout


def test_db_upgrade_while_the_daemon_holds_the_database(
    sandbox: Env, apflow: Run, daemon: Callable[..., str]
) -> None:
    url = daemon()
    proc = apflow("db", "upgrade")
    assert proc.returncode == 0, proc.stderr
    assert "is up to date (schema revision" in proc.stdout
    assert f"daemon at {url} holds it and applied the migrations" in proc.stdout
    data = json.loads(apflow("db", "upgrade", "--json").stdout)
    from aipartnerupflow.core.storage.schema import HEAD_REVISION

    assert data == {
        "database": sandbox.db_url,
        "status": "up to date",
        "schema_revision": HEAD_REVISION,
        "migrated_by": "daemon",
        "daemon_url": url,
    }
