"""Istio's own ServiceEntry validation, rule for rule, with Istio's own message texts.

Istio's webhook (``validation.istio.io``) runs ``ValidateServiceEntry`` (istio/istio
``pkg/config/validation/validation.go``, HEAD ~1.31, behind the ``validateMetadata`` wrapper) on
every ServiceEntry.  We reproduce it so that our webhook, our reconciler and our tests can tell in
advance whether Istio will accept an object we write, and so that a denial from us reads exactly
like one from Istio.  This is an independent re-implementation of the published rules; no Istio
code is copied.  This module holds the order of the whole and the metadata, selector, host and
address rules; :mod:`.ports`, :mod:`.endpoints`, :mod:`.resolution` and :mod:`.visibility` hold the
rest, each beside the part of Istio it follows.

What we add on top of Istio:

* precise Kubernetes field paths (``spec.ports[1].name``) on every error, as :class:`FieldError`;
* the CRD limits the apiserver enforces before any webhook (MaxItems, MaxLength, MaxProperties), so a
  state-directory backend that has no apiserver still rejects what a cluster would;
* a clear error for a field of the wrong JSON type, where Istio's Go decoder would just fail to
  unmarshal (:mod:`.jsonreader`).

Warnings are plain strings, each at most :data:`federation.warnings.MAX_WARNING` characters and free
of control characters, as kube-apiserver wants them.  Istio's text is never cut; a quoted user value
inside it may be shortened with an ellipsis, and the field path is prefixed only when the whole
still fits.

Fidelity notes (quirks kept on purpose, because Istio has them):

* Short host names (``foo``) are valid, and so is an all-numeric single label (``123``): the all-numeric
  top-level-domain test only applies to labels after the first dot.
* The all-numeric test uses Go's ``strconv.Atoi``: ``+1`` counts as numeric, a 20-digit label does not.
* The partial-wildcard host rule (``*foo.com``) is only a warning.
* ``endpoint port N is not defined by the service entry`` prints the port *number*, not its name.
* With ``resolution: DNS``/``DNS_ROUND_ROBIN`` and no endpoints, wildcard hosts are rejected although the
  message mentions prefix wildcards; the error is reported once.
* Null ports are reported again as ``ports cannot be nil`` by the DNS-address and multi-host loops.
* A unix endpoint needs exactly one *distinct* service port name (Istio counts a set of names).
* The TCP-address warning compares the protocol case-sensitively (``tcp`` does not warn, ``TCP`` does).
"""

from __future__ import annotations

from typing import Any, Final

from federation import fields, warnings
from federation.fields import FieldError, Path, ValidationResult
from federation.istio import endpoints, gostrings, ports, resolution, values, visibility
from federation.istio.jsonreader import JsonReader

API_VERSIONS: Final = ("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")

# CRD limits (istio/api service_entry.proto and sidecar.proto markers; workload entries in .endpoints).
MAX_HOSTS: Final = 256
_MAX_ADDRESSES: Final = 256
_MAX_ADDRESS_LEN: Final = 64
_MAX_SELECTOR_VALUE_LEN: Final = 63

_LOCATIONS: Final = ("MESH_EXTERNAL", "MESH_INTERNAL")

# Annotations that Istio's metadata wrapper checks before the ServiceEntry rules.
_DRY_RUN_ANNOTATION: Final = "istio.io/dry-run"
_ALWAYS_REJECT_ANNOTATION: Final = "internal.istio.io/webhook-always-reject"
# Label that opts a ServiceEntry out of IP auto-allocation.
_AUTOALLOCATE_LABEL: Final = "networking.istio.io/enable-autoallocate-ip"

_SELECTOR_WITHOUT_LABELS: Final = (
    "service entry: workload selector specified without labels, will be applied to all services in namespace"
)


class _AbortError(Exception):
    """Istio returns some errors alone (bad selector, forbidden annotation): stop, report only those."""


