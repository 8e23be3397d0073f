"""tools/check_wheels.py catches every namespace and version-range mistake it is meant to."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def check_wheels() -> ModuleType:
    """tools/check_wheels.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "check_wheels_under_test", REPO / "tools" / "check_wheels.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wheel(
    dist: Path,
    name: str,
    files: list[str],
    *,
    version: str = "1.0.0",
    requires: str = "",
    complete: bool = True,
) -> None:
    """Write a minimal wheel holding empty ``files`` and METADATA (complete unless told)."""
    stem = f"{name.replace('-', '_')}-{version}"
    meta = f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n"
    if requires:
        meta += f"Requires-Dist: {requires}\n"
    if complete:
        meta += (
            "Summary: a test wheel\nRequires-Python: >=3.11\nLicense-Expression: Apache-2.0\n"
            "License-File: LICENSE\nClassifier: Programming Language :: Python :: 3\n"
            "Project-URL: Homepage, https://example.invalid\n"
            "Project-URL: Source, https://example.invalid/src\n"
            "Project-URL: Issues, https://example.invalid/issues\n"
            "Description-Content-Type: text/markdown\n\n"
            f"# {name}\n\n```bash\npip install {name}\n```\n\n[Docs](https://example.invalid)\n"
        )
    with zipfile.ZipFile(dist / f"{stem}-py3-none-any.whl", "w") as zf:
        for file in files:
            zf.writestr(file, "")
        zf.writestr(f"{stem}.dist-info/METADATA", meta)
        if complete:
            zf.writestr(f"{stem}.dist-info/licenses/LICENSE", "Apache License 2.0")


