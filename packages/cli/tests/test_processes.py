"""The real ``apflow`` executable: start-up imports, Ctrl-C, the DuckDB lock, the daemon."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apflow_cli_testkit import (
    APFLOW,
    FAKE_SERVER,
    PLUGIN,
    Env,
    free_port,
    slow_tree,
    start_apflow,
    wait_for,
)

Run = Callable[..., subprocess.CompletedProcess[str]]

HEAVY = (
    "sqlalchemy",
    "duckdb",
    "duckdb_engine",
    "pydantic",
    "alembic",
    "jsonschema",
    "rich.progress",
    "rich.live",
    "rich.markdown",
    "rich.syntax",
    "pygments",
    "aipartnerupflow.core.manager",
    "aipartnerupflow.core.engine",
    "dotenv",
    "asyncio",
)


# -- start-up ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "flow", "--help"],
        ["tasks", "--help"],
        ["tasks", "list", "--help"],
        ["daemon", "start", "--help"],
        ["executors", "--help"],
        ["--version"],
    ],
)
def test_help_imports_nothing_heavy(sandbox: Env, args: list[str]) -> None:
    probe = (
        "import sys\n"
        "from aipartnerupflow.cli.main import app\n"
        "try:\n"
        f"    app({args!r}, prog_name='apflow')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    proc = sandbox.python("-c", probe)
    assert "HEAVY=" in proc.stderr, proc.stderr
    loaded = proc.stderr.split("HEAVY=", 1)[1].strip()
    assert loaded == "", f"{args} imported {loaded}"


def test_python_dash_m(sandbox: Env) -> None:
    proc = sandbox.python("-m", "aipartnerupflow.cli", "--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("aipartnerupflow ")


def test_aipartnerupflow_alias(sandbox: Env) -> None:
    alias = APFLOW.with_name("aipartnerupflow")
    proc = subprocess.run(
        [str(alias), "version"], capture_output=True, text=True, env=sandbox.environ(), timeout=60
    )
    assert proc.returncode == 0
    assert "aipartnerupflow" in proc.stdout


# -- run flow as a process -----------------------------------------------------------------


def test_run_flow_process_json_and_logs(apflow: Run) -> None:
    tasks = json.dumps(
        [{"id": "a", "name": "A", "schemas": {"method": "cli_echo"}, "inputs": {"text": "x"}}]
    )
    proc = apflow(
        "--log-level", "DEBUG", "--plugin", PLUGIN, "run", "flow", "--json", "--tasks", tasks
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "completed"


def test_run_flow_process_closes_the_database_before_exit(sandbox: Env, apflow: Run) -> None:
    """The store is checkpointed and closed by the command itself, not by interpreter shutdown."""
    tasks = json.dumps(
        [{"name": "W", "schemas": {"method": "cli_echo"}, "inputs": {"text": "kept"}}]
    )
    proc = apflow("--plugin", PLUGIN, "run", "flow", "--json", "--tasks", tasks)
    assert proc.returncode == 0, proc.stderr
    assert sandbox.db_path.exists()
    assert not sandbox.db_path.with_name(sandbox.db_path.name + ".wal").exists()
    counted = apflow("tasks", "count", "--json")
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["completed"] == 1


def test_seed_readme_examples(sandbox: Env, apflow: Run) -> None:
    """The README's CLI usage, with a real executor id; running it twice works too."""
    tasks = (
        '[{"id": "task1", "name": "Task 1", "schemas": {"method": "cli_echo"}, '
        '"inputs": {"text": "value"}}]'
    )
    long_name = subprocess.run(
        [
            str(APFLOW.with_name("aipartnerupflow")),
            "--plugin",
            PLUGIN,
            "run",
            "flow",
            "--tasks",
            tasks,
        ],
        capture_output=True,
        text=True,
        env=sandbox.environ(),
        timeout=60,
    )
    assert long_name.returncode == 0, long_name.stderr
    short = apflow("--plugin", PLUGIN, "run", "flow", "--tasks", tasks)
    assert short.returncode == 0, short.stderr
    assert "fresh ids" in short.stderr
    legacy = apflow("--plugin", PLUGIN, "run", "flow", "cli_echo", "--inputs", '{"text": "value"}')
    assert legacy.returncode == 0, legacy.stderr
    assert json.loads(apflow("tasks", "count", "--json").stdout)["completed"] == 3


