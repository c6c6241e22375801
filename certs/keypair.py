"""The Ed25519 identity keypair's files (``priv.pem``, ``pub.pem``) as Deckhouse's Secret holds them."""

from __future__ import annotations

from federation.keys import Keypair, public_key_pem

PRIVATE_FILE = "priv.pem"
PUBLIC_FILE = "pub.pem"


def files(keypair: Keypair, *, deckhouse_labels: bool) -> dict[str, bytes]:
    """The two PEM files; ``deckhouse_labels`` writes ``ED25519 PRIVATE/PUBLIC KEY`` like Deckhouse."""
    public = public_key_pem(keypair.private_key.public_key(), deckhouse_labels=deckhouse_labels)
    return {
        PRIVATE_FILE: keypair.private_pem(deckhouse_labels=deckhouse_labels).encode("ascii"),
        PUBLIC_FILE: public.encode("ascii"),
    }
