"""Purpose-bound MAC keys derived from the master keys, for signed capabilities.

Each purpose (download URLs, page tokens, …) names its own HKDF ``info``, so a token of one
kind can never verify as another, and the master keys themselves never leave the vault.
Tokens are signed under the primary key and carry its id, so they keep verifying after a
master-key rotation until the old key is removed.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyhole.vault.keyring import KeyRing


class DerivedKeys:
    def __init__(self, keyring: KeyRing, info: bytes) -> None:
        self._keyring = keyring
        self._info = info
        self._derived: dict[tuple[str, bytes], bytes] = {}

    @property
    def primary_kid(self) -> str:
        return self._keyring.primary.kid

    def key(self, kid: str) -> bytes | None:
        """The derived key for master key ``kid``; None when that key is not configured."""
        master = self._keyring.find(kid)
        if master is None:
            return None
        cache_key = (kid, hashlib.sha256(master.key).digest())
        derived = self._derived.get(cache_key)
        if derived is None:
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self._info).derive(
                master.key
            )
            self._derived[cache_key] = derived
        return derived


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    """The inverse of :func:`b64url`, for its output only: a spelling that differs in the unused
    low bits of the last character decodes to the same bytes, so it is refused (``ValueError``)
    rather than accepted as a second valid form of one signed token."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(raw) != text:
        raise ValueError("not the canonical base64url form")
    return raw
