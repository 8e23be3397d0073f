"""Developer and CI sessions for the aipartnerupflow monorepo (`nox -l` lists them).

Every session builds its own environment with uv; nothing depends on the developer's `.venv`.
`nox` with no arguments runs the CI selection (`nox.options.sessions`).
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).resolve().parent
LINT_PATHS = [
    "packages",
    "examples",
    "tools",
    "tests-integration",
    "benchmarks",
    "templates",
    "noxfile.py",
]
CORE_ONLY_TEST_DEPS = ["pytest>=9", "pytest-asyncio>=1.2", "hypothesis>=6.100", "psutil>=6"]
PYTEST_FALLBACK_DEPS = ["pytest>=9", "pytest-asyncio>=1.2"]
META_DIST = "aipartnerupflow"


def _packages() -> dict[str, dict[str, object]]:
    """Workspace members by directory name (``core``, ``cli``…), from packages/*/pyproject.toml."""
    found: dict[str, dict[str, object]] = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        with pyproject.open("rb") as fh:
            found[pyproject.parent.name] = tomllib.load(fh)
    return found


PACKAGES = _packages()

#: The selection CI runs; `nox` with no arguments runs it too: every package's isolated
#: session (``tests(package='core')`` …), then ``full`` for only what those do not cover.
#: Spelled out per package, because ``session.notify("tests")`` (the ``ci`` session) would
#: queue only the first parametrization.
CI_SESSIONS = [
    "lint",
    "typecheck",
    "docs",
    "wheels",
    "core_only",
    *(f"tests(package='{package}')" for package in PACKAGES),
    "full",
]
nox.options.sessions = CI_SESSIONS


def _dist_name(package: str) -> str:
    project = PACKAGES[package]["project"]
    assert isinstance(project, dict)
    return str(project["name"])


def _has_test_group(package: str) -> bool:
    groups = PACKAGES[package].get("dependency-groups", {})
    return isinstance(groups, dict) and "test" in groups


def _test_dirs(*packages: str) -> list[str]:
    """Existing ``packages/<p>/tests`` directories that hold at least one test module."""
    dirs = []
    for package in packages:
        tests = ROOT / "packages" / package / "tests"
        if any(tests.rglob("test_*.py")):
            dirs.append(str(tests.relative_to(ROOT)))
    return dirs


def _uv_sync(session: nox.Session, *args: str) -> None:
    """``uv sync --frozen`` into this session's venv (nox exports UV_PROJECT_ENVIRONMENT)."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--no-default-groups",
        "--python",
        session.virtualenv.location,
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


def _uv_build(session: nox.Session, out: Path, *args: str) -> None:
    shutil.rmtree(out, ignore_errors=True)
    session.run_install("uv", "build", "--out-dir", str(out), *args, external=True)


def _pytest(session: nox.Session, *paths: str) -> None:
    session.run("python", "-m", "pytest", *paths, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) over every Python file we own, and the lock file is current."""
    session.install("ruff>=0.15")
    paths = [p for p in LINT_PATHS if (ROOT / p).exists()]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("uv", "lock", "--check", external=True)
    # The meta-package's extras and the executor catalogue are generated from packages/.
    session.run("python", "tools/gen_catalogue.py", "--check")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the packages' sources (core strict) and tests, tools and the noxfile."""
    _uv_sync(session, "--all-packages", "--all-extras", "--group", "dev")
    sources = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("packages/*/src"))
    # Module names come from the src roots, so the shared namespace maps to one package.
    env = {"MYPYPATH": os.pathsep.join(sources)}
    session.run("mypy", *sources, env=env)
    # Tests too, one package at a time (every tests/ has a conftest.py); a test's
    # `type: ignore` may outlive the API change it was for, so unused ones are not errors.
    for tests_dir in _test_dirs(*PACKAGES):
        session.run("mypy", "--no-warn-unused-ignores", tests_dir, env=env)
    session.install("nox")  # typed; lets mypy check the noxfile
    session.run("mypy", "tools", "tests-integration", "noxfile.py")
    template = "templates/executor-package/src"
    session.run("mypy", template, env={"MYPYPATH": os.pathsep.join([template, *sources])})


