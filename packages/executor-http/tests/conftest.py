"""rest_executor tests: the HTTP(S) target server from aipartnerupflow-testing, policy reset."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.http.policy import (
    ENV_ALLOW_PRIVATE,
    ENV_ALLOWED_HOSTS,
    ENV_CA_BUNDLE,
    ENV_MAX_RESPONSE_BYTES,
    ENV_SECRET_ENV,
    set_default_policy,
)
from aipartnerupflow.testing.http_target import HttpTarget

# The target server, tls_ca and ca_bundle come from aipartnerupflow-testing's fixtures.
pytest_plugins = ["aipartnerupflow.testing.fixtures"]


@pytest.fixture
def http_server(http_target: HttpTarget) -> HttpTarget:
    """The plain-HTTP target server (aipartnerupflow.testing.http_target), state reset."""
    return http_target


@pytest.fixture
def https_server(https_target: HttpTarget) -> HttpTarget:
    """The HTTPS target server (certificate from ``tls_ca``), state reset."""
    return https_target


_ENV = (
    ENV_ALLOW_PRIVATE,
    ENV_ALLOWED_HOSTS,
    ENV_CA_BUNDLE,
    ENV_MAX_RESPONSE_BYTES,
    ENV_SECRET_ENV,
    "AIPARTNERUPFLOW_ALLOW_PRIVATE",
    "AIPARTNERUPFLOW_ALLOWED_HOSTS",
    "AIPARTNERUPFLOW_SECRET_ENV",
)

#: Sets (value) or removes (None) an environment variable, then re-reads the settings.
SetEnv = Callable[[str, "str | None"], None]


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> SetEnv:
    """Change a setting's variable for this test (settings are read once, so re-read them)."""

    def change(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
        reload_settings()

    return change


@pytest.fixture(autouse=True)
def _loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests talk to 127.0.0.1, which the default policy denies: allow it (policy tests undo)."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_ALLOW_PRIVATE, "1")
    reload_settings()
    yield
    set_default_policy(None)
    monkeypatch.undo()
    reload_settings()
