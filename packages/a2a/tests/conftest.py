"""Fixtures for the A2A server tests; helpers live in ``a2a_helpers``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from a2a_helpers import register_executors, unregister_executors

from aipartnerupflow.core.settings import reload_settings

pytest_plugins = ["aipartnerupflow.testing.fixtures"]


@pytest.fixture(autouse=True)
def executors() -> Iterator[None]:
    register_executors()
    yield
    unregister_executors()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are read once per process: forget them around each test (monkeypatched env)."""
    reload_settings()
    yield
    reload_settings()