def test_user_error_in_process_has_no_traceback(apflow: Run) -> None:
    proc = apflow("run", "flow", "--tasks", '[{"name": }]')
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "line 1, column 11" in proc.stderr


def test_stdin_tasks_in_process(apflow: Run) -> None:
    tasks = json.dumps(
        [{"name": "S", "schemas": {"method": "cli_echo"}, "inputs": {"text": "piped"}}]
    )
    proc = apflow("--plugin", PLUGIN, "run", "flow", "--tasks-file", "-", "--json", input=tasks)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tasks"][0]["result"] == {"echo": {"text": "piped"}}


@pytest.mark.parametrize(
    ("sig", "json_output"), [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)]
)
def test_ctrl_c_cancels_the_tree(sandbox: Env, apflow: Run, sig: int, json_output: bool) -> None:
    marker = sandbox.root / "started"
    args = ["--plugin", PLUGIN, "run", "flow", "--tasks", slow_tree(marker)]
    proc = start_apflow(sandbox, *args, *(["--json"] if json_output else ["--no-live"]))
    try:
        wait_for(marker)
        time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "cancelled" in err
    if json_output:
        data = json.loads(out)
        assert data["status"] == "cancelled"
    counts = json.loads(apflow("tasks", "count", "--json").stdout)
    assert counts["in_progress"] == 0
    assert counts["pending"] == 0
    assert counts["cancelled"] == 3, counts
    statuses = json.loads(apflow("tasks", "status", "root", "kid", "after", "--json").stdout)
    assert {s["status"] for s in statuses} == {"cancelled"}


def test_locked_database_is_one_clear_line(sandbox: Env, apflow: Run) -> None:
    marker = sandbox.root / "started"
    holder = start_apflow(
        sandbox, "--plugin", PLUGIN, "run", "flow", "--json", "--tasks", slow_tree(marker)
    )
    try:
        wait_for(marker)
        proc = apflow("tasks", "list")
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert f"process {holder.pid}" in lines[0]
        assert "--database-url" in lines[0]
    finally:
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=60)
    assert holder.returncode == 130


# -- the daemon, for real ------------------------------------------------------------------


@pytest.fixture
def fake_site(sandbox: Env) -> Path:
    from apflow_cli_testkit import make_dist

    site: Path = sandbox.root / "site"
    make_dist(
        site,
        "fake_apflow_server",
        {
            "aipartnerupflow.servers": {
                "fake": "fake_apflow_server:serve",
                "crashy": "fake_apflow_server:crash",
            }
        },
        {"fake_apflow_server": FAKE_SERVER + CRASH},
    )
    return site


CRASH = """

def crash(host, port, database_url=None, **options):
    raise SystemExit("the crashy server refuses to start: bad configuration")
"""


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_daemon_lifecycle(sandbox: Env, apflow: Run, fake_site: Path) -> None:
    port = free_port()
    started = apflow("daemon", "start", "fake", "--port", str(port), "-o", 'flavour="mint"')
    assert started.returncode == 0, started.stderr
    assert "Daemon started" in started.stdout
    status = json.loads(apflow("daemon", "status", "--json").stdout)
    try:
        assert status["running"] is True
        assert status["answering"] is True
        assert status["protocol"] == "fake"
        assert status["port"] == port
        pid = status["pid"]
        served = get_json(f"http://127.0.0.1:{port}/")
        assert served["pid"] == pid
        assert served["database_url"] == sandbox.db_url
        assert served["options"] == {"flavour": "mint"}

        again = apflow("daemon", "start", "fake", "--port", str(port))
        assert again.returncode == 1
        assert "already running" in again.stderr

        human = apflow("daemon", "status")
        assert human.returncode == 0
        assert f"pid {pid}" in human.stdout

        restarted = apflow("daemon", "restart")
        assert restarted.returncode == 0, restarted.stderr
        status2 = json.loads(apflow("daemon", "status", "--json").stdout)
        assert status2["pid"] != pid
        assert not pid_alive(pid)
        assert (status2["protocol"], status2["port"]) == ("fake", port)
        assert get_json(f"http://127.0.0.1:{port}/")["options"] == {"flavour": "mint"}

        logs = apflow("daemon", "logs", "-n", "20")
        assert logs.returncode == 0
        assert f"fake server on 127.0.0.1:{port}" in logs.stdout
    finally:
        stopped = apflow("daemon", "stop")
    assert stopped.returncode == 0
    assert "Daemon stopped" in stopped.stdout
    assert not pid_alive(status2["pid"])
    final = apflow("daemon", "status")
    assert final.returncode == 3
    assert not (sandbox.daemon_dir / "daemon.pid").exists()


