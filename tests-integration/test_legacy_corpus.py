"""Task JSON and command lines written for aipartnerupflow 0.9 run unchanged (or are refused
with the new spelling): the corpus in legacy_corpus/ and the 0.9.0 README's CLI lines."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.testing.http_target import TargetState, build_target_app
from aipartnerupflow.testing.server import LoopbackServer

CORPUS = Path(__file__).with_name("legacy_corpus")
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())
APFLOW = Path(sys.executable).with_name("apflow")


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    """The loopback HTTP target the rest_executor tasks of the corpus call."""
    with LoopbackServer(build_target_app(TargetState())) as server:
        yield server.url


def _apflow(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIPARTNERUPFLOW_")},
        "HOME": str(tmp_path),
        "AIPARTNERUPFLOW_DATABASE_URL": f"duckdb:///{tmp_path / 'tasks.duckdb'}",
        "AIPARTNERUPFLOW_HTTP_ALLOW_PRIVATE": "1",  # the target is on 127.0.0.1
        "AIPARTNERUPFLOW_ENABLED_EXECUTORS": "command_executor",
        "AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES": "echo",
    }
    return subprocess.run(
        [str(APFLOW), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )


def test_the_corpus_lists_every_file() -> None:
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.json")} - {"expected.json"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if not n.startswith("refused/")))
def test_corpus_task_json_runs_unchanged(name: str, tmp_path: Path, target: str) -> None:
    text = (CORPUS / name).read_text().replace("{{TARGET}}", target)
    path = tmp_path / "tasks.json"
    path.write_text(text)
    out = _apflow(tmp_path, "run", "flow", "--tasks-file", str(path), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == EXPECTED[name]["status"]
    assert len(doc["tasks"]) == EXPECTED[name]["tasks"]
    assert all(t["status"] == "completed" and t["error"] is None for t in doc["tasks"])


def test_corpus_results_have_the_original_shapes(tmp_path: Path, target: str) -> None:
    """system_info per resource, rest_executor's status_code/success, aggregation by id."""
    check = _apflow(tmp_path, "run", "flow", "--tasks-file", str(CORPUS / "system_check.json"))
    assert check.returncode == 0, check.stderr
    out = _apflow(
        tmp_path, "run", "flow", "--json", "--tasks-file", str(CORPUS / "system_check.json")
    )
    tasks = {t["name"]: t for t in json.loads(out.stdout)["tasks"]}
    assert {"cores", "system"} <= set(tasks["CPU Info"]["result"])
    assert "total" in tasks["Memory Info"]["result"]
    aggregated = tasks["System Check"]["result"]["results"]  # by dependency id; the ids
    assert aggregated[tasks["CPU Info"]["id"]] == tasks["CPU Info"]["result"]  # were renewed

    path = tmp_path / "mapping.json"
    path.write_text(
        (CORPUS / "input_schema_mapping.json").read_text().replace("{{TARGET}}", target)
    )
    out = _apflow(tmp_path, "run", "flow", "--json", "--tasks-file", str(path))
    assert out.returncode == 0, out.stderr
    tasks = {t["name"]: t for t in json.loads(out.stdout)["tasks"]}
    call = tasks["Call API"]["result"]
    assert call["status_code"] == 200 and call["success"] is True
    assert json.loads(call["body"]["body"]) == {"key": "value"}  # the target echoes the request
    assert call["body"]["headers"]["x-request"] == "corpus"
    # aggregate_results_executor collects dependency results by id (its input_schema is
    # accepted; it reads the results, not its inputs)
    assert tasks["Summary"]["result"]["results"]["call"]["status_code"] == 200


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("refused/")))
def test_corpus_row_state_is_refused_with_what_to_do(name: str, tmp_path: Path) -> None:
    out = _apflow(tmp_path, "run", "flow", "--tasks-file", str(CORPUS / name))
    assert out.returncode == 2, out.stdout
    assert EXPECTED[name]["error"] in out.stderr
    listed = _apflow(tmp_path, "tasks", "count", "--format", "json")
    assert json.loads(listed.stdout)["total"] == 0  # nothing was stored


README_LINES = [  # aipartnerupflow 0.9.0's README, "CLI Usage", verbatim
    """aipartnerupflow run flow --tasks '[{"id": "task1", "name": "Task 1", "schemas": {"method": "executor_id"}, "inputs": {"key": "value"}}]'""",  # noqa: E501
    """apflow run flow --tasks '[{"id": "task1", "name": "Task 1", "schemas": {"method": "executor_id"}, "inputs": {"key": "value"}}]'""",  # noqa: E501
    """apflow run flow executor_id --inputs '{"key": "value"}'""",
]


@pytest.mark.parametrize("line", README_LINES)
def test_readme_cli_lines_parse_and_name_the_installed_executors(line: str, tmp_path: Path) -> None:
    """``executor_id`` is the README's placeholder: the line parses and the error lists the
    installed executors; with a real id in its place the same line runs."""
    args = shlex.split(line)[1:]
    out = _apflow(tmp_path, *args)
    assert out.returncode == 2
    assert "executor_id" in out.stderr and "system_info_executor" in out.stderr
    real = [a.replace("executor_id", "system_info_executor") for a in args]
    real = [a.replace('{"key": "value"}', '{"resource": "cpu"}') for a in real]
    ran = _apflow(tmp_path, *real, "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["status"] == "completed"


def test_readme_a2a_snippet_builds_the_app() -> None:
    # --- aipartnerupflow 0.9.0's README, "A2A Protocol Server", verbatim ---
    from aipartnerupflow.api import create_app

    # Create A2A protocol server app
    app = create_app()
    # ---
    assert callable(app)


async def test_readme_custom_task_snippet_runs_as_a_task(target: str) -> None:
    """The 0.9.0 README's "Creating Custom Tasks" class, verbatim, registered and run
    against the loopback HTTP target (aiohttp comes with the LLM extra's dependencies)."""
    # --- aipartnerupflow 0.9.0's README, verbatim (its import order and style) ---
    from aipartnerupflow import ExecutableTask  # noqa: I001
    from typing import Dict, Any  # noqa: F401, UP035
    import aiohttp

    class APICallTask(ExecutableTask):
        """Traditional external API call task"""

        id = "api_call_task"
        name = "API Call Task"
        description = "Call external API service"

        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:  # noqa: UP006
            async with aiohttp.ClientSession() as session:  # noqa: SIM117
                async with session.post(inputs["url"], json=inputs.get("data")) as response:
                    result = await response.json()
                    return {"status": "completed", "result": result}

        def get_input_schema(self) -> Dict[str, Any]:  # noqa: UP006
            return {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "API endpoint"},
                    "data": {"type": "object", "description": "Request data"},
                },
            }

    # --- end of the snippet ---
    from aipartnerupflow import ExecutorRegistry, TaskManager, create_session

    registry = ExecutorRegistry()
    registry.register(APICallTask)
    async with TaskManager(create_session("duckdb:///:memory:"), registry=registry) as tm:
        result = await tm.run_tasks(
            [
                {
                    "name": "call",
                    "schemas": {"method": "api_call_task"},
                    "inputs": {"url": f"{target}/echo", "data": {"q": 1}},
                }
            ]
        )
    outcome = result.task("call")
    assert outcome.status == "completed", outcome.error
    assert outcome.result["status"] == "completed"
    assert outcome.result["result"]["method"] == "POST"
    assert json.loads(outcome.result["result"]["body"]) == {"q": 1}
