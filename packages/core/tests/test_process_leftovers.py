"""run_process returns when the program exits, even while what it left running holds its pipes.

On Python 3.11 asyncio's ``Process.wait()`` also waits for the pipes to close, so a background
child kept the runner waiting until the timeout; now the runner notices the program's own exit,
kills its group, and returns.
"""

from __future__ import annotations

import asyncio
import sys

import psutil

from aipartnerupflow.core.executors.process import run_process

LEAVES_A_CHILD = (
    "import subprocess, sys; "
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "print(p.pid, flush=True)"
)


async def test_a_left_behind_child_neither_blocks_nor_survives() -> None:
    # timeout=None: before the fix this waited for the child's 600 s sleep (the guard trips).
    result = await asyncio.wait_for(
        run_process([sys.executable, "-c", LEAVES_A_CHILD], timeout=None), 60
    )
    assert result.exit_code == 0
    pid = int(result.stdout.text().strip())
    async with asyncio.timeout(60):  # a guard: the group was killed before run_process returned
        while True:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break  # dead, waiting for its new parent to reap it
            except psutil.NoSuchProcess:
                break
            await asyncio.sleep(0.02)
