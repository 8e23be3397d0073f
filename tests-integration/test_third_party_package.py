"""An executor package from outside this repository is discovered and runs.

The test writes a tiny third-party distribution (own pyproject, own top-level package, an
``aipartnerupflow.executors`` entry point), builds it and the core as wheels with uv, installs
both into a clean venv and runs a one-task tree through ``TaskManager`` there. A package made
from ``templates/executor-package`` (copied outside the repository and renamed) is built,
installed from wheels and passes its own tests there, the strict contract suite included.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "templates" / "executor-package"

PYPROJECT = """
[build-system]
requires = ["hatchling>=1.26"]
build-backend = "hatchling.build"

[project]
name = "acme-apf-echo"
version = "1.2.3"
requires-python = ">=3.11"
dependencies = ["aipartnerupflow-core>=1.0,<2"]

[project.entry-points."aipartnerupflow.executors"]
acme_echo = "acme_apf_echo.executor:AcmeEcho"

[tool.hatch.build.targets.wheel]
packages = ["src/acme_apf_echo"]
"""

EXECUTOR = '''
"""A third party's executor: lives in its own top-level package."""

from typing import Any

from aipartnerupflow import BaseTask


class AcmeEcho(BaseTask):
    id = "acme_echo"
    name = "ACME echo"

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"echo": inputs, "by": "acme"}
'''

RUN_TREE = """
import asyncio, json, sys
from aipartnerupflow import TaskManager, create_session, get_executor_registry

executor_id, inputs = sys.argv[1], json.loads(sys.argv[2])
registry = get_executor_registry()

async def main():
    manager = TaskManager(create_session("duckdb:///:memory:"))
    tree = [{"id": "t1", "name": "t1", "schemas": {"method": executor_id}, "inputs": inputs}]
    result = await manager.run_tasks(tree)
    task = result.tasks[0]
    print(json.dumps({
        "ids": registry.ids(),
        "source": registry.source(executor_id),
        "completed": result.status == "completed",
        "status": str(result.status),
        "result": task.result,
    }))

asyncio.run(main())
"""


def _run_tree(venv: Any, executor_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    out = venv.run("-c", RUN_TREE, executor_id, json.dumps(inputs))
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return report


def _write_acme_package(root: Path) -> Path:
    package = root / "acme-apf-echo"
    source = package / "src" / "acme_apf_echo"
    source.mkdir(parents=True)
    (package / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (package / "README.md").write_text("ACME echo executor for aipartnerupflow.\n")
    (source / "__init__.py").write_text('"""ACME executors for aipartnerupflow."""\n')
    (source / "executor.py").write_text(textwrap.dedent(EXECUTOR))
    (source / "py.typed").write_text("")
    return package


def test_third_party_executor_is_discovered_and_runs(
    tmp_path: Path,
    core_wheel: Path,
    build_wheel: Callable[..., Path],
    make_venv: Callable[[], Any],
) -> None:
    wheel = build_wheel(_write_acme_package(tmp_path))
    assert wheel.name == "acme_apf_echo-1.2.3-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("aipartnerupflow/")]

    venv = make_venv()
    venv.install(core_wheel, wheel)
    report = _run_tree(venv, "acme_echo", {"x": 1})

    assert "acme_echo" in report["ids"]
    assert "aggregate_results_executor" in report["ids"]
    assert report["source"] == "acme-apf-echo"
    assert report["completed"], report
    assert report["result"] == {"echo": {"x": 1}, "by": "acme"}


def _toy_from_template(root: Path) -> Path:
    """A new package made from the template the way CONTRIBUTING says: copy, rename."""
    package = root / "aipartnerupflow-executor-toy"
    shutil.copytree(TEMPLATE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    source = package / "src" / "aipartnerupflow" / "extensions"
    (source / "example").rename(source / "toy")
    for path in package.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".toml", ".md"}:
            text = path.read_text()
            for old, new in (("example", "toy"), ("Example", "Toy"), ("EXAMPLE", "TOY")):
                text = re.sub(f"{old}(?!s)", new, text)  # not the `examples` attribute
            path.write_text(text)
    return package


def test_a_package_made_from_the_template_passes_the_strict_contract_outside_the_repo(
    tmp_path: Path,
    core_wheel: Path,
    testing_wheel: Path,
    build_wheel: Callable[..., Path],
    make_venv: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = _toy_from_template(tmp_path)
    assert REPO not in package.parents  # no workspace, no monorepo config above it
    wheel = build_wheel(package)
    assert wheel.name == "aipartnerupflow_executor_toy-0.1.0-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("network.py", "command.py", "settings.py", "py.typed"):
        assert f"aipartnerupflow/extensions/toy/{module}" in names
    assert "aipartnerupflow/__init__.py" not in names
    assert "aipartnerupflow/extensions/__init__.py" not in names

    venv = make_venv()
    testing = f"aipartnerupflow-testing[servers] @ {testing_wheel.as_uri()}"
    venv.install(core_wheel, testing, wheel, "pytest>=9", "pytest-asyncio>=1.2")

    # The dangerous skeleton runs once the operator enables it.
    monkeypatch.setenv("AIPARTNERUPFLOW_ENABLED_EXECUTORS", "toy_command")
    report = _run_tree(venv, "toy_command", {"command": ["echo", "made from the template"]})
    assert report["source"] == "aipartnerupflow-executor-toy"
    assert {"toy_fetch", "toy_command"} <= set(report["ids"])
    assert report["completed"], report
    assert report["result"]["stdout"] == "made from the template\n"
    monkeypatch.delenv("AIPARTNERUPFLOW_ENABLED_EXECUTORS")

    # The package's own tests, the strict contract suite included, against the installed
    # wheels, with the package's own pytest configuration (none of the monorepo's).
    out = venv.run("-m", "pytest", "-v", "-p", "no:cacheprovider", "tests", cwd=package)
    assert re.search(r"\b(4\d|[5-9]\d) passed\b", out), out
    assert " failed" not in out and " error" not in out, out
    for check in (
        "TestFetchContract::test_runs_as_a_dependent PASSED",
        "TestFetchContract::test_loopback_denied_by_default PASSED",
        "TestFetchContract::test_output_cap_honoured PASSED",
        "TestFetchContract::test_timeout PASSED",
        "TestFetchContract::test_no_secrets_in_results_errors_events_rows_or_logs PASSED",
        "TestCommandContract::test_dangerous_executor_needs_opt_in PASSED",
        "TestCommandContract::test_cancellation PASSED",
        "TestCommandContract::test_permanent_errors_are_not_retried PASSED",
    ):
        assert check in out, f"{check!r} missing:\n{out}"