@nox.session
@nox.parametrize("package", list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """One package's tests, in an env holding only that package, its deps and its test group."""
    dist = _dist_name(package)
    # A package's own extras are part of what it tests (core[postgres] for instance); the
    # meta-package's extras are the other packages, which its tests only read metadata of.
    extras = [] if dist == META_DIST else ["--all-extras"]
    if _has_test_group(package):
        _uv_sync(session, "--package", dist, *extras, "--group", "test")
    else:
        _uv_sync(session, "--package", dist, *extras)
        session.install(*PYTEST_FALLBACK_DEPS)
    paths = _test_dirs(package)
    if not paths:
        session.error(
            f"packages/{package}/tests has no test_*.py modules: every package tests itself"
        )
    _pytest(session, *paths)


@nox.session
def core_only(session: nox.Session) -> None:
    """The core wheel alone (plus the testing wheel): no optional SDK installed or imported."""
    dist = Path(session.create_tmp()) / "dist"
    _uv_build(session, dist, "--package", "aipartnerupflow-core", "--wheel")
    _uv_build(session, dist / "testing", "--package", "aipartnerupflow-testing", "--wheel")
    (core,) = dist.glob("aipartnerupflow_core-*.whl")
    (testing,) = dist.glob("testing/*.whl")
    # Direct file references: our names can only come from these wheels, never from PyPI.
    # The core's own `postgres` extra (psycopg) is part of the core; optional SDKs are not.
    session.install(
        f"aipartnerupflow-core[postgres] @ {core.resolve().as_uri()}",
        str(testing),
        *CORE_ONLY_TEST_DEPS,
    )
    session.run("python", "tools/check_core_only.py")
    # The kit's httpx transport needs the core's [httpx] extra, which this session leaves out
    # on purpose; tests(package='core') runs it with every extra installed.
    _pytest(
        session,
        *_test_dirs("core"),
        "--ignore=packages/core/tests/test_executor_kit_http_transport.py",
    )


@nox.session
def full(session: nox.Session) -> None:
    """Everything installed from the lock: what the per-package sessions cannot cover.

    Each package's own tests run in its isolated ``tests(package=…)`` session, so here only
    the cross-package scenarios of tests-integration run (not every package's tests twice).
    """
    _uv_sync(session, "--all-packages", "--all-groups", "--all-extras")
    paths = _integration_paths()
    if not paths:
        session.error("tests-integration holds no test_*.py modules")
    _pytest(session, *paths)


def _integration_paths() -> list[str]:
    return ["tests-integration"] if any((ROOT / "tests-integration").glob("test_*.py")) else []


@nox.session
def wheels(session: nox.Session) -> None:
    """Build every wheel without workspace sources, check the namespace, install only from dist/."""
    dist = Path(session.create_tmp()) / "dist"
    _uv_build(session, dist, "--all-packages", "--no-sources")
    # Namespace rules, core ranges, versions >= 1.0.0, complete metadata and READMEs.
    session.run("python", "tools/check_wheels.py", "contents", str(dist))
    # Metadata and README rendering as PyPI will see them (twine in uv's isolated tool env).
    files = sorted(str(f) for f in dist.iterdir() if f.suffix in {".whl", ".gz"})
    session.run("uv", "tool", "run", "twine", "check", "--strict", *files, external=True)
    # `aipartnerupflow[all]` against PyPI plus dist/ picks ours, never the original 0.9.0.
    session.run("python", "tools/check_wheels.py", "resolves", str(dist))
    specs = [_wheel_requirement(w) for w in sorted(dist.glob("*.whl"))]
    # `name[extras] @ file://…` pins each of our distributions to its wheel in dist/; only
    # third-party dependencies come from the index.
    session.install(*specs)
    session.run("python", str(ROOT / "tools/check_wheels.py"), "installed", str(dist))


def _wheel_requirement(wheel: Path) -> str:
    """``name[all extras] @ file:///…`` for a wheel, so every optional dependency is installed."""
    import zipfile

    name = wheel.name.split("-")[0].replace("_", "-")
    extras: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        for line in zf.read(metadata).decode().splitlines():
            if line.startswith("Provides-Extra:"):
                extras.append(line.split(":", 1)[1].strip())
    extra = f"[{','.join(extras)}]" if extras else ""
    return f"{name}{extra} @ {wheel.resolve().as_uri()}"


@nox.session
def integration(session: nox.Session) -> None:
    """Cross-package scenarios in tests-integration/ (the same as ``full``)."""
    full(session)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; warnings are errors; the generated pages are current.

    Every code block of the pages runs in ``full`` (tests-integration/test_docs_examples.py).
    """
    # Every package: the configuration reference is generated from their settings models.
    _uv_sync(session, "--all-packages", "--group", "docs")
    session.run("python", "tools/gen_config_docs.py", "--check")
    session.run("python", "tools/gen_cli_docs.py", "--check")
    # Every public name of the core and of each package's top-level module is rendered.
    session.run("python", "tools/check_api_reference.py")
    site = Path(session.create_tmp()) / "site"
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", str(site), env={"NO_MKDOCS_2_WARNING": "1"}
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, printed as tables; never part of CI's pass/fail.

    ``nox -s bench -- cli_startup.py --runs 5`` runs one script with its own arguments.
    """
    _uv_sync(session, "--all-packages", "--all-extras", "--group", "dev")
    bench_dir = ROOT / "benchmarks"
    if session.posargs:
        session.run("python", str(bench_dir / session.posargs[0]), *session.posargs[1:])
        return
    results = bench_dir / "results"
    session.run("python", str(bench_dir / "run.py"), "--compare", str(results / "duckdb.json"))
    session.run(
        "python",
        str(bench_dir / "run.py"),
        "--backend",
        "postgres",
        "--compare",
        str(results / "postgres.json"),
    )
    for script in (
        "cli_startup.py",
        "workers.py",
        "a2a_server.py",
        "websocket_executor.py",
        "rest_fanout.py",
        "grpc_calls.py",
        "docker_containers.py",
        "llm_completions.py",
    ):
        session.run("python", str(bench_dir / script))


#: The peers ``bench_peers`` measures the engine against (issue 27), from PyPI.
PEER_PACKAGES = ["dbos>=3.4,<4", "prefect>=3.9,<4"]


@nox.session
def bench_peers(session: nox.Session) -> None:
    """The engine beside DBOS Transact and Prefect 3 on the same workloads, interleaved.

    Not in the default selection: it needs PostgreSQL on 127.0.0.1:5432 and takes minutes.
    ``nox -s bench_peers -- --reps 3 --only fanout_1000 chain_200`` passes arguments to
    ``benchmarks/peers/run.py``.
    """
    _uv_sync(session, "--all-packages", "--all-extras", "--group", "dev")
    session.install(*PEER_PACKAGES)
    session.run("python", str(ROOT / "benchmarks" / "peers" / "run.py"), *session.posargs)


@nox.session(venv_backend="none")
def ci(session: nox.Session) -> None:
    """What CI runs: the default selection, one after another."""
    for name in CI_SESSIONS:
        session.notify(name)
