"""Settings, the environment crewai is imported into, and the lazy import."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.extensions.crewai import CrewaiSettings
from aipartnerupflow.extensions.crewai.runtime import prepare_environment


def test_settings_are_registered_and_read_from_the_environment() -> None:
    found = [
        ep for ep in metadata.entry_points(group="aipartnerupflow.settings") if ep.name == "crewai"
    ]
    assert [ep.load() for ep in found] == [CrewaiSettings]
    settings = CrewaiSettings.from_env(
        {"AIPARTNERUPFLOW_CREWAI_MODEL": "openai/x", "AIPARTNERUPFLOW_CREWAI_MAX_ITERATIONS": "3"}
    )
    assert (settings.model, settings.max_iterations, settings.telemetry) == ("openai/x", 3, False)


def test_a_bad_setting_names_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_CREWAI_REQUEST_TIMEOUT"):
        CrewaiSettings.from_env({"AIPARTNERUPFLOW_CREWAI_REQUEST_TIMEOUT": "-1"})


def test_entry_points_name_both_executors() -> None:
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="aipartnerupflow.executors")}
    assert eps["crewai_executor"] == "aipartnerupflow.extensions.crewai.crew_manager:CrewManager"
    assert eps["batch_crewai_executor"].endswith("batch_manager:BatchManager")


def test_telemetry_and_tracing_are_off_before_crewai_is_imported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "CREWAI_DISABLE_TELEMETRY",
        "CREWAI_DISABLE_TRACKING",
        "CREWAI_TRACING_ENABLED",
        "CREWAI_DISABLE_VERSION_CHECK",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    prepare_environment(CrewaiSettings.from_env({}, storage_dir=str(tmp_path / "store")))
    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert os.environ["CREWAI_TRACING_ENABLED"] == "false"
    assert os.environ["CREWAI_STORAGE_DIR"] == str(tmp_path / "store")
    from crewai_core.telemetry import Telemetry  # what crewai itself consults

    assert Telemetry._is_telemetry_disabled()


def test_importing_the_package_does_not_import_crewai(tmp_path: Path) -> None:
    code = (
        "import sys, aipartnerupflow.extensions.crewai as m; "
        "m.CrewManager(agents=[{'role': 'A', 'goal': 'g'}], tasks=[{'description': 'd'}]); "
        "print(sorted(k for k in sys.modules if k.split('.')[0] in "
        "{'crewai', 'openai', 'litellm', 'chromadb', 'lancedb', 'tiktoken'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_the_network_guard_refuses_non_loopback_connections() -> None:
    import socket

    from .conftest import BLOCKED

    before = len(BLOCKED)
    with pytest.raises(OSError, match="network access blocked"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    assert len(BLOCKED) == before + 1
    del BLOCKED[before:]  # this attempt was the test's own


def test_no_crew_run_reached_the_network() -> None:
    from .conftest import BLOCKED

    assert BLOCKED == []  # also checked at the end of the session
