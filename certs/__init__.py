"""certs component of istio-federation."""
