"""Every code block of the README, the package READMEs and the docs, and every file in examples/,
runs (or parses) here, twice in a row in the same directory and store: the docs do not lie and
the examples are re-runnable. Blocks marked ``<!-- no-run: why -->`` are listed at the end of
the session (``tools/docs_blocks.py`` says how each kind of block is checked).

The blocks run in parallel subprocesses, each in its own directory with its own DuckDB store
(``AIPARTNERUPFLOW_DATABASE_URL``) and ``HOME``, so none sees another's tasks or daemon.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNS = 2  # twice in a row: fixed ids, files left behind and stores must not break a re-run
TIMEOUT = 180.0  # seconds per run; a hung block fails instead of hanging CI
WORKERS = max(2, min(6, (os.cpu_count() or 2) * 2))  # the blocks mostly wait on imports and I/O


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_blocks", ROOT / "tools" / "docs_blocks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


docs_blocks = _load_tool()
BLOCKS = docs_blocks.blocks()
PAGES: dict[str, list[object]] = {}
for _block in BLOCKS:
    PAGES.setdefault(_block.path, []).append(_block)
EXAMPLES = sorted(
    p for p in (ROOT / "examples").iterdir() if p.name not in {"__init__.py", "__pycache__"}
)

#: Runs a python block: top-level ``await`` is allowed (as in ``python -m asyncio``).
PYTHON_DRIVER = """\
import ast, asyncio, inspect, sys, types
path = sys.argv[1]
code = compile(open(path).read(), path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__", "__file__": path}
if code.co_flags & inspect.CO_COROUTINE:
    asyncio.run(types.FunctionType(code, namespace)())
else:
    exec(code, namespace)
"""

#: What ``pip install`` means in a shell block: each of our distributions and extras it names
#: must exist (they are all installed here, from the workspace); third-party names come from PyPI.
PIP_SHIM = """\
import sys
from importlib import metadata
from packaging.requirements import Requirement
args = sys.argv[1:]
if not args or args[0] != "install":
    sys.exit(f"docs test: only `pip install` is understood, not `pip {' '.join(args)}`")
problems = []
for arg in args[1:]:
    if arg.startswith("-"):
        continue
    req = Requirement(arg)
    if not req.name.startswith("aipartnerupflow"):
        print(f"pip install {arg}: third-party, from PyPI (not checked)")
        continue
    try:
        dist = metadata.distribution(req.name)
    except metadata.PackageNotFoundError:
        problems.append(f"{req.name} is not a distribution of this workspace")
        continue
    declared = set(dist.metadata.get_all("Provides-Extra") or [])
    problems += [f"{req.name} has no extra [{e}] (it has {sorted(declared)})"
                 for e in sorted(req.extras - declared)]
    if not req.specifier.contains(dist.version, prereleases=True):
        problems.append(f"{arg} excludes the workspace's {req.name} {dist.version}")
    print(f"pip install {arg}: {req.name} {dist.version} provides it")
if problems:
    sys.exit("docs test: " + "; ".join(problems))
"""

SHELL_PRELUDE = """\
set -euo pipefail
pip() { python "$DOCS_PIP_SHIM" "$@"; }
uv() {
  case "${1:-}" in
    run) shift; "$@" ;;
    sync) echo "uv sync: the environment is synced already" ;;
    *) echo "docs test: 'uv $*' is not run here; mark the block no-run" >&2; return 97 ;;
  esac
}
nox() { echo "docs test: nox is not run from the docs test (it runs this test)" >&2; return 97; }
"""


@dataclass
class Outcome:
    """What each of the runs of one block printed."""

    runs: list[subprocess.CompletedProcess[str]]

    def failure(self) -> str | None:
        for number, proc in enumerate(self.runs, 1):
            if proc.returncode != 0:
                return (
                    f"run {number} of {RUNS} exited {proc.returncode}\n--- stdout\n"
                    f"{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
                )
        return None


def _environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIPARTNERUPFLOW_")}
    for leak in ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT"):
        env.pop(leak, None)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    bindir = str(Path(sys.executable).parent)
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([bindir, env.get("PATH", "")]),
        AIPARTNERUPFLOW_DATABASE_URL=f"duckdb:///{workdir / 'store.duckdb'}",
        DOCS_PIP_SHIM=str(workdir / "pip_shim.py"),
        PYTHONUNBUFFERED="1",
    )
    return env


def _workdir(base: Path) -> Path:
    base.mkdir(parents=True)
    (base / "examples").symlink_to(ROOT / "examples")  # `apflow --plugin examples.executors`
    (base / "pip_shim.py").write_text(PIP_SHIM)
    (base / "driver.py").write_text(PYTHON_DRIVER)
    return base


def _command(block: object, workdir: Path) -> list[str]:
    kind = block.kind  # type: ignore[attr-defined]
    if kind == "python":
        script = workdir / "block.py"
        script.write_text(docs_blocks.script_of(block, PAGES[block.path]))  # type: ignore[attr-defined]
        return [sys.executable, str(workdir / "driver.py"), str(script)]
    script = workdir / "block.sh"
    script.write_text(SHELL_PRELUDE + block.code)  # type: ignore[attr-defined]
    return ["bash", str(script)]


def _run(command: list[str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """One run in its own process group, so a timeout ends whatever the block started."""
    with subprocess.Popen(
        command,
        cwd=workdir,
        env=_environment(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            stderr += f"\ntimed out after {TIMEOUT:.0f}s (a server? mark it <!-- no-run: why -->)"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # nothing it started outlives the run
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _run_twice(command: list[str], workdir: Path) -> Outcome:
    runs = []
    for _ in range(RUNS):
        runs.append(_run(command, workdir))
        if runs[-1].returncode != 0:
            break
    return Outcome(runs)


def _example_command(path: Path) -> list[str]:
    if path.suffix == ".py":
        return [sys.executable, str(path)]
    if path.suffix == ".json":
        apflow = str(Path(sys.executable).with_name("apflow"))
        return [apflow, "--plugin", "examples.executors", "run", "flow", "--tasks-file", str(path)]
    pytest.fail(f"examples/{path.name}: no way to run it; examples/ holds .py and .json files")


def _selected(request: pytest.FixtureRequest) -> set[str]:
    """Ids of the blocks and examples the session's selected tests need (``-k`` runs fewer)."""
    wanted = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "block" in params:
            wanted.add(params["block"].id)
        elif "path" in params and isinstance(params["path"], Path):
            wanted.add(f"examples/{params['path'].name}")
    return wanted


