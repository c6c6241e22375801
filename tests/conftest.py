"""Shared pytest configuration."""

pytest_plugins = ["tests.kubeapi.fixtures"]
