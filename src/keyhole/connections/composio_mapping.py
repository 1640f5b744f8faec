"""Composio auth schemes onto the connection-type catalog, in one place.

A Composio *toolkit* is a catalog HTTP type (same slug); a *connected account* is a connection. The
account's ``authScheme`` + ``val`` become the type's configuration here, and a configuration is
shown back as ``val`` here, so both dialects share one vault.

| scheme | generic ``api`` type | a preset (github, stripe, …) |
| --- | --- | --- |
| ``BEARER_TOKEN`` (``token``) | ``auth: bearer`` | the preset's secret field |
| ``OAUTH2``, ``DCR_OAUTH``, ``S2S_OAUTH2`` (``access_token``) | ``auth: bearer`` | the secret field |
| ``API_KEY`` | see :func:`_api_key_auth` | the secret field (``api_key``, ``generic_api_key`` or |
|  |  | ``bearer_token``, first present) |
| ``BASIC`` (``username``, ``password``) | ``auth: basic`` | refused |
| ``NO_AUTH`` | ``auth: none`` | refused |

The ``api`` type needs ``val.base_url`` (the connection's ``url``); a preset's base URL is fixed and a
different ``val.base_url`` is refused. Every other scheme is refused with a 400 naming the supported ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from keyhole.connections.catalog import Catalog, ConnectionType
from keyhole.connections.target import HttpTarget, build_http_target
from keyhole.errors import InvalidRequest, NotFound
from keyhole.vault.scrub import REDACTED

GENERIC_TYPE = "api"
INLINE_CONNECTION_ID = "inline"
DEFAULT_API_KEY_HEADER = "X-API-Key"

AuthScheme = Literal[
    "OAUTH2",
    "OAUTH1",
    "API_KEY",
    "BASIC",
    "BILLCOM_AUTH",
    "BEARER_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT",
    "NO_AUTH",
    "BASIC_WITH_JWT",
    "CALCOM_AUTH",
    "SERVICE_ACCOUNT",
    "SAML",
    "DCR_OAUTH",
    "S2S_OAUTH2",
]
OAUTH_LIKE = ("OAUTH2", "DCR_OAUTH", "S2S_OAUTH2")
GENERIC_SCHEMES = ("API_KEY", "BEARER_TOKEN", "BASIC", "NO_AUTH", *OAUTH_LIKE)
PRESET_SCHEMES = ("API_KEY", "BEARER_TOKEN", *OAUTH_LIKE)
_API_KEY_FIELDS = ("api_key", "generic_api_key", "bearer_token", "basic_encoded")
# Every ``val`` key whose value becomes a credential of the account's configuration.
CREDENTIAL_KEYS = frozenset({"token", "access_token", "password", *_API_KEY_FIELDS})
# Keyhole extensions of an API_KEY ``val`` on the generic type: where the key goes.
API_KEY_HEADER_FIELD = "api_key_header"
API_KEY_QUERY_FIELD = "api_key_query"


def _invalid(message: str, field: str) -> InvalidRequest:
    return InvalidRequest(message, key="invalid_connection_data", metadata={"field": field})


def is_toolkit(connection_type: ConnectionType) -> bool:
    """HTTP types are toolkits; database types are served by the query runner only."""
    return connection_type.http is not None


def find_toolkits(
    catalog: Catalog, *, search: str = "", custom_only: bool = False, alphabetical: bool = False
) -> list[ConnectionType]:
    """The toolkits whose slug or name contains ``search`` (any case): the generic type first,
    then by slug, unless ``alphabetical``. Every toolkit is the catalog's, none custom."""
    if custom_only:
        return []
    needle = search.lower()
    found = [
        t for t in catalog.all() if is_toolkit(t) and (needle in t.id.lower() or needle in t.name.lower())
    ]
    if not alphabetical:
        found.sort(key=lambda t: (t.id != GENERIC_TYPE, t.id))
    return found


def toolkit(catalog: Catalog, slug: str) -> ConnectionType:
    if slug not in catalog or not is_toolkit(connection_type := catalog.get(slug)):
        raise NotFound(f"toolkit {slug[:64]!r} not found", key="Toolkit_NotFound")
    return connection_type


