"""Fixtures of the ssh executor tests: a real sshd on loopback, settings that reach it.

Helpers live in ``ssh_testkit``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ssh_testkit import Sshd, start_sshd

from aipartnerupflow.core.settings import reload_settings

pytest_plugins = ["aipartnerupflow.testing.fixtures"]


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    """One sshd for the session (its own temporary directory, readable by the test user)."""
    directory = Path(tempfile.mkdtemp(prefix="apflow-sshd-"))
    server = start_sshd(directory)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def known_hosts(tmp_path: Path, sshd: Sshd) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(sshd.known_hosts_line() + "\n")
    return path


@pytest.fixture(autouse=True)
def ssh_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Settings of every test: ssh_executor enabled, loopback allowed, a known_hosts file."""
    for name in (
        "AIPARTNERUPFLOW_SSH_KNOWN_HOSTS",
        "AIPARTNERUPFLOW_SSH_ALLOW_ACCEPT_NEW",
        "AIPARTNERUPFLOW_SSH_ALLOWED_HOSTS",
        "AIPARTNERUPFLOW_ALLOWED_HOSTS",
        "AIPARTNERUPFLOW_SSH_ALLOWED_COMMANDS",
        "AIPARTNERUPFLOW_SSH_KEY_DIRS",
        "AIPARTNERUPFLOW_SSH_SECRET_ENV",
        "AIPARTNERUPFLOW_SECRET_ENV",
        "AIPARTNERUPFLOW_SSH_ALLOW_AGENT",
        "AIPARTNERUPFLOW_ALLOW_PRIVATE",
        "SSH_AUTH_SOCK",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIPARTNERUPFLOW_ENABLED_EXECUTORS", "ssh_executor")
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("AIPARTNERUPFLOW_SSH_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    reload_settings()
    yield
    reload_settings()


@pytest.fixture
def key_inputs(sshd: Sshd, known_hosts: Path) -> dict[str, Any]:
    """Inputs that log in with the user's private key, given inline."""
    return {
        "host": sshd.host,
        "port": sshd.port,
        "username": sshd.user,
        "private_key": sshd.user_key.read_text(),
    }


@pytest.fixture
def password_inputs(sshd: Sshd, known_hosts: Path) -> dict[str, Any]:
    return {
        "host": sshd.host,
        "port": sshd.port,
        "username": sshd.user,
        "password": sshd.password,
    }
