"""Polytomic wire shapes: strict input models and output serializers (snake_case CRUD)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keyhole.connections.catalog import ConnectionType
from keyhole.connections.schemas import ConnectionView, ParameterValues
from keyhole.timestamps import timestamp

# Names are shown in lists and logs, and PostgreSQL text cannot hold NUL: no control characters.
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
_Name = Field(min_length=1, max_length=200, pattern=_NO_CONTROL)


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


def type_summary(connection_type: ConnectionType) -> dict[str, Any]:
    return {
        "id": connection_type.id,
        "name": connection_type.name,
        "logo_url": connection_type.logo_url,
        "logo_dark_url": connection_type.logo_dark_url,
        "operations": list(connection_type.operations),
    }


def connection_type_item(connection_type: ConnectionType) -> dict[str, Any]:
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


def _actor(actor_id: str | None) -> dict[str, Any] | None:
    if actor_id is None:
        return None
    if actor_id.startswith("org:"):
        return {"id": actor_id[4:], "name": "organization key", "type": "organization"}
    if actor_id.startswith("partner:"):  # a shared copy's creator: the partner owner organization
        return {"id": actor_id[8:], "name": "partner key", "type": "partner"}
    return {"id": actor_id, "name": None, "type": "user"}


def connection(view: ConnectionView) -> dict[str, Any]:
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


def parameter_values(values: dict[str, ParameterValues]) -> dict[str, Any]:
    return {
        name: {
            "allows_creation": entry.allows_creation,
            "values": [{"label": value.label, "value": value.value, "path": None} for value in entry.values],
        }
        for name, entry in values.items()
    }
