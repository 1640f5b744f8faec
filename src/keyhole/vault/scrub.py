"""The one scrubber of secrets: for proxied answers (whole or streamed), stored errors and logs.

A secret is looked for in every form a server may echo it in (``echo_forms``), case-insensitively
(ASCII case folding of data and forms: ``bytes.lower()`` keeps every offset), and each occurrence
is replaced by ``[REDACTED]``, leftmost first and the longest form at a position.

A body cut at a cap may end inside a secret. Dropping only a trailing *partial secret* would make
the answer's length say whether the bytes before the cut start a secret, which an upstream that
echoes a caller's guess turns into an oracle. So a cut body always loses the same ``tail``: the
longest form's length - 1, rounded up to ``TAIL_STEP`` bytes, whatever those bytes are. A form
that starts before the tail ends inside the body (it is at most ``tail + 1`` long), so it is seen
whole and replaced; anything that starts in the tail is withheld. The amount withheld depends on
the target's forms, never on the body; the rounding keeps it from telling a secret's exact length.

Matching at a position needs at most ``tail`` bytes of look-ahead, so the streaming scrubber, which
holds ``tail`` bytes back between chunks, gives exactly the bytes of the in-memory one however the
body is chunked.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"
TAIL_STEP = 64

_MARK = REDACTED.encode()
_DSN_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@")


def echo_forms(secrets: Iterable[str], *, pairs: Iterable[tuple[str, str]] = ()) -> tuple[str, ...]:
    """Each secret as a server may print it: raw, JSON-escaped (ASCII-only and not, and with '/'
    escaped as PHP does), URL-encoded (``quote`` and ``quote_plus``, with and without ``/`` kept,
    and ``quote_plus`` keeping ``+``),
    base64 (standard and URL-safe, padded or not), and for each ``(user, password)`` of basic
    authentication the base64 of ``user:password``. Longest first.

    Not the base64 of a secret at the other two byte offsets inside a longer blob: each form is one
    more pass over every answer (measured: about a microsecond per KiB), so those two would cost
    the proxy's hot path more than they are likely to catch."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        escaped = json.dumps(secret)[1:-1]
        forms.update(
            (
                secret,
                escaped,
                escaped.replace("/", "\\/"),  # PHP's json_encode escapes '/' too
                _html_safe_json(escaped),  # Go's encoding/json escapes & < > (and ' in some encoders)
                html.escape(secret),  # HTML and XML bodies: &amp; &lt; &gt; &quot; &#x27;
                html.escape(secret).replace("&#x27;", "&#39;").replace("&amp;", "&#38;"),
                json.dumps(secret, ensure_ascii=False)[1:-1],
                quote(secret, safe=""),
                quote(secret, safe="/"),
                quote_plus(secret),
                quote_plus(secret, safe="/"),
                # A URL rebuilt from its decoded query, '+' left as is (Werkzeug 2's request.url).
                quote_plus(secret, safe="+"),
                quote_plus(secret, safe="/+"),
            )
        )
        forms.update(_base64(_encode(secret)))
    for user, password in pairs:
        forms.update(_base64(_encode(f"{user}:{password}")))
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


_HTML_SAFE_JSON = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e", "'": "\\u0027"}


def _html_safe_json(escaped: str) -> str:
    return "".join(_HTML_SAFE_JSON.get(char, char) for char in escaped)


def _encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _base64(raw: bytes) -> tuple[str, ...]:
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")


