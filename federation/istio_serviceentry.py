"""Istio's own ServiceEntry validation, rule for rule, with Istio's own message texts.

Istio's webhook (``validation.istio.io``) runs ``ValidateServiceEntry`` (istio/istio
``pkg/config/validation/validation.go``, HEAD ~1.31) on every ServiceEntry.  We reproduce it here so
that our webhook, our reconciler and our tests can tell in advance whether Istio will accept an object we
write, and so that a denial from us reads exactly like one from Istio.  This is an independent
re-implementation of the published rules; no Istio code is copied.

What we add on top of Istio:

* precise Kubernetes field paths (``spec.ports[1].name``) on every error, as :class:`FieldError`;
* the CRD limits the apiserver enforces before any webhook (MaxItems, MaxLength, MaxProperties), so a
  state-directory backend that has no apiserver still rejects what a cluster would;
* a clear error for a field of the wrong JSON type, where Istio's Go decoder would just fail to unmarshal.

Warnings are plain strings, each at most :data:`WARNING_MAX` characters and free of control characters,
as kube-apiserver wants them.  Istio's text is never cut; a quoted user value inside it may be shortened
with an ellipsis, and the field path is prefixed only when the whole still fits.

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

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Final

from federation import fields
from federation.fields import FieldError, Path

__all__ = [
    "API_VERSIONS",
    "PUBLIC",
    "WARNING_MAX",
    "service_entry_hosts",
    "validate_service_entry",
    "visibilities_overlap",
    "visibility",
]

API_VERSIONS: Final = ("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")
WARNING_MAX: Final = 120  # kube-apiserver's recommendation for one warning

# CRD limits (istio/api service_entry.proto, workload_entry.proto, sidecar.proto markers).
_MAX_HOSTS: Final = 256
_MAX_ADDRESSES: Final = 256
_MAX_PORTS: Final = 256
_MAX_ENDPOINTS: Final = 4096
_MAX_ADDRESS_LEN: Final = 64
_MAX_PORT_STRING_LEN: Final = 256
_MAX_ENDPOINT_ADDRESS_LEN: Final = 256
_MAX_ENDPOINT_PORTS: Final = 128
_MAX_LABELS: Final = 256
_MAX_NETWORK_LEN: Final = 2048
_MAX_SERVICE_ACCOUNT_LEN: Final = 253
_MAX_SELECTOR_VALUE_LEN: Final = 63
_MAX_UINT32: Final = 2**32 - 1

_RESOLUTIONS: Final = ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS")
_LOCATIONS: Final = ("MESH_EXTERNAL", "MESH_INTERNAL")

# Annotations that Istio's metadata wrapper checks before the ServiceEntry rules.
_DRY_RUN_ANNOTATION: Final = "istio.io/dry-run"
_ALWAYS_REJECT_ANNOTATION: Final = "internal.istio.io/webhook-always-reject"
# Label that opts a ServiceEntry out of IP auto-allocation, and the ambient waypoint label.
_AUTOALLOCATE_LABEL: Final = "networking.istio.io/enable-autoallocate-ip"
_WAYPOINT_LABEL: Final = "istio.io/use-waypoint"
_UNIX_PREFIX: Final = "unix://"

# --- Istio's regular expressions (pkg/config/labels), matched with fullmatch: Go's `$` is end of text.
_DNS1123_LABEL: Final = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_DNS1123_LABEL_RE: Final = re.compile(_DNS1123_LABEL)
_WILDCARD_LABEL_RE: Final = re.compile(rf"\*|(?:\*|\*-)?{_DNS1123_LABEL}")
_QUALIFIED_NAME: Final = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_TAG_KEY_RE: Final = re.compile(rf"({_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*/)?({_QUALIFIED_NAME})")
_TAG_VALUE_RE: Final = re.compile(rf"(?:{_QUALIFIED_NAME})?")
_GO_ATOI_RE: Final = re.compile(r"[+-]?[0-9]+")
_LONE_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")

# protocol.Parse: case-insensitive names.  The "DoubleHBONE" arm can never match after lower-casing,
# so HBONE is (faithfully) not a protocol here either.
_PROTOCOLS: Final = {
    "tcp": "TCP",
    "udp": "UDP",
    "grpc": "GRPC",
    "grpc-web": "GRPC-Web",
    "http": "HTTP",
    "http_proxy": "HTTP_PROXY",
    "http2": "HTTP2",
    "https": "HTTPS",
    "tls": "TLS",
    "mongo": "Mongo",
    "redis": "Redis",
    "mysql": "MySQL",
}
_HTTP_PROTOCOLS: Final = frozenset({"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web"})
_TLS_PROTOCOLS: Final = frozenset({"HTTPS", "TLS"})
_TCP_PROTOCOLS: Final = frozenset({"TCP", "HTTPS", "TLS", "Mongo", "Redis", "MySQL"})
_DYNAMIC_DNS_PROTOCOLS: Final = frozenset({"HTTP", "TLS", "GRPC", "HTTP2"})

_GO_ESCAPES: Final = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


# ----------------------------------------------------------------------------------------------------------
# Go formatting and Istio's building blocks (pure string functions, each returning Istio's message or None)
# ----------------------------------------------------------------------------------------------------------


def _go_quote_rune(char: str) -> str:
    """One rune as Go's ``strconv.Quote`` prints it (``%q``)."""
    if char in ('"', "\\"):
        return "\\" + char
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    if char.isprintable():  # Python's isprintable matches Go's unicode.IsPrint: L, M, N, P, S and ' '
        return char
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def go_quote(value: str) -> str:
    """``fmt.Sprintf("%q", value)``: the quoted form Istio puts in its messages."""
    return '"' + "".join(_go_quote_rune(char) for char in value) + '"'


