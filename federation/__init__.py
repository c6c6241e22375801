"""The shared domain of istio-federation.

Everything in this package is pure: models, naming rules, metadata documents, tokens and the
desired-state functions.  It performs no network, file or Kubernetes I/O, so that the webhook,
the exporter and the reconciler can share it and tests can exercise it without servers.
"""
