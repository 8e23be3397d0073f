"""Fixtures for the CLI tests: an isolated home, database and daemon directory per test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from apflow_cli_testkit import (
    APFLOW,
    FAKE_CLI_PLUGIN,
    FAKE_SERVER,
    TESTS_DIR,
    Env,
    make_dist,
)


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """The CLI loads .env files into os.environ (as it should); undo that after each test."""
    saved = dict(os.environ)
    _forget_settings()
    yield
    os.environ.clear()
    os.environ.update(saved)
    _forget_settings()


def _forget_settings() -> None:
    """Settings are read once per process (or CLI invocation): forget them between tests."""
    module = sys.modules.get("aipartnerupflow.core.settings")
    if module is not None:
        module.reload_settings()


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """Never the user's home, database or daemon: everything under tmp_path."""
    for key in list(os.environ):
        if key.startswith("AIPARTNERUPFLOW_") or key == "XDG_STATE_HOME":
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "site").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    db_path = tmp_path / "db" / "tasks.duckdb"
    env = Env(tmp_path, f"duckdb:///{db_path}", db_path, tmp_path / "daemon")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AIPARTNERUPFLOW_DATABASE_URL", env.db_url)
    monkeypatch.setenv("AIPARTNERUPFLOW_DAEMON_DIR", str(env.daemon_dir))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    return env


@pytest.fixture
def cli(sandbox: Env) -> Callable[..., Any]:
    """Invoke the app in-process: ``cli("tasks", "list", input=None)``."""
    from aipartnerupflow.cli.main import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(app, list(args), input=input, env=env)

    return invoke


@pytest.fixture
def apflow(sandbox: Env) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``apflow`` executable."""

    def run(
        *args: str, input: str | None = None, timeout: float = 60, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(APFLOW), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=sandbox.environ(**env),
            cwd=sandbox.root / "work",
        )

    return run


@pytest.fixture
def fake_server(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``fake`` server plugin in ``aipartnerupflow.servers`` (in-process and subprocesses)."""
    site = sandbox.root / "site"
    make_dist(
        site,
        "fake_apflow_server",
        {"aipartnerupflow.servers": {"fake": "fake_apflow_server:serve"}},
        {"fake_apflow_server": FAKE_SERVER},
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("fake_apflow_server", None)


@pytest.fixture
def fake_cli_plugin(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``hello`` sub-command in ``aipartnerupflow.cli``."""
    site = sandbox.root / "site"
    make_dist(
        site,
        "fake_apflow_cli",
        {"aipartnerupflow.cli": {"hello": "fake_apflow_cli:app"}},
        {"fake_apflow_cli": FAKE_CLI_PLUGIN},
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("fake_apflow_cli", None)


@pytest.fixture
def install_dist(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Install a tiny distribution into the sandbox's site directory (on sys.path)."""
    site = sandbox.root / "site"
    monkeypatch.syspath_prepend(str(site))

    def install(
        name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None
    ) -> None:
        make_dist(site, name, entry_points, modules or {})

    return install
