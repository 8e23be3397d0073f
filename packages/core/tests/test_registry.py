"""The plugin registry: listing, lazy loading, conflicts, version ranges and error messages.

Fake distributions are ``*.dist-info`` directories plus modules written to a temporary
directory that is put on ``sys.path``; each test reads them with fresh registry instances
over a group name of its own, so the real installed plugins never interfere.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.base_task import BaseTask
from aipartnerupflow.core.errors import (
    ExecutorNotFoundError,
    PluginConflictError,
    PluginError,
    PluginImportError,
    PluginVersionError,
)
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.registry import (
    EXECUTOR_GROUP,
    ExecutorRegistry,
    PluginEntry,
    PluginGroup,
    executor_register,
    get_executor_registry,
)

EXECUTOR_SOURCE = """
from aipartnerupflow.core.executor import ExecutableTask

class Echo(ExecutableTask):
    id = "{id}"

    async def execute(self, inputs):
        return {{"echo": inputs, "from": __name__}}
"""


class FakeSite:
    """A directory on sys.path holding fake installed distributions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        #: Unique per test, so module names and groups never collide across tests.
        self.prefix = f"apf_fake_{uuid.uuid4().hex[:10]}"
        self.group = f"{self.prefix}.executors"
        self.catalogue_group = f"{self.prefix}.catalogue"

    def module(self, name: str, source: str) -> str:
        """Write module ``<prefix>_<name>`` and return its import name."""
        module = f"{self.prefix}_{name}"
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return module

    def executor_module(self, name: str, executor_id: str) -> str:
        """A module defining ``Echo``, an executor with the given id."""
        return self.module(name, EXECUTOR_SOURCE.format(id=executor_id))

    def dist(
        self,
        name: str,
        version: str = "1.0",
        *,
        entry_points: dict[str, str] | None = None,
        group: str | None = None,
        requires: tuple[str, ...] = (),
        where: Path | None = None,
    ) -> None:
        """Write ``<name>-<version>.dist-info`` with METADATA and entry_points.txt."""
        info = (where or self.root) / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        lines += [f"Requires-Dist: {req}" for req in requires]
        (info / "METADATA").write_text("\n".join(lines) + "\n")
        if entry_points:
            body = "".join(f"{ep} = {value}\n" for ep, value in entry_points.items())
            (info / "entry_points.txt").write_text(f"[{group or self.group}]\n{body}")
        importlib.invalidate_caches()  # directory listings are cached by mtime

    def registry(self) -> ExecutorRegistry:
        """A fresh executor registry over this site's groups."""
        return ExecutorRegistry(self.group, self.catalogue_group)

    def catalogue(self, executors: dict[str, dict[str, Any]], name: str = "acme") -> None:
        """Install a distribution whose catalogue entry point returns ``executors``."""
        module = self.module(
            f"catalogue_{name}", f"def load():\n    return {{'executors': {executors!r}}}\n"
        )
        self.dist(
            f"{name}-catalogue",
            entry_points={name: f"{module}:load"},
            group=self.catalogue_group,
        )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """A fake site directory first on sys.path; its modules are forgotten afterwards."""
    fake = FakeSite(tmp_path / "site")
    fake.root.mkdir()
    monkeypatch.syspath_prepend(str(fake.root))
    yield fake
    for name in [m for m in sys.modules if m.startswith(fake.prefix)]:
        del sys.modules[name]


# --- listing


def test_listing_reads_metadata_without_importing(site: FakeSite) -> None:
    bomb = site.module("bomb", "raise RuntimeError('imported while listing')\n")
    site.dist("acme-bomb", entry_points={"bomb_executor": f"{bomb}:Bomb"})
    registry = site.registry()

    assert registry.ids() == ["bomb_executor"]
    assert registry.plugins.names() == ["bomb_executor"]
    assert "bomb_executor" in registry
    assert "other" not in registry
    assert registry.source("bomb_executor") == "acme-bomb"
    assert registry.plugins.entry("bomb_executor") == PluginEntry(
        name="bomb_executor", value=f"{bomb}:Bomb", distribution="acme-bomb", version="1.0"
    )
    assert bomb not in sys.modules


