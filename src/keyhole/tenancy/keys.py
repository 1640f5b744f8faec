"""API key material: random, high-entropy, shown once, stored only as a SHA-256 hash.

A plain digest is enough because keys carry 256 bits of entropy: there is nothing to
brute-force, and a fast hash keeps authentication cheap on the proxy hot path.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

KeyKind = Literal["user", "org", "partner"]
_PREFIXES: dict[KeyKind, str] = {"user": "kh_u_", "org": "kh_o_", "partner": "kh_p_"}
PREFIX_LENGTH = 12  # the part of a key listings show, to tell keys apart


def mint(kind: KeyKind) -> str:
    return _PREFIXES[kind] + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]