CORE_FILES = [
    "aipartnerupflow/__init__.py",
    "aipartnerupflow/py.typed",
    "aipartnerupflow/core/__init__.py",
]
PLUGIN_FILES = ["aipartnerupflow/extensions/x/__init__.py", "aipartnerupflow/extensions/x/py.typed"]
PLUGIN_WHEEL = "aipartnerupflow_executor_x-1.0.0-py3-none-any.whl"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A dist directory holding a correct core wheel."""
    wheel(tmp_path, "aipartnerupflow-core", CORE_FILES)
    return tmp_path


def test_a_correct_set_passes(check_wheels: ModuleType, dist: Path) -> None:
    wheel(dist, "aipartnerupflow-executor-x", PLUGIN_FILES, requires="aipartnerupflow-core<2,>=1.0")
    wheel(dist, "aipartnerupflow", [], requires='aipartnerupflow-executor-x; extra == "x"')
    assert check_wheels.check_contents(dist) == []
    assert check_wheels.main(["contents", str(dist)]) == 0


def test_plugin_shipping_the_namespace_root_fails(check_wheels: ModuleType, dist: Path) -> None:
    wheel(dist, "aipartnerupflow-executor-x", [*PLUGIN_FILES, "aipartnerupflow/__init__.py"])
    assert check_wheels.check_contents(dist)[0] == (
        f"{PLUGIN_WHEEL}: ships aipartnerupflow/__init__.py; only aipartnerupflow-core may "
        "(it would overwrite core's and break the namespace)"
    )
    assert check_wheels.main(["contents", str(dist)]) == 1


def test_shipping_extensions_init_fails(check_wheels: ModuleType, dist: Path) -> None:
    wheel(
        dist,
        "aipartnerupflow-executor-x",
        [*PLUGIN_FILES, "aipartnerupflow/extensions/__init__.py"],
    )
    problems = check_wheels.check_contents(dist)
    assert problems[0] == (
        f"{PLUGIN_WHEEL}: ships aipartnerupflow/extensions/__init__.py; shared namespace levels "
        "have no __init__.py"
    )


def test_core_without_the_namespace_root_fails(check_wheels: ModuleType, tmp_path: Path) -> None:
    wheel(
        tmp_path,
        "aipartnerupflow-core",
        ["aipartnerupflow/core/__init__.py", "aipartnerupflow/core/py.typed"],
    )
    assert check_wheels.check_contents(tmp_path) == [
        "aipartnerupflow_core-1.0.0-py3-none-any.whl: the core wheel lacks "
        "aipartnerupflow/__init__.py"
    ]


def test_core_range_excluding_the_built_core_fails(check_wheels: ModuleType, dist: Path) -> None:
    wheel(dist, "aipartnerupflow-executor-x", PLUGIN_FILES, requires="aipartnerupflow-core>=2.0,<3")
    assert check_wheels.check_contents(dist) == [
        f"{PLUGIN_WHEEL}: requires aipartnerupflow-core<3,>=2.0, which excludes the core version "
        "built here (1.0.0); widen the range or bump core"
    ]


def test_missing_py_typed_and_empty_wheels_fail(check_wheels: ModuleType, dist: Path) -> None:
    wheel(dist, "aipartnerupflow-executor-x", ["aipartnerupflow/extensions/x/__init__.py"])
    wheel(dist, "aipartnerupflow-executor-y", [])
    assert check_wheels.check_contents(dist) == [
        f"{PLUGIN_WHEEL}: package aipartnerupflow.extensions.x has no py.typed",
        "aipartnerupflow_executor_y-1.0.0-py3-none-any.whl: ships no Python package",
    ]


def test_no_core_wheel_fails(check_wheels: ModuleType, tmp_path: Path) -> None:
    wheel(tmp_path, "aipartnerupflow-executor-x", PLUGIN_FILES)
    assert check_wheels.check_contents(tmp_path) == [
        f"expected exactly one aipartnerupflow-core wheel in {tmp_path}, found 0"
    ]


def test_a_version_below_the_original_release_fails(check_wheels: ModuleType, dist: Path) -> None:
    # The original project is aipartnerupflow 0.9.0 on PyPI: a 0.x of ours would lose to it.
    wheel(dist, "aipartnerupflow-executor-x", PLUGIN_FILES, version="0.9.1")
    assert check_wheels.check_contents(dist) == [
        "aipartnerupflow_executor_x-0.9.1-py3-none-any.whl: version 0.9.1 is below 1.0.0; a "
        "resolver would pick the original project's 0.9.0 over it: set version >= 1.0.0 in its "
        "pyproject.toml"
    ]


@pytest.mark.parametrize("version", ["1.0", "1.0.0rc1", "2.3.4"])
def test_versions_from_one_up_pass(check_wheels: ModuleType, dist: Path, version: str) -> None:
    wheel(dist, "aipartnerupflow-executor-x", PLUGIN_FILES, version=version)
    assert check_wheels.check_contents(dist) == []


def test_incomplete_metadata_fails_naming_each_gap(check_wheels: ModuleType, dist: Path) -> None:
    wheel(dist, "aipartnerupflow-executor-x", PLUGIN_FILES, complete=False)
    assert check_wheels.check_contents(dist) == [
        f"{PLUGIN_WHEEL}: METADATA has no {field}: set it in [project] of its pyproject.toml"
        for field in ("Summary", "Requires-Python", "License-Expression", "License-File")
    ] + [
        f"{PLUGIN_WHEEL}: no 'Programming Language :: Python :: 3' classifier",
        *(
            f"{PLUGIN_WHEEL}: no {label} project URL ([project.urls] {label} = ...)"
            for label in ("Homepage", "Source", "Issues")
        ),
        f'{PLUGIN_WHEEL}: the README is not Markdown (readme = "README.md")',
        f"{PLUGIN_WHEEL}: the README has no install line (pip install aipartnerupflow-executor-x)",
        f"{PLUGIN_WHEEL}: the README has no code example (```python or ```bash)",
        f"{PLUGIN_WHEEL}: the README links nowhere (add its documentation and source)",
        f"{PLUGIN_WHEEL}: ships no license file (copy LICENSE next to its pyproject)",
    ]
