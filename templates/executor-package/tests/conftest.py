"""Test setup: the shared fixtures (and test servers) of aipartnerupflow-testing."""

pytest_plugins = ["aipartnerupflow.testing.fixtures"]
