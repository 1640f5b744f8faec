"""Secret handling for connection configurations, addressed by JSON pointer (RFC 6901).

A connection type lists the pointers of its secret values (``secret_fields``). These pure functions
split a configuration into a public part (stored in clear) and the secrets (stored in the vault),
join them back, show the public part with placeholders, and resolve placeholders sent back on update.

Pointers address members of JSON objects only; a pointer whose path is missing, or crosses a value
that is not an object, simply does not match (e.g. ``/auth/token`` when ``auth`` is ``{"type": "none"}``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from keyhole.errors import Unprocessable
from keyhole.vault.scrub import REDACTED

__all__ = [
    "format_pointer",
    "join_secrets",
    "keep_redacted",
    "keep_unchanged",
    "parse_pointer",
    "redact",
    "split_secrets",
]

PLACEHOLDER_MESSAGE = f"'{REDACTED}' is a placeholder; send the secret"

_MISSING = object()
_BAD_ESCAPE = re.compile(r"~(?![01])")


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """Split an RFC 6901 pointer into unescaped reference tokens.

    Only pointers to a member (non-empty, starting with ``/``) are accepted: a secret is never the
    whole document. Raises ``ValueError`` on a malformed pointer.
    """
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise ValueError(f"invalid JSON pointer {pointer!r}: must start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        # Every '~' must start one of the two escapes '~0' or '~1'.
        if _BAD_ESCAPE.search(raw):
            raise ValueError(f"invalid JSON pointer {pointer!r}: '~' must be followed by 0 or 1")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def format_pointer(tokens: Sequence[str | int]) -> str:
    """Build an RFC 6901 pointer from reference tokens (``()`` gives ``""``, the whole document)."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def _get(document: Any, tokens: tuple[str, ...]) -> Any:
    node = document
    for token in tokens:
        if not isinstance(node, Mapping) or token not in node:
            return _MISSING
        node = node[token]
    return node


def _parent(document: dict[str, Any], tokens: tuple[str, ...], *, create: bool) -> dict[str, Any] | None:
    """The object holding the member ``tokens[-1]``; with ``create``, missing objects are added."""
    node = document
    for index, token in enumerate(tokens[:-1]):
        child = node.get(token, _MISSING)
        if child is _MISSING and create:
            child = node[token] = {}
        if not isinstance(child, dict):
            if create:
                raise ValueError(
                    f"cannot place a value at {format_pointer(tokens)}: "
                    f"{format_pointer(tokens[: index + 1])} is not an object"
                )
            return None
        node = child
    return node


def _place(document: dict[str, Any], pointer: str, value: Any) -> None:
    tokens = parse_pointer(pointer)
    parent = _parent(document, tokens, create=True)
    assert parent is not None
    parent[tokens[-1]] = copy.deepcopy(value)


def split_secrets(
    configuration: Mapping[str, Any], pointers: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(public, secrets)``.

    ``public`` is a deep copy of ``configuration`` with every present secret value removed;
    ``secrets`` maps each pointer that was present to its value. Absent pointers are skipped.
    """
    public: dict[str, Any] = copy.deepcopy(dict(configuration))
    secrets: dict[str, Any] = {}
    for pointer in dict.fromkeys(pointers):
        tokens = parse_pointer(pointer)
        parent = _parent(public, tokens, create=False)
        if parent is not None and tokens[-1] in parent:
            secrets[pointer] = parent.pop(tokens[-1])
    return public, secrets


def join_secrets(public: Mapping[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`split_secrets`: a deep copy of ``public`` with each secret put back.

    Missing intermediate objects are created; a non-object in the way raises ``ValueError``.
    """
    configuration: dict[str, Any] = copy.deepcopy(dict(public))
    for pointer, value in secrets.items():
        _place(configuration, pointer, value)
    return configuration


def redact(public: Mapping[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``public`` with :data:`REDACTED` at the pointer of every stored secret."""
    shown: dict[str, Any] = copy.deepcopy(dict(public))
    for pointer in secrets:
        _place(shown, pointer, REDACTED)
    return shown


def keep_redacted(
    new_configuration: Mapping[str, Any], stored_secrets: Mapping[str, Any], pointers: Sequence[str]
) -> dict[str, Any]:
    """Resolve placeholders in an update.

    Wherever ``new_configuration`` holds exactly :data:`REDACTED` at one of the secret ``pointers``,
    the stored secret is put back. A placeholder with no stored secret at that pointer raises
    ``Unprocessable`` (key ``invalid_configuration``) listing every such pointer.
    """
    configuration: dict[str, Any] = copy.deepcopy(dict(new_configuration))
    errors: list[dict[str, str]] = []
    for pointer in dict.fromkeys(pointers):
        tokens = parse_pointer(pointer)
        value = _get(configuration, tokens)
        if not isinstance(value, str) or value != REDACTED:
            continue
        if pointer in stored_secrets:
            _place(configuration, pointer, stored_secrets[pointer])
        else:
            errors.append({"field": pointer, "message": PLACEHOLDER_MESSAGE})
    if errors:
        raise Unprocessable(
            f"configuration is invalid: {errors[0]['field']} {PLACEHOLDER_MESSAGE}",
            key="invalid_configuration",
            metadata={"errors": errors},
        )
    return configuration


def keep_unchanged(
    configuration: Mapping[str, Any], stored_secrets: Mapping[str, Any], pointers: Sequence[str]
) -> dict[str, Any]:
    """A deep copy of ``configuration`` with :data:`REDACTED` at each of ``pointers`` it leaves out
    whose secret is stored and whose parent object it holds.

    A write-only form field left blank means "unchanged": it then keeps its stored secret exactly as
    a placeholder sent back does (:func:`keep_redacted`), bound to its target alike
    (``connections.binding``). A pointer with no stored secret stays absent.
    """
    marked: dict[str, Any] = copy.deepcopy(dict(configuration))
    for pointer in dict.fromkeys(pointers):
        if pointer not in stored_secrets:
            continue
        tokens = parse_pointer(pointer)
        parent = _parent(marked, tokens, create=False)
        if parent is not None and tokens[-1] not in parent:
            parent[tokens[-1]] = REDACTED
    return marked
