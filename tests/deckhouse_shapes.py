"""The documents' JSON shapes, written from the Deckhouse reference (§2.3-2.5), not from our code.

Each checker returns a list of problems (empty when the document fits), so a test failure names
every deviation at once.  What Deckhouse's consumer needs is spelled out here independently of
``federation.documents``: if our models drift from the wire format, these checks catch it.

* ``public.json``: exactly ``clusterUUID``, ``authnKeyPub``, ``rootCA``; all non-empty strings;
  ``authnKeyPub`` a PKIX Ed25519 key in PEM (Go's ``pem.Decode`` ignores the label, so any
  label is fine as long as the DER inside is PKIX); ``rootCA`` PEM certificates.
* ``federation.json``: exactly ``ingressGateways`` and ``publicServices``, both lists;
  gateways ``{address: string, port: int}``; services ``{hostname: string, ports: [{name, port,
  protocol}]}`` (Deckhouse's exporter sends no ``protocol`` and its consumer derives it; ours
  sends it, and Go's decoder ignores it, so it is allowed and, when present, must be one of the
  four values the consumer's table produces).
* ``spiffe-bundle-endpoint``: ``spiffe_sequence`` and ``spiffe_refresh_hint`` integers and
  ``keys[]`` with ``use: x509-svid``, ``x5c`` (standard base64 DER) and RSA ``n``/``e`` or EC
  ``crv``/``x``/``y`` (base64url without padding).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_der_public_key

PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\n([A-Za-z0-9+/=\n]+?)\n?-----END \1-----")
BASE64URL_NO_PAD = re.compile(r"^[A-Za-z0-9_-]+$")
PROTOCOLS = {"TCP", "HTTP", "HTTP2", "TLS"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exact_keys(obj: Any, keys: set[str], where: str) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: expected an object, got {type(obj).__name__}"]
    problems = []
    if set(obj) - keys:
        problems.append(f"{where}: unexpected keys {sorted(set(obj) - keys)}")
    if keys - set(obj):
        problems.append(f"{where}: missing keys {sorted(keys - set(obj))}")
    return problems


def check_public(doc: Any) -> list[str]:
    problems = _exact_keys(doc, {"clusterUUID", "authnKeyPub", "rootCA"}, "public.json")
    if problems:
        return problems
    for key in ("clusterUUID", "authnKeyPub", "rootCA"):
        if not isinstance(doc[key], str) or not doc[key]:
            problems.append(f"public.json.{key}: must be a non-empty string")
    if problems:
        return problems
    match = PEM_BLOCK.search(doc["authnKeyPub"])
    if not match:
        problems.append("public.json.authnKeyPub: not a PEM block")
    else:
        try:
            public_key = load_der_public_key(base64.b64decode(match.group(2)))
        except (ValueError, binascii.Error):
            problems.append("public.json.authnKeyPub: PEM body is not PKIX DER")
        else:
            if not isinstance(public_key, ed25519.Ed25519PublicKey):
                problems.append("public.json.authnKeyPub: not an Ed25519 key")
    try:
        x509.load_pem_x509_certificates(doc["rootCA"].encode())
    except ValueError:
        problems.append("public.json.rootCA: not PEM certificates")
    return problems


def check_private(doc: Any) -> list[str]:
    problems = _exact_keys(doc, {"ingressGateways", "publicServices"}, "federation.json")
    if problems:
        return problems
    if not isinstance(doc["ingressGateways"], list):
        return ["federation.json.ingressGateways: must be a list"]
    if not isinstance(doc["publicServices"], list):
        return ["federation.json.publicServices: must be a list"]
    for position, gateway in enumerate(doc["ingressGateways"]):
        where = f"ingressGateways[{position}]"
        found = _exact_keys(gateway, {"address", "port"}, where)
        if not found:
            if not isinstance(gateway["address"], str) or not gateway["address"]:
                found.append(f"{where}.address: must be a non-empty string")
            if not _is_int(gateway["port"]) or not 1 <= gateway["port"] <= 65535:
                found.append(f"{where}.port: must be an integer port")
        problems.extend(found)
    for position, service in enumerate(doc["publicServices"]):
        where = f"publicServices[{position}]"
        found = _exact_keys(service, {"hostname", "ports"}, where)
        if not found:
            if not isinstance(service["hostname"], str) or not service["hostname"]:
                found.append(f"{where}.hostname: must be a non-empty string")
            if not isinstance(service["ports"], list):
                found.append(f"{where}.ports: must be a list")
            else:
                for index, port in enumerate(service["ports"]):
                    port_where = f"{where}.ports[{index}]"
                    if not isinstance(port, dict) or not {"name", "port"} <= set(port) <= {"name", "port", "protocol"}:
                        found.append(f"{port_where}: must have name and port (and optionally protocol)")
                        continue
                    if not isinstance(port["name"], str) or not port["name"]:
                        found.append(f"{port_where}.name: must be a non-empty string")
                    if not _is_int(port["port"]):
                        found.append(f"{port_where}.port: must be an integer")
                    if "protocol" in port and port["protocol"] not in PROTOCOLS:
                        found.append(f"{port_where}.protocol: must be one of {sorted(PROTOCOLS)}")
        problems.extend(found)
    return problems


def _b64url_int(text: Any) -> int | None:
    if not isinstance(text, str) or not BASE64URL_NO_PAD.match(text):
        return None
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def check_spiffe(doc: Any) -> list[str]:
    problems = _exact_keys(doc, {"spiffe_sequence", "spiffe_refresh_hint", "keys"}, "spiffe bundle")
    if problems:
        return problems
    for key in ("spiffe_sequence", "spiffe_refresh_hint"):
        if not _is_int(doc[key]) or doc[key] < 0:
            problems.append(f"{key}: must be a non-negative integer")
    if not isinstance(doc["keys"], list) or not doc["keys"]:
        return [*problems, "keys: must be a non-empty list"]
    for position, key in enumerate(doc["keys"]):
        where = f"keys[{position}]"
        if not isinstance(key, dict):
            problems.append(f"{where}: must be an object")
            continue
        if key.get("use") != "x509-svid":
            problems.append(f"{where}.use: must be x509-svid")
        x5c = key.get("x5c")
        if not isinstance(x5c, list) or len(x5c) != 1:
            problems.append(f"{where}.x5c: must hold exactly the root certificate")
        else:
            try:
                x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True))
            except (ValueError, binascii.Error):
                problems.append(f"{where}.x5c[0]: not standard base64 of a DER certificate")
        if key.get("kty") == "RSA":
            expected = {"kty", "use", "n", "e", "x5c"}
            if _b64url_int(key.get("n")) is None or _b64url_int(key.get("e")) is None:
                problems.append(f"{where}: n and e must be base64url without padding")
        elif key.get("kty") == "EC":
            expected = {"kty", "use", "crv", "x", "y", "x5c"}
            if key.get("crv") not in ("P-256", "P-384", "P-521"):
                problems.append(f"{where}.crv: must be P-256, P-384 or P-521")
            if _b64url_int(key.get("x")) is None or _b64url_int(key.get("y")) is None:
                problems.append(f"{where}: x and y must be base64url without padding")
        else:
            problems.append(f"{where}.kty: must be RSA or EC")
            continue
        if set(key) != expected:
            problems.append(f"{where}: keys {sorted(key)} differ from {sorted(expected)}")
    return problems
