"""reconciler component of istio-federation."""
