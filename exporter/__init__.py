"""exporter component of istio-federation."""
