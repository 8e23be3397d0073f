"""Real commands on the real sshd: quoting, shell strings, exit codes, stdin, env, cwd, caps."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from ssh_testkit import Sshd

from aipartnerupflow.core.errors import InputValidationError, PermanentError
from aipartnerupflow.extensions.ssh import SshExecutor, SshExitError


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await SshExecutor().execute(inputs)


HOSTILE = ["a b", "it's", '"dq"', "$HOME", "`id`", "$(id)", "; rm -rf /", "*", "\\n", "é ü 中", ""]


async def test_argv_items_reach_the_program_unchanged(key_inputs: dict[str, Any]) -> None:
    result = await run({**key_inputs, "command": ["printf", "%s\\n", *HOSTILE]})
    assert result["stdout"].split("\n")[:-1] == HOSTILE
    assert result["exit_code"] == 0
    assert result["command"] == ["printf", "%s\\n", *HOSTILE]
    assert result["stderr"] == ""  # the pid marker never shows


async def test_a_command_string_is_run_by_the_remote_shell(key_inputs: dict[str, Any]) -> None:
    result = await run({**key_inputs, "command": "echo $((6*7)) | tr 4 X; echo done >&2"})
    assert result["stdout"] == "X2\n"
    assert result["stderr"] == "done\n"


async def test_non_zero_exit_fails_with_status_and_stderr(key_inputs: dict[str, Any]) -> None:
    with pytest.raises(SshExitError) as info:
        await run({**key_inputs, "command": "echo partial; echo broken pipe >&2; exit 7"})
    assert isinstance(info.value, PermanentError)
    assert "exited with status 7" in str(info.value)
    assert "broken pipe" in str(info.value)
    assert info.value.result["stdout"] == "partial\n"
    assert info.value.result["exit_code"] == 7


async def test_allowed_exit_codes_complete_the_task(key_inputs: dict[str, Any]) -> None:
    result = await run(
        {**key_inputs, "command": ["sh", "-c", "exit 3"], "allowed_exit_codes": [0, 3]}
    )
    assert result["exit_code"] == 3
    assert result["return_code"] == 3
    assert result["success"] is True


async def test_a_command_killed_by_a_signal_fails(key_inputs: dict[str, Any]) -> None:
    with pytest.raises(SshExitError, match=r"signal|status 143"):
        await run({**key_inputs, "command": ["sh", "-c", "kill -TERM $$"]})


async def test_stdin_is_fed_and_closed(key_inputs: dict[str, Any]) -> None:
    text = "line one\nline two ünïcode\n" * 1000
    result = await run({**key_inputs, "command": ["cat"], "stdin": text})
    assert result["stdout"] == text
    result = await run({**key_inputs, "command": ["cat"]})  # no stdin: EOF at once
    assert result["stdout"] == ""


async def test_env_values_are_quoted(key_inputs: dict[str, Any]) -> None:
    env = {"PLAIN": "x", "TRICKY": 'a\'b "c" $(id) `id`; exit 9', "EMPTY": ""}
    result = await run(
        {
            **key_inputs,
            "command": ["sh", "-c", 'printf "%s|" "$PLAIN" "$TRICKY" "$EMPTY"'],
            "env": env,
        }
    )
    assert result["stdout"] == 'x|a\'b "c" $(id) `id`; exit 9||'


async def test_env_names_must_be_identifiers(key_inputs: dict[str, Any]) -> None:
    with pytest.raises(InputValidationError, match="env"):
        await run({**key_inputs, "command": ["true"], "env": {"A;B": "x"}})
    with pytest.raises(InputValidationError, match="NUL"):
        await run({**key_inputs, "command": ["true"], "env": {"A": "x\x00y"}})


async def test_cwd(key_inputs: dict[str, Any], sshd: Sshd) -> None:
    (sshd.home / "sub dir").mkdir(exist_ok=True)
    result = await run({**key_inputs, "command": ["pwd"], "cwd": str(sshd.home / "sub dir")})
    assert result["stdout"] == f"{sshd.home / 'sub dir'}\n"
    with pytest.raises(SshExitError, match="cwd"):
        await run({**key_inputs, "command": ["pwd"], "cwd": "/no/such/dir"})


async def test_large_output_is_capped_and_says_so(key_inputs: dict[str, Any]) -> None:
    result = await run(
        {
            **key_inputs,
            "command": "head -c 3000000 /dev/zero | tr '\\0' a; head -c 5000 /dev/zero >&2",
            "max_output_bytes": 1000,
        }
    )
    assert result["stdout"] == "a" * 1000
    assert result["stdout_truncated"] is True
    assert result["stdout_bytes"] == 3_000_000
    assert result["stderr_truncated"] is True
    assert result["stderr_bytes"] == 5000
    assert result["duration"] > 0


async def test_the_operator_cap_wins_over_a_larger_request(
    key_inputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aipartnerupflow.core.settings import reload_settings

    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_MAX_OUTPUT_BYTES", "10")
    reload_settings()
    result = await run(
        {**key_inputs, "command": ["echo", "0123456789abcdef"], "max_output_bytes": 10**9}
    )
    assert result["stdout"] == "0123456789"
    assert result["stdout_truncated"] is True


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"command": ["a\x00b"]}, "command[0]"),
        ({"command": "   "}, "command"),
        ({"command": [""]}, "command[0]"),
        ({"command": 5}, "command"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"port": True}, "port"),
        ({"allowed_exit_codes": []}, "allowed_exit_codes"),
        ({"host": "a\x00b"}, "host"),
    ],
)
async def test_hostile_inputs_are_refused(
    key_inputs: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputValidationError) as info:
        await run({**key_inputs, "command": ["true"], **change})
    assert field in str(info.value)


async def test_quoting_matches_shlex(key_inputs: dict[str, Any]) -> None:
    # The remote line runs the argv through exec of the shlex-joined words: one more check with
    # a program that reports its own argv.
    argv = ["python3", "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *HOSTILE]
    result = await run({**key_inputs, "command": argv})
    import json

    assert json.loads(result["stdout"]) == HOSTILE
    assert shlex.split(shlex.join(HOSTILE)) == HOSTILE
