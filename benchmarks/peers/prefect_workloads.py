"""The peer workloads on Prefect 3 in its default local mode, written the way its docs show.

    python benchmarks/peers/prefect_workloads.py --one fanout_1000

* fan-out: a flow maps a no-op task over N inputs and waits for the futures (``.map`` on the
  default ``ThreadPoolTaskRunner``, ``prefect.futures.wait``);
* chain: a flow calling a no-op task N times, each call passing the previous result on;
* sleepers: a flow mapping a task that sleeps 100 ms over 50 inputs;
* cli_10: the fan-out with 9 tasks, for a whole-process run (``--no-warm-up --home DIR``).

Default local mode: no API URL configured, so Prefect starts its ephemeral server (SQLite
under ``PREFECT_HOME``, here a fresh temporary directory). After a one-task warm-up flow
(which starts that server), only the workload's flow call is timed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from typing import Any

from _common import emit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", required=True)
    parser.add_argument("--home", help="this PREFECT_HOME (kept) instead of a temporary one")
    parser.add_argument("--no-warm-up", action="store_true", help="time the first run too")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        home = args.home or stack.enter_context(tempfile.TemporaryDirectory(prefix="prefect-"))
        # Settings are read at import: the environment is set before prefect is imported.
        os.environ["PREFECT_HOME"] = home
        os.environ.pop("PREFECT_API_URL", None)
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        # The ephemeral server's 20 s start-up allowance is too short on a loaded 2-core box.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        flows = _flows()
        if not args.no_warm_up:
            flows["warm-up"]()
        start = time.perf_counter()
        flows[args.one]()
        seconds = time.perf_counter() - start
    emit(args.one, seconds)


def _flows() -> dict[str, Any]:
    from prefect import flow, task
    from prefect.futures import wait

    @task
    def noop(i: int) -> int:
        return i

    @task
    def sleeper(i: int) -> None:
        time.sleep(0.1)

    @flow
    def fanout(n: int) -> None:
        wait(noop.map(range(n)))

    @flow
    def chain(n: int) -> None:
        previous = 0
        for _ in range(n):
            previous = noop(previous)

    @flow
    def sleepers(n: int) -> None:
        wait(sleeper.map(range(n)))

    return {
        "warm-up": lambda: fanout(1),
        "fanout_1000": lambda: fanout(1000),
        "fanout_10000": lambda: fanout(10000),
        "chain_200": lambda: chain(200),
        "sleepers_ready": lambda: sleepers(50),
        "cli_10": lambda: fanout(9),
    }


if __name__ == "__main__":
    main()
