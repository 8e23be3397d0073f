"""An executor package from outside this repository is discovered and runs.

The test writes a tiny third-party distribution (own pyproject, own top-level package, an
``aipartnerupflow.executors`` entry point), builds it and the core as wheels with uv, installs
both into a clean venv and runs a one-task tree through ``TaskManager`` there. The executor
package template in ``templates/executor-package`` gets the same treatment.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
dependencies = ["aipartnerupflow-core>=0.1,<0.2"]

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


def test_executor_package_template_builds_installs_and_runs(
    tmp_path: Path,
    core_wheel: Path,
    testing_wheel: Path,
    build_wheel: Callable[..., Path],
    make_venv: Callable[[], Any],
) -> None:
    template = tmp_path / "executor-example"
    shutil.copytree(TEMPLATE, template, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheel = build_wheel(template)
    assert wheel.name == "aipartnerupflow_executor_example-0.1.0-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "aipartnerupflow/extensions/example/executor.py" in names
    assert "aipartnerupflow/extensions/example/py.typed" in names
    assert "aipartnerupflow/__init__.py" not in names
    assert "aipartnerupflow/extensions/__init__.py" not in names

    venv = make_venv()
    venv.install(core_wheel, testing_wheel, wheel, "pytest>=9", "pytest-asyncio>=1.2")
    report = _run_tree(venv, "example_executor", {"text": "ab", "repeat": 2})
    assert report["source"] == "aipartnerupflow-executor-example"
    assert report["completed"], report
    assert report["result"] == {"text": "abab", "length": 4}

    # The template's own tests (contract suite included) pass against the installed wheels.
    # The settings the monorepo's root config gives every package's tests.
    pytest_args = ["-q", "-p", "no:cacheprovider", "-W", "error", "--import-mode=importlib"]
    pytest_args += ["-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function"]
    out = venv.run("-m", "pytest", *pytest_args, "tests", cwd=template)
    assert " passed" in out