def test_load_imports_on_first_use_and_caches(site: FakeSite) -> None:
    module = site.executor_module("echo", "echo_executor")
    site.dist("acme-echo", entry_points={"echo_executor": f"{module}:Echo"})
    registry = site.registry()

    cls = registry.get("echo_executor")
    assert module in sys.modules
    assert issubclass(cls, ExecutableTask)
    assert cls.id == "echo_executor"
    del sys.modules[module]
    assert registry.get("echo_executor") is cls  # cached: no second import
    assert module not in sys.modules


def test_load_resolves_dotted_attributes(site: FakeSite) -> None:
    module = site.module("nested", "class Outer:\n    class Inner:\n        pass\n")
    site.dist("acme-nested", entry_points={"nested": f"{module}:Outer.Inner"})
    loaded = PluginGroup(site.group).load("nested")
    assert loaded.__qualname__ == "Outer.Inner"


def test_refresh_sees_newly_installed_distributions(site: FakeSite) -> None:
    registry = site.registry()
    assert registry.ids() == []
    module = site.executor_module("late", "late_executor")
    site.dist("acme-late", entry_points={"late_executor": f"{module}:Echo"})
    assert registry.ids() == []  # metadata is read once
    registry.plugins.refresh()
    assert registry.ids() == ["late_executor"]


def test_process_registry_lists_core_builtin_executor() -> None:
    assert "aggregate_results_executor" in get_executor_registry().ids()
    assert get_executor_registry().source("aggregate_results_executor") == "aipartnerupflow-core"
    assert PluginGroup(EXECUTOR_GROUP).names() == ExecutorRegistry().plugins.names()


# --- unknown ids


def test_unknown_id_lists_installed_ids_and_suggests_closest(site: FakeSite) -> None:
    module = site.executor_module("echo", "echo_executor")
    site.dist(
        "acme-echo",
        entry_points={"echo_executor": f"{module}:Echo", "reverse_executor": f"{module}:Echo"},
    )
    registry = site.registry()

    with pytest.raises(ExecutorNotFoundError) as info:
        registry.get("echo_exector")
    assert str(info.value) == (
        "unknown executor 'echo_exector'. Did you mean 'echo_executor'? "
        "Installed executors: echo_executor, reverse_executor."
    )
    assert info.value.executor_id == "echo_exector"
    assert isinstance(info.value, LookupError)


def test_unknown_id_without_close_match(site: FakeSite) -> None:
    module = site.executor_module("echo", "echo_executor")
    site.dist("acme-echo", entry_points={"echo_executor": f"{module}:Echo"})
    with pytest.raises(ExecutorNotFoundError) as info:
        site.registry().get("zzz")
    assert str(info.value) == "unknown executor 'zzz'. Installed executors: echo_executor."


def test_unknown_id_with_nothing_installed(site: FakeSite) -> None:
    with pytest.raises(ExecutorNotFoundError) as info:
        site.registry().get("zzz")
    assert str(info.value) == "unknown executor 'zzz'. Installed executors: none."


ACME: dict[str, dict[str, Any]] = {
    "acme_executor": {"distribution": "acme-executor-acme", "extra": "acme", "published": True},
    "plain_executor": {"distribution": "acme-plain", "extra": None, "published": True},
    "future_executor": {"distribution": "acme-executor-future", "published": False},
}


def test_unknown_id_of_a_known_package_gives_the_install_line(site: FakeSite) -> None:
    module = site.executor_module("echo", "echo_executor")
    site.dist("acme-echo", entry_points={"echo_executor": f"{module}:Echo"})
    site.catalogue(ACME)
    registry = site.registry()
    with pytest.raises(ExecutorNotFoundError) as info:
        registry.get("acme_executor")
    assert str(info.value) == (
        "unknown executor 'acme_executor'. It is provided by an optional package: "
        'pip install "aipartnerupflow[acme]". Installed executors: echo_executor.'
    )
    with pytest.raises(ExecutorNotFoundError) as info:
        registry.get("plain_executor")
    assert "It is provided by an optional package: pip install acme-plain." in str(info.value)


