"""The server's entry points: the plugin, the command and ``python -m``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import httpx

from aipartnerupflow.api.main import build_parser, main
from aipartnerupflow.core.registry import SERVER_GROUP, PluginGroup


def test_servers_entry_point_is_serve() -> None:
    from aipartnerupflow.api.server_plugin import serve

    assert PluginGroup(SERVER_GROUP).load("a2a") is serve


def test_main_refuses_a_public_bind_without_auth(capsys: object) -> None:
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err  # type: ignore[attr-defined]


def test_parser_knows_the_options() -> None:
    args = build_parser().parse_args(["--port", "9", "--agent", "tck", "--insecure"])
    assert (args.port, args.agent, args.insecure) == (9, "tck", True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_python_m_serves_until_terminated(tmp_path: object) -> None:
    port = _free_port()
    env = {**os.environ, "AIPARTNERUPFLOW_DATABASE_URL": "duckdb:///:memory:"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aipartnerupflow.api.main",
        "--port",
        str(port),
        "--log-level",
        "warning",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(600):
                try:
                    response = await http.get("/.well-known/agent-card.json")
                    break
                except httpx.ConnectError:
                    assert proc.returncode is None, "the server exited"
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the server never answered")
        card = response.json()
        assert card["supportedInterfaces"][0]["url"] == f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        _, err = await proc.communicate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM (exit status -15)
    assert proc.returncode in (0, -15), err.decode()
    assert b"Traceback" not in err