def _byte_len(value: str) -> int:
    """Go's ``len(string)``: UTF-8 bytes."""
    return len(value.encode("utf-8", "surrogatepass"))


def _go_string(value: str) -> str:
    """What Go's JSON decoder makes of a string: lone surrogates become U+FFFD."""
    return _LONE_SURROGATE_RE.sub("\ufffd", value)


def _go_atoi_accepts(text: str) -> bool:
    """True when Go's ``strconv.Atoi`` parses ``text`` (optional sign, decimal digits, fits int64)."""
    if not _GO_ATOI_RE.fullmatch(text):
        return False
    return -(2**63) <= int(text) <= 2**63 - 1


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL_RE.fullmatch(value) is not None


def _is_wildcard_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _WILDCARD_LABEL_RE.fullmatch(value) is not None


def _dns1123_preconditions(name: str) -> str | None:
    if _byte_len(name) > 255:
        return f"domain name {go_quote(name)} too long (max 255)"
    if not name:
        return "empty domain name not allowed"
    return None


def _dns1123_labels(domain: str) -> str | None:
    parts = domain.split(".")
    top_level = parts[-1]
    if _go_atoi_accepts(top_level):
        return f"domain name {go_quote(domain)} invalid (top level domain {go_quote(top_level)} cannot be all-numeric)"
    for position, label in enumerate(parts):
        if position == len(parts) - 1 and not label:  # a trailing dot, as in "istio.io."
            return None
        if not is_dns1123_label(label):
            return f"domain name {go_quote(domain)} invalid (label {go_quote(label)} invalid)"
    return None


def fqdn_problem(name: str) -> str | None:
    """Istio's ``ValidateFQDN``."""
    return _dns1123_preconditions(name) or _dns1123_labels(name)


def wildcard_domain_problem(name: str) -> str | None:
    """Istio's ``ValidateWildcardDomain``: a wildcard is allowed in the first label only."""
    problem = _dns1123_preconditions(name)
    if problem:
        return problem
    first, dot, rest = name.partition(".")
    if not _is_wildcard_dns1123_label(first):
        return f"domain name {go_quote(name)} invalid (label {go_quote(first)} invalid)"
    return _dns1123_labels(rest) if dot else None


def _is_partial_wildcard(host: str) -> bool:
    return "*" in host and host != "*" and not host.startswith("*.")


def _is_ipv4(text: str) -> bool:
    """Go's ``netip`` IPv4 form: four decimal fields, no leading zeros, each ≤ 255."""
    fields_ = text.split(".")
    if len(fields_) != 4:
        return False
    for part in fields_:
        if not (1 <= len(part) <= 3 and part.isascii() and part.isdigit()):
            return False
        if (len(part) > 1 and part[0] == "0") or int(part) > 255:
            return False
    return True


def _is_ipv6(text: str, *, zone_allowed: bool) -> bool:
    address, percent, zone = text.partition("%")
    if percent and (not zone_allowed or not zone):
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _ip_family(text: str) -> int:
    """4 or 6 as Go's ``netip.ParseAddr`` decides it (the first ``.`` or ``:``), 0 when neither comes first."""
    for char in text:
        if char == ".":
            return 4
        if char == ":":
            return 6
        if char == "%":
            return 0
    return 0


def is_ip(text: str, *, zone_allowed: bool = True) -> bool:
    """Go's ``netip.ParseAddr`` succeeds (IPv4 without leading zeros; IPv6, with a zone unless forbidden)."""
    family = _ip_family(text)
    if family == 4:
        return _is_ipv4(text)
    return family == 6 and _is_ipv6(text, zone_allowed=zone_allowed)


def _is_prefix(text: str) -> bool:
    """Go's ``netip.ParsePrefix`` succeeds (host bits may be set; no zone; no leading zeros in the bits)."""
    address, _, bits = text.rpartition("/")
    if not (bits.isascii() and bits.isdigit()) or (len(bits) > 1 and bits[0] == "0"):
        return False
    limit = 32 if _ip_family(address) == 4 else 128
    return is_ip(address, zone_allowed=False) and int(bits) <= limit