class Scrubber:
    """A set of echo forms, ready to be found case-insensitively; immutable, built once per target
    (or database connection) and shared by every call."""

    __slots__ = ("_lowered", "_probes", "forms", "tail")

    def __init__(self, forms: Iterable[str] = ()) -> None:
        self.forms: tuple[str, ...] = tuple(
            sorted({form for form in forms if form}, key=lambda form: (-len(form), form))
        )
        lowered = {_encode(form).lower() for form in self.forms}
        self._lowered: tuple[bytes, ...] = tuple(sorted(lowered, key=lambda form: (-len(form), form)))
        # Every form contains one of these (a padded base64 form contains the unpadded one, …), so
        # when none occurs, no form does: the common case searches for these only.
        self._probes = tuple(
            form for form in self._lowered if not any(other in form for other in lowered if other != form)
        )
        longest = len(self._lowered[0]) if self._lowered else 0
        self.tail: int = -(-(longest - 1) // TAIL_STEP) * TAIL_STEP if longest > 1 else 0

    @classmethod
    def of(cls, secrets: Iterable[str], *, pairs: Iterable[tuple[str, str]] = ()) -> Scrubber:
        return cls(echo_forms(secrets, pairs=pairs))

    def with_secrets(self, secrets: Iterable[str]) -> Scrubber:
        """This scrubber with ``secrets`` (in all their forms) added."""
        return Scrubber((*self.forms, *echo_forms(secrets)))

    def __bool__(self) -> bool:
        return bool(self._lowered)

    def __eq__(self, other: object) -> bool:  # targets built from the same secrets are equal
        return isinstance(other, Scrubber) and other.forms == self.forms

    def __repr__(self) -> str:
        return f"Scrubber(<{len(self.forms)} forms>)"  # never the forms themselves

    def scrub(self, data: bytes, *, truncated: bool = False) -> bytes:
        """``data`` with every form replaced; when it was cut at a cap, without its last ``tail``
        bytes (a form starting before them is still replaced whole)."""
        if not self._lowered:
            return data
        limit = len(data) - self.tail if truncated else len(data)
        if limit <= 0:
            return b""
        return self._replace(data, limit)[0]

    def scrub_text(self, value: str) -> str:
        """A complete text (a header, an error message) with every form replaced."""
        if not self._lowered:
            return value
        data = _encode(value)
        scrubbed = self._replace(data, len(data))[0]
        return value if scrubbed is data else scrubbed.decode("utf-8", "surrogatepass")

    def found_in(self, value: str) -> bool:
        """Whether any form occurs in ``value`` (a quick test before scrubbing many small texts)."""
        return any(map(_encode(value).lower().__contains__, self._probes))

    def stream(self) -> StreamScrubber:
        return StreamScrubber(self)

    def _replace(self, data: bytes, limit: int) -> tuple[bytes, int]:
        """Replace every form that starts before ``limit``; returns the output and how much of
        ``data`` it covers: ``limit``, or further when the last form ran past it. ``data`` itself
        comes back when nothing matched and ``limit`` is its end."""
        lowered = data.lower()
        if not any(map(lowered.__contains__, self._probes)):  # the common case: nothing to replace
            return data[:limit], limit
        found = {form: lowered.find(form) for form in self._lowered}
        out: list[bytes] = []
        position = 0
        while True:
            best_at, best = -1, b""
            for form, at in found.items():  # longest first: at equal positions the longer wins
                if 0 <= at < position:
                    at = found[form] = lowered.find(form, position)
                if 0 <= at < limit and (best_at < 0 or at < best_at):
                    best_at, best = at, form
            if best_at < 0:
                break
            out.append(data[position:best_at])
            out.append(_MARK)
            position = best_at + len(best)
        consumed = max(position, limit)
        out.append(data[position:consumed])
        return b"".join(out), consumed


class StreamScrubber:
    """``Scrubber.scrub`` for a body that arrives in chunks, in constant memory: the last ``tail``
    bytes seen are held back, raw, until the next chunk (or the end) decides them. The joined
    output equals ``Scrubber.scrub`` of the joined input, whatever the chunking."""

    __slots__ = ("_carry", "_scrubber")

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        """Scrub ``chunk`` after the held-back bytes; returns the bytes that are now final."""
        scrubber = self._scrubber
        if not scrubber:
            return chunk
        data = self._carry + chunk if self._carry else chunk
        limit = len(data) - scrubber.tail
        if limit <= 0:
            self._carry = data
            return b""
        out, consumed = scrubber._replace(data, limit)
        self._carry = data[consumed:]
        return out

    def finish(self, *, truncated: bool) -> bytes:
        """The held-back bytes, scrubbed; none when the body was cut (they are the withheld tail:
        everything before it was decided by ``feed``)."""
        data, self._carry = self._carry, b""
        if truncated or not data:
            return b""
        return self._scrubber._replace(data, len(data))[0]


NO_SECRETS = Scrubber()

MAX_MESSAGE_LENGTH = 2000
"""The longest error message kept from a database or driver (characters, after scrubbing)."""


def scrub_message(message: str, scrubber: Scrubber = NO_SECRETS, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """An error message fit to store, answer and log: every form replaced, the ``user:password@``
    of any DSN too, then cut to ``limit`` characters (after scrubbing, so no cut splits a secret)."""
    message = _DSN_CREDENTIALS.sub(r"\1[REDACTED]@", scrubber.scrub_text(message))
    return message[:limit]