def test_an_original_executor_not_published_yet_says_so(site: FakeSite) -> None:
    site.catalogue(ACME)
    with pytest.raises(ExecutorNotFoundError) as info:
        site.registry().get("future_executor")
    message = str(info.value)
    assert "its package (acme-executor-future) is not published in this release" in message
    assert "pip install" not in message  # no extra that pip would not find


def test_misspelt_catalogued_id_suggests_the_known_id(site: FakeSite) -> None:
    site.catalogue(ACME)
    with pytest.raises(ExecutorNotFoundError) as info:
        site.registry().get("future_executr")
    assert str(info.value) == (
        "unknown executor 'future_executr'. Did you mean 'future_executor'? "
        "Installed executors: none."
    )


def test_without_a_catalogue_there_is_no_install_hint(site: FakeSite) -> None:
    with pytest.raises(ExecutorNotFoundError) as info:
        site.registry().get("acme_executor")
    assert str(info.value) == "unknown executor 'acme_executor'. Installed executors: none."


def test_a_broken_catalogue_only_loses_the_hint(
    site: FakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    module = site.module("bad_catalogue", "def load():\n    return {'executors': ['x']}\n")
    site.dist("bad-catalogue", entry_points={"bad": f"{module}:load"}, group=site.catalogue_group)
    site.catalogue(ACME)
    with pytest.raises(ExecutorNotFoundError) as info:
        site.registry().get("acme_executor")
    assert 'pip install "aipartnerupflow[acme]"' in str(info.value)
    assert "ignoring the executor catalogue 'bad'" in caplog.text


def test_plugin_group_load_of_unknown_name(site: FakeSite) -> None:
    with pytest.raises(PluginError) as info:
        PluginGroup(site.group).load("nope")
    assert str(info.value) == f"no {site.group} plugin named 'nope' is installed"


# --- import failures


def test_plugin_that_fails_to_import_names_plugin_and_distribution(site: FakeSite) -> None:
    module = site.module("broken", "raise RuntimeError('kaboom')\n")
    site.dist("acme-broken", "2.3", entry_points={"broken_executor": f"{module}:Broken"})

    with pytest.raises(PluginImportError) as info:
        site.registry().get("broken_executor")
    assert str(info.value) == (
        f"{site.group} plugin 'broken_executor' from acme-broken 2.3 failed to import "
        f"({module}:Broken): RuntimeError: kaboom"
    )
    assert isinstance(info.value.__cause__, RuntimeError)
    assert isinstance(info.value, ImportError)


def test_plugin_whose_module_is_missing(site: FakeSite) -> None:
    missing = f"{site.prefix}_missing"
    site.dist("acme-missing", entry_points={"missing_executor": f"{missing}:X"})
    with pytest.raises(PluginImportError) as info:
        site.registry().get("missing_executor")
    assert str(info.value) == (
        f"{site.group} plugin 'missing_executor' from acme-missing 1.0 failed to import "
        f"({missing}:X): ModuleNotFoundError: No module named '{missing}'"
    )


def test_plugin_whose_attribute_is_missing(site: FakeSite) -> None:
    module = site.module("empty", "VALUE = 1\n")
    site.dist("acme-empty", entry_points={"empty_executor": f"{module}:Nope"})
    with pytest.raises(PluginImportError) as info:
        site.registry().get("empty_executor")
    assert str(info.value) == (
        f"{site.group} plugin 'empty_executor' from acme-empty 1.0 failed to import "
        f"({module}:Nope): AttributeError: module '{module}' has no attribute 'Nope'"
    )


def test_plugin_target_that_is_not_an_executor(site: FakeSite) -> None:
    module = site.module("value", "VALUE = 42\n")
    site.dist("acme-value", entry_points={"value_executor": f"{module}:VALUE"})
    with pytest.raises(PluginError) as info:
        site.registry().get("value_executor")
    assert str(info.value) == (
        "executor plugin 'value_executor' from acme-value points at 42, which is not an "
        "ExecutableTask subclass"
    )


# --- duplicates


def test_two_targets_for_one_name_is_an_error_naming_both(site: FakeSite) -> None:
    first = site.executor_module("first", "echo_executor")
    second = site.executor_module("second", "echo_executor")
    site.dist("acme-first", "1.0", entry_points={"echo_executor": f"{first}:Echo"})
    site.dist("acme-second", "2.0", entry_points={"echo_executor": f"{second}:Echo"})
    registry = site.registry()

    assert registry.ids() == ["echo_executor"]  # listing still works
    with pytest.raises(PluginConflictError) as info:
        registry.get("echo_executor")
    message = str(info.value)
    claims = sorted(
        [
            f"{first}:Echo (from acme-first 1.0)",
            f"{second}:Echo (from acme-second 2.0)",
        ],
        key=message.index,
    )
    assert message == (
        f"{site.group} plugin 'echo_executor' is claimed by more than one target: "
        f"{claims[0]}, {claims[1]}. Uninstall one of these distributions."
    )
    assert first not in sys.modules
    assert second not in sys.modules


def test_identical_entries_from_two_distributions_count_once(site: FakeSite) -> None:
    module = site.executor_module("shared", "echo_executor")
    site.dist("acme-one", entry_points={"echo_executor": f"{module}:Echo"})
    site.dist("acme-two", entry_points={"echo_executor": f"{module}:Echo"})
    registry = site.registry()

    assert registry.ids() == ["echo_executor"]
    assert registry.get("echo_executor").id == "echo_executor"


def test_same_distribution_twice_on_sys_path_counts_once(
    site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = site.executor_module("twice", "echo_executor")
    site.dist("acme-twice", entry_points={"echo_executor": f"{module}:Echo"})
    other = tmp_path / "other-site"
    site.dist("acme-twice", entry_points={"echo_executor": f"{module}:Echo"}, where=other)
    monkeypatch.syspath_prepend(str(other))

    registry = site.registry()
    assert registry.ids() == ["echo_executor"]
    assert registry.get("echo_executor").id == "echo_executor"


# --- core version range


@pytest.fixture
def core_0_1_5(site: FakeSite) -> None:
    """Pretend the installed aipartnerupflow-core is 0.1.5 (the fake site is first on sys.path)."""
    site.dist("aipartnerupflow-core", "0.1.5")


@pytest.mark.usefixtures("core_0_1_5")
def test_plugin_built_for_another_core_range_is_refused(site: FakeSite) -> None:
    module = site.executor_module("future", "future_executor")
    site.dist(
        "acme-future",
        "3.0",
        entry_points={"future_executor": f"{module}:Echo"},
        requires=("aipartnerupflow-core>=0.2,<0.3", "pytest"),
    )
    registry = site.registry()

    assert registry.ids() == ["future_executor"]
    with pytest.raises(PluginVersionError) as info:
        registry.get("future_executor")
    assert str(info.value) == (
        "plugin 'future_executor' from acme-future 3.0 requires aipartnerupflow-core<0.3,>=0.2, "
        "but aipartnerupflow-core 0.1.5 is installed. Install a version of acme-future built "
        "for core 0.1.5, or a core version that matches."
    )
    assert module not in sys.modules  # refused before importing


@pytest.mark.usefixtures("core_0_1_5")
@pytest.mark.parametrize(
    "requirement",
    [
        "aipartnerupflow-core>=0.1,<0.2",
        "aipartnerupflow_core>=0.1",
        "aipartnerupflow-core",
        'aipartnerupflow-core>=0.9; extra == "never"',
    ],
)
def test_plugin_within_core_range_loads(site: FakeSite, requirement: str) -> None:
    module = site.executor_module("fits", "fits_executor")
    site.dist(
        "acme-fits", entry_points={"fits_executor": f"{module}:Echo"}, requires=(requirement,)
    )
    assert site.registry().get("fits_executor").id == "fits_executor"


# --- in-process registration


class LocalEcho(BaseTask):
    id = "apf_test_local_echo"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return inputs


class OtherLocalEcho(ExecutableTask):
    id = "apf_test_local_echo"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"other": inputs}


class NoId(ExecutableTask):
    async def execute(self, inputs: dict[str, Any]) -> Any:
        return None


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@pytest.fixture
def process_registry() -> Iterator[ExecutorRegistry]:
    """The process-wide registry, with this module's test ids removed afterwards."""
    registry = get_executor_registry()
    yield registry
    registry.unregister(LocalEcho.id)


def test_executor_register_decorator(process_registry: ExecutorRegistry) -> None:
    decorated = executor_register()(LocalEcho)
    assert decorated is LocalEcho
    assert process_registry.get(LocalEcho.id) is LocalEcho
    assert LocalEcho.id in process_registry.ids()
    assert LocalEcho.id in process_registry
    assert process_registry.source(LocalEcho.id) == "in-process"


def test_registering_the_same_class_twice_is_harmless(process_registry: ExecutorRegistry) -> None:
    executor_register()(LocalEcho)
    executor_register()(LocalEcho)
    assert process_registry.get(LocalEcho.id) is LocalEcho


def test_another_class_under_a_taken_id_needs_override(
    process_registry: ExecutorRegistry,
) -> None:
    executor_register()(LocalEcho)
    with pytest.raises(PluginConflictError) as info:
        executor_register()(OtherLocalEcho)
    assert str(info.value) == (
        f"executor id 'apf_test_local_echo' is already registered by {_qualified(LocalEcho)}; "
        f"pass override=True to replace it with {_qualified(OtherLocalEcho)}"
    )
    assert process_registry.get(LocalEcho.id) is LocalEcho

    executor_register(override=True)(OtherLocalEcho)
    assert process_registry.get(LocalEcho.id) is OtherLocalEcho


def test_overriding_an_installed_plugin(site: FakeSite) -> None:
    module = site.executor_module("echo", "apf_test_local_echo")
    site.dist("acme-echo", entry_points={"apf_test_local_echo": f"{module}:Echo"})
    registry = site.registry()

    with pytest.raises(PluginConflictError) as info:
        registry.register(LocalEcho)
    assert str(info.value) == (
        f"executor id 'apf_test_local_echo' is already provided by acme-echo ({module}:Echo); "
        f"pass override=True to replace it with {_qualified(LocalEcho)}"
    )

    registry.register(LocalEcho, override=True)
    assert registry.get(LocalEcho.id) is LocalEcho
    assert registry.source(LocalEcho.id) == "in-process"
    assert registry.ids() == ["apf_test_local_echo"]
    assert module not in sys.modules

    registry.unregister(LocalEcho.id)
    assert registry.source(LocalEcho.id) == "acme-echo"
    assert registry.get(LocalEcho.id).__module__ == module


def test_register_refuses_a_class_without_id(site: FakeSite) -> None:
    with pytest.raises(PluginError) as info:
        site.registry().register(NoId)
    assert str(info.value) == (
        "executor class NoId has no id: set a class attribute "
        'id = "my_executor" before registering it'
    )


def test_register_refuses_what_is_not_an_executor(site: FakeSite) -> None:
    with pytest.raises(PluginError) as info:
        site.registry().register(dict)  # type: ignore[arg-type]
    assert str(info.value) == (
        "<class 'dict'> cannot be registered as an executor: it must subclass "
        "ExecutableTask or BaseTask"
    )


def test_local_registration_does_not_touch_other_registries(site: FakeSite) -> None:
    first, second = site.registry(), site.registry()
    first.register(LocalEcho)
    assert LocalEcho.id in first
    assert LocalEcho.id not in second
    with pytest.raises(ExecutorNotFoundError):
        second.get(LocalEcho.id)


# --- the core-range check without packaging (start-up cost), against packaging itself

_NAMES = ("aipartnerupflow-core", "aipartnerupflow_core", "AipartnerupFlow-Core", "pytest", "x.y")
_EXTRAS = ("", "[postgres]", "[a, b]", "[]")
_SPECS = (
    "",
    ">=1.0",
    ">=1.0,<2",
    "<2, >=1.0",
    "~=1.0",
    "~=1.0.0",
    "~=0.9",
    "~=1",
    "==1",
    "==1.0.0",
    "!=1.0",
    ">1",
    ">1.0.0",
    "<=1.0",
    "<1.0.1",
    ">= 1.0",
    "==1.*",
    ">=1.0rc1",
    "===1.0",
    "(>=1)",
)
_MARKERS = (
    "",
    '; extra == "x"',
    "; python_version >= '3.11'",
    '; sys_platform == "linux" and extra == "y"',
    "; extra == ''",
    ";",
    "; extra == 'x' or (python_version < '3')",
)
_VERSIONS = ("1.0.0", "1", "1.0", "0.9.9", "1.0.1", "1.1", "2.0", "1.0.0rc1", "1.0.0.post1")


def _packaging_verdict(line: str, version: str) -> bool | None:
    """What ``_check_core_range``'s packaging loop decides: passes, refuses, or None (error)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(line)
    except InvalidRequirement:
        return None
    if req.name.replace("_", "-").lower() != "aipartnerupflow-core" or req.marker is not None:
        return True
    return not req.specifier or req.specifier.contains(version, prereleases=True)


def test_plain_range_check_never_passes_what_packaging_refuses() -> None:
    from aipartnerupflow.core.registry import _plainly_in_range

    decided = 0
    for name in _NAMES:
        for extra in _EXTRAS:
            for spec in _SPECS:
                for marker in _MARKERS:
                    line = f"{name}{extra}{spec}{marker}"
                    for version in _VERSIONS:
                        if _plainly_in_range([line], version):
                            decided += 1
                            assert _packaging_verdict(line, version) is True, (line, version)
    assert decided > 1000  # the common lines are decided without packaging


def test_plain_specifiers_agree_with_packaging() -> None:
    from packaging.specifiers import SpecifierSet

    from aipartnerupflow.core.registry import _plain_spec_met

    specs = [
        f"{op}{v}"
        for op in ("~=", "==", "!=", "<=", ">=", "<", ">")
        for v in ("0.9", "1", "1.0", "1.0.0", "1.0.1", "1.1", "2", "1.0.0.0", "10.2.3")
        if not (op == "~=" and "." not in v)
    ]
    for spec in specs:
        for version in (
            "0.9",
            "1",
            "1.0",
            "1.0.0",
            "1.0.1",
            "1.0.0.1",
            "1.1",
            "1.9",
            "2",
            "10.2.4",
        ):
            ours = _plain_spec_met(spec, tuple(int(p) for p in version.split(".")))
            assert ours == SpecifierSet(spec).contains(version, prereleases=True), (spec, version)


@pytest.mark.usefixtures("core_0_1_5")
def test_plugin_refused_by_a_plain_range_still_gets_packagings_words(site: FakeSite) -> None:
    module = site.executor_module("old", "old_executor")
    site.dist(
        "acme-old",
        "1.0",
        entry_points={"old_executor": f"{module}:Echo"},
        requires=("aipartnerupflow-core~=0.1.6", 'pytest>=8; extra == "test"'),
    )
    with pytest.raises(PluginVersionError, match=r"requires aipartnerupflow-core~=0\.1\.6, but"):
        site.registry().get("old_executor")


@pytest.mark.usefixtures("core_0_1_5")
@pytest.mark.parametrize("spelling", ["aipartnerupflow.core", "Aipartnerupflow__Core"])
def test_the_core_is_found_under_any_spelling_of_its_name(site: FakeSite, spelling: str) -> None:
    module = site.executor_module("spelled", "spelled_executor")
    site.dist(
        "acme-spelled",
        "1.0",
        entry_points={"spelled_executor": f"{module}:Echo"},
        requires=(f"{spelling}>=0.2",),  # PEP 503: the same distribution as aipartnerupflow-core
    )
    with pytest.raises(PluginVersionError, match=r"requires aipartnerupflow-core>=0\.2, but"):
        site.registry().get("spelled_executor")
