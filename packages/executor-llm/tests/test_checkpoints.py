"""A completed provider call is never paid twice: retries and resumes after a crash reuse it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer

from .conftest import task

SCHEMA = {"type": "object", "required": ["age"], "properties": {"age": {"type": "integer"}}}
CHILD = Path(__file__).with_name("checkpoint_child.py")


async def test_retry_reuses_the_completed_call(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    # Call 0 answers invalid JSON; the repair call (1) fails with 500; the retry must not
    # pay for call 0 again.
    chat_server.script(
        ChatReply.json({"age": "old"}), ChatReply.error(500), ChatReply.json({"age": 36})
    )
    tree = await task_manager.run_tasks(
        [
            task(
                "c",
                llm(prompt="How old is Ada?", json_schema=SCHEMA),
                retry={"max_attempts": 2, "backoff_seconds": 0},
            )
        ]
    )
    outcome = tree.task("c")
    assert outcome.status == "completed", outcome.error
    assert outcome.attempts == 2
    assert outcome.result["json"] == {"age": 36}
    assert outcome.result["reused_calls"] == 1 and outcome.result["calls"] == 1
    first = [r for r in chat_server.requests if len(r["messages"]) == 1]
    assert len(first) == 1  # the provider saw the first request once
    assert len(chat_server.requests) == 3


async def test_changed_request_or_checkpoint_off_calls_again(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    for tid, extra in (("off", {"checkpoint": False}), ("on", {})):
        chat_server.reset()
        chat_server.script(ChatReply.text("a"), ChatReply.error(500), ChatReply.text("b"))
        # Two-call task: JSON mode where call 0 is not JSON; call 1 fails; retry.
        tree = await task_manager.run_tasks(
            [
                task(
                    tid,
                    llm(prompt="x", response_format="json", **extra),
                    retry={"max_attempts": 2, "backoff_seconds": 0},
                )
            ]
        )
        outcome = tree.task(tid)
        # "off": call 0 is paid again on the retry and answers "b" (still not JSON) -> the
        # echo reply of the repair is not JSON either -> failed; "on": reused "a", repair "b".
        if tid == "off":
            assert [len(r["messages"]) for r in chat_server.requests][:3] == [1, 3, 1]
        else:
            assert [len(r["messages"]) for r in chat_server.requests] == [1, 3, 3]
        assert outcome.status == "failed"  # "b" is no JSON either


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.returncode}: {log.read_text()}")
        time.sleep(0.05)


def test_kill_9_between_two_calls_then_resume(chat_server: FakeChatServer, tmp_path: Path) -> None:
    chat_server.script(ChatReply.json({"age": "old"}), ChatReply.json({"age": 36}))
    db_url = f"duckdb:///{tmp_path / 'tasks.duckdb'}"
    marker = tmp_path / "first-call-saved"
    env = {**os.environ, "PYTHONPATH": str(CHILD.parent)}
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), "start", db_url, chat_server.base_url, str(marker)],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        _wait_for(marker, child, log)
        assert len(chat_server.requests) == 1  # the first call completed, the second not sent
        child.kill()  # SIGKILL: no cleanup of any kind
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    resumed = subprocess.run(
        [sys.executable, str(CHILD), "resume", db_url],
        env=env,
        capture_output=True,
        timeout=300,
        check=True,
    )
    trees = json.loads(resumed.stdout.decode().strip().splitlines()[-1])
    assert len(trees) == 1
    [outcome] = [t for t in trees[0]["tasks"] if t["id"] == "two-calls"]
    assert outcome["status"] == "completed", outcome
    assert outcome["result"]["json"] == {"age": 36}
    assert outcome["result"]["reused_calls"] == 1
    assert outcome["result"]["calls"] == 1
    # The provider saw each request exactly once: the first, then the repair.
    bodies = [json.dumps(r["messages"], sort_keys=True) for r in chat_server.requests]
    assert len(bodies) == 2 and len(set(bodies)) == 2
