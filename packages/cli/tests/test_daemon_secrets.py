"""``apflow daemon start -o jwt_secret_key=...``: the secret reaches the server but no process
listing, ``daemon.json`` or ``daemon status --json`` (a real daemon, really started)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
from apflow_cli_testkit import PLUGIN, Env, free_port

Run = Callable[..., subprocess.CompletedProcess[str]]

SECRET = "daemon-secret-key-that-is-long-enough-for-hs256"


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_secret_options_stay_out_of_argv_state_file_and_status(sandbox: Env, apflow: Run) -> None:
    port = free_port()
    started = apflow(
        "--plugin", PLUGIN, "daemon", "start", "--port", str(port),
        "-o", f"jwt_secret_key={SECRET}", "-o", "card_cache_seconds=7",
        timeout=120,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        state_text = (sandbox.daemon_dir / "daemon.json").read_text()
        state = json.loads(state_text)
        assert SECRET not in state_text
        assert state["options"] == ["jwt_secret_key=***", "card_cache_seconds=7"]
        assert SECRET not in _cmdline(state["pid"])
        assert "card_cache_seconds=7" in _cmdline(state["pid"])  # other options still argv
        status = apflow("daemon", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert SECRET not in status.stdout
        # the server did get the secret: auth is on
        base = f"http://127.0.0.1:{port}"
        denied = httpx.post(f"{base}/", json={}, headers={"A2A-Version": "1.0"}, timeout=30)
        assert denied.status_code == 401
        card = httpx.get(f"{base}/.well-known/agent-card.json", timeout=30)
        assert card.headers["cache-control"] == "public, max-age=7"
        # a restart without the secret says what to do instead of starting without auth
        restart = apflow("daemon", "restart", timeout=120)
        assert restart.returncode != 0
        assert "jwt_secret_key hold a secret" in restart.stderr
        assert apflow("daemon", "status").returncode == 0  # still running: refused before stop
    finally:
        stopped = apflow("daemon", "stop")
        assert stopped.returncode == 0, stopped.stderr
    logs = (sandbox.daemon_dir / "daemon.log").read_text()
    assert SECRET not in logs


def test_cli_shows_database_urls_through_the_core_redaction() -> None:
    from aipartnerupflow.cli._common import redact_url as cli_redact

    assert cli_redact("postgresql://u@h/db?password=hunter2") == "postgresql://u@h/db?password=***"
    assert "hunter2" not in cli_redact("host=h dbname=d password=hunter2")