def ip_subnet_problem(address: str) -> str | None:
    """Istio's ``ValidateIPSubnet``: exactly one ``/`` means CIDR, anything else must be an IP."""
    if address.count("/") == 1:
        return None if _is_prefix(address) else f"{address} is not a valid CIDR block"
    return None if is_ip(address) else f"{address} is not a valid IP"


def unix_address_problem(path: str) -> str | None:
    """Istio's ``ValidateUnixAddress`` on the part after ``unix://``."""
    if not path:
        return "unix address must not be empty"
    if path.startswith("@"):
        return None
    if not path.startswith("/") or path.endswith("/"):
        return f"{path} is not an absolute path to a file"
    return None


def _port_range_problem(number: int) -> str | None:
    return None if 1 <= number <= 65535 else f"port number {number} must be in the range 1..65535"


def parse_protocol(value: str) -> str | None:
    """Istio's ``protocol.Parse``: the canonical name, or None for an unsupported protocol."""
    return _PROTOCOLS.get(value.lower())


def _tag_key_problem(key: str) -> str | None:
    match = _TAG_KEY_RE.fullmatch(key)
    if match is None:
        return f"invalid tag key: {go_quote(key)}"
    prefix, name = match.group(1) or "", match.group(2)
    if prefix and len(prefix) - 1 > 253:
        return f"invalid tag key: {go_quote(key)} (DNS prefix is too long)"
    if len(name) > 63:
        return f"invalid tag key: {go_quote(key)} (name is too long)"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ----------------------------------------------------------------------------------------------------------
# Warnings: at most 120 characters, no control characters, Istio's text never cut
# ----------------------------------------------------------------------------------------------------------


def _fit_quoted(before: str, value: str, after: str) -> str:
    """``before + %q(value) + after``, shortening the quoted value with an ellipsis to fit WARNING_MAX."""
    whole = before + go_quote(value) + after
    if len(whole) <= WARNING_MAX:
        return whole
    budget = WARNING_MAX - len(before) - len(after) - len('"…"')
    pieces: list[str] = []
    used = 0
    for char in value:
        piece = _go_quote_rune(char)
        if used + len(piece) > budget:
            break
        pieces.append(piece)
        used += len(piece)
    return before + '"' + "".join(pieces) + '…"' + after


def _with_path(path: Path, text: str) -> str:
    prefixed = f"{path}: {text}"
    if len(prefixed) <= WARNING_MAX and str(path).isprintable():
        return prefixed
    return text


# ----------------------------------------------------------------------------------------------------------
# The validator
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Port:
    path: Path
    number: int | None  # None: present with the wrong type (already reported)
    name: str | None
    protocol: str | None
    target_port: int | None


@dataclass(frozen=True)
class _Endpoint:
    path: Path
    address: str | None  # None: present with the wrong type (already reported)
    network: str
    ports: list[tuple[str, int]]
    labels: list[tuple[str, str]]
    has_ports: bool


# A list entry with its path; None stands for a JSON null, which Istio reports with its own texts.
_PortEntry = tuple[Path, _Port | None]
_EndpointEntry = tuple[Path, _Endpoint | None]

_SELECTOR_WITHOUT_LABELS: Final = (
    "service entry: workload selector specified without labels, will be applied to all services in namespace"
)
_TCP_NEEDS_ADDRESS: Final = (
    "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled"
)
_MULTI_HOST_TCP_ADDRESS: Final = (
    "service entry can not have more than one host specified simultaneously with address and tcp port"
)


class _AbortError(Exception):
    """Istio returns some errors alone (bad selector, forbidden annotation): stop, report only those."""


