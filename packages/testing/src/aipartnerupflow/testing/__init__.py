"""Shared test fixtures and the executor contract suite for aipartnerupflow packages."""
