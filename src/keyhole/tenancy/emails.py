"""User email addresses: one spelling per address (trimmed, lower-case) and a plausible shape.

Keyhole sends no mail, so an address is only a user's name within its organization: the shape
check refuses what cannot be an address (and what would be hard to read in a listing or a log)
without trying to decide deliverability.
"""

from __future__ import annotations

import unicodedata

from keyhole.errors import Unprocessable

MAX_EMAIL = 320


def normalised_email(raw: str) -> str:
    """``raw`` trimmed and lower-cased, or 422 ``invalid_email`` when it cannot be an address."""
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or not domain
        or "@" in domain
        or len(email) > MAX_EMAIL
        or any(_invisible(character) for character in email)
    ):
        raise Unprocessable(
            "email must look like name@example.com: one '@' between a name and a domain, no spaces "
            f"or control characters, at most {MAX_EMAIL} characters",
            key="invalid_email",
            metadata={"field": "email"},
        )
    return email


def _invisible(character: str) -> bool:
    # Control, format (zero-width, bidi overrides), surrogate, private-use and unassigned
    # characters, and every kind of space or line separator.
    return unicodedata.category(character)[0] in ("C", "Z")