@pytest.fixture(scope="session")
def outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    """Every executable block and example, run twice, in parallel processes."""
    base = tmp_path_factory.mktemp("docs-blocks")
    wanted = _selected(request)
    jobs: dict[str, tuple[list[str], Path]] = {}
    for number, block in enumerate(BLOCKS):
        if block.runs and block.kind in {"python", "shell"} and block.id in wanted:
            workdir = _workdir(base / f"b{number}")
            jobs[block.id] = (_command(block, workdir), workdir)
    for path in EXAMPLES:
        if f"examples/{path.name}" in wanted:
            workdir = _workdir(base / f"example-{path.name}")
            jobs[f"examples/{path.name}"] = (_example_command(path), workdir)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {key: pool.submit(_run_twice, *job) for key, job in jobs.items()}
        yield {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.runs], ids=lambda b: b.id)
def test_block_runs_twice(block: object, outcomes: dict[str, Outcome]) -> None:
    kind, code = block.kind, block.code  # type: ignore[attr-defined]
    if kind == "json":
        _check_task_json(block.id, json.loads(code))  # type: ignore[attr-defined]
        return
    if kind == "toml":
        tomllib.loads(code)
        return
    failure = outcomes[block.id].failure()  # type: ignore[attr-defined]
    assert failure is None, f"{block.id} ({kind}) failed:\n{failure}"  # type: ignore[attr-defined]


def _task_json(value: object) -> list[dict[str, object]]:
    """The tasks of a JSON block that is task JSON (objects with ``schemas``), else []."""
    if isinstance(value, dict) and isinstance(value.get("tasks"), list):
        value = value["tasks"]
    items = value if isinstance(value, list) else [value]
    if items and all(isinstance(item, dict) and "schemas" in item for item in items):
        return items  # type: ignore[return-value]
    return []


def _check_task_json(where: str, value: object) -> None:
    """Task JSON in the docs is valid task JSON, naming executors that exist."""
    from aipartnerupflow import TaskSpec, get_executor_registry

    known = set(get_executor_registry().ids())
    for task in _task_json(value):
        TaskSpec.model_validate(task)
        schemas = task["schemas"]
        method = schemas.get("method") if isinstance(schemas, dict) else None
        assert method is None or method in known, (
            f"{where}: task {task.get('name')!r} names executor {method!r}, which no installed "
            f"package provides (installed: {', '.join(sorted(known))})"
        )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"examples/{p.name}")
def test_example_runs_twice(path: Path, outcomes: dict[str, Outcome]) -> None:
    failure = outcomes[f"examples/{path.name}"].failure()
    assert failure is None, f"examples/{path.name} failed:\n{failure}"


def test_every_block_that_does_not_run_says_why() -> None:
    unmarked = [b.id for b in BLOCKS if not b.runs and b.no_run is None]
    assert unmarked == [], (
        "code blocks in a language the docs test cannot run, without a reason: mark each "
        "<!-- no-run: why --> on the line before the fence, or use python/bash/json/toml: "
        + ", ".join(unmarked)
    )


def test_the_block_finder_sees_the_pages() -> None:
    # If the fence parser broke, every page would look empty and everything would "pass".
    assert len(BLOCKS) >= 50
    assert any(b.path == "README.md" and b.kind == "python" for b in BLOCKS)
    assert {b.path for b in BLOCKS} >= {"README.md", "docs/getting-started.md"}


REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:benchmarks|examples|tools|tests-integration|templates|packages|docs)"
    r"/[\w./-]*\.(?:py|md|json|toml|yml))\b"
)


@pytest.mark.parametrize("page", docs_blocks.doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_paths_the_page_names_exist(page: Path) -> None:
    # A README once named a benchmark file that did not exist; a page names only what does.
    text = page.read_text(encoding="utf-8")
    named = sorted(set(REPO_PATH.findall(text)))
    missing = [p for p in named if not (ROOT / p).exists() and not (page.parent / p).exists()]
    assert missing == [], f"{page.relative_to(ROOT)} names files that do not exist: {missing}"


@pytest.mark.parametrize(
    "package", sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml"))
)
def test_every_package_has_a_page_in_the_site(package: str) -> None:
    page = ROOT / "docs" / "packages" / f"{package}.md"
    assert page.exists(), f"packages/{package} has no docs/packages/{package}.md"
    assert f'--8<-- "packages/{package}/README.md"' in page.read_text(encoding="utf-8"), (
        f"docs/packages/{package}.md does not include packages/{package}/README.md"
    )
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert f"packages/{package}.md" in nav, f"mkdocs.yml's nav lacks packages/{package}.md"
