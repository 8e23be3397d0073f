"""Fixtures for the stdio executors: settings from a clean environment, real programs."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aipartnerupflow.core.settings import reload_settings

pytest_plugins = ["aipartnerupflow.testing.fixtures"]

#: The interpreter running the tests, resolved (what command_executor executes).
PYTHON = os.path.realpath(sys.executable)

Configure = Callable[..., None]


def which(name: str) -> str:
    """The real path of a standard program (the tests need ls, echo, cat, env, pwd, rm)."""
    found = shutil.which(name, path="/usr/bin:/bin")
    assert found, f"the tests need {name} in /usr/bin or /bin"
    return os.path.realpath(found)


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No AIPARTNERUPFLOW_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AIPARTNERUPFLOW_"):
            monkeypatch.delenv(name)
    reload_settings()
    yield
    reload_settings()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An allowed directory for the command tests."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Configure:
    """``configure(ALLOWED_EXECUTABLES="ls", ...)`` sets AIPARTNERUPFLOW_COMMAND_* variables.

    ``ENABLED_EXECUTORS`` (no COMMAND_ prefix) is set too; settings are re-read.
    """

    def apply(**values: str) -> None:
        for key, value in values.items():
            name = (
                f"AIPARTNERUPFLOW_{key}"
                if key == "ENABLED_EXECUTORS"
                else (f"AIPARTNERUPFLOW_COMMAND_{key}")
            )
            monkeypatch.setenv(name, value)
        reload_settings()

    return apply


@pytest.fixture
def enabled(configure: Configure, workdir: Path) -> Configure:
    """command_executor enabled, with ls, echo, cat, env, pwd and Python allowed in ``workdir``."""
    configure(
        ENABLED_EXECUTORS="command_executor",
        ALLOWED_EXECUTABLES=",".join(["ls", "echo", "cat", "env", "pwd", PYTHON]),
        ALLOWED_DIRS=str(workdir),
    )
    return configure