def test_daemon_restart_changes_port(sandbox: Env, apflow: Run, fake_site: Path) -> None:
    port, other = free_port(), free_port()
    assert apflow("daemon", "start", "fake", "--port", str(port)).returncode == 0
    try:
        moved = apflow("daemon", "restart", "--port", str(other))
        assert moved.returncode == 0, moved.stderr
        status = json.loads(apflow("daemon", "status", "--json").stdout)
        assert (status["protocol"], status["port"]) == ("fake", other)
        assert get_json(f"http://127.0.0.1:{other}/")["pid"] == status["pid"]
    finally:
        apflow("daemon", "stop")


def test_daemon_restart_keeps_its_database_and_settings(
    sandbox: Env, apflow: Run, fake_site: Path
) -> None:
    port = free_port()
    first = f"duckdb:///{sandbox.root / 'first.duckdb'}"
    other = f"duckdb:///{sandbox.root / 'other.duckdb'}"
    started = apflow("--database-url", first, "daemon", "start", "fake", "--port", str(port))
    assert started.returncode == 0, started.stderr
    try:
        # the environment of the restarting shell names another database: it must not win
        moved = apflow("daemon", "restart", AIPARTNERUPFLOW_DATABASE_URL=other)
        assert moved.returncode == 0, moved.stderr
        status = json.loads(apflow("daemon", "status", "--json").stdout)
        assert (status["database_url"], status["port"]) == (first, port)
        assert apflow("daemon", "stop").returncode == 0
        again = apflow("daemon", "restart")  # nothing runs: the last settings still apply
        assert again.returncode == 0, again.stderr
        status = json.loads(apflow("daemon", "status", "--json").stdout)
        assert (status["protocol"], status["port"], status["database_url"]) == ("fake", port, first)
    finally:
        apflow("daemon", "stop")


def test_daemon_start_failure_shows_log(sandbox: Env, apflow: Run, fake_site: Path) -> None:
    proc = apflow("daemon", "start", "crashy", "--port", str(free_port()))
    assert proc.returncode == 1
    assert "refuses to start" in proc.stderr
    assert "exited during start-up" in proc.stderr
    assert not (sandbox.daemon_dir / "daemon.pid").exists()