@dataclass
class _Validator:
    ip_autoallocate: bool
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    # --- reporting ------------------------------------------------------------------------------------

    def error(self, error: FieldError) -> None:
        self.errors.append(error)

    def warn(self, path: Path, text: str) -> None:
        self.warnings.append(_with_path(path, text))

    def abort(self, errors: list[FieldError]) -> None:
        self.errors = errors
        raise _AbortError

    def wrong_type(self, path: Path, value: Any, expected: str) -> None:
        # The value shown is the JSON type name, as in the apiserver's schema errors: bounded and readable.
        self.error(fields.invalid(path, fields.json_type(value), expected))

    # --- typed readers: report a wrong type, return None, and let the rest of the object be checked ---

    def string(self, path: Path, value: Any, *, max_len: int | None = None) -> str | None:
        """A string field; absent or null reads as Go's zero value ``""``."""
        if value is None:
            return ""
        if not isinstance(value, str):
            self.wrong_type(path, value, "must be a string")
            return None
        if max_len is not None and len(value) > max_len:
            self.error(fields.too_long(path, max_len))
        return _go_string(value)

    def integer(self, path: Path, value: Any) -> int | None:
        """An integer field; absent or null reads as Go's zero value ``0``."""
        if value is None:
            return 0
        if not _is_int(value):
            self.wrong_type(path, value, "must be an integer")
            return None
        return int(value)

    def items(self, path: Path, value: Any, max_items: int | None, what: str) -> list[tuple[Path, Any]] | None:
        """A JSON list as (path, item) pairs; None when absent, null or of the wrong type."""
        if value is None:
            return None
        if not isinstance(value, list):
            self.wrong_type(path, value, f"must be a list of {what}")
            return None
        if max_items is not None and len(value) > max_items:
            # The apiserver rejects such a list outright; only the items it could have allowed are checked.
            self.error(fields.invalid(path, len(value), f"must have at most {max_items} items"))
            value = value[:max_items]
        return [(path.index(position), item) for position, item in enumerate(value)]

    def strings(
        self, path: Path, value: Any, max_items: int | None, *, max_len: int | None = None
    ) -> list[tuple[Path, str]]:
        result: list[tuple[Path, str]] = []
        for item_path, item in self.items(path, value, max_items, "strings") or []:
            if isinstance(item, str):
                if max_len is not None and len(item) > max_len:
                    self.error(fields.too_long(item_path, max_len))
                result.append((item_path, _go_string(item)))
            else:
                self.wrong_type(item_path, item, "must be a string")
        return result

    def mapping(self, path: Path, value: Any, max_props: int | None, what: str) -> list[tuple[Path, str, Any]]:
        if value is None:
            return []
        if not isinstance(value, dict):
            self.wrong_type(path, value, f"must be a map of {what}")
            return []
        entries = list(value.items())
        if max_props is not None and len(entries) > max_props:
            self.error(fields.invalid(path, len(entries), f"must have at most {max_props} items"))
            entries = entries[:max_props]
        return [(path.key(str(key)), _go_string(str(key)), item) for key, item in entries]

    def string_map(
        self, path: Path, value: Any, max_props: int | None, *, max_value_len: int | None = None
    ) -> list[tuple[Path, str, str]]:
        result: list[tuple[Path, str, str]] = []
        for item_path, key, item in self.mapping(path, value, max_props, "strings"):
            if item is None:  # a null label value is not a string either
                self.wrong_type(item_path, item, "must be a string")
                continue
            text = self.string(item_path, item, max_len=max_value_len)
            if text is not None:
                result.append((item_path, key, text))
        return result

    # --- metadata ------------------------------------------------------------------------------------------

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
        labels = {key: text for _, key, text in self.string_map(path.child("labels"), raw.get("labels"), None)}
        annotations = self.string_map(path.child("annotations"), raw.get("annotations"), None)
        for item_path, key, _ in annotations:
            if key == _DRY_RUN_ANNOTATION:  # only an AuthorizationPolicy may carry it
                text = f"{namespace}/{name} has unsupported annotation {key}, please remove the annotation"
                self.abort([fields.forbidden(item_path, text)])
        for item_path, key, _ in annotations:
            if key == _ALWAYS_REJECT_ANNOTATION:  # Istio's own test hook: it rejects by design
                self.abort([fields.forbidden(item_path, f"{go_quote(key)} annotation found, rejecting")])
        return namespace, labels

    # --- spec sections, in Istio's order -------------------------------------------------------------

    def workload_selector(self, spec: dict[str, Any]) -> bool:
        """Rules 1-3.  Returns whether a selector is set (Go: ``WorkloadSelector != nil``)."""
        path = Path.of("spec", "workloadSelector")
        raw = spec.get("workloadSelector")
        if raw is None:
            return False
        if not isinstance(raw, dict):
            self.wrong_type(path, raw, "must be an object")
            return True
        raw_labels = raw.get("labels")
        labels = self.string_map(path.child("labels"), raw_labels, _MAX_LABELS, max_value_len=_MAX_SELECTOR_VALUE_LEN)
        selector_errors: list[FieldError] = []
        for item_path, key, value in labels:
            pair = go_quote(f"{key}={value}")
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
            self.warn(path, _SELECTOR_WITHOUT_LABELS)
        return True

    def hosts(self, spec: dict[str, Any], resolution: str | None) -> list[tuple[Path, str]]:
        """Rules 5-9."""
        path = Path.of("spec", "hosts")
        raw = spec.get("hosts")
        if raw is None or raw == []:
            self.error(fields.required(path, "service entry must have at least one host"))
        hosts = self.strings(path, raw, _MAX_HOSTS)
        for item_path, host in hosts:
            if host == "*":
                self.error(fields.invalid(item_path, host, f"invalid host {host}"))
                continue
            problem = wildcard_domain_problem(host)
            if problem:
                self.error(fields.invalid(item_path, host, problem))
            # DYNAMIC_DNS resolves whatever name the wildcard matches, so Istio skips this warning there.
            if resolution != "DYNAMIC_DNS" and _is_partial_wildcard(host):
                self.warnings.append(_with_path(item_path, _fit_quoted("partial wildcard ", host, " not allowed")))
        return hosts

    def addresses(self, spec: dict[str, Any], resolution: str | None) -> list[tuple[Path, str]]:
        """Rules 10-11."""
        path = Path.of("spec", "addresses")
        addresses = self.strings(path, spec.get("addresses"), _MAX_ADDRESSES, max_len=_MAX_ADDRESS_LEN)
        first_cidr: Path | None = None
        for item_path, address in addresses:
            if first_cidr is None and "/" in address:
                first_cidr = item_path
            problem = ip_subnet_problem(address)
            if problem:
                self.error(fields.invalid(item_path, address, problem))
        if first_cidr is not None and resolution not in ("NONE", "STATIC"):
            self.error(fields.forbidden(first_cidr, "CIDR addresses are allowed only for NONE/STATIC resolution types"))
        return addresses

    def read_ports(self, spec: dict[str, Any]) -> list[_PortEntry]:
        entries: list[_PortEntry] = []
        for path, item in self.items(Path.of("spec", "ports"), spec.get("ports"), _MAX_PORTS, "ports") or []:
            if item is None:
                entries.append((path, None))
            elif not isinstance(item, dict):
                self.wrong_type(path, item, "must be an object")
            else:
                number = self.integer(path.child("number"), item.get("number"))
                target = self.integer(path.child("targetPort"), item.get("targetPort"))
                name = self.string(path.child("name"), item.get("name"), max_len=_MAX_PORT_STRING_LEN)
                protocol = self.string(path.child("protocol"), item.get("protocol"), max_len=_MAX_PORT_STRING_LEN)
                entries.append((path, _Port(path, number, name, protocol, target)))
        return entries

    def ports(self, ports: list[_PortEntry], *, warn_tcp: bool) -> set[str]:
        """Rules 12-19.  Returns the set of service port names (Istio's ``servicePorts``)."""
        names: set[str] = set()
        numbers: set[int] = set()
        for path, port in ports:
            if port is None:
                self.error(fields.required(path, "service entry port may not be null"))
                continue
            name_path, number_path = path.child("name"), path.child("number")
            if port.name is not None:
                if port.name in names:
                    text = f"service entry port name {go_quote(port.name)} already defined"
                    self.error(fields.invalid(name_path, port.name, text))
                names.add(port.name)
            if port.number is not None:
                if port.number in numbers:
                    self.error(
                        fields.invalid(number_path, port.number, f"service entry port {port.number} already defined")
                    )
                numbers.add(port.number)
            if port.target_port:
                problem = _port_range_problem(port.target_port)
                if problem:
                    self.error(fields.invalid(path.child("targetPort"), port.target_port, problem))
            if warn_tcp and port.protocol in ("", "TCP"):  # case-sensitive in Istio: "tcp" does not warn
                self.warn(path.child("protocol"), _TCP_NEEDS_ADDRESS)
            if port.name is not None and not is_dns1123_label(port.name):
                text = f"invalid port name: {port.name}"
                self.error(
                    fields.invalid(name_path, port.name, text) if port.name else fields.required(name_path, text)
                )
            if port.protocol and parse_protocol(port.protocol) is None:
                text = f"unsupported protocol: {port.protocol}"
                self.error(fields.invalid(path.child("protocol"), port.protocol, text))
            if port.number is not None:
                problem = _port_range_problem(port.number)
                if problem and port.number:
                    self.error(fields.invalid(number_path, port.number, problem))
                elif problem:
                    self.error(fields.required(number_path, problem))
        return names

    def read_endpoints(self, spec: dict[str, Any]) -> list[_EndpointEntry] | None:
        """The endpoints, or None when Go would see a nil list (absent, null, ``[]`` or the wrong type)."""
        pairs = self.items(Path.of("spec", "endpoints"), spec.get("endpoints"), _MAX_ENDPOINTS, "endpoints")
        if not pairs:
            return None
        entries: list[_EndpointEntry] = []
        for path, item in pairs:
            if item is None:
                entries.append((path, None))
            elif not isinstance(item, dict):
                self.wrong_type(path, item, "must be an object")
            else:
                entries.append((path, self.read_endpoint(path, item)))
        return entries

    def read_endpoint(self, path: Path, item: dict[str, Any]) -> _Endpoint:
        address = self.string(path.child("address"), item.get("address"), max_len=_MAX_ENDPOINT_ADDRESS_LEN)
        network = self.string(path.child("network"), item.get("network"), max_len=_MAX_NETWORK_LEN) or ""
        self.string(path.child("locality"), item.get("locality"), max_len=_MAX_NETWORK_LEN)
        self.string(path.child("serviceAccount"), item.get("serviceAccount"), max_len=_MAX_SERVICE_ACCOUNT_LEN)
        weight = self.integer(path.child("weight"), item.get("weight"))
        if weight is not None and not 0 <= weight <= _MAX_UINT32:  # uint32 in the CRD schema
            self.error(fields.invalid(path.child("weight"), weight, f"must be between 0 and {_MAX_UINT32}"))
        ports: list[tuple[str, int]] = []
        raw_ports = item.get("ports")
        for port_path, name, value in self.mapping(path.child("ports"), raw_ports, _MAX_ENDPOINT_PORTS, "port numbers"):
            number = self.integer(port_path, value) if value is not None else None
            if value is None:
                self.wrong_type(port_path, value, "must be an integer")
            if number is not None:
                ports.append((name, number))
        labels = [
            (key, text) for _, key, text in self.string_map(path.child("labels"), item.get("labels"), _MAX_LABELS)
        ]
        has_ports = isinstance(raw_ports, dict) and bool(raw_ports)
        return _Endpoint(path, address, network, ports, labels, has_ports)

    def endpoint_ports(self, endpoint: _Endpoint, service_ports: set[str]) -> None:
        for name, number in endpoint.ports:
            path = endpoint.path.child("ports").key(name)
            if name not in service_ports:  # Istio prints the number here, not the name
                self.error(fields.invalid(path, number, f"endpoint port {number} is not defined by the service entry"))
            if not is_dns1123_label(name):
                self.error(fields.invalid(path, name, f"invalid port name: {name}"))
            problem = _port_range_problem(number)
            if problem:
                self.error(fields.invalid(path, number, problem))

    def endpoint_labels(self, endpoint: _Endpoint) -> None:
        for key, value in endpoint.labels:
            path = endpoint.path.child("labels").key(key)
            problem = _tag_key_problem(key)
            if problem:
                self.error(fields.invalid(path, key, problem))
            if _TAG_VALUE_RE.fullmatch(value) is None:
                self.error(fields.invalid(path, value, f"invalid tag value: {go_quote(value)}"))

    def static_endpoint(self, endpoint: _Endpoint, service_ports: set[str]) -> None:
        """Rules 23-30: Istio's ``validateWorkloadEntry`` with FQDN addresses disallowed."""
        path = endpoint.path.child("address")
        address = endpoint.address
        if address == "":
            if not endpoint.network:
                self.error(fields.required(path, "address is required"))
                return  # Istio checks nothing else of this endpoint
            self.warnings.append(_with_path(path, _fit_quoted("address is unset with network ", endpoint.network, "")))
        unix = address is not None and address.startswith(_UNIX_PREFIX)
        if address is not None and unix:
            problem = unix_address_problem(address.removeprefix(_UNIX_PREFIX))
            if problem:
                self.error(fields.invalid(path, address, problem))
            if endpoint.has_ports:
                self.error(
                    fields.forbidden(endpoint.path.child("ports"), f"unix endpoint {address} must not include ports")
                )
        elif address and not is_ip(address):
            self.error(fields.invalid(path, address, f"endpoint address {go_quote(address)} is not a valid IP address"))
        self.endpoint_ports(endpoint, service_ports)
        self.endpoint_labels(endpoint)
        if unix and len(service_ports) != 1:  # a set of names: two ports with one name count once
            self.error(fields.forbidden(path, "exactly 1 service port required for unix endpoints"))

    def dns_endpoint(self, endpoint: _Endpoint, service_ports: set[str]) -> None:
        """Rule 33, in the DNS branch's own order: address, labels, then ports."""
        address = endpoint.address
        if address is not None and not is_ip(address) and fqdn_problem(address):
            text = f"endpoint address {go_quote(address)} is not a valid FQDN or an IP address"
            self.error(fields.invalid(endpoint.path.child("address"), address, text))
        self.endpoint_labels(endpoint)
        self.endpoint_ports(endpoint, service_ports)

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

        resolution: str | None = "NONE"  # the proto default
        if spec.get("resolution") is not None:
            resolution = self.string(spec_path.child("resolution"), spec["resolution"])
        location = self.string(spec_path.child("location"), spec.get("location")) or "MESH_EXTERNAL"
        if location not in _LOCATIONS:  # the CRD's enum
            self.error(fields.not_supported(spec_path.child("location"), location, list(_LOCATIONS)))
        self.strings(spec_path.child("subjectAltNames"), spec.get("subjectAltNames"), None)  # Istio checks none

        has_selector = self.workload_selector(spec)
        endpoints = self.read_endpoints(spec)
        if has_selector and endpoints is not None:
            text = "only one of WorkloadSelector or Endpoints is allowed in Service Entry"
            self.error(fields.forbidden(spec_path.child("endpoints"), text))

        hosts = self.hosts(spec, resolution)
        addresses = self.addresses(spec, resolution)
        ports = self.read_ports(spec)
        # Istio's shouldV2AutoAllocateIPFromPieces: never for NONE; the label set to "false" opts out.
        autoallocate = (
            self.ip_autoallocate and resolution != "NONE" and labels.get(_AUTOALLOCATE_LABEL, "").lower() != "false"
        )
        service_ports = self.ports(ports, warn_tcp=not spec.get("addresses") and not autoallocate)

        if resolution == "NONE":
            if endpoints is not None:
                text = "no endpoints should be provided for resolution type none"
                self.error(fields.forbidden(spec_path.child("endpoints"), text))
            if has_selector:
                self.warn(
                    spec_path.child("workloadSelector"),
                    "workloadSelector should not be set when resolution mode is NONE",
                )
        elif resolution == "STATIC":
            for path, endpoint in endpoints or []:
                if endpoint is None:
                    self.error(fields.required(path, "endpoint cannot be nil"))
                else:
                    self.static_endpoint(endpoint, service_ports)
        elif resolution in ("DNS", "DNS_ROUND_ROBIN"):
            self.dns(
                resolution,
                hosts=hosts,
                has_addresses=bool(addresses),
                ports=ports,
                endpoints=endpoints,
                service_ports=service_ports,
            )
        elif resolution == "DYNAMIC_DNS":
            self.dynamic_dns(
                hosts,
                has_addresses=bool(addresses),
                ports=ports,
                has_endpoints=endpoints is not None,
                location=location,
                labels=labels,
            )
        elif resolution is not None:
            text = f"unsupported resolution type {resolution}"
            self.error(fields.invalid(spec_path.child("resolution"), resolution, text))

        if resolution != "NONE" and len(hosts) > 1:
            self.multi_host(ports)
        self.export_to(spec, namespace)

    def dns(
        self,
        resolution: str,
        *,
        hosts: list[tuple[Path, str]],
        has_addresses: bool,
        ports: list[_PortEntry],
        endpoints: list[_EndpointEntry] | None,
        service_ports: set[str],
    ) -> None:
        """Rules 31-34."""
        if endpoints is None:
            for path, host in hosts:
                problem = fqdn_problem(host)
                if problem:
                    text = (
                        "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided "
                        f"for resolution mode {resolution}, {problem}"
                    )
                    self.error(fields.invalid(path, host, text))
                    break  # Istio reports this once, for the first host that fails
        if resolution == "DNS_ROUND_ROBIN" and endpoints is not None and len(endpoints) > 1:
            text = f"there must only be 0 or 1 endpoint for resolution mode {resolution}"
            self.error(fields.forbidden(Path.of("spec", "endpoints"), text))
        for path, endpoint in endpoints or []:
            if endpoint is None:
                self.error(fields.required(path, "endpoint cannot be nil"))
            else:
                self.dns_endpoint(endpoint, service_ports)
        if has_addresses:
            for path, port in ports:
                if port is None:
                    self.error(fields.required(path, "ports cannot be nil"))  # Istio repeats rule 12 here
                    continue
                if port.protocol is not None and parse_protocol(port.protocol) in _TCP_PROTOCOLS:
                    if len(hosts) > 1:
                        self.warn(Path.of("spec", "hosts"), _MULTI_HOST_TCP_ADDRESS)
                    break

    def dynamic_dns(
        self,
        hosts: list[tuple[Path, str]],
        *,
        has_addresses: bool,
        ports: list[_PortEntry],
        has_endpoints: bool,
        location: str,
        labels: dict[str, str],
    ) -> None:
        """Rule 35 (new in Istio 1.28)."""
        mode = "DYNAMIC_DNS"
        spec_path = Path.of("spec")
        if not hosts:
            text = f"at least one wildcard host must be provided for resolution type {mode}"
            self.error(fields.required(spec_path.child("hosts"), text))
        for path, host in hosts:
            if not host.startswith("*"):
                self.error(fields.invalid(path, host, f"host must be wildcarded for resolution mode {mode}"))
        if has_addresses:
            self.error(
                fields.forbidden(spec_path.child("addresses"), f"addresses cannot be set for resolution type {mode}.")
            )
        if has_endpoints:
            self.error(
                fields.forbidden(spec_path.child("endpoints"), f"endpoints cannot be set for resolution type {mode}.")
            )
        text = f"only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type {mode}"
        for path, port in ports:
            if (
                port is not None
                and port.protocol is not None
                and parse_protocol(port.protocol) not in _DYNAMIC_DNS_PROTOCOLS
            ):
                self.error(fields.invalid(path.child("protocol"), port.protocol, text))
        if location == "MESH_INTERNAL" and labels.get(_WAYPOINT_LABEL):
            text = f"location MESH_INTERNAL with resolution type {mode} is not supported when using waypoints"
            self.error(fields.forbidden(spec_path.child("location"), text))

    def multi_host(self, ports: list[_PortEntry]) -> None:
        """Rule 37: without an HTTP Host header or a TLS SNI, one port cannot tell several hosts apart."""
        for path, port in ports:
            if port is None:
                self.error(fields.required(path, "ports cannot be nil"))  # Istio repeats rule 12 here
                continue
            if port.protocol is None:
                continue  # the wrong type, already reported
            canonical = parse_protocol(port.protocol)  # an empty protocol (sniffing) counts as non-HTTP
            if canonical not in _HTTP_PROTOCOLS and canonical not in _TLS_PROTOCOLS:
                self.error(fields.forbidden(path, "multiple hosts provided with non-HTTP, non-TLS ports"))
                break

    def export_to(self, spec: dict[str, Any], namespace: str) -> None:
        """Rules 38-41 (Istio's ``validateExportTo`` for a ServiceEntry, where ``~`` is allowed)."""
        path = Path.of("spec", "exportTo")
        entries = self.strings(path, spec.get("exportTo"), None)
        seen: set[str] = set()
        for item_path, entry in entries:
            # "." is the own namespace, so ". + own namespace" is a duplicate.  Without a namespace in the
            # object (the apiserver always fills it in) "." stays itself rather than failing as "".
            key = namespace if entry == "." and namespace else entry
            if key in seen:
                text = (
                    f"duplicate entries in exportTo: . and current namespace {namespace}"
                    if key != entry
                    else f"duplicate entries in exportTo for entry {entry}"
                )
                self.error(fields.invalid(item_path, entry, text))
            elif entry == "~" or key in (".", "*") or is_dns1123_label(key):
                seen.add(key)
            else:
                text = "only .,*, or a valid DNS 1123 label is allowed as exportTo entry"
                self.error(fields.invalid(item_path, entry, text))
        if "*" in seen and len(entries) > 1:
            self.error(
                fields.forbidden(path, "cannot have both public (*) and non-public exportTo values for a resource")
            )
        if "~" in seen and len(entries) > 1:
            self.error(fields.forbidden(path, "cannot export service entry to no one (~) and someone"))


