"""Polytomic wire shapes: strict input models and output serializers (snake_case CRUD)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema
from typing_extensions import TypeAliasType, TypedDict

from keyhole.connections.catalog import ConnectionType
from keyhole.connections.naming import MAX_NAME_LENGTH, NAME_PATTERN
from keyhole.connections.schemas import ConnectionView, ParameterValues
from keyhole.jobs import JobStatus
from keyhole.proxy.contract import ALLOWED_METHODS, MAX_HEADER_VALUE_LENGTH, MAX_HEADERS, PATH_RULE
from keyhole.timestamps import timestamp

# A job's status as the wire spells it: one of the jobs domain's statuses.
JobStatusValue = Annotated[
    str, WithJsonSchema({"type": "string", "enum": [status.value for status in JobStatus]})
]

# Names are shown in lists and logs, and PostgreSQL text cannot hold NUL: no control characters.
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
_Name = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class CreateConnectionBody(_Strict):
    name: str = _Name
    type: str = Field(min_length=1, max_length=64)
    configuration: dict[str, Any]
    healthcheck_interval: str | None = Field(default=None, max_length=32, pattern=_NO_CONTROL)
    organization_id: str | None = None
    policies: list[str] | None = None
    redirect_url: str | None = Field(default=None, max_length=2048)
    validate_: bool | None = Field(default=None, alias="validate")


class UpdateConnectionBody(_Strict):
    name: str = _Name
    configuration: dict[str, Any]
    type: str | None = Field(default=None, max_length=64)
    healthcheck_interval: str | None = Field(default=None, max_length=32, pattern=_NO_CONTROL)
    organization_id: str | None = None
    policies: list[str] | None = None
    reconnect: bool | None = None
    validate_: bool | None = Field(default=None, alias="validate")


class TestConnectionBody(_Strict):
    type: str = Field(min_length=1, max_length=64)
    configuration: dict[str, Any]
    connection_id: str | None = Field(default=None, max_length=64)


class ParameterValuesBody(_Strict):
    field: str = Field(min_length=1, max_length=128)
    connection_id: str | None = Field(default=None, max_length=64)
    parameters: dict[str, Any] | None = None
    query: str | None = Field(default=None, max_length=256)


class ProxySettingsBody(_Strict):
    enabled: bool


class DeleteConnectionQuery(BaseModel):
    force: bool | None = Field(default=None, description="true/1 or false/0, any case")


# The proxy call body. ``proxy._proxy_call`` parses it by hand on the hot path; these models
# only describe, for the document, exactly what that parser (and the core contract it hands the
# call to) accepts.
_HTTP_METHOD = Literal[ALLOWED_METHODS]  # type: ignore[valid-type]
_PERCENT = r"%[0-9A-Fa-f]{2}"
# ``http_paths.check_path`` decodes a path up to three times: at any of those levels no backslash,
# control character, '//' prefix or '.'/'..' segment (a '%' escaped as %25 up to twice). The
# look-aheads need Python's regular expressions (``regex_engine``), as JSON Schema's ECMA ones have.
_ESCAPE = r"%(?:25){0,2}"
_DOT = rf"(?:\.|{_ESCAPE}2[eE])"
_SLASH = rf"(?:/|{_ESCAPE}2[fF])"
_PROXY_PATH = (
    rf"^(?!.*{_ESCAPE}(?:5[cC]|[01][0-9A-Fa-f]|7[fF]))"
    rf"(?!/{_ESCAPE}2[fF])"
    rf"(?!.*{_SLASH}{_DOT}{{1,2}}(?:{_SLASH}|$))"
    rf"/(?:(?:{_PERCENT}|[^/%\\?#\x00-\x1f\x7f])(?:{_PERCENT}|[^%\\?#\x00-\x1f\x7f])*)?$"
)
_RAW_QUERY = rf"^(?:(?:{_PERCENT}|[^?#% \x00-\x1f\x7f])(?:{_PERCENT}|[^#% \x00-\x1f\x7f])*)?$"
_QueryValue = str | int | float | bool | None
_HeaderValue = Annotated[
    str, Field(max_length=MAX_HEADER_VALUE_LENGTH, pattern=r"^[^\x00-\x08\x0a-\x1f\x7f]*$")
]
_Headers = Annotated[
    dict[str, _HeaderValue] | None,
    Field(
        json_schema_extra={
            "maxProperties": MAX_HEADERS,
            "propertyNames": {"pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$"},
        }
    ),
]
_PATH_DESCRIPTION = PATH_RULE.capitalize()
# ``query`` and ``rawQuery`` exclude each other (a null one counts as absent).
_ONE_QUERY_FORM: dict[str, Any] = {
    "not": {
        "required": ["query", "rawQuery"],
        "properties": {"query": {"type": "object"}, "rawQuery": {"type": "string"}},
    }
}


class ProxyRequest(_Strict):
    """The upstream request: `method` in any case; headers the connection locks or the contract
    blocks are refused (see proxy info)."""

    model_config = ConfigDict(json_schema_extra=_ONE_QUERY_FORM, regex_engine="python-re")

    method: _HTTP_METHOD
    path: str = Field(max_length=8192, pattern=_PROXY_PATH, description=_PATH_DESCRIPTION)
    api: None = Field(default=None, description="Polytomic's API selector: a connection has one API")
    headers: _Headers = None
    query: dict[str, _QueryValue | list[_QueryValue]] | None = Field(
        default=None, description="Parameters by name; arrays repeat the name, nulls are left out"
    )
    raw_query: str | None = Field(
        default=None,
        alias="rawQuery",
        pattern=_RAW_QUERY,
        description="Appended unchanged after the inherited query (no leading '?')",
    )
    body: dict[str, Any] | list[Any] | str | None = Field(
        default=None, description="Objects and arrays are sent as JSON, strings as text, null as no body"
    )


class AsyncProxyRequest(_Strict):
    """An asynchronous call: a GET without a body."""

    model_config = ConfigDict(json_schema_extra=_ONE_QUERY_FORM, regex_engine="python-re")

    method: Literal["GET"]
    path: str = Field(max_length=8192, pattern=_PROXY_PATH, description=_PATH_DESCRIPTION)
    api: None = None
    headers: _Headers = None
    query: dict[str, _QueryValue | list[_QueryValue]] | None = None
    raw_query: str | None = Field(default=None, alias="rawQuery", pattern=_RAW_QUERY)
    body: None = None


class SyncProxyCall(_Strict):
    request: ProxyRequest
    async_: Literal[False] | None = Field(default=None, alias="async")


class AsyncProxyCall(_Strict):
    request: AsyncProxyRequest
    async_: Literal[True] = Field(alias="async", description="Run the call as a job")


class ProxyCallBody(RootModel[SyncProxyCall | AsyncProxyCall]):
    """A proxy call: answered with the upstream's answer, or (`async: true`) as a job."""


