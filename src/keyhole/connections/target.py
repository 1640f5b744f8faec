"""What the proxy needs to call a connection's HTTP API: base URL, locked credential, limits.

Built once from the decrypted configuration and cached briefly by the connection service,
so the proxy hot path does no database or crypto work.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yarl

from keyhole.connections.binding import binding_digest
from keyhole.connections.catalog import ConnectionType, HttpSpec
from keyhole.connections.secrets import split_secrets
from keyhole.errors import InvalidRequest
from keyhole.http_names import header_name_key, is_blocked_header, query_name_key
from keyhole.vault.scrub import Scrubber

DEFAULT_LIMITS: dict[str, Any] = {
    "rate_limit_per_minute": 600,
    "timeout_ms": 30_000,
    "max_request_body_bytes": 262_144,
    "max_response_body_bytes": 1_048_576,
    "scrub_echoed_secrets": True,
    "max_async_body_bytes": 1_073_741_824,  # async proxy bodies stream to the blob store
}


@dataclass(frozen=True, slots=True)
class ProxyLimits:
    rate_limit_per_minute: int | None  # None: no limit
    timeout_ms: int
    max_request_body_bytes: int
    max_response_body_bytes: int
    scrub_echoed_secrets: bool
    max_async_body_bytes: int = 1_073_741_824


@dataclass(frozen=True, slots=True)
class HttpTarget:
    connection_id: str
    organization_id: str
    type_id: str
    proxy_enabled: bool
    base_url: yarl.URL
    inherited_headers: Mapping[str, str]
    inherited_query: tuple[tuple[str, str], ...]
    # Injected last; callers may never set these names. Kept out of repr: they hold the secret.
    credential_headers: Mapping[str, str] = field(repr=False)
    credential_query: Mapping[str, str] = field(repr=False)
    auth_type: str
    scrubber: Scrubber  # every injected secret in every echo form (computed once, per target)
    limits: ProxyLimits
    binding: str  # the target's fingerprint (connections.binding): OAuth tokens are bound to it
    version: int  # the connection row's ``version`` this target was read at (0: not a stored row)
    # A shared copy's target is its parent's (configuration, credential, limits, version) under
    # the copy's own id and organization; these name the parent, whose credential it is.
    parent_connection_id: str | None = None
    parent_organization_id: str | None = None
    # Each credential name's key (``header_name_key``/``query_name_key``) → the name,
    # derived once here so the proxy hot path only looks caller names up.
    locked_header_keys: Mapping[str, str] = field(init=False, repr=False, compare=False)
    locked_query_keys: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = {header_name_key(name): name for name in self.credential_headers}
        object.__setattr__(self, "locked_header_keys", headers)
        query = {query_name_key(name): name for name in self.credential_query}
        object.__setattr__(self, "locked_query_keys", query)

    @property
    def credential_connection_id(self) -> str:
        """The connection the credential belongs to: OAuth tokens and the rate limit are its."""
        return self.parent_connection_id or self.connection_id

    @property
    def credential_organization_id(self) -> str:
        return self.parent_organization_id or self.organization_id

    def url_for(self, path: str, encoded_query: str = "", origin: yarl.URL | None = None) -> yarl.URL:
        """Append an already-validated relative path, keeping the caller's percent-encoding.

        ``origin`` (an absolute endpoint's scheme://host:port) replaces the whole base URL: the
        endpoint's ``path`` is then complete, and ``keyhole.proxy.origin.check_origin`` has already
        found it under the base URL's path."""
        base = str(origin if origin is not None else self.base_url).rstrip("/")
        target = base + path if path else base + "/"
        return yarl.URL(f"{target}?{encoded_query}" if encoded_query else target, encoded=True)


def _resolve(template: Any, configuration: Mapping[str, Any]) -> Any:
    """Replace ``{"$field": "/pointer"}`` references with configuration values."""
    if isinstance(template, dict):
        if set(template) == {"$field"}:
            node: Any = configuration
            for part in str(template["$field"]).lstrip("/").split("/"):
                node = (
                    node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
                )
            return node
        return {key: _resolve(value, configuration) for key, value in template.items()}
    return template


def _auth(spec: HttpSpec, configuration: Mapping[str, Any]) -> dict[str, Any]:
    if spec.auth_field is not None:
        auth = _resolve({"$field": spec.auth_field}, configuration)
    else:
        auth = _resolve(spec.auth, configuration) if spec.auth is not None else None
    return dict(auth) if isinstance(auth, dict) else {"type": "none"}


def _secret_values(connection_type: ConnectionType, configuration: Mapping[str, Any]) -> list[str]:
    stored = split_secrets(configuration, connection_type.secret_fields)[1]
    return [value for value in stored.values() if isinstance(value, str)]


def _base_url(raw: str) -> yarl.URL:
    try:
        url = yarl.URL(raw)
    except ValueError:  # the schema's "uri" check is looser than the URL parser
        url = None
    if url is None or url.scheme not in {"http", "https"} or not url.raw_host:
        problem = "cannot be parsed as an http(s) URL"
    elif url.raw_user is not None or url.raw_password is not None:
        problem = "must not carry a user name or password (put credentials in auth)"
    elif url.raw_query_string or url.raw_fragment:
        problem = "must not carry a query or fragment (use the query setting)"
    else:
        return url
    raise InvalidRequest(
        f"the connection's base URL {problem}; fix the connection's configuration", key="invalid_base_url"
    )


def _inherited_headers(spec: HttpSpec, configured: Mapping[str, str], locked: set[str]) -> dict[str, str]:
    for name in configured:
        if is_blocked_header(name):
            raise InvalidRequest(
                f"header {name} cannot be set on a connection: the proxy contract blocks it",
                key="invalid_configuration",
                metadata={"errors": [{"field": f"/headers/{name}", "message": "blocked header"}]},
            )
    return {
        **spec.headers,
        **{k: v for k, v in configured.items() if header_name_key(k) not in locked},
    }


def build_http_target(
    *,
    connection_id: str,
    organization_id: str,
    proxy_enabled: bool,
    connection_type: ConnectionType,
    configuration: Mapping[str, Any],
    version: int = 0,
    parent_connection_id: str | None = None,
    parent_organization_id: str | None = None,
) -> HttpTarget:
    spec = connection_type.http
    if spec is None:
        raise ValueError(f"connection type {connection_type.id} is not an HTTP type")
    raw_base = spec.base_url or _resolve({"$field": spec.base_url_field or "/url"}, configuration)
    base_url = _base_url(str(raw_base))
    auth = _auth(spec, configuration)
    credential_headers: dict[str, str] = {}
    credential_query: dict[str, str] = {}
    secrets: list[str] = []
    pairs: list[tuple[str, str]] = []  # basic authentication's user and password
    match auth.get("type"):
        case "bearer":
            credential_headers["Authorization"] = f"Bearer {auth['token']}"
            secrets.append(str(auth["token"]))
        case "basic":
            pair = f"{auth['username']}:{auth['password']}"
            encoded = base64.b64encode(pair.encode()).decode()
            credential_headers["Authorization"] = f"Basic {encoded}"
            secrets.append(str(auth["password"]))
            pairs.append((str(auth["username"]), str(auth["password"])))
        case "header":
            name = str(auth["name"])
            if is_blocked_header(name):
                raise InvalidRequest(
                    f"the credential cannot be sent as header {name}: the proxy contract blocks it",
                    key="invalid_configuration",
                    metadata={"errors": [{"field": "/auth/name", "message": "blocked header"}]},
                )
            credential_headers[name] = str(auth["value"])
            secrets.append(str(auth["value"]))
            scheme, _, token = str(auth["value"]).partition(" ")
            if token and scheme.isalpha():  # "Basic xyz", "Token xyz": the part after the scheme too
                secrets.append(token.strip())
        case "query":
            credential_query[str(auth["name"])] = str(auth["value"])
            secrets.append(str(auth["value"]))
        case "oauth2":
            # Locked now; keyhole.oauth.refresh.with_token puts the current access token in.
            credential_headers["Authorization"] = "Bearer"
    limits = {**DEFAULT_LIMITS, **spec.proxy_defaults, **(configuration.get("proxy") or {})}
    # Configured names an upstream would read as the credential's are not sent either.
    locked = {header_name_key(name) for name in credential_headers}
    inherited_headers = _inherited_headers(spec, configuration.get("headers") or {}, locked)
    locked_query = {query_name_key(name) for name in credential_query}
    inherited_query = tuple(
        (k, str(v))
        for k, v in (configuration.get("query") or {}).items()
        if query_name_key(k) not in locked_query
    )
    return HttpTarget(
        connection_id=connection_id,
        organization_id=organization_id,
        type_id=connection_type.id,
        proxy_enabled=proxy_enabled,
        base_url=base_url,
        inherited_headers=inherited_headers,
        inherited_query=inherited_query,
        credential_headers=credential_headers,
        credential_query=credential_query,
        auth_type=str(auth.get("type", "none")),
        # Every secret field too (an OAuth2 client_secret is never sent, yet must never show).
        scrubber=Scrubber.of([*secrets, *_secret_values(connection_type, configuration)], pairs=pairs),
        limits=ProxyLimits(**{key: limits[key] for key in DEFAULT_LIMITS}),
        binding=binding_digest(connection_type, configuration),
        version=version,
        parent_connection_id=parent_connection_id,
        parent_organization_id=parent_organization_id,
    )


def preview_target(connection_type: ConnectionType, configuration: Mapping[str, Any]) -> HttpTarget:
    """The target a configuration would give, for checks and probes of a connection that is not
    (or not yet) stored under these settings; never cached, never audited under a real id."""
    return build_http_target(
        connection_id="preview",
        organization_id="preview",
        proxy_enabled=True,
        connection_type=connection_type,
        configuration=configuration,
    )