class _Validation(JsonReader):
    """One run of ``ValidateServiceEntry`` over one object: reading errors and rule findings, in order."""

    def __init__(self, *, ip_autoallocate: bool) -> None:
        super().__init__()
        self.ip_autoallocate = ip_autoallocate
        self.warnings: list[str] = []

    def add(self, result: ValidationResult) -> None:
        self.errors.extend(result.errors)
        self.warnings.extend(result.warnings)

    def abort(self, errors: list[FieldError]) -> None:
        self.errors = errors
        raise _AbortError

    def result(self) -> ValidationResult:
        return ValidationResult.of(self.errors, self.warnings)

    # --- metadata (validateMetadata) ------------------------------------------------------------------

    def metadata(self, obj: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """(namespace, labels).  Istio's annotation checks run first and abort everything else."""
        for key, allowed in (("apiVersion", API_VERSIONS), ("kind", ("ServiceEntry",))):
            if key in obj and obj[key] not in allowed:
                shown = obj[key] if isinstance(obj[key], str) else fields.json_type(obj[key])
                self.error(fields.not_supported(Path.of(key), shown, list(allowed)))
        path = Path.of("metadata")
        raw = obj.get("metadata")
        if raw is None:
            raw = {}
        elif not isinstance(raw, dict):
            self.wrong_type(path, raw, "must be an object")
            raw = {}
        namespace = self.string(path.child("namespace"), raw.get("namespace")) or ""
        name = self.string(path.child("name"), raw.get("name")) or ""
        labels = dict(self.string_map(path.child("labels"), raw.get("labels"), None))
        annotations_path = path.child("annotations")
        annotations = dict(self.string_map(annotations_path, raw.get("annotations"), None))
        if _DRY_RUN_ANNOTATION in annotations:  # only an AuthorizationPolicy may carry it
            where = gostrings.shown_bare(f"{namespace}/{name}")
            text = f"{where} has unsupported annotation {_DRY_RUN_ANNOTATION}, please remove the annotation"
            self.abort([fields.forbidden(annotations_path.key(_DRY_RUN_ANNOTATION), text)])
        if _ALWAYS_REJECT_ANNOTATION in annotations:  # Istio's own test hook: it rejects by design
            text = f"{gostrings.quote(_ALWAYS_REJECT_ANNOTATION)} annotation found, rejecting"
            self.abort([fields.forbidden(annotations_path.key(_ALWAYS_REJECT_ANNOTATION), text)])
        return namespace, labels

    # --- spec sections, in Istio's order -------------------------------------------------------------

    def workload_selector(self, spec: dict[str, Any]) -> bool:
        """Rules 1-3 (``validateWorkloadSelector``).  Returns whether a selector is set (Go: ``!= nil``)."""
        path = Path.of("spec", "workloadSelector")
        raw = spec.get("workloadSelector")
        if raw is None:
            return False
        if not isinstance(raw, dict):
            self.wrong_type(path, raw, "must be an object")
            return True
        raw_labels = raw.get("labels")
        labels_path = path.child("labels")
        labels = self.string_map(labels_path, raw_labels, endpoints.MAX_LABELS, max_value_len=_MAX_SELECTOR_VALUE_LEN)
        selector_errors: list[FieldError] = []
        for key, value in labels:
            if key and "*" not in key and "*" not in value:
                continue
            item_path = labels_path.key(key)
            pair = gostrings.shown(f"{key}={value}")
            if not key:
                selector_errors.append(
                    fields.invalid(item_path, key, f"empty key is not supported in selector: {pair}")
                )
            if "*" in key or "*" in value:
                shown = key if "*" in key else value
                selector_errors.append(
                    fields.invalid(item_path, shown, f"wildcard is not supported in selector: {pair}")
                )
        if selector_errors:
            self.abort(selector_errors)  # Istio returns these alone, without warnings or any other rule
        if raw_labels is None or raw_labels == {}:
            self.warnings.append(warnings.with_path(path, _SELECTOR_WITHOUT_LABELS))
        return True

    def hosts(self, spec: dict[str, Any], resolution_mode: str | None) -> list[tuple[Path, str]]:
        """Rules 5-9 (``ValidateWildcardDomain``, ``ValidatePartialWildCard``)."""
        path = Path.of("spec", "hosts")
        raw = spec.get("hosts")
        if raw is None or raw == []:
            self.error(fields.required(path, "service entry must have at least one host"))
        read = self.strings(path, raw, MAX_HOSTS)
        for item_path, host in read:
            if host == "*":
                self.error(fields.invalid(item_path, host, f"invalid host {host}"))
                continue
            problem = values.wildcard_domain_problem(host)
            if problem:
                self.error(fields.invalid(item_path, host, problem))
            # DYNAMIC_DNS resolves whatever name the wildcard matches, so Istio skips this warning there.
            if resolution_mode != "DYNAMIC_DNS" and values.is_partial_wildcard(host):
                text = warnings.fit_quoted("partial wildcard ", host, " not allowed")
                self.warnings.append(warnings.with_path(item_path, text))
        return read

    def addresses(self, spec: dict[str, Any], resolution_mode: str | None) -> list[tuple[Path, str]]:
        """Rules 10-11 (``ValidateIPSubnet``)."""
        path = Path.of("spec", "addresses")
        read = self.strings(path, spec.get("addresses"), _MAX_ADDRESSES, max_len=_MAX_ADDRESS_LEN)
        first_cidr: Path | None = None
        for item_path, address in read:
            if first_cidr is None and "/" in address:
                first_cidr = item_path
            problem = values.ip_subnet_problem(address)
            if problem:
                self.error(fields.invalid(item_path, address, problem))
        if first_cidr is not None and resolution_mode not in ("NONE", "STATIC"):
            self.error(fields.forbidden(first_cidr, "CIDR addresses are allowed only for NONE/STATIC resolution types"))
        return read

    # --- the whole object -----------------------------------------------------------------------------------

    def run(self, obj: dict[str, Any]) -> None:
        namespace, labels = self.metadata(obj)
        spec_path = Path.of("spec")
        spec = obj.get("spec")
        if spec is None:
            spec = {}  # Go decodes a missing spec as an empty ServiceEntry
        if not isinstance(spec, dict):
            self.wrong_type(spec_path, spec, "must be an object")
            return

        mode: str | None = "NONE"  # the proto default
        if spec.get("resolution") is not None:
            mode = self.string(spec_path.child("resolution"), spec["resolution"])
        location = self.string(spec_path.child("location"), spec.get("location")) or "MESH_EXTERNAL"
        if location not in _LOCATIONS:  # the CRD's enum
            self.error(fields.not_supported(spec_path.child("location"), location, list(_LOCATIONS)))
        self.strings(spec_path.child("subjectAltNames"), spec.get("subjectAltNames"), None)  # Istio checks none

        has_selector = self.workload_selector(spec)
        endpoint_entries = endpoints.read_endpoints(self, spec)
        if has_selector and endpoint_entries is not None:
            text = "only one of WorkloadSelector or Endpoints is allowed in Service Entry"
            self.error(fields.forbidden(spec_path.child("endpoints"), text))

        host_entries = self.hosts(spec, mode)
        addresses = self.addresses(spec, mode)
        port_entries = ports.read_ports(self, spec)
        # Istio's shouldV2AutoAllocateIPFromPieces: never for NONE; the label set to "false" opts out.
        autoallocate = (
            self.ip_autoallocate and mode != "NONE" and labels.get(_AUTOALLOCATE_LABEL, "").lower() != "false"
        )
        self.add(ports.validate_ports(port_entries, warn_tcp=not spec.get("addresses") and not autoallocate))
        self.add(
            resolution.validate_resolution(
                mode,
                hosts=host_entries,
                has_addresses=bool(addresses),
                ports=port_entries,
                endpoint_entries=endpoint_entries,
                service_ports=ports.service_port_names(port_entries),
                has_selector=has_selector,
                location=location,
                labels=labels,
            )
        )
        if mode != "NONE" and len(host_entries) > 1:
            self.add(resolution.validate_multi_host(port_entries))
        export_path = spec_path.child("exportTo")
        export_to = self.strings(export_path, spec.get("exportTo"), None)
        self.add(visibility.validate_export_to(export_path, export_to, namespace))


def validate_service_entry(obj: dict[str, Any], *, ip_autoallocate: bool = True) -> ValidationResult:
    """Validate a whole ServiceEntry object as Istio's webhook would.

    ``obj`` is the object as the apiserver sends it (``apiVersion``, ``metadata``, ``spec``).  Errors carry
    Kubernetes field paths and Istio's texts; all problems are reported at once, except where Istio itself
    returns a few errors alone (a bad workload selector, a forbidden annotation), and then without warnings.
    ``ip_autoallocate`` says whether istiod allocates addresses for ServiceEntries
    (``PILOT_ENABLE_IP_AUTOALLOCATE``, on by default since Istio 1.31; never for resolution NONE, nor for an
    object labelled ``networking.istio.io/enable-autoallocate-ip: "false"``); when it does not, TCP or
    protocol-less ports without addresses draw a warning.  Never raises, whatever JSON it gets.
    """
    validation = _Validation(ip_autoallocate=ip_autoallocate)
    document: Any = obj  # typed as a dict, but a webhook must survive anything
    if not isinstance(document, dict):
        validation.wrong_type(Path.of("spec"), document, "must be an object")
        return ValidationResult.of(validation.errors)
    try:
        validation.run(document)
    except _AbortError:
        return ValidationResult.of(validation.errors)
    return validation.result()

