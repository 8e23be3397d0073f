"""The meta-package: its extras point at real distributions of this repository, in range."""

from __future__ import annotations

import json
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

PACKAGES = Path(__file__).resolve().parents[2]
GROUP = "aipartnerupflow.executors"
CATALOGUE = PACKAGES / "cli" / "src" / "aipartnerupflow" / "cli" / "catalogue.json"
#: Workspace members that are not offered through an extra of their own.
NOT_EXTRAS = {"aipartnerupflow", "aipartnerupflow-core", "aipartnerupflow-testing"}


def _norm(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def _projects() -> dict[str, dict[str, Any]]:
    """Every workspace member's [project] table, by distribution name."""
    found = {}
    for pyproject in PACKAGES.glob("*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        found[_norm(project["name"])] = project
    return found


@pytest.fixture(scope="module")
def installed_extras() -> dict[str, list[Requirement]]:
    """Extra name -> requirements, from the installed meta-package's metadata."""
    meta = metadata.metadata("aipartnerupflow")
    extras: dict[str, list[Requirement]] = {e: [] for e in meta.get_all("Provides-Extra") or []}
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        for extra in extras:
            if req.marker is not None and req.marker.evaluate({"extra": extra}):
                extras[extra].append(req)
    return extras


def test_base_install_is_the_core_alone() -> None:
    reqs = [Requirement(r) for r in metadata.requires("aipartnerupflow") or []]
    base = [r for r in reqs if r.marker is None]
    assert [_norm(r.name) for r in base] == ["aipartnerupflow-core"]


def test_every_extra_names_workspace_distributions_in_range(
    installed_extras: dict[str, list[Requirement]],
) -> None:
    projects = _projects()
    for extra, reqs in installed_extras.items():
        assert reqs, f"extra {extra!r} installs nothing"
        for req in reqs:
            name = _norm(req.name)
            if name == "aipartnerupflow":  # `all` refers to the other extras
                continue
            assert name in projects, f"extra {extra!r} names {name}, which is not in packages/"
            version = projects[name]["version"]
            assert req.specifier.contains(version, prereleases=True), (
                f"extra {extra!r} wants {name}{req.specifier}; packages/ has {version}"
            )


def test_all_covers_every_other_extra(installed_extras: dict[str, list[Requirement]]) -> None:
    def key(req: Requirement) -> tuple[str, str, frozenset[str]]:
        return _norm(req.name), str(req.specifier), frozenset(req.extras)

    # Built metadata expands `all = ["aipartnerupflow[a,b]"]` into the extras' requirements.
    in_all = {key(r) for r in installed_extras["all"]}
    others = {key(r) for extra, reqs in installed_extras.items() if extra != "all" for r in reqs}
    assert in_all == others


def test_every_plugin_distribution_has_an_extra(
    installed_extras: dict[str, list[Requirement]],
) -> None:
    offered = {_norm(r.name) for reqs in installed_extras.values() for r in reqs}
    missing = sorted(set(_projects()) - NOT_EXTRAS - offered)
    assert not missing, f"no meta-package extra installs {missing}"


def test_install_hints_name_extras_that_exist(
    installed_extras: dict[str, list[Requirement]],
) -> None:
    """The generated catalogue's `pip install "aipartnerupflow[x]"` hints work: the extra
    exists, installs the distribution the catalogue names, which declares the executor id."""
    catalogue = json.loads(CATALOGUE.read_text())["executors"]
    projects = _projects()
    published = {i: e for i, e in catalogue.items() if e["published"]}
    assert published, "the catalogue lists no published executor"
    for executor_id, entry in published.items():
        extra, dist = entry["extra"], entry["distribution"]
        assert extra in installed_extras, f"{executor_id}: no extra {extra!r}"
        assert dist in {_norm(r.name) for r in installed_extras[extra]}, (executor_id, extra)
        declared = projects[dist].get("entry-points", {}).get("aipartnerupflow.executors", {})
        assert executor_id in declared, f"{dist} does not declare {executor_id}"
    for executor_id, entry in catalogue.items():
        if not entry["published"]:
            assert entry["distribution"] not in projects, (
                f"{entry['distribution']} is in packages/ now: drop {executor_id} from "
                "tools/catalogue.toml [upcoming]"
            )


def test_the_core_names_no_plugin() -> None:
    """No executor id of the catalogue (published or upcoming) appears in the core's sources."""
    ids = set(json.loads(CATALOGUE.read_text())["executors"])
    core_ids = set(_projects()["aipartnerupflow-core"].get("entry-points", {}).get(GROUP, {}))
    found = []
    for path in sorted((PACKAGES / "core" / "src").rglob("*")):
        if path.suffix not in {".py", ".json", ".toml", ".txt", ".md"}:
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(PACKAGES)}: {i}" for i in sorted(ids - core_ids) if i in text]
    assert not found, found


def test_the_generated_files_are_current() -> None:
    """tools/gen_catalogue.py --check (also run by `nox -s lint`)."""
    import subprocess
    import sys

    script = PACKAGES.parent / "tools" / "gen_catalogue.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