def validate_service_entry(obj: dict[str, Any], *, ip_autoallocate: bool = False) -> tuple[list[FieldError], list[str]]:
    """Validate a whole ServiceEntry object as Istio's webhook would: ``(errors, warnings)``.

    ``obj`` is the object as the apiserver sends it (``apiVersion``, ``metadata``, ``spec``).  Errors carry
    Kubernetes field paths and Istio's texts; all problems are reported at once, except where Istio itself
    returns a few errors alone (a bad workload selector, a forbidden annotation).  ``ip_autoallocate`` says
    whether istiod allocates addresses for ServiceEntries (``PILOT_ENABLE_IP_AUTOALLOCATE``); when it does
    not, TCP or protocol-less ports without addresses draw a warning.  Never raises, whatever JSON it gets.
    """
    validator = _Validator(ip_autoallocate=ip_autoallocate)
    document: Any = obj  # typed as a dict, but a webhook must survive anything
    if not isinstance(document, dict):
        validator.wrong_type(Path.of("spec"), document, "must be an object")
        return validator.errors, []
    try:
        validator.run(document)
    except _AbortError:
        return validator.errors, []
    return validator.errors, validator.warnings


# ----------------------------------------------------------------------------------------------------------
# Cross-object helpers
# ----------------------------------------------------------------------------------------------------------


