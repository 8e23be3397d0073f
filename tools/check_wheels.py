"""Checks on the wheels in a dist directory built by ``uv build --all-packages --no-sources``.

``check_wheels.py contents DIST``
    Static checks on the wheel files: only aipartnerupflow-core ships the namespace root
    ``aipartnerupflow/__init__.py``, nobody ships ``aipartnerupflow/extensions/__init__.py``,
    every package ships ``py.typed``, every distribution's ``aipartnerupflow-core``
    requirement admits the core version in DIST, every version is at least 1.0.0 (above the
    original project's 0.9.0 on PyPI), and the metadata PyPI shows is complete: summary,
    ``Requires-Python``, license expression and file, classifiers, project URLs, and a
    Markdown README with an install line, a code example and links.

``check_wheels.py installed DIST``
    Run with the interpreter of a clean venv where the wheels of DIST were installed: every
    distribution came from DIST, every package imports, every entry point of our groups is listed
    and loaded, and every console script answers ``--help``.

``check_wheels.py resolves DIST``
    Resolve ``aipartnerupflow[all]`` with ``uv pip compile`` against PyPI plus the wheels of
    DIST (``--find-links``): every distribution of ours must resolve to the version built in
    DIST, never to the original project's releases.

Standard library only (``packaging`` when present, uv for ``resolves``), so it runs in any
environment.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path, PurePosixPath

CORE = "aipartnerupflow-core"
META = "aipartnerupflow"  # the meta-package ships no code
ROOT_INIT = "aipartnerupflow/__init__.py"
SHARED_INITS = ("aipartnerupflow/extensions/__init__.py",)
#: The original project's last release on PyPI is 0.9.0; ours must sort above it.
MIN_VERSION = (1, 0, 0)
REQUIRED_FIELDS = ("Summary", "Requires-Python", "License-Expression", "License-File")
GROUPS = (
    "aipartnerupflow.executors",
    "aipartnerupflow.cli",
    "aipartnerupflow.servers",
    "aipartnerupflow.catalogue",
    "aipartnerupflow.settings",
)


def _normalise(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


class Wheel:
    """A built wheel: its distribution name, version, file list and metadata."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as zf:
            self.files = zf.namelist()
            meta_name = next(n for n in self.files if n.endswith(".dist-info/METADATA"))
            self.metadata = Parser().parsestr(zf.read(meta_name).decode())
        self.name = _normalise(self.metadata["Name"])
        self.version = self.metadata["Version"]
        self.requires = self.metadata.get_all("Requires-Dist") or []
        self.readme = str(self.metadata.get_payload() or "")

    def packages(self) -> list[str]:
        """Import names of the regular packages (directories with ``__init__.py``) it ships."""
        found = []
        for name in self.files:
            path = PurePosixPath(name)
            if path.name == "__init__.py" and not path.parts[0].endswith((".dist-info", ".data")):
                found.append(".".join(path.parent.parts))
        return sorted(found)

    def top_packages(self) -> list[str]:
        """Its outermost regular packages (what ``py.typed`` must sit in, PEP 561)."""
        packages = self.packages()
        return [p for p in packages if p.rpartition(".")[0] not in packages]


def _core_specifier_problems(wheel: Wheel, core_version: str) -> list[str]:
    """A requirement on aipartnerupflow-core that excludes the built core version."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # packaging is not stdlib; skip the nicety, installing will catch it
        return []
    problems = []
    for line in wheel.requires:
        req = Requirement(line)
        if _normalise(req.name) != CORE or not req.specifier:
            continue
        if not req.specifier.contains(core_version, prereleases=True):
            problems.append(
                f"{wheel.path.name}: requires {CORE}{req.specifier}, which excludes the core "
                f"version built here ({core_version}); widen the range or bump core"
            )
    return problems


def _release_number(version: str) -> tuple[int, ...]:
    """``1.2.0rc1`` -> ``(1, 2, 0)``: the release segment, enough to compare with 1.0.0."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(p) for p in match.group(0).split(".")) if match else (0,)


