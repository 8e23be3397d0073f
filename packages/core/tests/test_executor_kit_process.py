"""run_process with real subprocesses: argv only, whole-group kill, exit codes, output caps.

Survivors are looked for with psutil: every process started by a test carries a unique
marker in its command line (a ``sleep`` duration no other process uses).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from aipartnerupflow.core.errors import InputValidationError, TaskTimeoutError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors import ProcessExitError, check_argv, run_process
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session

GUARD = 60.0  # hang guard, never a speed check


def _marker() -> str:
    return f"1000.{uuid.uuid4().int % 10**9:09d}"


def _alive(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if marker in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _forking(marker: str, pidfile: Path) -> list[str]:
    """A shell that leaves a grandchild and waits, recording both pids."""
    script = f"sleep {marker} & echo $! > {pidfile}.tmp; echo $$ >> {pidfile}.tmp; "
    script += f"mv {pidfile}.tmp {pidfile}; sleep {marker}"
    return ["sh", "-c", script]


async def _wait_for_pids(pidfile: Path) -> list[int]:
    async with asyncio.timeout(GUARD):
        while not pidfile.exists():
            await asyncio.sleep(0.01)
    return [int(line) for line in pidfile.read_text().split()]


def _assert_gone(marker: str, pids: list[int], expected: int = 2) -> None:
    assert len(pids) == expected, "the program did not start its grandchild"
    assert _alive(marker) == [], "a process of the group survived"
    for pid in pids:
        try:
            process = psutil.Process(pid)
            status, cmdline = process.status(), " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if marker in cmdline:  # not a reused pid: it may only be waiting to be reaped
            assert status == psutil.STATUS_ZOMBIE


# -- argv, environment, stdin ---------------------------------------------------------------


async def test_arguments_are_never_interpreted_by_a_shell() -> None:
    result = await run_process(["echo", "$HOME; id && `whoami`", "*"])
    assert result.stdout.text() == "$HOME; id && `whoami` *\n"


async def test_a_command_line_string_is_not_a_program() -> None:
    with pytest.raises(InputValidationError, match="program not found"):
        await run_process(["echo hi; touch /tmp/pwned"])


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        ("echo hi", "non-empty list of strings"),
        ([], "non-empty list of strings"),
        (["echo", 3], r"command\[1\]' must be a string"),
        (["echo", "a\x00b"], "NUL byte"),
    ],
)
def test_bad_argv_is_refused(argv: Any, match: str) -> None:
    with pytest.raises(InputValidationError, match=match):
        check_argv(argv)


async def test_environment_is_exactly_what_is_given() -> None:
    result = await run_process(
        [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
        env={"ONLY": "this"},
    )
    env = __import__("json").loads(result.stdout.text())
    assert env.get("ONLY") == "this"
    assert "HOME" not in env and "PATH" not in env


async def test_stdin_cwd_and_stderr(tmp_path: Path) -> None:
    result = await run_process(
        ["sh", "-c", "cat; pwd; echo oops >&2"], stdin=b"fed in\n", cwd=tmp_path
    )
    assert result.stdout.text() == f"fed in\n{tmp_path}\n"
    assert result.stderr.text() == "oops\n"
    assert result.to_dict()["exit_code"] == 0


async def test_missing_working_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match="working directory does not exist"):
        await run_process(["true"], cwd=tmp_path / "nope")


# -- exit codes -----------------------------------------------------------------------------


async def test_non_zero_exit_fails_with_the_status_and_stderr() -> None:
    with pytest.raises(ProcessExitError, match=r"exited with status 3 \(allowed: 0\): bad thing"):
        await run_process(["sh", "-c", "echo bad thing >&2; exit 3"])


async def test_allowed_exit_codes() -> None:
    result = await run_process(["sh", "-c", "exit 3"], allowed_exit_codes=(0, 3))
    assert result.exit_code == 3
    anything = await run_process(["sh", "-c", "exit 77"], allowed_exit_codes=None)
    assert anything.exit_code == 77


async def test_killed_by_a_signal() -> None:
    with pytest.raises(ProcessExitError, match="killed by signal 9") as failed:
        await run_process(["sh", "-c", "kill -9 $$"])
    assert failed.value.result.signal == 9


# -- output caps ----------------------------------------------------------------------------


async def test_output_is_capped_and_the_program_is_not_blocked() -> None:
    code = "import sys; sys.stdout.write('x' * 3_000_000); sys.stderr.write('e' * 10)"
    result = await run_process([sys.executable, "-c", code], max_output_bytes=1000)
    out = result.to_dict()
    assert out["stdout"] == "x" * 1000
    assert out["stdout_truncated"] is True
    assert out["stdout_bytes"] == 3_000_000
    assert out["stderr"] == "e" * 10
    assert out["stderr_truncated"] is False


# -- nothing survives -----------------------------------------------------------------------


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    marker, pidfile = _marker(), tmp_path / "pids"
    with pytest.raises(TaskTimeoutError, match="timed out after 5s"):
        await run_process(_forking(marker, pidfile), timeout=5, grace_seconds=0.5)
    _assert_gone(marker, [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else [])


async def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    marker, pidfile = _marker(), tmp_path / "pids"
    argv = _forking(marker, pidfile)
    argv[2] = "trap '' TERM; " + argv[2]
    with pytest.raises(TaskTimeoutError):
        await run_process(argv, timeout=5, grace_seconds=0.2)
    _assert_gone(marker, [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else [])


async def test_cancel_kills_the_whole_group(tmp_path: Path) -> None:
    marker, pidfile = _marker(), tmp_path / "pids"
    run = asyncio.create_task(run_process(_forking(marker, pidfile), grace_seconds=0.5))
    pids = await _wait_for_pids(pidfile)
    assert len(_alive(marker)) >= 2  # the shell and its grandchild
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    _assert_gone(marker, pids)


async def test_background_child_left_after_a_normal_exit_is_killed(tmp_path: Path) -> None:
    marker = _marker()
    result = await asyncio.wait_for(
        run_process(["sh", "-c", f"sleep {marker} & echo $!; echo started"]), GUARD
    )
    lines = result.stdout.text().split()
    assert lines[1] == "started"
    _assert_gone(marker, [int(lines[0])], expected=1)


# -- through the engine ---------------------------------------------------------------------


class Forker(ExecutableTask):
    id = "kit_forker"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        argv = _forking(inputs["marker"], Path(inputs["pidfile"]))
        return (await run_process(argv, grace_seconds=0.5)).to_dict()


@pytest.fixture
async def manager() -> Any:
    registry = ExecutorRegistry()
    registry.register(Forker)
    tm = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    yield tm
    await tm.close()


async def test_task_timeout_leaves_no_process(manager: TaskManager, tmp_path: Path) -> None:
    marker, pidfile = _marker(), tmp_path / "pids"
    tree = [
        {
            "id": "t",
            "name": "t",
            "schemas": {"method": "kit_forker"},
            "inputs": {"marker": marker, "pidfile": str(pidfile)},
            "timeout_seconds": 5,
        }
    ]
    result = await asyncio.wait_for(manager.run_tasks(tree), GUARD)
    assert result.task("t").status == "failed"
    assert "timed out" in (result.task("t").error or "")
    _assert_gone(marker, [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else [])


async def test_task_cancel_leaves_no_process(manager: TaskManager, tmp_path: Path) -> None:
    marker, pidfile = _marker(), tmp_path / "pids"
    tree = [
        {
            "id": "c",
            "name": "c",
            "schemas": {"method": "kit_forker"},
            "inputs": {"marker": marker, "pidfile": str(pidfile)},
        }
    ]
    run = asyncio.create_task(manager.run_tasks(tree))
    pids = await _wait_for_pids(pidfile)
    await manager.cancel_task("c")
    result = await asyncio.wait_for(run, GUARD)
    assert result.task("c").status == "cancelled"
    _assert_gone(marker, pids)
