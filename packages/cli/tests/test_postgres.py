"""Scale-out on PostgreSQL: ``apflow worker`` processes run trees queued by ``run flow --queue``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from apflow_cli_testkit import APFLOW, PLUGIN, Env

pytestmark = pytest.mark.postgres

ADMIN_URL = os.environ.get(
    "APFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database, dropped afterwards."""
    import psycopg

    name = f"apflow_cli_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def tree(marker: str | None = None, seconds: float = 0.3) -> str:
    slow: dict[str, object] = {"seconds": seconds}
    if marker:
        slow["started_file"] = marker
    return json.dumps(
        [
            {"id": "a", "name": "A", "schemas": {"method": "cli_echo"}, "inputs": {"text": "q"}},
            {
                "id": "b",
                "name": "B",
                "parent_id": "a",
                "dependencies": ["a"],
                "schemas": {"method": "cli_slow"},
                "inputs": slow,
            },
        ]
    )


def start_worker(sandbox: Env, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(APFLOW),
            "--database-url",
            url,
            "--plugin",
            PLUGIN,
            "worker",
            "-c",
            "2",
            "--poll-seconds",
            "0.2",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=sandbox.environ(),
        cwd=sandbox.root / "work",
    )


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def migrate(apflow: Run, url: str) -> None:
    """Create the schema first: two processes migrating one fresh database at once collide."""
    upgraded = apflow("--database-url", url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr


def test_worker_runs_queued_tree(sandbox: Env, apflow: Run, pg_url: str) -> None:
    migrate(apflow, pg_url)
    worker = start_worker(sandbox, pg_url)
    try:
        queued = apflow(
            "--database-url",
            pg_url,
            "--plugin",
            PLUGIN,
            "run",
            "flow",
            "--queue",
            "--json",
            "--tasks",
            tree(),
            timeout=120,
        )
        assert queued.returncode == 0, queued.stderr
        data = json.loads(queued.stdout)
        assert data["status"] == "completed"
        assert {t["id"]: t["result"] for t in data["tasks"]}["b"] == {"slept": 0.3}

        later = apflow(
            "--database-url",
            pg_url,
            "--plugin",
            PLUGIN,
            "run",
            "flow",
            "--queue",
            "--no-wait",
            "--json",
            "--new-ids",
            "--tasks",
            tree(),
            timeout=60,
        )
        assert later.returncode == 0, later.stderr
        root = json.loads(later.stdout)
        assert root["status"] == "queued"
        watched = apflow(
            "--database-url",
            pg_url,
            "tasks",
            "watch",
            root["root_id"],
            "--interval",
            "0.2",
            "--no-live",
            timeout=120,
        )
        assert watched.returncode == 0, watched.stderr
        assert "completed" in watched.stdout
    finally:
        out, err = stop(worker)
    assert worker.returncode == 0, err
    stats = json.loads(out)
    assert stats["finished"] >= 4


def test_queue_without_worker_then_ctrl_c(sandbox: Env, apflow: Run, pg_url: str) -> None:
    migrate(apflow, pg_url)
    proc = subprocess.Popen(
        [
            str(APFLOW),
            "--database-url",
            pg_url,
            "--plugin",
            PLUGIN,
            "run",
            "flow",
            "--queue",
            "--json",
            "--tasks",
            tree(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=sandbox.environ(),
        cwd=sandbox.root / "work",
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = apflow("--database-url", pg_url, "tasks", "count", "--json")
        if counts.returncode == 0 and json.loads(counts.stdout)["total"] == 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert json.loads(out)["status"] == "cancelled"
    counts = json.loads(apflow("--database-url", pg_url, "tasks", "count", "--json").stdout)
    assert counts["cancelled"] == 2 and counts["in_progress"] == 0


def test_queue_needs_postgres(apflow: Run) -> None:
    proc = apflow("run", "flow", "--queue", "--tasks", tree())
    assert proc.returncode == 2
    assert "--queue needs a PostgreSQL database" in proc.stderr
    assert "needs --queue" in apflow("run", "flow", "--no-wait", "--tasks", tree()).stderr