def test_daemon_port_in_use(apflow: Run, fake_site: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = apflow("daemon", "start", "fake", "--port", str(port))
    assert proc.returncode == 2
    assert "already in use" in proc.stderr


def test_daemon_restart_recovers_stale_pid(sandbox: Env, apflow: Run, fake_site: Path) -> None:
    sandbox.daemon_dir.mkdir(parents=True)
    port = free_port()
    (sandbox.daemon_dir / "daemon.pid").write_text("999999\n")
    (sandbox.daemon_dir / "daemon.json").write_text(
        json.dumps({"pid": 999999, "protocol": "fake", "host": "127.0.0.1", "port": port})
    )
    proc = apflow("daemon", "restart")
    try:
        assert proc.returncode == 0, proc.stderr
        status = json.loads(apflow("daemon", "status", "--json").stdout)
        assert status["running"]
        assert status["port"] == port
        assert status["protocol"] == "fake"
    finally:
        apflow("daemon", "stop")


def test_daemon_holding_the_database(sandbox: Env, apflow: Run, fake_site: Path) -> None:
    """With the daemon holding the DuckDB file, commands name it and say what to do."""
    holder = FAKE_SERVER.replace(
        "    server = http.server.HTTPServer(",
        "    import duckdb\n"
        "    conn = duckdb.connect(database_url.removeprefix('duckdb:///'))\n"
        "    server = http.server.HTTPServer(",
    )
    (fake_site / "fake_apflow_server.py").write_text(holder + CRASH)
    port = free_port()
    assert apflow("db", "upgrade").returncode == 0
    started = apflow("daemon", "start", "fake", "--port", str(port))
    assert started.returncode == 0, started.stderr
    try:
        proc = apflow("tasks", "list")
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert "held by the apflow daemon" in proc.stderr
        assert f"http://127.0.0.1:{port}" in proc.stderr
        assert "apflow daemon stop" in proc.stderr
    finally:
        apflow("daemon", "stop")
    assert apflow("tasks", "list").returncode == 0


def test_tasks_commands_go_through_the_a2a_daemon(sandbox: Env, apflow: Run) -> None:
    """With the real A2A server holding the DuckDB file, tasks commands use its API."""
    tasks = json.dumps(
        [
            {
                "id": "root",
                "name": "Root",
                "schemas": {"method": "cli_echo"},
                "inputs": {"text": "x"},
            },
            {
                "id": "kid",
                "name": "Kid",
                "parent_id": "root",
                "schemas": {"method": "cli_echo"},
                "inputs": {"text": "y"},
            },
        ]
    )
    assert apflow("--plugin", PLUGIN, "run", "flow", "--json", "--tasks", tasks).returncode == 0
    port = free_port()
    started = apflow("--plugin", PLUGIN, "daemon", "start", "--port", str(port), timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        listed = apflow("tasks", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert f"http://127.0.0.1:{port}" in listed.stderr
        assert [t["id"] for t in json.loads(listed.stdout)] == ["root"]
        got = json.loads(apflow("tasks", "get", "kid", "--json").stdout)
        assert got["result"] == {"echo": {"text": "y"}}
        tree = json.loads(apflow("tasks", "tree", "kid", "--json").stdout)
        assert [c["id"] for c in tree["children"]] == ["kid"]
        counts = json.loads(apflow("tasks", "count", "--json").stdout)
        assert counts["completed"] == 2
        copied = json.loads(apflow("tasks", "copy", "root", "--json").stdout)
        assert copied["tasks"] == 2
        one_tree = json.loads(apflow("tasks", "count", "--root-id", "root", "--json").stdout)
        assert one_tree["completed"] == 2 and one_tree["total"] == 2
        forced = apflow("tasks", "delete", "root", "--force")
        assert forced.returncode == 2 and "cancel them first" in forced.stderr
        gone = apflow("tasks", "delete", "nope", "--force")
        assert gone.returncode == 2 and "no task with id 'nope'" in gone.stderr
        missing = apflow("tasks", "get", "nope")
        assert missing.returncode == 2 and "no task with id 'nope'" in missing.stderr
        remote = apflow("run", "flow", "--json", "--tasks", tasks)
        assert remote.returncode == 0, remote.stderr
        assert "running the tree on it" in remote.stderr and "fresh ids" in remote.stderr
        data = json.loads(remote.stdout)
        assert data["status"] == "completed" and len(data["tasks"]) == 2
        legacy = apflow("run", "flow", "cli_echo", "--inputs", '{"text": "z"}', "--json")
        assert json.loads(legacy.stdout)["tasks"][0]["result"] == {"echo": {"text": "z"}}
        assert apflow("run", "flow", "--user-id", "u", "--tasks", tasks).returncode == 2

        marker = sandbox.root / "started"
        proc = start_apflow(sandbox, "run", "flow", "--json", "--tasks", slow_tree(marker))
        wait_for(marker)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 130, err
        cancelled = json.loads(out)
        assert cancelled["status"] == "cancelled"
        ids = [t["id"] for t in cancelled["tasks"]]
        statuses = json.loads(apflow("tasks", "status", *ids, "--json").stdout)
        assert {s["status"] for s in statuses} == {"cancelled"}
        counts = json.loads(apflow("tasks", "count", "--json").stdout)
        assert counts["in_progress"] == 0
        assert counts["pending"] == 2  # the copy made above
        blocked = apflow("--plugin", PLUGIN, "executors", "list")
        assert blocked.returncode == 0  # needs no database
    finally:
        apflow("daemon", "stop")


def test_daemon_keeps_the_database_password_private(
    sandbox: Env, apflow: Run, fake_site: Path
) -> None:
    """A password in the database URL is neither on the daemon's command line (``ps``), nor
    readable by other users in its files, nor printed by ``daemon status``/``info``."""
    url = "postgresql://qa:s3cretPW@127.0.0.1:1/qa"
    port = free_port()
    started = apflow("--database-url", url, "daemon", "start", "fake", "--port", str(port))
    assert started.returncode == 0, started.stderr
    try:
        pid = json.loads((sandbox.daemon_dir / "daemon.json").read_text())["pid"]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "serve fake" in cmdline
        assert "s3cretPW" not in cmdline
        assert get_json(f"http://127.0.0.1:{port}/")["database_url"] == url  # via the env
        for name in ("daemon.json", "daemon.pid", "daemon.log"):
            mode = (sandbox.daemon_dir / name).stat().st_mode & 0o777
            assert mode == 0o600, f"{name} has mode {oct(mode)}"
        status = apflow("daemon", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["database_url"] == "postgresql://qa:***@127.0.0.1:1/qa"
        info = apflow("--database-url", url, "info", "--json")
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["daemon"]["running"]["pid"] == pid
        for proc in (started, status, info):
            assert "s3cretPW" not in proc.stdout + proc.stderr
        # without a URL in the environment, restart takes it back from daemon.json
        restarted = apflow("daemon", "restart", AIPARTNERUPFLOW_DATABASE_URL="")
        assert restarted.returncode == 0, restarted.stderr
        assert get_json(f"http://127.0.0.1:{port}/")["database_url"] == url
    finally:
        apflow("daemon", "stop")


def test_run_flow_survives_daemon_restart_and_reports_daemon_stop(
    sandbox: Env, apflow: Run
) -> None:
    """A run streaming from the daemon follows it through ``daemon restart`` (the tree ends
    cancelled, one JSON document); after ``daemon stop`` it ends with one clear line, exit 1."""
    port = free_port()
    started = apflow("--plugin", PLUGIN, "daemon", "start", "--port", str(port), timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        marker = sandbox.root / "started"
        proc = start_apflow(sandbox, "run", "flow", "--json", "--tasks", slow_tree(marker))
        wait_for(marker)
        restarted = apflow("daemon", "restart", timeout=120)
        assert restarted.returncode == 0, restarted.stderr
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 1, err
        assert "Traceback" not in err and "Error" not in err
        result = json.loads(out)
        assert result["status"] == "cancelled"
        assert {t["status"] for t in result["tasks"]} == {"cancelled"}

        marker.unlink()
        proc = start_apflow(sandbox, "run", "flow", "--no-live", "--tasks", slow_tree(marker))
        wait_for(marker)
        stopped = apflow("daemon", "stop")
        assert stopped.returncode == 0, stopped.stderr
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 1, err
        assert "Traceback" not in err
        errors = [line for line in err.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, err
        assert "stopped before tree" in errors[0] and "does not answer" not in err
        counts = json.loads(apflow("tasks", "count", "--json").stdout)
        assert counts["in_progress"] == 0
    finally:
        apflow("daemon", "stop")


def test_second_ctrl_c_on_the_daemon_says_the_tree_is_still_ending(
    sandbox: Env, apflow: Run
) -> None:
    """A second Ctrl-C stops waiting for a tree the daemon is still cancelling: the message
    says so (and how to follow it) instead of claiming the tree was cancelled."""
    port = free_port()
    started = apflow("--plugin", PLUGIN, "daemon", "start", "--port", str(port), timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        marker = sandbox.root / "started"
        tasks = json.dumps(
            [
                {
                    "id": "stub",
                    "name": "Stub",
                    "schemas": {"method": "cli_stubborn"},
                    "inputs": {"started_file": str(marker), "seconds": 4},
                }
            ]
        )
        proc = start_apflow(sandbox, "run", "flow", "--no-live", "--tasks", tasks)
        wait_for(marker)
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "the tree was cancelled" not in err
        assert "apflow tasks watch stub" in err
        assert "Traceback" not in err
        assert "in_progress" in out  # the summary shows the task still ending
        watched = apflow("tasks", "watch", "stub", "--json", timeout=60)
        assert json.loads(watched.stdout)["status"] == "cancelled"
    finally:
        apflow("daemon", "stop")
