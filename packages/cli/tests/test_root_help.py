"""Root help and ``--version`` without typer (``_root.fast_path``) say exactly what typer says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apflow_cli_testkit import APFLOW, Env

from aipartnerupflow.cli import _root

BROKEN_PLUGIN = "raise RuntimeError('this plugin is broken')\n"
WORDY_PLUGIN = '''
import typer

app = typer.Typer(
    help="A plugin whose help is long enough to be cut to one short line by the root "
    "help, and then some more words that never show."
)


@app.callback()
def group() -> None:
    pass


@app.command()
def go() -> None:
    """Go."""
'''

Install = Callable[..., None]


def typer_help(prog: str, width: int) -> str:
    """Root help as typer renders it, for a given formatter width."""
    import typer.main
    from typer._click.core import Context

    from aipartnerupflow.cli.main import app

    cmd = typer.main.get_command(app)
    ctx = Context(cmd, info_name=prog, terminal_width=width, **cmd.context_settings)
    return str(cmd.get_help(ctx))


@pytest.fixture
def plugins(install_dist: Install, fake_cli_plugin: Path) -> Iterator[None]:
    """A working, a broken and a long-winded plugin sub-command besides ``hello``."""
    install_dist(
        "broken_apflow_cli",
        {"aipartnerupflow.cli": {"broken": "broken_apflow_cli:app"}},
        {"broken_apflow_cli": BROKEN_PLUGIN},
    )
    install_dist(
        "a_rather_long_named_apflow_cli_plugin",
        {"aipartnerupflow.cli": {"a-rather-long-named-plugin-command": "wordy_apflow_cli:app"}},
        {"wordy_apflow_cli": WORDY_PLUGIN},
    )
    yield
    for name in ("broken_apflow_cli", "wordy_apflow_cli"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("width", [10, 30, 45, 50, 61, 78, 100, 160])
@pytest.mark.parametrize("prog", ["apflow", "aipartnerupflow", "a-very-long-program-name-here"])
def test_rendering_matches_typer(sandbox: Env, prog: str, width: int) -> None:
    assert _root.root_help(prog, width) == typer_help(prog, width)


@pytest.mark.parametrize("width", [40, 78, 120])
def test_rendering_with_plugins_matches_typer(sandbox: Env, plugins: None, width: int) -> None:
    ours = _root.root_help("apflow", width)
    assert "  hello " in ours
    assert "broken(pluginunavailable:CLIplugin'broken'cannotbeused" in "".join(ours.split())
    assert "a-rather-long-named-plugin-command\n" in ours  # wider than the first column
    assert "and then some more words" not in ours  # cut to a short line
    assert ours == typer_help("apflow", width)


@pytest.mark.parametrize("columns", ["20", "60", "79", "80", "81", "200", "", "junk"])
def test_width_is_typers(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    from typer._click.formatting import HelpFormatter

    monkeypatch.setenv("COLUMNS", columns)
    assert _root.help_width() == HelpFormatter().width


def test_the_root_options_are_typers_own(sandbox: Env) -> None:
    """The options section is written from a table; it must list what the root declares."""
    import typer.main
    from typer._click.core import Context

    from aipartnerupflow.cli.main import app

    cmd = typer.main.get_command(app)
    ctx = Context(cmd, info_name="apflow", **cmd.context_settings)
    records = [p.get_help_record(ctx) for p in cmd.get_params(ctx)]
    assert tuple(r for r in records if r is not None) == _root._OPTION_ROWS


def _typer_path(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``apflow ARGS`` through typer (no fast path), named as the script is."""
    probe = (
        "import sys\n"
        f"sys.argv[0] = {str(APFLOW)!r}\n"
        "from aipartnerupflow.cli.main import main\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "columns"),
    [(["--help"], "120"), (["-h"], "57"), ([], "80"), (["--version"], "80"), (["-V"], "80")],
)
def test_the_console_script_answers_as_typer_does(
    sandbox: Env, args: list[str], columns: str
) -> None:
    env = sandbox.environ(COLUMNS=columns)
    fast = subprocess.run([str(APFLOW), *args], capture_output=True, text=True, env=env, timeout=60)
    slow = _typer_path(env, *args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    )
    assert fast.returncode == (2 if not args else 0)
    assert (fast.stdout or fast.stderr).startswith(("Usage: apflow ", "aipartnerupflow "))


def test_fast_path_leaves_everything_else_to_typer(
    sandbox: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    for args in (["--help", "x"], ["run", "--help"], ["--debug"], ["version"], ["-hV"]):
        assert _root.fast_path(args) is None
    monkeypatch.setenv("_PYTEST_COMPLETE", "bash_source")  # shell completion of "pytest"
    monkeypatch.setattr(sys, "argv", ["pytest"])
    assert _root.fast_path(["--help"]) is None


def test_help_without_plugins_and_version_import_no_typer(sandbox: Env) -> None:
    probe = (
        "import sys\n"
        "import aipartnerupflow.cli._root as root\n"
        "root.scan_entry_point_names = lambda group: []\n"
        "from aipartnerupflow.cli import run as cli_run\n"
        "for args in (['--help'], ['--version']):\n"
        "    sys.argv = ['apflow', *args]\n"
        "    try:\n"
        "        cli_run()\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich'))\n"
        "sys.stderr.write('LOADED=' + ','.join(loaded) + '\\n')\n"
    )
    proc = sandbox.python("-c", probe)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: apflow [OPTIONS] COMMAND [ARGS]...")
    assert "LOADED=\n" in proc.stderr, proc.stderr


def test_broken_pipe_exits_1_quietly(sandbox: Env) -> None:
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as out:
        proc = subprocess.run(
            [str(APFLOW), "--help"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=sandbox.environ(),
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr == ""


def test_a_plugin_name_claimed_twice_is_left_to_typer(sandbox: Env, install_dist: Install) -> None:
    for dist, module in (("twin_one", "twin_one_cli"), ("twin_two", "twin_two_cli")):
        install_dist(
            dist,
            {"aipartnerupflow.cli": {"twin": f"{module}:app"}},
            {module: "import typer\napp = typer.Typer()\n"},
        )
    env = sandbox.environ()
    fast = subprocess.run([str(APFLOW), "--help"], capture_output=True, text=True, env=env)
    slow = _typer_path(env, "--help")
    assert fast.returncode == slow.returncode != 0
    assert "claimed by more than one target" in fast.stderr
    assert fast.stderr.splitlines()[-1] == slow.stderr.splitlines()[-1]
    assert fast.stdout == slow.stdout
