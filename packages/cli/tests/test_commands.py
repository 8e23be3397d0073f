"""Every command and error path, in-process through typer's CliRunner."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PLUGIN = "apflow_cli_testplugins"
P = ["--plugin", PLUGIN]

Cli = Callable[..., Any]


def tasks_json(*tasks: dict[str, Any]) -> str:
    return json.dumps(list(tasks))


def echo(task_id: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": task_id.upper(),
        "schemas": {"method": "cli_echo"},
        "inputs": {"text": text},
        **extra,
    }


def run_json(cli: Cli, *tasks: dict[str, Any]) -> dict[str, Any]:
    result = cli(*P, "run", "flow", "--json", "--tasks", tasks_json(*tasks))
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def assert_user_error(result: Any, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# -- help, version, info -------------------------------------------------------------------


def test_no_arguments_prints_help(cli: Cli) -> None:
    result = cli()
    assert result.exit_code == 2
    assert "Commands" in result.output
    assert "run" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["run", "flow", "--help"],
        ["tasks", "--help"],
        ["tasks", "list", "--help"],
        ["executors", "--help"],
        ["serve", "--help"],
        ["daemon", "--help"],
        ["daemon", "start", "--help"],
        ["worker", "--help"],
        ["db", "--help"],
        ["info", "--help"],
        ["version", "--help"],
        ["-h"],
    ],
)
def test_help_everywhere(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


def test_root_help_lists_every_command(cli: Cli) -> None:
    out = cli("--help").stdout
    for name in ("run", "tasks", "executors", "serve", "daemon", "worker", "db", "info", "version"):
        assert f"  {name} " in out


def test_version(cli: Cli) -> None:
    import aipartnerupflow
    from aipartnerupflow.cli import __version__

    for args in (["version"], ["--version"], ["-V"]):
        result = cli(*args)
        assert result.exit_code == 0
        assert result.stdout.strip() == (
            f"aipartnerupflow {aipartnerupflow.__version__} (cli {__version__})"
        )
    data = json.loads(cli("version", "--json").stdout)
    assert data == {"aipartnerupflow": aipartnerupflow.__version__, "cli": __version__}


def test_unknown_command_suggests(cli: Cli) -> None:
    result = cli("tasks", "lst")
    assert result.exit_code == 2
    assert "No such command" in result.stderr
    result = cli("tsks")
    assert "Did you mean 'tasks'" in result.stderr


def test_info_json(cli: Cli, sandbox: Any) -> None:
    result = cli(*P, "info", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "aipartnerupflow-cli" in data["packages"]
    assert "aipartnerupflow-core" in data["packages"]
    assert data["database"]["path"] == str(sandbox.db_path)
    ids = {e["id"]: e["source"] for e in data["executors"]}
    assert ids["cli_echo"] == "in-process"
    assert data["plugin_modules"] == [PLUGIN]
    assert data["daemon"]["running"] is None
    assert data["unknown_variables"] == []
    human = cli(*P, "info")
    assert human.exit_code == 0
    typo = json.loads(cli(*P, "info", "--json", env={"AIPARTNERUPFLOW_DATABSE_URL": "x"}).stdout)
    assert typo["unknown_variables"] == ["AIPARTNERUPFLOW_DATABSE_URL"]
    assert str(sandbox.db_path) in human.stdout


# -- run flow ------------------------------------------------------------------------------


def test_run_flow_json_is_one_document(cli: Cli) -> None:
    result = cli(
        *P,
        "run",
        "flow",
        "--json",
        "--tasks",
        tasks_json(echo("root"), echo("child", "c", parent_id="root", dependencies=["root"])),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the whole stdout parses: nothing else was printed
    assert set(data) == {"root_id", "status", "tasks"}
    assert data["root_id"] == "root"
    assert data["status"] == "completed"
    assert [t["id"] for t in data["tasks"]] == ["root", "child"]
    for task in data["tasks"]:
        assert set(task) == {"id", "name", "status", "result", "error"}
    assert data["tasks"][1]["result"]["echo"]["text"] == "c"


def test_run_flow_human_summary(cli: Cli) -> None:
    result = cli(*P, "run", "flow", "--no-live", "--tasks", tasks_json(echo("a", "hello")))
    assert result.exit_code == 0, result.output
    assert "A" in result.stdout
    assert "completed" in result.stdout
    assert '"text": "hello"' in result.stdout
    assert "Tree a completed" in result.stdout


def test_run_flow_live_view_renders(cli: Cli) -> None:
    result = cli(
        *P,
        "run",
        "flow",
        "--live",
        "--tasks",
        tasks_json(
            echo("a"),
            {
                "id": "s",
                "name": "S",
                "parent_id": "a",
                "schemas": {"method": "cli_slow"},
                "inputs": {"seconds": 0.2},
            },
        ),
    )
    assert result.exit_code == 0, result.output
    assert "Tree a completed" in result.stdout


def test_run_flow_failure_exit_code_and_error(cli: Cli) -> None:
    result = cli(
        *P,
        "run",
        "flow",
        "--json",
        "--tasks",
        tasks_json(
            echo("a"),
            {"id": "f", "name": "F", "parent_id": "a", "schemas": {"method": "cli_fail"}},
            echo("after", parent_id="a", dependencies=["f"]),
        ),
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "failed"
    by_id = {t["id"]: t for t in data["tasks"]}
    assert by_id["f"]["status"] == "failed"
    assert "boom" in by_id["f"]["error"]
    assert by_id["after"]["status"] in ("failed", "cancelled")
    human = cli(
        *P,
        "run",
        "flow",
        "--no-live",
        "--new-ids",
        "--tasks",
        tasks_json({"id": "f", "name": "F", "schemas": {"method": "cli_fail"}}),
    )
    assert human.exit_code == 1
    assert "boom" in human.stdout
    assert "failed" in human.stdout


def test_run_flow_legacy_mode(cli: Cli) -> None:
    result = cli(*P, "run", "flow", "cli_echo", "--inputs", '{"text": "legacy"}', "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tasks"][0]["name"] == "Execute cli_echo"
    assert data["tasks"][0]["result"] == {"echo": {"text": "legacy"}}


def test_run_flow_legacy_inputs_file_and_params(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "inputs.json"
    path.write_text('{"text": "from file"}')
    result = cli(*P, "run", "flow", "cli_echo", "--inputs-file", str(path), "--json")
    assert json.loads(result.stdout)["tasks"][0]["result"]["echo"]["text"] == "from file"
    result = cli(*P, "run", "flow", "cli_needs_params", "--params", '{"token": "abc"}', "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"][0]["result"] == {"token_length": 3}


def test_run_flow_tasks_file_and_stdin(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "tree.json"
    path.write_text(tasks_json(echo("file-task")))
    result = cli(*P, "run", "flow", "--tasks-file", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["root_id"] == "file-task"
    result = cli(
        *P, "run", "flow", "--tasks-file", "-", "--json", input=tasks_json(echo("stdin-task"))
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["root_id"] == "stdin-task"


def test_run_flow_single_object_is_accepted(cli: Cli) -> None:
    result = cli(*P, "run", "flow", "--json", "--tasks", json.dumps(echo("single")))
    assert result.exit_code == 0, result.output


def test_run_flow_output_file(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    result = cli(
        *P, "run", "flow", "--no-live", "--output", str(out), "--tasks", tasks_json(echo("o"))
    )
    assert result.exit_code == 0
    assert json.loads(out.read_text())["status"] == "completed"


def test_run_flow_same_ids_twice(cli: Cli) -> None:
    assert run_json(cli, echo("dup"))["status"] == "completed"
    again = cli(*P, "run", "flow", "--json", "--tasks", tasks_json(echo("dup")))
    assert again.exit_code == 0, again.output
    rerun = json.loads(again.stdout)
    assert rerun["root_id"] != "dup"
    assert rerun["status"] == "completed"
    assert "fresh ids" in again.stderr
    assert rerun["root_id"] in again.stderr
    strict = cli(*P, "run", "flow", "--json", "--keep-ids", "--tasks", tasks_json(echo("dup")))
    assert_user_error(strict, "already exist", "--keep-ids")
    assert_user_error(cli("run", "flow", "--new-ids", "--keep-ids", "--tasks", "[]"), "not both")
    fresh = cli(
        *P,
        "run",
        "flow",
        "--json",
        "--new-ids",
        "--tasks",
        tasks_json(echo("dup"), echo("kid", parent_id="dup", dependencies=[{"id": "dup"}])),
    )
    assert fresh.exit_code == 0, fresh.output
    data = json.loads(fresh.stdout)
    assert data["root_id"] != "dup"
    assert len(data["tasks"]) == 2


def test_run_flow_user_id(cli: Cli) -> None:
    result = cli(
        *P, "run", "flow", "--json", "--user-id", "alice", "--tasks", tasks_json(echo("owned"))
    )
    assert result.exit_code == 0
    listed = json.loads(cli("tasks", "list", "--user-id", "alice", "--json").stdout)
    assert [t["id"] for t in listed] == ["owned"]
    assert json.loads(cli("tasks", "list", "--user-id", "bob", "--json").stdout) == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # Python 3.13 points at the comma itself, earlier versions just after it.
        (
            '[{"id": "x",}]',
            "line 1, column 13" if sys.version_info < (3, 13) else "line 1, column 12",
        ),
        ('[\n  {"id": "x"\n  "name": "y"}\n]', "line 3, column 3"),
        ("[1, 2", "line 1, column 6"),
    ],
)
def test_malformed_json_names_line_and_column(cli: Cli, text: str, where: str) -> None:
    result = cli("run", "flow", "--tasks", text)
    assert_user_error(result, "--tasks is not valid JSON", where)


def test_malformed_json_in_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n{"name": "a"},\n{oops}\n]')
    result = cli("run", "flow", "--tasks-file", str(path))
    assert_user_error(result, str(path), "line 3, column 2")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "flow"], "nothing to run"),
        (["run", "flow", "--tasks-file", "/no/such/file.json"], "does not exist"),
        (["run", "flow", "--tasks", "[]", "--tasks-file", "x"], "not both"),
        (["run", "flow", "cli_echo", "--tasks", "[]"], "not both"),
        (["run", "flow", "--inputs", "{}"], "legacy mode"),
        (["run", "flow", "cli_echo", "--inputs", "[1]"], "must be a JSON object"),
        (["run", "flow", "--tasks", '"text"'], "JSON array"),
        (["run", "flow", "--tasks", "   "], "empty"),
        (["run", "flow", "--tasks", "[]"], "invalid task tree"),
    ],
)
def test_run_flow_user_errors(cli: Cli, args: list[str], fragment: str) -> None:
    assert_user_error(cli(*args), fragment)


def test_tasks_file_is_directory(cli: Cli, tmp_path: Path) -> None:
    assert_user_error(cli("run", "flow", "--tasks-file", str(tmp_path)), "is a directory")


def _catalogued_but_not_installed() -> tuple[str, str]:
    """A published executor of the catalogue whose package this environment lacks."""
    from importlib import metadata, resources

    catalogue = json.loads(
        resources.files("aipartnerupflow.cli").joinpath("catalogue.json").read_text()
    )
    for executor_id, entry in sorted(catalogue["executors"].items()):
        try:
            metadata.distribution(entry["distribution"])
        except metadata.PackageNotFoundError:
            return executor_id, entry["extra"]
    pytest.skip("every catalogued executor package is installed here (the full workspace)")


def test_unknown_executor_has_install_hint(cli: Cli) -> None:
    executor_id, extra = _catalogued_but_not_installed()
    result = cli(
        "run",
        "flow",
        "--tasks",
        tasks_json({"id": "x", "name": "X", "schemas": {"method": executor_id}}),
    )
    # Published, but not installed in this environment: the hint is the extra to install.
    assert_user_error(
        result, executor_id, f'pip install "aipartnerupflow[{extra}]"', "Installed executors"
    )
    result = cli(
        *P,
        "run",
        "flow",
        "--tasks",
        tasks_json({"id": "x", "name": "X", "schemas": {"method": "cli_ech"}}),
    )
    assert_user_error(result, "Did you mean 'cli_echo'")


def test_invalid_tree_is_one_message_and_writes_nothing(cli: Cli) -> None:
    result = cli(
        *P,
        "run",
        "flow",
        "--tasks",
        tasks_json(echo("a", dependencies=["b"]), echo("b", parent_id="a", dependencies=["a"])),
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert "invalid task tree" in result.stderr
    assert json.loads(cli("tasks", "count", "--json").stdout)["total"] == 0


def test_input_schema_violation(cli: Cli) -> None:
    result = cli(*P, "run", "flow", "cli_echo", "--inputs", '{"text": 5}')
    assert_user_error(result, "input schema")


def test_debug_shows_traceback(cli: Cli) -> None:
    result = cli("--debug", "run", "flow", "--tasks", "[oops")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert "Error: --tasks is not valid JSON" in result.stderr


def test_debug_from_environment(cli: Cli) -> None:
    result = cli("run", "flow", "--tasks", "[oops", env={"AIPARTNERUPFLOW_DEBUG": "1"})
    assert "Traceback" in result.stderr


# -- configuration ---------------------------------------------------------------------------


def test_plugin_not_found(cli: Cli) -> None:
    assert_user_error(
        cli("--plugin", "no_such_module_xyz", "executors", "list"),
        "no_such_module_xyz",
        "not found",
    )


def test_plugin_with_import_error(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "broken_plugin.py"
    bad.write_text("raise ValueError('plugin exploded')\n")
    assert_user_error(
        cli("--plugin", str(bad), "executors", "list"), "failed to import", "plugin exploded"
    )


def test_plugin_from_file_path(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "my_tasks.py"
    path.write_text(
        "from aipartnerupflow.core.base_task import BaseTask\n"
        "from aipartnerupflow.core.registry import executor_register\n\n"
        "@executor_register(override=True)\n"
        "class Shout(BaseTask):\n"
        "    id = 'cli_shout'\n"
        "    description = 'Upper-case text.'\n\n"
        "    async def execute(self, inputs):\n"
        "        return inputs['text'].upper()\n"
    )
    result = cli(
        "--plugin", str(path), "run", "flow", "cli_shout", "--inputs", '{"text": "hey"}', "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"][0]["result"] == "HEY"


def test_plugins_from_environment(cli: Cli) -> None:
    result = cli("executors", "list", "--json", env={"AIPARTNERUPFLOW_PLUGINS": f" {PLUGIN}, "})
    assert result.exit_code == 0, result.output
    assert "cli_echo" in {e["id"] for e in json.loads(result.stdout)}


def test_dotenv_does_not_override(
    cli: Cli, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "from-dotenv.duckdb"
    Path(".env").write_text(
        f"AIPARTNERUPFLOW_DATABASE_URL=duckdb:///{other}\nAIPARTNERUPFLOW_PLUGINS={PLUGIN}\n"
    )
    # an existing variable wins over .env
    data = json.loads(cli("info", "--json").stdout)
    assert data["database"]["path"] == str(sandbox.db_path)
    assert data["plugin_modules"] == [PLUGIN]
    monkeypatch.delenv("AIPARTNERUPFLOW_DATABASE_URL")
    monkeypatch.delenv("AIPARTNERUPFLOW_PLUGINS", raising=False)
    data = json.loads(cli("info", "--json").stdout)
    assert data["database"]["path"] == str(other)


def test_env_file_option(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_DATABASE_URL")
    target = tmp_path / "custom.duckdb"
    env_file = tmp_path / "custom.env"
    env_file.write_text(f"AIPARTNERUPFLOW_DATABASE_URL=duckdb:///{target}\n")
    data = json.loads(cli("--env-file", str(env_file), "info", "--json").stdout)
    assert data["database"]["path"] == str(target)
    assert_user_error(cli("--env-file", str(tmp_path / "missing.env"), "info"), "does not exist")


def test_database_url_option_overrides(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "override.duckdb"
    url = f"duckdb:///{other}"
    result = cli(
        "--database-url", url, *P, "run", "flow", "--json", "--tasks", tasks_json(echo("elsewhere"))
    )
    assert result.exit_code == 0, result.output
    assert other.exists()
    assert json.loads(cli("tasks", "count", "--json").stdout)["total"] == 0
    assert json.loads(cli("--database-url", url, "tasks", "count", "--json").stdout)["total"] == 1


def test_bad_database_url(cli: Cli) -> None:
    assert_user_error(
        cli("--database-url", "mysql://x/y", "tasks", "list"), "unsupported database URL"
    )


def test_bad_log_level(cli: Cli) -> None:
    assert_user_error(cli("--log-level", "LOUD", "version"), "unknown log level")


def test_logs_go_to_stderr(cli: Cli) -> None:
    result = cli(
        "--log-level", "DEBUG", *P, "run", "flow", "--json", "--tasks", tasks_json(echo("logged"))
    )
    assert result.exit_code == 0
    json.loads(result.stdout)


# -- executors -------------------------------------------------------------------------------


def test_executors_list(cli: Cli) -> None:
    result = cli(*P, "executors", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert rows["cli_echo"]["description"] == "Return the inputs unchanged."
    assert rows["cli_echo"]["input_schema"]["required"] == ["text"]
    assert rows["cli_echo"]["source"] == "in-process"
    assert rows["cli_needs_params"]["input_schema"] is None
    assert "cannot be built without params" in rows["cli_needs_params"]["schema_note"]
    assert rows["aggregate_results_executor"]["source"] == "aipartnerupflow-core"
    human = cli(*P, "executors", "list")
    assert "cli_echo" in human.stdout
    assert "text*" in human.stdout
    assert "(needs params)" in human.stdout


def test_executors_list_reads_class_metadata(cli: Cli) -> None:
    """An executor that needs params keeps its schemas; dangerous ones say if enabled."""
    rows = {r["id"]: r for r in json.loads(cli(*P, "executors", "list", "--json").stdout)}
    guarded = rows["cli_guarded"]
    assert guarded["input_schema"]["required"] == ["cmd"]
    assert guarded["params_schema"] == {
        "type": "object",
        "properties": {"token": {"type": "string"}},
    }
    assert (guarded["dangerous"], guarded["enabled"], guarded["max_concurrency"]) == (
        True,
        False,
        2,
    )
    assert (rows["cli_echo"]["dangerous"], rows["cli_echo"]["enabled"]) == (False, True)
    human = cli(*P, "executors", "list").stdout
    assert "cmd*" in human
    assert "dangerous (off until AIPARTNERUPFLOW_ENABLED_EXECUTORS lists it)" in human
    enabled = cli(
        *P,
        "executors",
        "show",
        "cli_guarded",
        env={"AIPARTNERUPFLOW_ENABLED_EXECUTORS": "cli_guarded"},
    )
    assert "dangerous:   yes (enabled)" in enabled.stdout
    assert '"token"' in enabled.stdout  # the params schema


def test_a_bad_setting_names_the_variable(cli: Cli) -> None:
    assert_user_error(
        cli("tasks", "list", env={"AIPARTNERUPFLOW_DEBUG": "perhaps"}),
        "AIPARTNERUPFLOW_DEBUG='perhaps' is not a boolean",
        "true or false",
    )
    assert_user_error(
        cli("tasks", "list", env={"AIPARTNERUPFLOW_LOG_LEVEL": "loud"}),
        "AIPARTNERUPFLOW_LOG_LEVEL",
        "DEBUG, INFO, WARNING",
    )


def test_the_names_the_cli_mentions_are_declared_settings() -> None:
    from aipartnerupflow.cli._common import DATABASE_ENV, PLUGINS_ENV
    from aipartnerupflow.cli._daemon import DAEMON_DIR_ENV
    from aipartnerupflow.cli._remote import TOKEN_ENV
    from aipartnerupflow.cli.commands.executors import ENABLE_SETTING
    from aipartnerupflow.cli.settings import CliSettings
    from aipartnerupflow.core.executors import metadata
    from aipartnerupflow.core.settings import CoreSettings

    assert CoreSettings.env_name("database_url") == DATABASE_ENV
    assert CoreSettings.env_name("plugins") == PLUGINS_ENV
    assert ENABLE_SETTING == metadata.ENABLE_SETTING == CoreSettings.env_name("enabled_executors")
    assert CliSettings.env_name("daemon_dir") == DAEMON_DIR_ENV
    assert CliSettings.env_name("api_token") == TOKEN_ENV


def test_executors_show(cli: Cli) -> None:
    result = cli(*P, "executors", "show", "cli_echo")
    assert result.exit_code == 0
    assert '"required": [' in result.stdout
    assert "in-process" in result.stdout
    data = json.loads(cli(*P, "executors", "show", "cli_echo", "--json").stdout)
    assert data["class_path"] == "apflow_cli_testplugins.EchoExecutor"
    assert_user_error(cli("executors", "show", "no_such_executor"), "no_such_executor")


# -- tasks -----------------------------------------------------------------------------------


@pytest.fixture
def stored(cli: Cli) -> dict[str, Any]:
    """A finished tree: root r with children c1 (completed) and c2 (failed), c3 (after c2)."""
    return run_json(
        cli,
        echo("r"),
        echo("c1", parent_id="r"),
        {"id": "c2", "name": "C2", "parent_id": "r", "schemas": {"method": "cli_fail"}},
        echo("c3", parent_id="c2", dependencies=["c2"]),
    )


def test_tasks_list_get_tree_children(cli: Cli, stored: dict[str, Any]) -> None:
    roots = json.loads(cli("tasks", "list", "--json").stdout)
    assert [t["id"] for t in roots] == ["r"]
    every = json.loads(cli("tasks", "list", "--all", "--json").stdout)
    assert {t["id"] for t in every} == {"r", "c1", "c2", "c3"}
    failed = json.loads(cli("tasks", "list", "--all", "--status", "failed", "--json").stdout)
    assert {t["id"] for t in failed} >= {"c2"}
    by_root = json.loads(cli("tasks", "list", "--root-id", "r", "--limit", "2", "--json").stdout)
    assert len(by_root) == 2
    assert "r" in cli("tasks", "list").stdout

    got = json.loads(cli("tasks", "get", "c1", "--json").stdout)
    assert got["result"] == {"echo": {"text": "hi"}}
    assert got["parent_id"] == "r"
    human = cli("tasks", "get", "c2")
    assert "boom" in human.stdout

    tree = json.loads(cli("tasks", "tree", "c3", "--json").stdout)
    assert tree["id"] == "r"
    assert sorted(c["id"] for c in tree["children"]) == ["c1", "c2"]
    human_tree = cli("tasks", "tree", "r").stdout
    assert "C3" in human_tree
    assert "c3" in human_tree

    kids = json.loads(cli("tasks", "children", "r", "--json").stdout)
    assert sorted(k["id"] for k in kids) == ["c1", "c2"]
    assert "C1" in cli("tasks", "children", "r").stdout


def test_tasks_not_found(cli: Cli, stored: dict[str, Any]) -> None:
    for args in (
        ["get", "nope"],
        ["tree", "nope"],
        ["children", "nope"],
        ["delete", "nope"],
        ["copy", "nope"],
        ["execute", "nope"],
        ["watch", "nope"],
    ):
        assert_user_error(cli("tasks", *args), "no task with id 'nope'")


def test_tasks_status(cli: Cli, stored: dict[str, Any]) -> None:
    result = cli("tasks", "status", "c1", "c2", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["status"] for r in rows] == ["completed", "failed"]
    missing = cli("tasks", "status", "c1", "ghost", "--json")
    assert missing.exit_code == 2
    assert [r["status"] for r in json.loads(missing.stdout)] == ["completed", "not_found"]
    assert "ghost" in missing.stderr
    assert "completed" in cli("tasks", "status", "c1").stdout


def test_tasks_count(cli: Cli, stored: dict[str, Any]) -> None:
    counts = json.loads(cli("tasks", "count", "--json").stdout)
    assert counts["total"] == 4
    assert counts["completed"] == 2
    assert counts["failed"] >= 1
    assert set(counts) == {"pending", "in_progress", "completed", "failed", "cancelled", "total"}
    assert json.loads(cli("tasks", "count", "--roots-only", "--json").stdout)["total"] == 1
    only = json.loads(cli("tasks", "count", "--status", "completed", "--json").stdout)
    assert only == {"completed": 2, "total": 2}
    assert "total" in cli("tasks", "count").stdout
    assert_user_error(cli("tasks", "count", "--status", "weird"), "unknown status")


def test_tasks_create_execute_rerun(cli: Cli) -> None:
    created = cli(
        *P,
        "tasks",
        "create",
        "--json",
        "--tasks",
        tasks_json(echo("t"), echo("u", parent_id="t", dependencies=["t"])),
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["root_id"] == "t"
    assert json.loads(cli("tasks", "status", "t", "--json").stdout)[0]["status"] == "pending"
    done = cli(*P, "tasks", "execute", "t", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["status"] == "completed"
    again = cli(*P, "tasks", "execute", "u", "--rerun", "all", "--no-live")
    assert again.exit_code == 0, again.output
    assert "Tree t completed" in again.stdout
    assert_user_error(cli("tasks", "execute", "t", "--rerun", "sometimes"), "--rerun")
    human = cli(*P, "tasks", "create", "--new-ids", "--tasks", tasks_json(echo("t")))
    assert "apflow tasks execute" in human.stdout


def test_tasks_cancel(cli: Cli) -> None:
    cli(
        *P,
        "tasks",
        "create",
        "--tasks",
        tasks_json(
            echo("p"), echo("q", parent_id="p"), echo("w", parent_id="p", dependencies=["q"])
        ),
    )
    result = cli("tasks", "cancel", "q", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert row["status"] == "cancelled"
    assert "q" in row["cancelled"]
    statuses = {
        r["id"]: r["status"]
        for r in json.loads(cli("tasks", "status", "p", "q", "w", "--json").stdout)
    }
    assert statuses["q"] == "cancelled"
    assert statuses["p"] == "pending"
    # a stored (not running) tree: the dependent w ends when the tree runs
    assert statuses["w"] in ("pending", "cancelled")
    again = cli("tasks", "cancel", "q")
    assert again.exit_code == 0
    assert "nothing to cancel" in again.stdout
    assert "cancelled" in cli("tasks", "cancel", "p").stdout
    missing = cli("tasks", "cancel", "zzz")
    assert missing.exit_code == 2
    assert "zzz" in missing.stderr


def test_tasks_delete(cli: Cli, stored: dict[str, Any]) -> None:
    refused = cli("tasks", "delete", "c1")
    assert refused.exit_code == 0
    assert "Deleted 1 task(s)" in refused.stdout
    blocked = cli("tasks", "delete", "c2")  # c3 is below c2: deleted with it
    assert blocked.exit_code == 0
    assert "Deleted 2" in blocked.stdout
    assert json.loads(cli("tasks", "count", "--json").stdout)["total"] == 1
    data = json.loads(cli("tasks", "delete", "r", "--json").stdout)
    assert data == {"id": "r", "deleted": 1}


def test_tasks_delete_refuses_dependency_outside(cli: Cli) -> None:
    cli(
        *P,
        "tasks",
        "create",
        "--tasks",
        tasks_json(
            echo("root"),
            echo("x", parent_id="root"),
            echo("y", parent_id="root", dependencies=["x"]),
        ),
    )
    assert_user_error(cli("tasks", "delete", "x"), "depends on a task being deleted")
    assert cli("tasks", "delete", "x", "--force").exit_code == 0


def test_tasks_copy(cli: Cli, stored: dict[str, Any]) -> None:
    result = cli("tasks", "copy", "r", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["original_root_id"] == "r"
    assert data["tasks"] == 4
    copied = json.loads(cli("tasks", "get", data["root_id"], "--json").stdout)
    assert copied["status"] == "pending"
    assert copied["original_task_id"] == "r"
    assert_user_error(cli("tasks", "copy", "c1"), "not a root", "apflow tasks copy r")
    assert "Copied tree r" in cli("tasks", "copy", "r").stdout


def test_tasks_watch_finished_tree(cli: Cli, stored: dict[str, Any]) -> None:
    result = cli("tasks", "watch", "c1", "--interval", "0.05", "--no-live")
    assert result.exit_code == 1  # the tree failed
    assert "Tree r failed" in result.stdout


def test_tasks_resume_nothing(cli: Cli) -> None:
    result = cli("tasks", "resume", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert "No interrupted trees" in cli("tasks", "resume").stdout


# -- db, serve, worker ---------------------------------------------------------------------


def test_db_upgrade(cli: Cli, sandbox: Any) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    assert sandbox.db_path.exists()
    assert json.loads(cli("db", "upgrade", "--json").stdout)["status"] == "up to date"


def test_serve_missing_protocol(cli: Cli) -> None:
    assert_user_error(cli("serve", "nosuch", "--port", "1234"), "no 'nosuch' server", "entry point")


def test_serve_runs_the_plugin(
    cli: Cli, fake_server: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Any
) -> None:
    import fake_apflow_server

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(fake_apflow_server, "serve", lambda **kw: calls.append(kw))
    result = cli(
        "serve",
        "fake",
        "--host",
        "127.0.0.1",
        "--port",
        "9999",
        "-o",
        "workers=2",
        "-o",
        "name=x",
        "--insecure",
    )
    assert result.exit_code == 0, result.output
    assert calls == [
        {
            "host": "127.0.0.1",
            "port": 9999,
            "database_url": sandbox.db_url,
            "workers": 2,
            "name": "x",
            "insecure": True,
        }
    ]
    assert_user_error(cli("serve", "fake", "-o", "novalue"), "key=value")


def test_serve_broken_plugin(cli: Cli, install_dist: Callable[..., None]) -> None:
    install_dist("broken_server", {"aipartnerupflow.servers": {"broken": "no_such_mod:serve"}})
    assert_user_error(cli("serve", "broken"), "cannot be loaded", "Reinstall broken")


def test_worker_needs_postgres(cli: Cli) -> None:
    assert_user_error(cli("worker"), "needs a PostgreSQL database", "--database-url")
    assert_user_error(
        cli("--database-url", "postgresql://u@127.0.0.1:1/x", "worker", "--limit", "x"),
        "EXECUTOR_ID=N",
    )


def test_worker_without_core_support(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "aipartnerupflow.core.worker", None)  # an older core
    result = cli("--database-url", "postgresql://u:secret@127.0.0.1:5432/x", "worker")
    assert_user_error(result, "workers are not available")
    assert "secret" not in result.output


# -- plugins in the aipartnerupflow.cli group ----------------------------------------------


def test_cli_plugin_subcommand(cli: Cli, fake_cli_plugin: Path) -> None:
    assert "hello" in cli("--help").stdout
    result = cli("hello", "greet", "--name", "ada")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hello ada"


# -- daemon (in-process parts; real processes are in test_processes.py) ---------------------


def test_daemon_status_when_stopped(cli: Cli) -> None:
    result = cli("daemon", "status")
    assert result.exit_code == 3
    assert "Not running" in result.stdout
    data = json.loads(cli("daemon", "status", "--json").stdout)
    assert data["running"] is False


def test_daemon_stale_pid_file(cli: Cli, sandbox: Any) -> None:
    sandbox.daemon_dir.mkdir(parents=True)
    (sandbox.daemon_dir / "daemon.pid").write_text("999999\n")
    status = cli("daemon", "status")
    assert status.exit_code == 3
    assert "removed a stale pid file for pid 999999" in status.stdout
    assert not (sandbox.daemon_dir / "daemon.pid").exists()
    (sandbox.daemon_dir / "daemon.pid").write_text("999999\n")
    stop = cli("daemon", "stop")
    assert stop.exit_code == 0
    assert "stale pid file" in stop.stdout
    assert not (sandbox.daemon_dir / "daemon.pid").exists()
    assert "not running" in cli("daemon", "stop").stdout


def test_daemon_status_removes_a_pid_file_without_a_pid(cli: Cli, sandbox: Any) -> None:
    sandbox.daemon_dir.mkdir(parents=True)
    (sandbox.daemon_dir / "daemon.pid").write_text("garbage\n")
    data = json.loads(cli("daemon", "status", "--json").stdout)
    assert data["running"] is False and data["removed_stale_pid_file"] is True
    assert not (sandbox.daemon_dir / "daemon.pid").exists()


def test_daemon_start_unknown_protocol(cli: Cli) -> None:
    assert_user_error(cli("daemon", "start", "nosuch"), "no 'nosuch' server is installed")


def test_daemon_logs_without_log(cli: Cli) -> None:
    assert_user_error(cli("daemon", "logs"), "no daemon log yet")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--tasks", "null"), "must be a JSON array of task objects, not null"),
        (("--tasks", '"x"'), "not a string"),
        (("cli_echo", "--inputs", "[1]"), "must be a JSON object, not an array"),
    ],
)
def test_wrong_json_kinds_are_named_in_json_words(
    cli: Cli, args: tuple[str, ...], says: str
) -> None:
    assert_user_error(cli("run", "flow", *args), says)


def test_ctrl_c_while_the_cli_loads_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.abc

    import aipartnerupflow.cli as cli_package

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name == "aipartnerupflow.cli.main":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "aipartnerupflow.cli.main", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    with pytest.raises(SystemExit) as info:
        cli_package.run()
    assert info.value.code == 130
