"""Port protocol derived from a port name, by Deckhouse's rule, implemented once.

Both ends of a federation must derive the same protocol from the same name, so this follows
Deckhouse's ``updatePortProtocols`` exactly, quirks included: only the part before the first
``-`` is looked at, keywords are tried longest first, and a keyword matches as a *substring*
(``mytls`` → TLS).  Anything else is TCP.
"""

from __future__ import annotations

_KEYWORDS = (
    ("grpc-web", "HTTP2"),  # can never match (the prefix has no "-") but kept for parity
    ("http2", "HTTP2"),
    ("https", "TLS"),
    ("grpc", "HTTP2"),
    ("http", "HTTP"),
    ("tls", "TLS"),
)
PROTOCOLS = ("TCP", "HTTP", "HTTP2", "TLS")


def protocol_for_port_name(name: str) -> str:
    prefix = name.split("-", 1)[0].lower()
    for keyword, protocol in sorted(_KEYWORDS, key=lambda item: -len(item[0])):
        if keyword in prefix:
            return protocol
    return "TCP"
