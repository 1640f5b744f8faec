"""A stored secret is bound to the target it was saved with.

Each connection type names its target fields in its data file (``target_fields``): the base URL, the
OAuth endpoints, a database's host, port, database, user and TLS mode. Anyone who may update or test
a connection may also change those fields, but then every stored secret must be sent again. A secret
kept from storage (a ``"[REDACTED]"`` placeholder, an omitted field, a ``connection_id`` to borrow
from, an auth config's shared credential) never travels to a target it was not saved with.

This module is the one place that rule lives; every entry point of both dialects calls it before
anything is sent anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import orjson
import yarl

from keyhole.connections.catalog import ConnectionType
from keyhole.connections.secrets import parse_pointer
from keyhole.errors import Unprocessable
from keyhole.vault.scrub import REDACTED

__all__ = [
    "SHARED_TARGET_KEYS",
    "binding_digest",
    "check_shared_target",
    "kept_secrets",
    "require_secrets_for_new_target",
    "secret_required",
    "target_identity",
]

# Keys of a Composio ``val`` / auth-config ``credentials`` that name where a credential goes.
SHARED_TARGET_KEYS = ("base_url", "token_url", "authorization_url")
_OAUTH_CLIENT_SECRET = "client_secret"  # noqa: S105 (a key name)
_OAUTH_ENDPOINTS = ("token_url", "authorization_url")
_HOST_FIELDS = frozenset({"hostname", "host"})
_MISSING = object()


def _value(configuration: Mapping[str, Any], pointer: str) -> Any:
    node: Any = configuration
    for token in parse_pointer(pointer):
        if not isinstance(node, Mapping) or token not in node:
            return _MISSING
        node = node[token]
    return node


def _normal_url(value: str) -> str:
    """One spelling per target: scheme and host folded, default port explicit, no trailing slash.

    Anything the parser cannot read is compared as written, which can only make two targets differ.
    """
    try:
        url = yarl.URL(value)
        host = (url.raw_host or "").rstrip(".").lower()
        port = url.port
    except ValueError:
        return value
    if not url.scheme or not host:
        return value
    userinfo = f"{url.raw_user or ''}:{url.raw_password or ''}@" if url.raw_user or url.raw_password else ""
    query = f"?{url.raw_query_string}" if url.raw_query_string else ""
    return f"{url.scheme.lower()}://{userinfo}{host}:{port}{url.raw_path.rstrip('/')}{query}"


def _normal(pointer: str, value: Any) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        if "://" in value:
            return _normal_url(value)
        if parse_pointer(pointer)[-1] in _HOST_FIELDS:
            return value.strip("[]").rstrip(".").lower()
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def target_identity(
    connection_type: ConnectionType, configuration: Mapping[str, Any]
) -> tuple[tuple[str, str | None], ...]:
    """``(pointer, normalised value)`` for each of the type's target fields."""
    return tuple(
        (pointer, _normal(pointer, _value(configuration, pointer)))
        for pointer in connection_type.target_fields
    )


def binding_digest(connection_type: ConnectionType, configuration: Mapping[str, Any]) -> str:
    """A short fingerprint of the target, stored beside credentials that are not configuration
    (OAuth tokens) so that they are never used once the target has changed."""
    identity = orjson.dumps([connection_type.id, *target_identity(connection_type, configuration)])
    return hashlib.sha256(identity).hexdigest()[:32]


def kept_secrets(
    sent: Mapping[str, Any] | None, stored_secrets: Iterable[str], *, merged_over_stored: bool
) -> list[str]:
    """The pointers of stored secrets that would still be used after ``sent`` is applied.

    A placeholder keeps the stored value. With ``merged_over_stored`` (test and parameter-value calls
    lay the caller's top-level members over the stored configuration) a secret under a top-level
    member the caller did not send is kept too.
    """
    sent = sent or {}
    kept = []
    for pointer in stored_secrets:
        if _value(sent, pointer) == REDACTED or (
            merged_over_stored and parse_pointer(pointer)[0] not in sent
        ):
            kept.append(pointer)
    return kept


def secret_required(changed: Collection[str], kept: Collection[str]) -> Unprocessable:
    return Unprocessable(
        f"the request changes where the connection's credential goes ({', '.join(changed)}) while keeping "
        f"its stored secret ({', '.join(kept)}). A stored secret is bound to the target it was saved "
        "with: send the secret's value again (not '[REDACTED]') to use it with the new target",
        key="secret_required_for_new_target",
        metadata={"fields": list(changed), "secrets": list(kept)},
    )


def require_secrets_for_new_target(
    connection_type: ConnectionType,
    stored_configuration: Mapping[str, Any],
    new_configuration: Mapping[str, Any],
    kept: Collection[str],
) -> None:
    """Refuse when ``new_configuration`` names another target and still uses a kept secret."""
    if not kept:
        return
    before = target_identity(connection_type, stored_configuration)
    after = target_identity(connection_type, new_configuration)
    changed = [pointer for (pointer, old), (_, new) in zip(before, after, strict=True) if old != new]
    if changed:
        raise secret_required(changed, kept)


def check_shared_target(
    stored: Mapping[str, Any],
    sent: Mapping[str, Any],
    *,
    public_keys: Collection[str],
    fixed_base_url: bool,
    require_named: bool,
    used: Collection[str] | None = None,
) -> None:
    """The same rule for credentials kept in an auth config and applied to the accounts made from it.

    ``stored`` are the auth config's decrypted credentials, ``sent`` what the caller adds or changes
    (an account's ``val``, or an auth-config update). A stored ``client_secret`` goes only to the
    stored OAuth endpoints; any other stored secret (a shared API key) only to the stored
    ``base_url`` (or the toolkit's fixed one). With ``require_named``, a kept secret whose endpoint
    the auth config does not name is refused too, since the caller would be the one naming it.
    ``used`` limits the check to the stored keys the operation applies (None: any of them).
    """
    kept = [
        key
        for key, value in stored.items()
        if key not in public_keys
        and key not in SHARED_TARGET_KEYS
        and (used is None or key in used)
        and value not in (None, "")
        and sent.get(key, REDACTED) == REDACTED
    ]
    if not kept:
        return
    bound: list[str] = []
    if _OAUTH_CLIENT_SECRET in kept:
        bound.extend(_OAUTH_ENDPOINTS)
    if not fixed_base_url and any(key != _OAUTH_CLIENT_SECRET for key in kept):
        bound.append("base_url")
    changed = [
        key
        for key in bound
        if key in sent and (sent[key] is None or _normal_url(str(sent[key])) != _stored_url(stored, key))
    ]
    if require_named:
        required = [key for key in bound if key != "authorization_url"]
        changed.extend(key for key in required if not stored.get(key) and key not in changed)
    if changed:
        raise secret_required(changed, kept)


def _stored_url(stored: Mapping[str, Any], key: str) -> str | None:
    value = stored.get(key)
    return _normal_url(str(value)) if value is not None else None