def supported_schemes(connection_type: ConnectionType) -> tuple[str, ...]:
    if connection_type.id == GENERIC_TYPE:
        return GENERIC_SCHEMES
    return PRESET_SCHEMES if _preset_field(connection_type) is not None else ()


def fixed_base_url(connection_type: ConnectionType) -> str | None:
    return connection_type.http.base_url if connection_type.http is not None else None


def _preset_field(connection_type: ConnectionType) -> str | None:
    """The one top-level secret field of a preset (``token``, ``api_key``…), if it has exactly one."""
    if len(connection_type.secret_fields) != 1:
        return None
    pointer = connection_type.secret_fields[0]
    name = pointer[1:]
    return name if pointer.startswith("/") and name and "/" not in name else None


def check_scheme(connection_type: ConnectionType, scheme: str) -> None:
    supported = supported_schemes(connection_type)
    if scheme not in supported:
        raise InvalidRequest(
            f"auth scheme {scheme[:32]} is not supported for toolkit {connection_type.id}; use one of "
            f"{', '.join(supported) or 'none (this toolkit has no proxy credential)'}",
            key="unsupported_auth_scheme",
            metadata={"field": "authScheme"},
        )


def _string(val: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = val.get(name)
    if value is None:
        if required:
            raise _invalid(f"val.{name} is required for this auth scheme", f"val.{name}")
        return None
    if not isinstance(value, str) or (required and not value):
        raise _invalid(f"val.{name} must be a non-empty string", f"val.{name}")
    return value


def _credential(scheme: str, val: Mapping[str, Any]) -> str:
    if scheme == "BEARER_TOKEN":
        return _string(val, "token", required=True) or ""
    if scheme in OAUTH_LIKE:
        return _string(val, "access_token", required=True) or ""
    for name in _API_KEY_FIELDS[:3]:
        value = _string(val, name, required=False)
        if value:
            return value
    raise _invalid("val.api_key (or generic_api_key, bearer_token) is required for API_KEY", "val.api_key")


def _api_key_auth(val: Mapping[str, Any]) -> dict[str, Any]:
    """API_KEY on the generic type. ``bearer_token`` → ``Authorization: Bearer``; ``basic_encoded`` →
    ``Authorization: Basic <value>``; ``api_key``/``generic_api_key`` → the header named by
    ``val.api_key_header`` (default ``X-API-Key``), or the query parameter ``val.api_key_query``."""
    bearer = _string(val, "bearer_token", required=False)
    if bearer:
        return {"type": "bearer", "token": bearer}
    encoded = _string(val, "basic_encoded", required=False)
    if encoded:
        return {"type": "header", "name": "Authorization", "value": f"Basic {encoded}"}
    key = _string(val, "api_key", required=False) or _string(val, "generic_api_key", required=False)
    if not key:
        raise _invalid(
            "val.api_key (or generic_api_key, bearer_token, basic_encoded) is required for API_KEY",
            "val.api_key",
        )
    query = _string(val, API_KEY_QUERY_FIELD, required=False)
    if query:
        return {"type": "query", "name": query, "value": key}
    header = _string(val, API_KEY_HEADER_FIELD, required=False) or DEFAULT_API_KEY_HEADER
    return {"type": "header", "name": header, "value": key}


def _generic_auth(scheme: str, val: Mapping[str, Any]) -> dict[str, Any]:
    if scheme == "NO_AUTH":
        return {"type": "none"}
    if scheme == "BASIC":
        username = _string(val, "username", required=True) or ""
        return {
            "type": "basic",
            "username": username,
            "password": _string(val, "password", required=False) or "",
        }
    if scheme == "API_KEY":
        return _api_key_auth(val)
    return {"type": "bearer", "token": _credential(scheme, val)}


def configuration_for(
    connection_type: ConnectionType,
    scheme: str,
    val: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The catalog configuration for ``scheme`` + ``val`` (unvalidated: the catalog checks it).

    ``existing`` keeps what Composio cannot express (extra headers, query, proxy limits) on update.
    """
    check_scheme(connection_type, scheme)
    configuration: dict[str, Any] = dict(existing or {})
    base_url = _string(val, "base_url", required=False)
    if connection_type.id == GENERIC_TYPE:
        if base_url is None and "url" not in configuration:
            raise _invalid(
                "val.base_url is required for the api toolkit (the API's root URL)", "val.base_url"
            )
        if base_url is not None:
            configuration["url"] = base_url
        configuration["auth"] = _generic_auth(scheme, val)
        return configuration
    fixed = fixed_base_url(connection_type)
    if base_url is not None and base_url.rstrip("/") != (fixed or "").rstrip("/"):
        raise _invalid(
            f"toolkit {connection_type.id} always calls {fixed}; use the api toolkit for another base URL",
            "val.base_url",
        )
    field = _preset_field(connection_type)
    assert field is not None  # check_scheme refused presets without one
    configuration[field] = _credential(scheme, val)
    return configuration


def default_scheme(connection_type: ConnectionType, configuration: Mapping[str, Any]) -> str:
    """The scheme a connection created through the Polytomic dialect is shown with."""
    if connection_type.id == GENERIC_TYPE:
        auth = configuration.get("auth")
        kind = auth.get("type") if isinstance(auth, Mapping) else "none"
        return {
            "bearer": "BEARER_TOKEN",
            "basic": "BASIC",
            "header": "API_KEY",
            "query": "API_KEY",
            "oauth2": "OAUTH2",
        }.get(str(kind), "NO_AUTH")
    field = _preset_field(connection_type) or ""
    if "api_key" in field:
        return "API_KEY"
    return "OAUTH2" if field == "access_token" else "BEARER_TOKEN"


def account_val(
    connection_type: ConnectionType, scheme: str, configuration: Mapping[str, Any]
) -> dict[str, Any]:
    """``val`` for a configuration: redacted in, redacted out; decrypted in, decrypted out."""
    val: dict[str, Any] = {}
    if connection_type.id == GENERIC_TYPE:
        if isinstance(configuration.get("url"), str):
            val["base_url"] = configuration["url"]
        auth = configuration.get("auth")
        auth = auth if isinstance(auth, Mapping) else {}
        match auth.get("type"):
            case "bearer":
                name = "access_token" if scheme in OAUTH_LIKE else "token"
                val["bearer_token" if scheme == "API_KEY" else name] = auth.get("token", REDACTED)
            case "basic":
                val["username"] = auth.get("username", "")
                val["password"] = auth.get("password", REDACTED)
            case "header":
                val["api_key"] = auth.get("value", REDACTED)
                val[API_KEY_HEADER_FIELD] = auth.get("name", DEFAULT_API_KEY_HEADER)
            case "query":
                val["api_key"] = auth.get("value", REDACTED)
                val[API_KEY_QUERY_FIELD] = auth.get("name", "")
            case "oauth2":  # tokens live in keyhole.oauth, never in the configuration
                val["client_id"] = auth.get("client_id", "")
                val["access_token"] = REDACTED
        return val
    base = fixed_base_url(connection_type)
    if base:
        val["base_url"] = base
    field = _preset_field(connection_type)
    if field is not None and field in configuration:
        name = {"BEARER_TOKEN": "token", "API_KEY": "api_key"}.get(scheme, "access_token")
        val[name] = configuration[field]
    return val


def inline_target(
    connection_type: ConnectionType, organization_id: str, scheme: str, val: Mapping[str, Any]
) -> HttpTarget:
    """An ephemeral target for inline credentials: validated like a stored one, never stored.

    Audited under the synthetic connection id ``inline``."""
    if not is_toolkit(connection_type):
        raise _invalid(f"toolkit {connection_type.id} is not an HTTP toolkit", "toolkitSlug")
    configuration = connection_type.validate(configuration_for(connection_type, scheme, val))
    return build_http_target(
        connection_id=INLINE_CONNECTION_ID,
        organization_id=organization_id,
        proxy_enabled=True,
        connection_type=connection_type,
        configuration=configuration,
    )
