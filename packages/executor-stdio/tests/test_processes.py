"""No process outlives its task: timeout, cancellation and normal exit stop the whole group.

The program forks: two children that ignore SIGTERM and a grandchild whose parent exits (so it
is re-parented away from the program). psutil then checks that every one of them is gone.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from aipartnerupflow.core.errors import TaskTimeoutError
from aipartnerupflow.extensions.stdio import CommandExecutor

Configure = Callable[..., None]
PYTHON = os.path.realpath(sys.executable)
GUARD = 60.0  # seconds before a wait is called a hang (not a speed requirement)

FORKER = """
import os, signal, subprocess, sys, time
pidfile, mode = sys.argv[1], sys.argv[2]
sleeper = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
kids = [subprocess.Popen([sys.executable, "-c", sleeper]) for _ in range(2)]
read, write = os.pipe()
middle = os.fork()
if middle == 0:
    grandchild = os.fork()
    if grandchild == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
        os._exit(0)
    os.write(write, str(grandchild).encode())
    os._exit(0)
os.close(write)
os.waitpid(middle, 0)
grandchild = int(os.read(read, 32))
pids = [os.getpid(), *(k.pid for k in kids), grandchild]
with open(pidfile + ".tmp", "w") as fh:
    fh.write(" ".join(map(str, pids)))
os.rename(pidfile + ".tmp", pidfile)
if mode == "exit":
    sys.exit(0)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(600)
"""


def forker(pidfile: Path, mode: str) -> dict[str, Any]:
    return {"command": [PYTHON, "-c", FORKER, str(pidfile), mode]}


async def wait_for_file(path: Path) -> list[int]:
    async with asyncio.timeout(GUARD):
        while not path.exists():
            await asyncio.sleep(0.02)
    return [int(p) for p in path.read_text().split()]


async def assert_all_gone(pids: list[int]) -> None:
    """Every pid has ended (a zombie waiting for its new parent to reap it has ended)."""
    assert len(pids) == 4

    def running() -> list[int]:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    try:
        async with asyncio.timeout(GUARD):
            while running():
                await asyncio.sleep(0.02)
    except TimeoutError:
        survivors = running()
        for pid in survivors:  # do not leave them behind for the next test
            psutil.Process(pid).kill()
        pytest.fail(f"processes outlived their task: {survivors}")


@pytest.fixture
def fast_kill(enabled: Configure) -> Configure:
    enabled(KILL_GRACE="0.2")
    return enabled


@pytest.mark.parametrize("mode", ["sleep", "stubborn"])
async def test_cancelling_the_task_kills_the_whole_group(
    fast_kill: Configure, task_manager: Any, tmp_path: Path, mode: str
) -> None:
    pidfile = tmp_path / "pids"
    tree = [
        {
            "id": "forker",
            "name": "forker",
            "schemas": {"method": "command_executor"},
            "inputs": {**forker(pidfile, mode), "timeout": 600},
        }
    ]
    run = asyncio.create_task(task_manager.run_tasks(tree))
    pids = await wait_for_file(pidfile)
    assert all(psutil.pid_exists(p) for p in pids)
    await task_manager.cancel_task("forker")
    result = await asyncio.wait_for(run, GUARD)
    assert result.task("forker").status == "cancelled"
    await assert_all_gone(pids)


async def test_cancelling_execute_directly_kills_the_whole_group(
    fast_kill: Configure, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"
    run = asyncio.create_task(
        CommandExecutor().execute({**forker(pidfile, "stubborn"), "timeout": 600})
    )
    pids = await wait_for_file(pidfile)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await assert_all_gone(pids)


async def test_a_timeout_kills_the_whole_group(fast_kill: Configure, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    with pytest.raises(TaskTimeoutError, match="timed out after 3s"):
        await CommandExecutor().execute({**forker(pidfile, "stubborn"), "timeout": 3})
    # The program writes its pids at once; the timeout leaves it seconds to do so.
    assert pidfile.exists(), "the program was stopped before it had started its children"
    await assert_all_gone([int(p) for p in pidfile.read_text().split()])


async def test_what_a_program_leaves_running_is_killed_when_it_exits(
    fast_kill: Configure, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"
    out = await CommandExecutor().execute(forker(pidfile, "exit"))
    assert out["return_code"] == 0
    await assert_all_gone([int(p) for p in pidfile.read_text().split()])