# -- answers -------------------------------------------------------------------------------------

JsonSchema = TypeAliasType("JsonSchema", dict[str, Any])


class TypeSummary(TypedDict):
    id: str
    name: str
    logo_url: str
    logo_dark_url: str
    operations: list[str]


class ConfigurationForm(TypedDict):
    jsonschema: Mapping[str, Any]
    uischema: dict[str, Any]


class ConnectionTypeItem(TypedDict):
    id: str
    name: str
    capabilities: dict[str, bool]
    configurationForm: ConfigurationForm
    envConfig: dict[str, Any]
    initialConfiguration: dict[str, Any]
    logo_url: str
    logo_dark_url: str
    use_oauth: bool
    kind: Literal["http", "sql"]
    operations: list[str]


class ConnectionTypeList(TypedDict):
    data: list[ConnectionTypeItem]


class Actor(TypedDict):
    id: str
    name: str | None
    type: Literal["organization", "partner", "user"]


class Connection(TypedDict):
    id: str
    name: str
    configuration: dict[str, Any]
    organization_id: str
    parent_connection_id: str | None
    policies: list[str]
    saved: bool
    status: str
    status_error: str
    type: TypeSummary
    healthcheck_interval: str | None
    created_at: str
    updated_at: str
    created_by: Actor | None
    updated_by: Actor | None
    rate_limit: None


class ConnectionEnvelope(TypedDict):
    data: Connection


class ConnectionList(TypedDict):
    data: list[Connection]


class ParameterValueItem(TypedDict):
    label: str
    value: Any
    path: None


class ParameterValueSet(TypedDict):
    allows_creation: bool
    values: list[ParameterValueItem]


class ParameterValuesEnvelope(TypedDict):
    data: dict[str, ParameterValueSet]


