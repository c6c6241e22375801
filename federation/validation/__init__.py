"""Admission rules for IstioFederation and ServiceEntry, as pure functions.

Each validator takes the request's attributes and a read-only context (the object index, local
settings, the clock) and returns every field error and warning at once.  No I/O, no Flask, no
globals: the webhook server, ``istio-federation validate`` and the tests all call the same code.
"""
