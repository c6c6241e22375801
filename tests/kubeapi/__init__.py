"""A test double of kube-apiserver for tests: see :mod:`tests.kubeapi.server`."""

from tests.kubeapi.routing import VALIDATING_WEBHOOK_CONFIGURATION
from tests.kubeapi.server import ADMIN, KubeApiDouble

__all__ = ["ADMIN", "VALIDATING_WEBHOOK_CONFIGURATION", "KubeApiDouble"]
