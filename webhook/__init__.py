"""webhook component of istio-federation."""
