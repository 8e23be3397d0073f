"""Shared helpers of the CLI tests (importable: conftest puts this directory on sys.path)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "APFLOW",
    "FAKE_CLI_PLUGIN",
    "FAKE_SERVER",
    "PLUGIN",
    "TESTS_DIR",
    "Env",
    "free_port",
    "make_dist",
    "slow_tree",
    "start_apflow",
    "wait_for",
]

TESTS_DIR = Path(__file__).parent
PLUGIN = "apflow_cli_testplugins"
APFLOW = Path(sys.executable).with_name("apflow")


@dataclass
class Env:
    """Paths of one test's sandbox."""

    root: Path
    db_url: str
    db_path: Path
    daemon_dir: Path

    def environ(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess ``apflow``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AIPARTNERUPFLOW_") and k != "XDG_STATE_HOME"
        }
        env.update(
            HOME=str(self.root / "home"),
            AIPARTNERUPFLOW_DATABASE_URL=self.db_url,
            AIPARTNERUPFLOW_DAEMON_DIR=str(self.daemon_dir),
            PYTHONPATH=os.pathsep.join([str(TESTS_DIR), str(self.root / "site")]),
            PYTHONUNBUFFERED="1",
            COLUMNS="120",
        )
        env.update(extra)
        return env

    def python(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run this interpreter with ``args`` in the sandbox's environment, output captured."""
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            env=self.environ(**extra),
            timeout=60,
        )


def make_dist(
    site: Path, name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
) -> None:
    """Install a tiny distribution (dist-info + modules) into ``site``."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{k} = {v}" for k, v in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


FAKE_SERVER = '''
"""A stand-in server plugin: answers HTTP on host:port until SIGTERM."""

import http.server
import json
import os
import signal
import sys


def serve(host, port, database_url=None, **options):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"pid": os.getpid(), "database_url": database_url,
                               "options": options}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer((host, port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print(f"fake server on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
'''

FAKE_CLI_PLUGIN = '''
import typer

app = typer.Typer(help="Say hello (a CLI plugin).")


@app.command()
def greet(name: str = "world") -> None:
    """Greet someone."""
    typer.echo(f"hello {name}")


@app.command()
def other() -> None:
    """Another command."""
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def slow_tree(marker: Path, seconds: float = 60) -> str:
    return json.dumps(
        [
            {
                "id": "root",
                "name": "Root",
                "schemas": {"method": "cli_slow"},
                "inputs": {"seconds": seconds, "started_file": str(marker)},
                "retry": {"max_attempts": 2},  # an attempt cut short by a crash counts
            },
            {
                "id": "kid",
                "name": "Kid",
                "parent_id": "root",
                "schemas": {"method": "cli_slow"},
                "inputs": {"seconds": seconds},
                "retry": {"max_attempts": 2},
            },
            {
                "id": "after",
                "name": "After",
                "parent_id": "root",
                "dependencies": ["kid"],
                "schemas": {"method": "cli_echo"},
                "inputs": {"text": "never"},
            },
        ]
    )


def start_apflow(sandbox: Env, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(APFLOW), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=sandbox.environ(),
        cwd=sandbox.root / "work",
    )
