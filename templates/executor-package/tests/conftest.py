"""Test setup for this package: the shared fixtures from aipartnerupflow-testing."""

pytest_plugins = ["aipartnerupflow.testing.fixtures"]
