"""command_executor runs real programs: output, stdin, environment, cwd, caps, exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.errors import TaskTimeoutError, TaskTreeValidationError
from aipartnerupflow.core.executors.process import ProcessExitError
from aipartnerupflow.extensions.stdio import CommandExecutor

Configure = Callable[..., None]
PYTHON = os.path.realpath(sys.executable)


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await CommandExecutor().execute(inputs)


def task(inputs: dict[str, Any], task_id: str = "cmd") -> dict[str, Any]:
    return {
        "id": task_id,
        "name": task_id,
        "schemas": {"method": "command_executor"},
        "inputs": inputs,
    }


async def test_off_until_the_operator_enables_it(run_tree: Any) -> None:
    with pytest.raises(TaskTreeValidationError, match="AIPARTNERUPFLOW_ENABLED_EXECUTORS"):
        await run_tree([task({"command": ["ls"]})])


async def test_runs_through_the_engine(enabled: Configure, run_tree: Any, workdir: Path) -> None:
    result = await run_tree([task({"command": "echo 'hello world'", "cwd": str(workdir)})])
    outcome = result.task("cmd")
    assert outcome.status == "completed", outcome.error
    out = outcome.result
    assert out["stdout"] == "hello world\n"
    assert out["return_code"] == out["exit_code"] == 0
    assert out["success"] is True
    assert out["command"] == "echo 'hello world'"
    assert out["argv"] == ["echo", "hello world"]
    assert out["executable"] == os.path.realpath("/bin/echo")
    assert out["cwd"] == str(workdir.resolve())
    assert out["stdout_truncated"] is False


async def test_a_refusal_fails_the_task_once_without_retries(
    enabled: Configure, run_tree: Any, workdir: Path
) -> None:
    victim = workdir / "x"
    victim.write_text("kept")
    tree = [
        {
            **task({"command": "ls; rm -rf x", "cwd": str(workdir)}),
            "retry": {"max_attempts": 3, "backoff_seconds": 0},
        }
    ]
    outcome = (await run_tree(tree)).task("cmd")
    assert outcome.status == "failed"
    assert "only a shell understands" in (outcome.error or "")
    assert victim.read_text() == "kept"


async def test_a_disallowed_exit_status_fails_the_task(enabled: Configure, run_tree: Any) -> None:
    code = "import sys; sys.stderr.write('it broke'); sys.exit(3)"
    outcome = (await run_tree([task({"command": [PYTHON, "-c", code]})])).task("cmd")
    assert outcome.status == "failed"
    assert "exited with status 3" in (outcome.error or "")
    assert "it broke" in (outcome.error or "")


async def test_allowed_exit_codes(enabled: Configure) -> None:
    code = "import sys; sys.exit(3)"
    out = await run({"command": [PYTHON, "-c", code], "allowed_exit_codes": [0, 3]})
    assert out["return_code"] == 3
    out = await run({"command": [PYTHON, "-c", code], "allowed_exit_codes": None})
    assert out["return_code"] == 3
    with pytest.raises(ProcessExitError) as caught:
        await run({"command": [PYTHON, "-c", code], "allowed_exit_codes": [1, 2]})
    assert caught.value.result.exit_code == 3
    killed = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    out = await run({"command": [PYTHON, "-c", killed], "allowed_exit_codes": [-15]})
    assert out["return_code"] == -15


async def test_stdin_reaches_the_program(enabled: Configure) -> None:
    out = await run({"command": ["cat"], "stdin": "line one\nzwei ✓\n"})
    assert out["stdout"] == "line one\nzwei ✓\n"
    empty = await run({"command": ["cat"]})  # no stdin: /dev/null, so cat ends at once
    assert empty["stdout"] == ""


async def test_output_is_capped_and_counted(enabled: Configure) -> None:
    code = "import sys; sys.stdout.write('a' * 10000); sys.stderr.write('b' * 300)"
    out = await run({"command": [PYTHON, "-c", code], "max_output_bytes": 100})
    assert out["stdout"] == "a" * 100
    assert out["stdout_truncated"] is True
    assert out["stdout_bytes"] == 10000
    assert out["stderr"] == "b" * 100
    enabled(MAX_OUTPUT_BYTES="50")  # the operator's ceiling wins over a larger request
    out = await run({"command": [PYTHON, "-c", code], "max_output_bytes": 100})
    assert len(out["stdout"]) == 50
    out = await run({"command": [PYTHON, "-c", code]})
    assert len(out["stderr"]) == 50


async def test_nothing_of_the_servers_environment_is_inherited(
    enabled: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVER_SECRET", "not-for-programs")
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.setenv("LANG", "C.UTF-8")
    out = await run({"command": ["env"]})
    seen = dict(line.split("=", 1) for line in out["stdout"].splitlines())
    assert seen == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/home/someone",
        "LANG": "C.UTF-8",
    }
    enabled(INHERIT_ENV="LANG", SEARCH_PATH="/usr/bin:/bin")
    out = await run({"command": ["env"]})
    assert out["stdout"].splitlines() == ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
    enabled(INHERIT_ENV="PATH")  # PATH is always the search path: this inherits nothing
    out = await run({"command": ["env"]})
    assert out["stdout"].splitlines() == ["PATH=/usr/bin:/bin"]


async def test_allowed_variables_are_set(enabled: Configure) -> None:
    enabled(ENV_ALLOW="GREETING,MODE")
    out = await run({"command": ["env"], "env": {"GREETING": "hi there", "MODE": ""}})
    lines = out["stdout"].splitlines()
    assert "GREETING=hi there" in lines
    assert "MODE=" in lines


async def test_secrets_never_reach_the_result(
    enabled: Configure, monkeypatch: pytest.MonkeyPatch, run_tree: Any
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-9f8e7d6c5b")
    enabled(ENV_ALLOW="API_TOKEN,MY_PASSWORD", SECRET_ENV="DEPLOY_TOKEN")
    code = "import os; print(os.environ['API_TOKEN'], os.environ['MY_PASSWORD'])"
    inputs = {
        "command": [PYTHON, "-c", code],
        "secret_env": {"API_TOKEN": "DEPLOY_TOKEN"},
        "env": {"MY_PASSWORD": "pw-1a2b3c4d"},
    }
    direct = await run(inputs)  # outside the engine nothing masks: the program got the values
    assert direct["stdout"] == "tok-9f8e7d6c5b pw-1a2b3c4d\n"
    outcome = (await run_tree([task(inputs)])).task("cmd")
    assert outcome.status == "completed", outcome.error
    assert outcome.result["stdout"] == "*** ***\n"
    assert "pw-1a2b3c4d" not in str(outcome.result)


async def test_without_cwd_a_fresh_temporary_directory_is_used_and_removed(
    enabled: Configure,
) -> None:
    code = "import os; print(os.getcwd()); print(os.listdir('.'))"
    out = await run({"command": [PYTHON, "-c", code]})
    where, listing = out["stdout"].splitlines()
    assert listing == "[]"
    assert "apflow-command-" in where
    assert not os.path.exists(where)
    assert out["cwd"] is None


async def test_cwd_inside_an_allowed_dir(enabled: Configure, workdir: Path) -> None:
    (workdir / "sub" / "deeper").mkdir(parents=True)
    out = await run({"command": ["pwd"], "cwd": str(workdir / "sub" / ".." / "sub" / "deeper")})
    assert out["stdout"].strip() == str((workdir / "sub" / "deeper").resolve())


async def test_a_timeout_fails_the_task(enabled: Configure, run_tree: Any) -> None:
    with pytest.raises(TaskTimeoutError, match="timed out"):
        await run({"command": [PYTHON, "-c", "import time; time.sleep(600)"], "timeout": 0.5})
    outcome = (
        await run_tree(
            [task({"command": [PYTHON, "-c", "import time; time.sleep(600)"], "timeout": 0.5})]
        )
    ).task("cmd")
    assert outcome.status == "failed"
    assert "timed out" in (outcome.error or "")


async def test_the_original_projects_whitelist_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, configure: Configure
) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_STDIO_COMMAND_WHITELIST", "echo")
    configure(ENABLED_EXECUTORS="command_executor")
    out = await run({"command": "echo ok"})
    assert out["stdout"] == "ok\n"
