"""The testing package tests itself with its own plugin, as every package does."""

from __future__ import annotations

pytest_plugins = ["aipartnerupflow.testing.fixtures", "pytester"]
