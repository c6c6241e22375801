"""A test double of kube-apiserver for tests: see :mod:`tests.kubeapi.server`."""

from tests.kubeapi.server import ADMIN, VALIDATING_WEBHOOK_CONFIGURATION, KubeApiDouble

__all__ = ["ADMIN", "VALIDATING_WEBHOOK_CONFIGURATION", "KubeApiDouble"]
