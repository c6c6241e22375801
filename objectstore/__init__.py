"""The two backends of :class:`federation.store.ObjectStore`: Kubernetes API and state directory."""