def _version_problems(wheel: Wheel) -> list[str]:
    number = _release_number(wheel.version)
    padded = number + (0,) * (len(MIN_VERSION) - len(number))
    if padded >= MIN_VERSION:
        return []
    floor = ".".join(map(str, MIN_VERSION))
    return [
        f"{wheel.path.name}: version {wheel.version} is below {floor}; a resolver would pick "
        f"the original project's 0.9.0 over it: set version >= {floor} in its pyproject.toml"
    ]


def _metadata_problems(wheel: Wheel) -> list[str]:
    """What PyPI's page and a resolver need: fields, classifiers, URLs, a real README."""
    name = wheel.path.name
    problems = [
        f"{name}: METADATA has no {field}: set it in [project] of its pyproject.toml"
        for field in REQUIRED_FIELDS
        if not wheel.metadata.get(field)
    ]
    classifiers = wheel.metadata.get_all("Classifier") or []
    if "Programming Language :: Python :: 3" not in classifiers:
        problems.append(f"{name}: no 'Programming Language :: Python :: 3' classifier")
    urls = dict(u.split(", ", 1) for u in wheel.metadata.get_all("Project-URL") or [])
    problems.extend(
        f"{name}: no {label} project URL ([project.urls] {label} = ...)"
        for label in ("Homepage", "Source", "Issues")
        if label not in urls
    )
    if wheel.metadata.get("Description-Content-Type") != "text/markdown":
        problems.append(f'{name}: the README is not Markdown (readme = "README.md")')
    if f"pip install {wheel.name}" not in wheel.readme and (
        f'pip install "{wheel.name}[' not in wheel.readme
    ):
        problems.append(f"{name}: the README has no install line (pip install {wheel.name})")
    if "```python" not in wheel.readme and "```bash" not in wheel.readme:
        problems.append(f"{name}: the README has no code example (```python or ```bash)")
    if "](https://" not in wheel.readme and "<https://" not in wheel.readme:
        problems.append(f"{name}: the README links nowhere (add its documentation and source)")
    license_files = [f for f in wheel.files if ".dist-info/licenses/" in f]
    if not license_files:
        problems.append(f"{name}: ships no license file (copy LICENSE next to its pyproject)")
    return problems


def check_contents(dist: Path) -> list[str]:
    """Namespace, py.typed and version-range checks over every wheel in ``dist``."""
    wheels = [Wheel(p) for p in sorted(dist.glob("*.whl"))]
    if not wheels:
        return [f"no wheels in {dist}"]
    problems: list[str] = []
    cores = [w for w in wheels if w.name == CORE]
    if len(cores) != 1:
        problems.append(f"expected exactly one {CORE} wheel in {dist}, found {len(cores)}")
    for wheel in wheels:
        files = set(wheel.files)
        if wheel.name == CORE:
            if ROOT_INIT not in files:
                problems.append(f"{wheel.path.name}: the core wheel lacks {ROOT_INIT}")
        elif ROOT_INIT in files:
            problems.append(
                f"{wheel.path.name}: ships {ROOT_INIT}; only {CORE} may (it would overwrite "
                "core's and break the namespace)"
            )
        problems.extend(
            f"{wheel.path.name}: ships {shared}; shared namespace levels have no __init__.py"
            for shared in SHARED_INITS
            if shared in files
        )
        if not wheel.packages() and wheel.name != META:
            problems.append(f"{wheel.path.name}: ships no Python package")
        for package in wheel.top_packages():
            if package.replace(".", "/") + "/py.typed" not in files:
                problems.append(f"{wheel.path.name}: package {package} has no py.typed")
        if cores:
            problems.extend(_core_specifier_problems(wheel, cores[0].version))
        problems.extend(_version_problems(wheel))
        problems.extend(_metadata_problems(wheel))
        print(f"{wheel.path.name}: {len(wheel.files)} files, packages {wheel.packages()[:4]}")
    return problems