def _spec(obj: Any) -> dict[str, Any]:
    spec = obj.get("spec") if isinstance(obj, dict) else None
    return spec if isinstance(spec, dict) else {}


def _namespace(obj: Any) -> str:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return namespace if isinstance(namespace, str) else ""


def service_entry_hosts(obj: dict[str, Any]) -> list[str]:
    """The string hosts of a ServiceEntry, in order; anything that is not a string is skipped."""
    hosts = _spec(obj).get("hosts")
    return [host for host in hosts if isinstance(host, str)] if isinstance(hosts, list) else []


PUBLIC: Final = frozenset({"*"})


def visibility(obj: dict[str, Any]) -> frozenset[str]:
    """The namespaces that can see a ServiceEntry, from its ``exportTo``.

    ``*`` (or an absent, empty or unreadable exportTo) is public and returns :data:`PUBLIC`; ``.`` is the
    object's own namespace; ``~`` is no one (it contributes nothing, so ``["~"]`` gives an empty set); any
    other entry is a namespace name.  A public entry wins over names, as it does in Istio.
    """
    export_to = _spec(obj).get("exportTo")
    if not isinstance(export_to, list) or not export_to:
        return PUBLIC
    namespaces = {
        _namespace(obj) if entry == "." else entry for entry in export_to if isinstance(entry, str) and entry != "~"
    }
    return PUBLIC if "*" in namespaces else frozenset(namespaces)


def visibilities_overlap(a_obj: dict[str, Any], b_obj: dict[str, Any]) -> bool:
    """True when some namespace can see both ServiceEntries.

    This follows the scoping of istioctl's IST0177 (ConflictingServiceEntryProtocol), which compares
    ServiceEntries only within a shared exportTo scope: two public entries overlap; a public one overlaps any
    entry visible somewhere; otherwise the resolved namespace sets must intersect.  ``~`` overlaps nothing.
    """
    a, b = visibility(a_obj), visibility(b_obj)
    if not a or not b:
        return False
    if PUBLIC in (a, b):
        return True
    return bool(a & b)
