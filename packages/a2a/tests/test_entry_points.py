"""The server's entry points: the plugin, the command and ``python -m``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

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


PLUGIN = textwrap.dedent(
    """
    from typing import Any

    from aipartnerupflow import BaseTask, executor_register


    @executor_register(override=True)
    class Probe(BaseTask):
        id = "a2a_plugin_probe"
        description = "Loaded as a plugin."
        input_schema = {"type": "object", "properties": {"q": {"type": "string"}}}

        def __init__(self, token: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.token = token

        async def execute(self, inputs: dict[str, Any]) -> Any:
            return {}
    """
)


async def _serve_and_get_card(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    port = argv[argv.index("--port") + 1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(600):
                try:
                    response = await http.get("/.well-known/agent-card.json")
                    break
                except httpx.ConnectError:
                    if proc.returncode is not None:
                        break
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the server never answered")
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, err = await proc.communicate()
    assert proc.returncode in (0, -15), err.decode()
    card: dict[str, Any] = response.json()
    return card


@pytest.mark.parametrize("how", ["script --plugin FILE", "python -m with .env PLUGINS"])
async def test_server_entry_points_load_plugins_like_the_cli(tmp_path: Path, how: str) -> None:
    """--plugin and AIPARTNERUPFLOW_PLUGINS (here from ./.env) work for both entry points."""
    (tmp_path / "a2a_srv_plugin.py").write_text(PLUGIN)
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIPARTNERUPFLOW_")}
    env["AIPARTNERUPFLOW_DATABASE_URL"] = "duckdb:///:memory:"
    if how.startswith("script"):
        script = Path(sys.executable).parent / "aipartnerupflow-server"
        argv = [str(script), "--plugin", str(tmp_path / "a2a_srv_plugin.py"), "--port", port]
    else:
        (tmp_path / ".env").write_text("AIPARTNERUPFLOW_PLUGINS=a2a_srv_plugin\n")
        argv = [sys.executable, "-m", "aipartnerupflow.api.main", "--port", port]
    card = await _serve_and_get_card(argv, tmp_path, env)
    skills = {s["id"]: s for s in card["skills"]}
    assert "a2a_plugin_probe" in skills, sorted(skills)
    # Read from the class: the constructor needs params, and the schema is still there.
    assert '"q"' in skills["a2a_plugin_probe"]["examples"][0]


async def test_server_refuses_a_missing_plugin(tmp_path: Path) -> None:
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIPARTNERUPFLOW_")}
    env["AIPARTNERUPFLOW_PLUGINS"] = "no_such_plugin_module"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aipartnerupflow.api.main",
        "--port",
        port,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "plugin module 'no_such_plugin_module' was not found" in err.decode()


def test_main_names_a_bad_variable(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_API_PORT", "eighty")
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "AIPARTNERUPFLOW_API_PORT='eighty' is not valid" in err
    assert "(expected: integer)" in err
