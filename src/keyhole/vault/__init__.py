"""Credential vault: authenticated encryption with a key id per ciphertext, rotatable online."""

from keyhole.vault.cipher import Vault, VaultError
from keyhole.vault.keyring import KeyRing, MasterKey

__all__ = ["KeyRing", "MasterKey", "Vault", "VaultError"]
