"""ssh_executor overhead: 100 `echo` tasks through the engine vs the same 100 commands over
asyncssh directly, against one real sshd on loopback (started here, as the tests do).

Both sides use one SSH connection and at most 8 sessions at a time (the executor's default
AIPARTNERUPFLOW_SSH_MAX_SESSIONS). Needs /usr/sbin/sshd (apt-get install openssh-server) and
root (the server runs in a private mount namespace with a generated test user).

    uv run python benchmarks/ssh_executor.py [--tasks 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packages" / "executor-ssh" / "tests"))

from ssh_testkit import Sshd, start_sshd  # noqa: E402


async def through_engine(sshd: Sshd, count: int) -> float:
    from aipartnerupflow import TaskManager, create_session

    base = {
        "host": sshd.host,
        "port": sshd.port,
        "username": sshd.user,
        "private_key": sshd.user_key.read_text(),
    }
    tasks = [
        {
            "id": f"e{i}",
            "name": f"echo {i}",
            "schemas": {"method": "ssh_executor"},
            "inputs": {**base, "command": ["echo", str(i)]},
            **({"parent_id": "e0"} if i else {}),
        }
        for i in range(count)
    ]
    manager = TaskManager(create_session("duckdb:///:memory:"))
    try:
        warm = await manager.run_tasks([{**tasks[0], "id": "warm"}])  # login once
        assert warm.task("warm").status == "completed", warm.task("warm").error
        started = time.perf_counter()
        result = await manager.run_tasks(tasks)
        elapsed = time.perf_counter() - started
        for i in range(count):
            outcome = result.task(f"e{i}")
            assert outcome.status == "completed", outcome.error
            assert outcome.result["stdout"] == f"{i}\n"
        return elapsed
    finally:
        await manager.close()


async def direct(sshd: Sshd, count: int, sessions: int = 8) -> float:
    import asyncssh

    known = asyncssh.import_known_hosts(sshd.known_hosts_line())
    key = asyncssh.import_private_key(sshd.user_key.read_text())
    async with asyncssh.connect(
        sshd.host,
        sshd.port,
        username=sshd.user,
        client_keys=[key],
        known_hosts=known,
        config=None,
        agent_path=None,
    ) as conn:
        gate = asyncio.Semaphore(sessions)

        async def one(i: int) -> None:
            async with gate:
                for delay in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, None):
                    try:  # sshd frees a session slot a moment after the client saw it close
                        done = await conn.run(f"echo {i}", check=True)
                        break
                    except asyncssh.ChannelOpenError:
                        if delay is None:
                            raise
                        await asyncio.sleep(delay)
                assert done.stdout == f"{i}\n"

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["AIPARTNERUPFLOW_ENABLED_EXECUTORS"] = "ssh_executor"
    os.environ["AIPARTNERUPFLOW_SSH_ALLOW_PRIVATE"] = "true"
    directory = Path(tempfile.mkdtemp(prefix="apflow-sshd-bench-"))
    sshd = start_sshd(directory)
    try:
        (directory / "known_hosts").write_text(sshd.known_hosts_line() + "\n")
        os.environ["AIPARTNERUPFLOW_SSH_KNOWN_HOSTS"] = str(directory / "known_hosts")
        for round_ in range(1, args.rounds + 1):
            refusals = sshd.log().count("no more sessions")
            engine = asyncio.run(through_engine(sshd, args.tasks))
            engine_refusals = sshd.log().count("no more sessions") - refusals
            raw = asyncio.run(direct(sshd, args.tasks))
            raw_refusals = sshd.log().count("no more sessions") - refusals - engine_refusals
            print(
                f"round {round_}: {args.tasks} echo tasks through the engine {engine:.3f} s "
                f"({args.tasks / engine:.0f}/s); asyncssh directly {raw:.3f} s "
                f"({args.tasks / raw:.0f}/s); ratio {engine / raw:.2f}; sessions refused by sshd "
                f"and retried: {engine_refusals} / {raw_refusals}"
            )
    except BaseException:
        print(sshd.log()[-3000:])
        raise
    finally:
        sshd.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
