"""The console script's quick exit: same status, output, atexit work and thread joins."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable

import pytest
from apflow_cli_testkit import PLUGIN, Env

from aipartnerupflow.cli import _exit, run

Run = Callable[..., subprocess.CompletedProcess[str]]

LINGERING = '''
"""Leaves work for the end of the process: an atexit handler and a non-daemon thread."""
import atexit
import os
import threading
import time

OUT = os.environ["LINGER_DIR"]


def _atexit() -> None:
    with open(os.path.join(OUT, "atexit"), "w") as fh:
        fh.write("ran")


def _late() -> None:
    time.sleep(0.3)
    with open(os.path.join(OUT, "thread"), "w") as fh:
        fh.write("joined")


atexit.register(_atexit)
threading.Thread(target=_late).start()
print("printed by a plugin, never flushed by it", end="")
'''


def test_a_run_ends_with_its_status_and_nothing_else_on_stderr(apflow: Run) -> None:
    tasks = json.dumps([{"name": "Q", "schemas": {"method": "cli_echo"}, "inputs": {"text": "q"}}])
    ok = apflow("--plugin", PLUGIN, "run", "flow", "--json", "--tasks", tasks)
    assert (ok.returncode, ok.stderr) == (0, "")
    assert json.loads(ok.stdout)["status"] == "completed"
    failed = json.dumps([{"name": "F", "schemas": {"method": "cli_fail"}, "inputs": {}}])
    bad = apflow("--plugin", PLUGIN, "run", "flow", "--json", "--tasks", failed)
    assert (bad.returncode, bad.stderr) == (1, "")
    counted = apflow("tasks", "count", "--json")
    assert (counted.returncode, counted.stderr) == (0, "")
    assert json.loads(counted.stdout)["total"] == 2


def test_atexit_handlers_threads_and_buffered_output_still_finish(
    sandbox: Env, apflow: Run
) -> None:
    site = sandbox.root / "site"
    (site / "lingering_plugin.py").write_text(textwrap.dedent(LINGERING))
    out = sandbox.root / "linger"
    out.mkdir()
    proc = apflow("--plugin", "lingering_plugin", "executors", "list", LINGER_DIR=str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("printed by a plugin, never flushed by it")
    assert (out / "atexit").read_text() == "ran"
    assert (out / "thread").read_text() == "joined"


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), (True, 1), ("bye", None)])
def test_status_of_system_exit(code: object, status: int | None) -> None:
    assert _exit._status(code) == status


def test_not_the_console_script_leaves_the_exit_to_python(sandbox: Env) -> None:
    _exit.exit_quickly(0, run)  # returns: this test process goes on
    script = sandbox.root / "wrapper.py"  # imports run, but is not the console script
    script.write_text(
        "from aipartnerupflow.cli import _exit, run\n"
        "_exit.exit_quickly(5, run)\n"
        "print('still here')\n"
    )
    proc = sandbox.python(str(script))
    assert (proc.returncode, proc.stdout) == (0, "still here\n")


def test_an_exit_message_is_printed_by_python(sandbox: Env) -> None:
    script = sandbox.root / "apflow"  # named as the console script is
    script.write_text(
        "import sys\n"
        "from aipartnerupflow.cli import _exit, run\n"
        "_exit.exit_quickly('a message', run)\n"
        "print('still here')\n"
        "_exit.exit_quickly(4, run)\n"
        "print('not reached')\n"
    )
    proc = sandbox.python(str(script))
    assert (proc.returncode, proc.stdout) == (4, "still here\n")


def test_the_console_script_skips_module_teardown(sandbox: Env, apflow: Run) -> None:
    """What the quick exit leaves out: finalizing objects still alive at exit (CPython does
    not promise it anyway). A plugin's module-level object with ``__del__`` is not finalized."""
    site = sandbox.root / "site"
    (site / "finalized_plugin.py").write_text(
        "import sys\n\n\nclass Noisy:\n    def __del__(self) -> None:\n"
        "        sys.stderr.write('finalized')\n\n\nKEPT = Noisy()\n"
    )
    proc = apflow("--plugin", "finalized_plugin", "executors", "list")
    assert proc.returncode == 0, proc.stderr
    assert "finalized" not in proc.stderr
    through_python = sandbox.python("-c", "import finalized_plugin")
    assert through_python.stderr == "finalized"  # the probe works: Python's own exit does it