class ConnectionHealth(TypedDict):
    status: str


class ConnectionHealthEnvelope(TypedDict):
    data: ConnectionHealth


class ProxyResult(TypedDict):
    """The upstream's answer (`status` is the upstream's)."""

    status: int
    body: str
    bodyEncoding: Annotated[str, WithJsonSchema({"type": "string", "enum": ["utf-8", "base64"]})]
    contentType: str
    headers: dict[str, str]
    latencyMs: int
    truncated: bool
    proxyCallId: str


class ProxyJobAccepted(TypedDict):
    """An asynchronous call accepted as a job (`status` is always 202)."""

    status: Literal[202]
    jobId: str
    jobStatus: JobStatusValue
    jobUrl: str
    proxyCallId: str


class ProxyCallAnswer(TypedDict):
    data: ProxyResult | ProxyJobAccepted


# Keywords whose value the SDK parses as a subschema *object* (a boolean schema fails its parsing).
_SUBSCHEMA = (
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
)
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("$defs", "dependentSchemas", "patternProperties")


def sdk_json_schema(schema: Any) -> Any:
    """The type's JSON Schema shaped for the SDK's ``JsonschemaSchema`` model (spec 2.7).

    Boolean subschemas in slots the SDK types as objects become their object equivalents
    (``true`` -> ``{}``, ``false`` -> ``{"not": {}}``); ``properties`` is untyped and left as is.
    """
    if schema is True:
        return {}
    if schema is False:
        return {"not": {}}
    if not isinstance(schema, dict):
        return schema
    shaped = dict(schema)
    for keyword in _SUBSCHEMA:
        if keyword in shaped:
            shaped[keyword] = sdk_json_schema(shaped[keyword])
    for keyword in _SUBSCHEMA_LISTS:
        if isinstance(shaped.get(keyword), list):
            shaped[keyword] = [sdk_json_schema(item) for item in shaped[keyword]]
    for keyword in _SUBSCHEMA_MAPS:
        if isinstance(shaped.get(keyword), dict):
            shaped[keyword] = {name: sdk_json_schema(item) for name, item in shaped[keyword].items()}
    return shaped


def type_summary(connection_type: ConnectionType) -> TypeSummary:
    return {
        "id": connection_type.id,
        "name": connection_type.name,
        "logo_url": connection_type.logo_url,
        "logo_dark_url": connection_type.logo_dark_url,
        "operations": list(connection_type.operations),
    }


def connection_type_item(connection_type: ConnectionType) -> ConnectionTypeItem:
    return {
        "id": connection_type.id,
        "name": connection_type.name,
        "capabilities": dict(connection_type.capabilities),
        "configurationForm": {"jsonschema": connection_type.schema, "uischema": {}},
        "envConfig": {},
        "initialConfiguration": {},
        "logo_url": connection_type.logo_url,
        "logo_dark_url": connection_type.logo_dark_url,
        "use_oauth": False,
        "kind": connection_type.kind,
        "operations": list(connection_type.operations),
    }


def _actor(actor_id: str | None) -> Actor | None:
    if actor_id is None:
        return None
    if actor_id.startswith("org:"):
        return {"id": actor_id[4:], "name": "organization key", "type": "organization"}
    if actor_id.startswith("partner:"):  # a shared copy's creator: the partner owner organization
        return {"id": actor_id[8:], "name": "partner key", "type": "partner"}
    return {"id": actor_id, "name": None, "type": "user"}


def connection(view: ConnectionView) -> Connection:
    return {
        "id": view.id,
        "name": view.name,
        "configuration": view.configuration,
        "organization_id": view.organization_id,
        "parent_connection_id": view.parent_connection_id,
        "policies": view.policies,
        "saved": True,
        "status": view.status,
        "status_error": view.status_error or "",
        "type": type_summary(view.type),
        "healthcheck_interval": view.healthcheck_interval,
        "created_at": timestamp(view.created_at),
        "updated_at": timestamp(view.updated_at),
        "created_by": _actor(view.created_by),
        "updated_by": _actor(view.updated_by),
        "rate_limit": None,
    }


def parameter_values(values: dict[str, ParameterValues]) -> dict[str, ParameterValueSet]:
    return {
        name: {
            "allows_creation": entry.allows_creation,
            "values": [{"label": value.label, "value": value.value, "path": None} for value in entry.values],
        }
        for name, entry in values.items()
    }
