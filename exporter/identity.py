"""This cluster's identity as published in ``public.json``: its Ed25519 public key and root CA.

* The keypair is the Secret ``istio-federation-authn-keypair`` (keys ``priv.pem``, ``pub.pem``)
  in the exporter's namespace (``data`` in base64, or ``stringData`` in a state directory), or
  the files of ``--keypair-dir``.  Both the standard PEM labels and Deckhouse's ``ED25519 …``
  labels are accepted; the key is always published with the standard ``PUBLIC KEY`` label, which
  Deckhouse's Go parser (label-agnostic) and every PKIX library read.
* The root CA is the ConfigMap ``istio-ca-root-cert`` (key ``root-cert.pem``) that istiod puts
  in every namespace.

Missing or broken inputs give a problem sentence saying which object to create or fix; the
exporter then stays not ready instead of publishing an empty field.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from federation import keys, resources
from federation.documents.public import root_ca_problem
from federation.resources import KubeObject

KEYPAIR_SECRET = "istio-federation-authn-keypair"
PRIVATE_KEY_FILE = "priv.pem"
PUBLIC_KEY_FILE = "pub.pem"
ROOT_CA_CONFIGMAP = "istio-ca-root-cert"
ROOT_CA_KEY = "root-cert.pem"


@dataclass(frozen=True)
class Identity:
    authn_key_pub: str
    root_ca: str


@dataclass(frozen=True)
class IdentityResult:
    identity: Identity | None
    problems: tuple[str, ...]


def _create_secret_hint(namespace: str) -> str:
    return (
        f"create it with `istio-federation certs keypair --out DIR` and `kubectl -n {namespace} create secret "
        f"generic {KEYPAIR_SECRET} --from-file=DIR/{PRIVATE_KEY_FILE} --from-file=DIR/{PUBLIC_KEY_FILE}`, "
        "or pass --keypair-dir"
    )


def secret_files(secret: KubeObject) -> tuple[dict[str, str], list[str]]:
    """The Secret's files as text: ``stringData`` over base64-decoded ``data``, as the API merges them."""
    files: dict[str, str] = {}
    problems: list[str] = []
    where = f"Secret {resources.namespace_of(secret)}/{resources.name_of(secret)}"
    data = secret.get("data")
    for key, value in (data if isinstance(data, dict) else {}).items():
        try:
            files[str(key)] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            problems.append(f"{where} data[{key}] is not base64 of UTF-8 text; put the PEM there base64-encoded")
    string_data = secret.get("stringData")
    for key, value in (string_data if isinstance(string_data, dict) else {}).items():
        files[str(key)] = str(value)
    return files, problems


def read_keypair_dir(directory: Path) -> dict[str, str]:
    """The PEM files of ``--keypair-dir`` that exist (the rest is reported by :func:`public_key`)."""
    files: dict[str, str] = {}
    for name in (PRIVATE_KEY_FILE, PUBLIC_KEY_FILE):
        path = directory / name
        try:
            files[name] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as error:
            files[name] = f"<unreadable: {error.__class__.__name__}>"
    return files


def public_key(files: dict[str, str], where: str) -> tuple[str | None, str | None]:
    """The public key PEM to publish, or a problem. ``priv.pem``, when present, must match."""
    if PUBLIC_KEY_FILE not in files:
        return None, f"{where} has no {PUBLIC_KEY_FILE}"
    try:
        if PRIVATE_KEY_FILE in files:
            keypair = keys.Keypair.from_pems(files[PRIVATE_KEY_FILE], files[PUBLIC_KEY_FILE])
            key = keypair.private_key.public_key()
        else:
            key = keys.load_public_key(files[PUBLIC_KEY_FILE], PUBLIC_KEY_FILE)
    except keys.InvalidKey as error:
        return None, f"{where}: {error}"
    return keys.public_key_pem(key), None


def keypair_from_secret(secret: KubeObject | None, namespace: str) -> tuple[str | None, list[str]]:
    if secret is None:
        return None, [f"Secret {namespace}/{KEYPAIR_SECRET} not found: {_create_secret_hint(namespace)}"]
    files, problems = secret_files(secret)
    if problems:
        # An undecodable file reads as absent below; saying it twice would only confuse.
        return None, problems
    pem, problem = public_key(files, f"Secret {namespace}/{KEYPAIR_SECRET}")
    return pem, [problem] if problem else []


def keypair_from_dir(directory: Path, files: dict[str, str]) -> tuple[str | None, list[str]]:
    pem, problem = public_key(files, f"--keypair-dir {directory}")
    return pem, [problem] if problem else []


def root_ca(configmap: KubeObject | None, namespace: str) -> tuple[str | None, list[str]]:
    where = f"ConfigMap {namespace}/{ROOT_CA_CONFIGMAP}"
    if configmap is None:
        return None, [
            f"{where} not found: istiod writes it into every namespace; check that Istio runs and that "
            f"namespace {namespace} exists (or create the ConfigMap with key {ROOT_CA_KEY})"
        ]
    data = configmap.get("data")
    pem = data.get(ROOT_CA_KEY) if isinstance(data, dict) else None
    if not isinstance(pem, str) or not pem.strip():
        return None, [f"{where} has no data key {ROOT_CA_KEY}: put the mesh root certificate (PEM) there"]
    problem = root_ca_problem(pem)
    if problem:
        return None, [f"{where} data[{ROOT_CA_KEY}]: {problem}"]
    return pem, []


def identity(
    *,
    namespace: str,
    secret: KubeObject | None,
    root_ca_configmap: KubeObject | None,
    keypair_dir: Path | None = None,
    keypair_dir_files: dict[str, str] | None = None,
) -> IdentityResult:
    """Combine the inputs; ``keypair_dir`` (with its files read by the caller) overrides ``secret``."""
    if keypair_dir is not None:
        pem, key_problems = keypair_from_dir(keypair_dir, keypair_dir_files or {})
    else:
        pem, key_problems = keypair_from_secret(secret, namespace)
    ca, ca_problems = root_ca(root_ca_configmap, namespace)
    problems = tuple(key_problems + ca_problems)
    if pem is None or ca is None:
        return IdentityResult(None, problems)
    return IdentityResult(Identity(pem, ca), problems)