def check_installed(dist: Path) -> list[str]:
    """Smoke-test the current interpreter's environment, built from the wheels in ``dist``."""
    wheels = {w.name: w for w in (Wheel(p) for p in sorted(dist.glob("*.whl")))}
    problems: list[str] = []
    for name, wheel in wheels.items():
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} {wheel.version} from {dist} is not installed")
            continue
        if installed.version != wheel.version or not _from_dist(installed, dist):
            problems.append(f"{name} {installed.version} was not installed from {dist}")
    # Every distribution of ours in the env must come from dist/, never from an index.
    for installed in metadata.distributions():
        name = _normalise(installed.metadata["Name"] or "")
        if name.startswith("aipartnerupflow") and name not in wheels:
            problems.append(f"{name} {installed.version} is installed but was not built in {dist}")
    for wheel in wheels.values():
        for package in wheel.packages():
            try:
                importlib.import_module(package)
            except Exception as exc:
                problems.append(f"import {package} ({wheel.name}): {type(exc).__name__}: {exc}")
            else:
                print(f"import {package}: ok")
    problems.extend(_check_entry_points())
    problems.extend(_check_scripts(wheels))
    return problems


def check_resolves(dist: Path) -> list[str]:
    """``aipartnerupflow[all]`` resolved against PyPI and DIST picks DIST's version of ours."""
    wheels = {w.name: w for w in (Wheel(p) for p in sorted(dist.glob("*.whl")))}
    if META not in wheels:
        return [f"no {META} wheel in {dist}"]
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        return ["uv is needed to resolve: pip install uv"]
    extras = wheels[META].metadata.get_all("Provides-Extra") or []
    # `all` names every other extra; without it, list them.
    chosen = ["all"] if "all" in extras else extras
    requirement = f"{META}[{','.join(chosen)}]" if chosen else META
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    proc = subprocess.run(
        [uv, "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate",
         "--python-version", python, "--find-links", str(dist), "--no-cache"],
        input=requirement, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return [f"uv pip compile {requirement} failed: {proc.stderr.strip()[-2000:]}"]
    resolved = {}
    for line in proc.stdout.splitlines():
        pin = line.split(";")[0].strip()
        if "==" in pin:
            name, _, version = pin.partition("==")
            resolved[_normalise(name.split("[")[0])] = version.strip()
    problems = []
    for name, wheel in wheels.items():
        if name == "aipartnerupflow-testing":
            continue  # a test helper, in no extra of the meta-package
        got = resolved.get(name)
        if got != wheel.version:
            problems.append(
                f"{requirement} resolved {name} to {got or 'nothing'}, not the "
                f"{wheel.version} built in {dist}"
            )
        else:
            print(f"{requirement}: {name}=={got} (built here)")
    return problems


def _from_dist(installed: metadata.Distribution, dist: Path) -> bool:
    direct_url = installed.read_text("direct_url.json")
    if not direct_url:
        return False
    url = str(json.loads(direct_url).get("url", ""))
    return url.startswith(dist.resolve().as_uri())


def _check_entry_points() -> list[str]:
    problems: list[str] = []
    try:
        from aipartnerupflow.core.registry import PluginGroup
    except Exception as exc:
        return [f"cannot import the core registry: {type(exc).__name__}: {exc}"]
    for group in GROUPS:
        plugins = PluginGroup(group)
        names = plugins.names()
        print(f"{group}: {', '.join(names) or '(none)'}")
        for name in names:
            try:
                plugins.load(name)
            except Exception as exc:
                problems.append(f"{group} {name}: {type(exc).__name__}: {exc}")
    return problems


def _check_scripts(wheels: dict[str, Wheel]) -> list[str]:
    problems: list[str] = []
    bindir = Path(sys.executable).parent
    for name in wheels:
        for ep in metadata.distribution(name).entry_points:
            if ep.group != "console_scripts":
                continue
            exe = shutil.which(ep.name, path=str(bindir))
            if exe is None:
                problems.append(f"console script {ep.name} ({name}) is not installed in {bindir}")
                continue
            proc = subprocess.run(
                [exe, "--help"], capture_output=True, text=True, timeout=120, check=False
            )
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
                problems.append(
                    f"{ep.name} --help exited {proc.returncode} ({name}): " + " | ".join(tail)
                )
            else:
                print(f"{ep.name} --help: ok")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``contents DIST``, ``installed DIST`` or ``resolves DIST``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["contents", "installed", "resolves"])
    parser.add_argument("dist", type=Path)
    args = parser.parse_args(argv)
    check = {"contents": check_contents, "installed": check_installed, "resolves": check_resolves}[
        args.mode
    ]
    problems = check(args.dist)
    if problems:
        print(f"wheel check ({args.mode}) FAILED:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"wheel check ({args.mode}) passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
