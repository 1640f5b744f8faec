"""Correlation ids for calls and requests: UUID-4 shaped, without a system call.

They link log lines, audit records and error envelopes and grant nothing, so uniqueness is
enough; ``uuid.uuid4`` reads the kernel's random source on every call, which showed up at
~4 % of the proxy's CPU under load. Capabilities (API keys, download and page tokens, OAuth
state) keep using ``secrets``.
"""

from __future__ import annotations

import random
import uuid

_VERSION_4 = 0x4000 << 64
_VARIANT_RFC4122 = 0x8000 << 48
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))


def correlation_id() -> uuid.UUID:
    return uuid.UUID(int=(random.getrandbits(128) & _CLEAR) | _VERSION_4 | _VARIANT_RFC4122)
