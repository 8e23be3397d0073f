"""The kit's program allow-list (aipartnerupflow.core.executors.programs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executors.programs import (
    ProgramRefusedError,
    check_env_name,
    resolve_cwd,
    resolve_program,
)

SEARCH = "/usr/local/bin:/usr/bin:/bin"


def _resolve(program: str, allowed: list[str], **kwargs: object) -> str:
    return resolve_program(
        program,
        allowed=allowed,
        search_path=SEARCH,
        allowed_setting="X_ALLOWED",
        search_setting="X_SEARCH",
        **kwargs,  # type: ignore[arg-type]
    )


def test_matched_on_resolved_paths(tmp_path: Path) -> None:
    link = tmp_path / "my-sh"
    link.symlink_to("/bin/sh")
    real = os.path.realpath("/bin/sh")
    assert _resolve(str(link), ["/bin/sh"]) == real  # a link to an allowed program
    assert _resolve("sh", ["/bin/sh"]) == real  # a bare name, looked up in the search path
    with pytest.raises(ProgramRefusedError, match="X_ALLOWED"):
        _resolve("/bin/sh", [])
    with pytest.raises(ProgramRefusedError, match=r"relative path.*X_SEARCH"):
        _resolve("./sh", ["/bin/sh"])
    with pytest.raises(InputValidationError, match="does not exist"):
        _resolve(str(tmp_path / "missing"), ["/bin/sh"])


def test_execute_listed_runs_the_entry_as_written() -> None:
    # A venv's python is a link; started through its real path it would lose the venv.
    venv_python = sys.executable
    assert _resolve(venv_python, [venv_python], execute_listed=True) == venv_python
    assert _resolve(venv_python, [venv_python]) == os.path.realpath(venv_python)


def test_own_refusal_class_and_variables(tmp_path: Path) -> None:
    class Mine(ProgramRefusedError):
        pass

    with pytest.raises(Mine):
        _resolve("/bin/sh", [], refused=Mine)
    with pytest.raises(Mine, match="LD_PRELOAD may never be set"):
        check_env_name("LD_PRELOAD", "env.LD_PRELOAD", allowed=["*"], setting="S", refused=Mine)
    assert check_env_name("FOO", "env.FOO", allowed=["*"], setting="S") == "FOO"
    with pytest.raises(ProgramRefusedError, match="list it in S"):
        check_env_name("FOO", "env.FOO", allowed=["BAR"], setting="S")
    assert resolve_cwd(str(tmp_path), allowed_dirs=[str(tmp_path.parent)], setting="D") == str(
        tmp_path.resolve()
    )
    with pytest.raises(ProgramRefusedError, match="D is empty"):
        resolve_cwd(str(tmp_path), allowed_dirs=[], setting="D")
