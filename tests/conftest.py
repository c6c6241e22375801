"""Shared pytest configuration."""

pytest_plugins = ["tests.kubeapi.fixtures", "tests.reconciler_fixtures"]
