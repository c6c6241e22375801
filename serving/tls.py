"""TLS for the servers: a pair that is checked before serving, and reloaded when its files change.

``pair_problem`` is called before gunicorn starts, so a certificate and key that cannot serve
(unreadable, not PEM, encrypted, or not each other's) stop the command with one line naming
both files instead of a server that fails every handshake.

``ReloadingContext`` serves a Secret volume's rotation without a restart: every new connection
compares the files' signature (device, inode, size, mtime of both, following the kubelet's
``..data`` symlink) with the one its context was built from, and builds a new context when it
changed.  A pair caught half-way through a rotation (new key, old certificate) fails to load:
the last good context keeps serving, the problem is logged once, and the next connection tries
again.  Connections already open keep the context they were accepted with.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

log = logging.getLogger("istio_federation.serving")

ALPN = ["http/1.1"]


@dataclass(frozen=True)
class CertificatePair:
    cert_file: str
    key_file: str

    def describe(self) -> str:
        return f"--tls-cert-file {self.cert_file} and --tls-private-key-file {self.key_file}"


def _read(path: str) -> tuple[bytes | None, str | None]:
    try:
        with open(path, "rb") as handle:
            return handle.read(), None
    except OSError as error:
        return None, f"{path} cannot be read ({error.strerror or error})"


def pair_problem(pair: CertificatePair) -> str | None:
    """Why this pair cannot serve TLS, in one line naming both files; None when it can."""
    prefix = f"cannot serve TLS with {pair.describe()}: "
    cert_pem, problem = _read(pair.cert_file)
    if cert_pem is None:
        return prefix + str(problem)
    key_pem, problem = _read(pair.key_file)
    if key_pem is None:
        return prefix + str(problem)
    try:
        certificates = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        return prefix + f"{pair.cert_file} holds no PEM certificate"
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        return prefix + f"{pair.key_file} is encrypted; give the key unencrypted"
    except (ValueError, UnsupportedAlgorithm):
        return prefix + f"{pair.key_file} holds no PEM private key"
    leaf_public = certificates[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if leaf_public != key_public:
        return prefix + "the private key does not belong to the certificate (KEY_VALUES_MISMATCH)"
    try:
        build_context(pair)
    except (OSError, ssl.SSLError) as error:
        return prefix + (getattr(error, "reason", None) or str(error))
    return None


def build_context(pair: CertificatePair, context_class: type[ssl.SSLContext] = ssl.SSLContext) -> ssl.SSLContext:
    """A server context for the pair: TLS 1.2 or later, HTTP/1.1, no renegotiation."""
    context = context_class(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    context.load_cert_chain(pair.cert_file, pair.key_file)
    context.set_alpn_protocols(ALPN)
    return context


_FileSignature = tuple[int, int, int, int] | None


def _signature(path: str) -> _FileSignature:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class ReloadingContext:
    """The context for new connections, rebuilt when the certificate or key file changes."""

    def __init__(self, pair: CertificatePair, context_class: type[ssl.SSLContext] = ssl.SSLContext) -> None:
        self._pair = pair
        self._context_class = context_class
        self._lock = threading.Lock()
        self._loaded = self._signatures()
        self._context = build_context(pair, context_class)
        self._reported: tuple[_FileSignature, _FileSignature] | None = None
        self.reloads = 0

    def _signatures(self) -> tuple[_FileSignature, _FileSignature]:
        return (_signature(self._pair.cert_file), _signature(self._pair.key_file))

    def current(self) -> ssl.SSLContext:
        signatures = self._signatures()
        if signatures == self._loaded:
            return self._context
        with self._lock:
            if signatures == self._loaded:
                return self._context
            try:
                context = build_context(self._pair, self._context_class)
            except (OSError, ssl.SSLError) as error:
                if signatures != self._reported:
                    self._reported = signatures
                    log.warning(
                        "TLS files changed but cannot be loaded (%s): %s; still serving the previous certificate",
                        self._pair.describe(),
                        getattr(error, "reason", None) or error,
                    )
                return self._context
            # Signatures taken before loading: a change during the load is seen next time.
            self._context, self._loaded = context, signatures
            self.reloads += 1
            log.info("TLS certificate reloaded from %s", self._pair.cert_file)
            return context
