"""Shared helpers for cross-package scenarios: build wheels with uv, make clean venvs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed for the integration tests: pip install uv")
    return uv


def _env() -> dict[str, str]:
    """The environment for uv and venv subprocesses: no outer venv or project leaks in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "PYTHONPATH"}
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def run(cmd: Sequence[str | Path], cwd: Path = REPO, timeout: float = 600) -> str:
    """Run a command; on failure, fail the test with its output. Returns stdout."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout


class Venv:
    """A clean virtual environment made with ``uv venv``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        run([_uv(), "venv", "--quiet", "--python", sys.executable, path])
        self.python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    def install(self, *requirements: str | Path) -> None:
        """``uv pip install`` into this venv (wheel paths or requirement strings)."""
        run([_uv(), "pip", "install", "--quiet", "--python", self.python, *requirements])

    def python_code(self, code: str, cwd: Path | None = None) -> str:
        """Run a Python snippet with this venv's interpreter; returns its stdout."""
        return self.run("-c", code, cwd=cwd)

    def run(self, *args: str | Path, cwd: Path | None = None) -> str:
        """Run this venv's interpreter with ``args``; returns its stdout."""
        return run([self.python, *args], cwd=cwd or self.path)


@pytest.fixture(scope="session")
def uv() -> str:
    """Path of the uv executable."""
    return _uv()


@pytest.fixture(scope="session")
def build_wheel(uv: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build one wheel: ``build_wheel(package="aipartnerupflow-core")`` or ``build_wheel(path)``."""

    def build(source: Path | None = None, *, package: str | None = None) -> Path:
        out = tmp_path_factory.mktemp("wheels")
        if package is not None:
            run([uv, "build", "--quiet", "--wheel", "--package", package, "--out-dir", out])
        else:
            assert source is not None
            run([uv, "build", "--quiet", "--wheel", "--no-sources", "--out-dir", out, source])
        (wheel,) = out.glob("*.whl")
        return wheel

    return build


@pytest.fixture(scope="session")
def core_wheel(build_wheel: Callable[..., Path]) -> Path:
    """The aipartnerupflow-core wheel built from this checkout."""
    return build_wheel(package="aipartnerupflow-core")


@pytest.fixture(scope="session")
def testing_wheel(build_wheel: Callable[..., Path]) -> Path:
    """The aipartnerupflow-testing wheel built from this checkout."""
    return build_wheel(package="aipartnerupflow-testing")


@pytest.fixture
def make_venv(tmp_path: Path) -> Callable[[], Venv]:
    """Factory of clean venvs under this test's tmp_path."""
    count = 0

    def make() -> Venv:
        nonlocal count
        count += 1
        return Venv(tmp_path / f"venv{count}")

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After a run that included the docs test: how many blocks ran, and which did not, why."""
    module = sys.modules.get("docs_blocks")
    if module is None:  # the docs test was not collected
        return
    blocks = module.blocks()
    skipped = [b for b in blocks if not b.runs]
    terminalreporter.section("documentation code blocks")
    terminalreporter.write_line(
        f"{len(blocks)} blocks: {len(blocks) - len(skipped)} run or parsed, "
        f"{len(skipped)} marked no-run:"
    )
    for block in skipped:
        terminalreporter.write_line(f"  {block.id}: {block.no_run or 'NOT MARKED'}")
