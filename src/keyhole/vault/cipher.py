"""AES-256-GCM with the key id in every ciphertext and the owning row bound in as associated data.

Ciphertext text form: ``kh1.<kid>.<base64url(nonce || ciphertext+tag)>``. Binding the row
(``table:id:column``) as AAD means a ciphertext copied into another row fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyhole.errors import SecretsUnreadable
from keyhole.vault.keyring import KeyRing

_PREFIX = "kh1"


class VaultError(SecretsUnreadable):
    """A ciphertext that cannot be opened. The message never contains key or plaintext; a
    request that meets one answers 503 with it, never 500."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"a stored secret cannot be opened with this server's master keys ({reason}); every "
            "Keyhole server and worker sharing the store must hold the same KEYHOLE_MASTER_KEYS"
        )


class Vault:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def encrypt(self, plaintext: bytes, aad: str) -> str:
        key = self.keyring.primary
        nonce = os.urandom(12)
        sealed = AESGCM(key.key).encrypt(nonce, plaintext, aad.encode())
        return f"{_PREFIX}.{key.kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, aad: str) -> bytes:
        prefix, kid, body = _split(token)
        if prefix != _PREFIX:
            raise VaultError("unknown ciphertext format")
        key = self.keyring.find(kid)
        if key is None:
            raise VaultError(f"master key {kid!r} is not configured")
        try:
            raw = base64.urlsafe_b64decode(body)
            return AESGCM(key.key).decrypt(raw[:12], raw[12:], aad.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise VaultError(f"ciphertext does not open under master key {kid!r}") from None

    def encrypt_json(self, value: Any, aad: str) -> str:
        return self.encrypt(orjson.dumps(value), aad)

    def decrypt_json(self, token: str, aad: str) -> Any:
        return orjson.loads(self.decrypt(token, aad))

    @staticmethod
    def key_id(token: str) -> str:
        return _split(token)[1]


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".", 2)
    if len(parts) != 3:
        raise VaultError("malformed ciphertext")
    return parts[0], parts[1], parts[2]
