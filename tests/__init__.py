"""Tests of istio-federation."""
