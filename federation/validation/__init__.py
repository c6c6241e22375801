"""Admission rules for IstioFederation and ServiceEntry, as pure functions.

Each validator takes the request's attributes and a read-only context (the object index, local
settings, the clock) and returns a :class:`federation.fields.ValidationResult`: every field error
and warning at once.  Validators compose by adding results, never by filling in an argument.
``registry.admit`` turns a result into the :class:`federation.admission_response.AdmissionResponse`
sent to the apiserver.  No I/O, no Flask, no globals: the webhook server, ``istio-federation
validate`` and the tests all call the same code.
"""
