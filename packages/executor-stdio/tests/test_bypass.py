"""Every way around the allow-list is refused before anything runs."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.extensions.stdio import CommandExecutor, CommandRefusedError

Configure = Callable[..., None]
PYTHON = os.path.realpath(sys.executable)


def which(name: str) -> str:
    found = shutil.which(name, path="/usr/bin:/bin")
    assert found, f"the tests need {name} in /usr/bin or /bin"
    return os.path.realpath(found)


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await CommandExecutor().execute(inputs)


@pytest.fixture
def victim(workdir: Path) -> Path:
    """A file the bypass attempts try to delete; it must survive every one."""
    path = workdir / "x"
    path.write_text("still here")
    return path


@pytest.mark.parametrize(
    "command",
    [
        "ls; rm -rf x",
        "ls;rm -rf x",
        "ls && rm -rf x",
        "ls || rm -rf x",
        "ls | rm -rf x",
        "ls & rm -rf x",
        "ls `rm -rf x`",
        'ls "`rm -rf x`"',
        "ls $(rm -rf x)",
        'ls "$(rm -rf x)"',
        "ls\nrm -rf x",
        "ls\rrm -rf x",
        "ls > x",
        "ls < x",
        "ls $HOME",
        "ls ${IFS}x",
        "(rm -rf x)",
    ],
)
async def test_shell_syntax_in_a_string_is_refused(
    enabled: Configure, workdir: Path, victim: Path, command: str
) -> None:
    enabled(ALLOWED_EXECUTABLES="ls,rm")  # even with rm allowed, nothing runs at all
    with pytest.raises(InputValidationError, match="only a shell understands"):
        await run({"command": command, "cwd": str(workdir)})
    assert victim.read_text() == "still here"


async def test_the_originals_bypass_never_runs_rm(
    enabled: Configure, workdir: Path, victim: Path
) -> None:
    """With only ls allowed, neither the string nor its spaced-out argv runs rm."""
    with pytest.raises(InputValidationError):
        await run({"command": "ls; rm -rf x", "cwd": str(workdir)})
    # As a list, ';' and 'rm' are just arguments of ls, which lists x and complains about ';'.
    out = await run(
        {
            "command": ["ls", ";", "rm", "-rf", "x"],
            "cwd": str(workdir),
            "allowed_exit_codes": None,
        }
    )
    assert victim.read_text() == "still here"
    assert out["return_code"] != 0
    assert "x" in out["stdout"].split()
    assert "';'" in out["stderr"] or ";" in out["stderr"]


async def test_quoted_shell_characters_are_plain_arguments(
    enabled: Configure, workdir: Path
) -> None:
    out = await run({"command": "echo 'a; b' \"c && d\" e\\|f '$HOME'", "cwd": str(workdir)})
    assert out["argv"] == ["echo", "a; b", "c && d", "e|f", "$HOME"]
    assert out["stdout"] == "a; b c && d e|f $HOME\n"


@pytest.mark.parametrize("command", ["rm -rf x", ["rm", "-rf", "x"], [which("rm"), "-rf", "x"]])
async def test_a_program_not_allowed_is_refused(
    enabled: Configure, workdir: Path, victim: Path, command: Any
) -> None:
    with pytest.raises(CommandRefusedError, match="AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES"):
        await run({"command": command, "cwd": str(workdir)})
    assert victim.exists()


async def test_an_empty_allow_list_runs_nothing(configure: Configure, tmp_path: Path) -> None:
    configure(ENABLED_EXECUTORS="command_executor")
    with pytest.raises(CommandRefusedError, match="not allowed"):
        await run({"command": ["ls"]})


@pytest.mark.parametrize("program", ["./ls", "bin/ls", "../bin/ls", "ls/"])
async def test_relative_paths_are_refused(enabled: Configure, workdir: Path, program: str) -> None:
    (workdir / "bin").mkdir()
    os.symlink(which("ls"), workdir / "bin" / "ls")
    os.symlink(which("ls"), workdir / "ls")
    with pytest.raises(CommandRefusedError, match="relative path"):
        await run({"command": [program], "cwd": str(workdir)})


async def test_dot_dot_resolves_before_matching(
    enabled: Configure, workdir: Path, victim: Path
) -> None:
    rm_dir, rm_name = os.path.split(which("rm"))
    sneaky = f"{rm_dir}/../{os.path.basename(rm_dir)}/{rm_name}"
    with pytest.raises(CommandRefusedError, match="not allowed"):
        await run({"command": [sneaky, "-f", "x"], "cwd": str(workdir)})
    assert victim.exists()
    ls_dir, ls_name = os.path.split(which("ls"))
    out = await run(
        {"command": [f"{ls_dir}/../{os.path.basename(ls_dir)}/{ls_name}"], "cwd": str(workdir)}
    )
    assert out["executable"] == which("ls")
    assert out["stdout"] == "x\n"


async def test_symlinks_are_matched_on_their_target(
    enabled: Configure, tmp_path: Path, workdir: Path, victim: Path
) -> None:
    """A link named like an allowed program but pointing at rm is rm; a link to ls is ls."""
    links = tmp_path / "links"
    links.mkdir()
    os.symlink(which("rm"), links / "ls")
    with pytest.raises(CommandRefusedError, match=r"resolved to .*rm"):
        await run({"command": [str(links / "ls"), "-f", "x"], "cwd": str(workdir)})
    assert victim.exists()
    os.symlink(which("ls"), links / "lister")
    out = await run({"command": [str(links / "lister")], "cwd": str(workdir)})
    assert out["executable"] == which("ls")
    assert out["argv"][0] == str(links / "lister")


@pytest.fixture
def impostor(tmp_path: Path) -> tuple[Path, Path]:
    """A directory holding a fake ``ls`` that leaves a marker when it runs."""
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "impostor-ran"
    script = evil / "ls"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    return evil, marker


async def test_the_servers_path_is_never_searched(
    enabled: Configure,
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
    impostor: tuple[Path, Path],
) -> None:
    evil, marker = impostor
    monkeypatch.setenv("PATH", f"{evil}:{os.environ.get('PATH', '')}")
    out = await run({"command": "ls", "cwd": str(workdir)})
    assert out["executable"] == which("ls")
    assert not marker.exists()


async def test_a_path_set_by_the_task_is_refused_or_ignored_for_lookup(
    enabled: Configure, workdir: Path, impostor: tuple[Path, Path]
) -> None:
    evil, marker = impostor
    with pytest.raises(CommandRefusedError, match="AIPARTNERUPFLOW_COMMAND_ENV_ALLOW"):
        await run({"command": "ls", "env": {"PATH": str(evil)}, "cwd": str(workdir)})
    enabled(ENV_ALLOW="PATH")
    out = await run({"command": "ls", "env": {"PATH": str(evil)}, "cwd": str(workdir)})
    assert out["executable"] == which("ls")  # the program's PATH, not our lookup
    assert not marker.exists()


async def test_an_allowed_name_shadowed_earlier_in_the_search_path_is_refused(
    enabled: Configure, workdir: Path, impostor: tuple[Path, Path]
) -> None:
    """The allow-list names the real ls; a search path that finds another ls first is no way
    around it."""
    evil, marker = impostor
    enabled(ALLOWED_EXECUTABLES=which("ls"), SEARCH_PATH=f"{evil}:/usr/bin:/bin")
    with pytest.raises(CommandRefusedError, match=rf"resolved to {evil}/ls"):
        await run({"command": "ls", "cwd": str(workdir)})
    assert not marker.exists()


async def test_a_file_that_is_not_executable_is_refused(enabled: Configure, workdir: Path) -> None:
    plain = workdir / "data.txt"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(InputValidationError, match="not an executable file"):
        await run({"command": [str(plain)], "cwd": str(workdir)})
    with pytest.raises(InputValidationError, match="does not exist"):
        await run({"command": [str(workdir / "missing")], "cwd": str(workdir)})
    with pytest.raises(InputValidationError, match="not found in the search path"):
        await run({"command": ["no-such-program-here"], "cwd": str(workdir)})


@pytest.mark.parametrize(
    ("cwd", "error", "match"),
    [
        ("/", CommandRefusedError, "outside the allowed directories"),
        ("{work}/../..", CommandRefusedError, "outside the allowed directories"),
        ("{work}/out", CommandRefusedError, r"resolved to /"),
        ("relative/dir", InputValidationError, "absolute path"),
        ("{work}/missing", InputValidationError, "not an existing directory"),
        ("{work}\x00", InputValidationError, "NUL"),
    ],
)
async def test_cwd_outside_the_allowed_dirs_is_refused(
    enabled: Configure, workdir: Path, cwd: str, error: type[Exception], match: str
) -> None:
    os.symlink("/", workdir / "out")
    with pytest.raises(error, match=match):
        await run({"command": ["pwd"], "cwd": cwd.format(work=workdir)})


async def test_cwd_needs_an_allowed_dir(configure: Configure, workdir: Path) -> None:
    configure(ENABLED_EXECUTORS="command_executor", ALLOWED_EXECUTABLES="pwd")
    with pytest.raises(CommandRefusedError, match="AIPARTNERUPFLOW_COMMAND_ALLOWED_DIRS is empty"):
        await run({"command": ["pwd"], "cwd": str(workdir)})


@pytest.mark.parametrize(
    ("env", "error", "match"),
    [
        ({"FOO": "1"}, CommandRefusedError, "AIPARTNERUPFLOW_COMMAND_ENV_ALLOW"),
        ({"LD_PRELOAD": "/tmp/x.so"}, CommandRefusedError, "dynamic loader"),
        ({"DYLD_INSERT_LIBRARIES": "/tmp/x"}, CommandRefusedError, "dynamic loader"),
        ({"BAD=NAME": "1"}, InputValidationError, "not a variable name"),
        ({"": "1"}, InputValidationError, "not a variable name"),
        ({"OK": "a\x00b"}, InputValidationError, "NUL"),
        ({"OK": 3}, InputValidationError, "must be a string"),
    ],
)
async def test_bad_environment_is_refused(
    enabled: Configure, workdir: Path, env: dict[str, Any], error: type[Exception], match: str
) -> None:
    enabled(ENV_ALLOW="OK" if "FOO" in env else "*")
    with pytest.raises(error, match=match):
        await run({"command": ["env"], "env": env, "cwd": str(workdir)})


async def test_secret_env_reads_only_allowed_variables(
    enabled: Configure, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    monkeypatch.setenv("SERVER_ONLY", "do-not-read-me")
    enabled(ENV_ALLOW="TOKEN")
    with pytest.raises(InputValidationError, match="AIPARTNERUPFLOW_COMMAND_SECRET_ENV"):
        await run({"command": ["env"], "secret_env": {"TOKEN": "SERVER_ONLY"}, "cwd": str(workdir)})


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ({"command": ""}, InputValidationError, "empty"),
        ({"command": "   "}, InputValidationError, "empty"),
        ({"command": []}, InputValidationError, "non-empty list"),
        ({"command": ["ls", 3]}, InputValidationError, r"command\[1\]"),
        ({"command": ["ls", "a\x00b"]}, InputValidationError, "NUL"),
        ({"command": "ls 'unclosed"}, InputValidationError, "quotes"),
        ({"command": None}, InputValidationError, "command"),
        ({"command": ["ls"], "timeout": float("nan")}, InputValidationError, "timeout"),
        ({"command": ["ls"], "timeout": float("inf")}, InputValidationError, "timeout"),
        ({"command": ["ls"], "timeout": 10**9}, CommandRefusedError, "MAX_TIMEOUT"),
        ({"command": ["ls"], "stdin": "\ud800"}, InputValidationError, "stdin"),
        ({"command": ["ls"], "allowed_exit_codes": []}, InputValidationError, "exit_codes"),
        ({"command": ["ls"], "env": ["A=1"]}, InputValidationError, "env"),
    ],
)
async def test_hostile_inputs_are_refused(
    enabled: Configure, inputs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await run(inputs)


async def test_an_argument_too_long_for_the_os_fails_permanently(enabled: Configure) -> None:
    from aipartnerupflow.core.errors import PermanentError

    with pytest.raises(PermanentError, match="could not be started"):
        await run({"command": [PYTHON, "-c", "pass", "x" * 300_000]})
