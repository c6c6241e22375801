"""Shared pytest configuration.

Fixtures used by one component's tests live in that folder's ``conftest.py``; only the Kubernetes
API test double's ``kube_api`` is used across folders (certs, exporter, kubeapi, objectstore,
reconciler, webhook), so it is a plugin here.
"""

pytest_plugins = ["tests.kubeapi.fixtures"]
