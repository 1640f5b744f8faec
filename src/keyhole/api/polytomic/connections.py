"""Polytomic routes for connection types and connections (spec sections 2.7 and 2.8)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.openapi import Answer, describe
from keyhole.api.polytomic import schemas
from keyhole.api.polytomic.endpoint import endpoint
from keyhole.api.requests import parse, query_flag, read_json
from keyhole.api.responses import JSONResponse
from keyhole.connections.schemas import (
    ConnectionCreate,
    ConnectionTest,
    ConnectionUpdate,
    ConnectionView,
    ParameterValues,
)
from keyhole.errors import Forbidden
from keyhole.services import Services
from keyhole.tenancy.principal import Principal


def _same_organization(principal: Principal, organization_id: str | None) -> None:
    if organization_id is not None and organization_id != principal.organization_id:
        raise Forbidden(
            "organization_id names another organization; a key acts only for its own",
            key="organization_mismatch",
        )


async def _body(request: Request, services: Services) -> object:
    return await read_json(request, services.settings.max_api_body_bytes)


# Every POST may answer these: the body over its size limit, and an Idempotency-Key in use (409) or
# used for another request (422).
_POST_ERRORS = (409, 413, 422)
_CONNECTION_EXAMPLE = {
    "name": "Billing API",
    "type": "api",
    "configuration": {
        "url": "https://api.example.com",
        "auth": {"type": "bearer", "token": "<upstream token>"},
    },
}


_CREATED = {"connection_id": "$response.body#/data/id"}
# Where a created connection leads: read it, call through it, delete it (clients and the fuzzer's
# stateful phase follow these).
_CONNECTION_LINKS = {
    "GetConnection": {"operationId": "connections_get_connection", "parameters": _CREATED},
    "CallThroughConnection": {"operationId": "proxy_execute", "parameters": _CREATED},
    "ReadProxyInfo": {"operationId": "proxy_info", "parameters": _CREATED},
    "DeleteConnection": {"operationId": "connections_delete_connection", "parameters": _CREATED},
}


@describe(
    summary="List connection types",
    tag="Connections",
    answers={200: Answer(schemas.ConnectionTypeList)},
)
@endpoint
async def list_types(request: Request, services: Services, principal: Principal) -> Response:
    body: schemas.ConnectionTypeList = {
        "data": [schemas.connection_type_item(t) for t in services.catalog.all()]
    }
    return JSONResponse(body)


@describe(
    summary="A connection type's configuration schema",
    description="The JSON Schema a connection's configuration must satisfy.",
    tag="Connections",
    answers={200: Answer(schemas.JsonSchema, description="A JSON Schema")},
)
@endpoint
async def get_type(request: Request, services: Services, principal: Principal) -> Response:
    schema: schemas.JsonSchema = schemas.sdk_json_schema(
        services.catalog.get(request.path_params["type_id"]).schema
    )
    return JSONResponse(schema)


def _parameter_values(values: dict[str, ParameterValues]) -> JSONResponse:
    body: schemas.ParameterValuesEnvelope = {"data": schemas.parameter_values(values)}
    return JSONResponse(body)


@describe(
    summary="Values a configuration field may take",
    description="The databases a server holds, for the field `database` of PostgreSQL and MySQL types; "
    "with `connection_id`, from that connection's stored configuration.",
    tag="Connections",
    body=schemas.ParameterValuesBody,
    body_examples={"databases": {"field": "database", "parameters": {"host": "db.example.com"}}},
    answers={200: Answer(schemas.ParameterValuesEnvelope)},
    errors=_POST_ERRORS,
)
@endpoint
async def type_parameter_values(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.ParameterValuesBody, await _body(request, services))
    values = await services.connections.parameter_values(
        principal,
        request.path_params["type_id"],
        body.field,
        connection_id=body.connection_id,
        parameters=body.parameters,
        query=body.query,
    )
    return _parameter_values(values)


@describe(
    summary="List the organization's connections",
    tag="Connections",
    answers={200: Answer(schemas.ConnectionList)},
)
@endpoint
async def list_connections(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.connections.list(principal)
    body: schemas.ConnectionList = {"data": [schemas.connection(view) for view in views]}
    return JSONResponse(body)


def _connection(view: ConnectionView) -> JSONResponse:
    body: schemas.ConnectionEnvelope = {"data": schemas.connection(view)}
    return JSONResponse(body)


@describe(
    summary="Create a connection",
    description="The configuration is checked against the type's schema (422 when it fails) and, "
    "unless `validate` is false, the target is reached once.",
    tag="Connections",
    body=schemas.CreateConnectionBody,
    body_examples={"api": _CONNECTION_EXAMPLE, "unchecked": {**_CONNECTION_EXAMPLE, "validate": False}},
    answers={200: Answer(schemas.ConnectionEnvelope)},
    links={200: _CONNECTION_LINKS},
    errors=_POST_ERRORS,
)
@endpoint
async def create_connection(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.CreateConnectionBody, await _body(request, services))
    _same_organization(principal, body.organization_id)
    view = await services.connections.create(
        principal,
        ConnectionCreate(
            name=body.name,
            type_id=body.type,
            configuration=body.configuration,
            healthcheck_interval=body.healthcheck_interval,
            policies=body.policies or [],
            validate=True if body.validate_ is None else body.validate_,
        ),
    )
    return _connection(view)


@describe(summary="Read a connection", tag="Connections", answers={200: Answer(schemas.ConnectionEnvelope)})
@endpoint
async def get_connection(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.connections.get(principal, request.path_params["connection_id"])
    return _connection(view)


@describe(
    summary="Update a connection",
    description="Secrets shown redacted may be sent back as read to keep them. A shared copy's "
    "type and configuration are its parent's: send them unchanged.",
    tag="Connections",
    body=schemas.UpdateConnectionBody,
    body_examples={"rename": {"name": "Billing API (EU)", "configuration": {}}},
    answers={200: Answer(schemas.ConnectionEnvelope)},
    errors=(413, 422),
)
@endpoint
async def update_connection(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.UpdateConnectionBody, await _body(request, services))
    _same_organization(principal, body.organization_id)
    view = await services.connections.update(
        principal,
        request.path_params["connection_id"],
        ConnectionUpdate(
            name=body.name,
            configuration=body.configuration,
            type_id=body.type,
            healthcheck_interval=body.healthcheck_interval,
            policies=body.policies,
            validate=True if body.validate_ is None else body.validate_,
        ),
    )
    return _connection(view)


@describe(
    summary="Delete a connection",
    description="Its shared copies are deleted with it.",
    tag="Connections",
    query=schemas.DeleteConnectionQuery,
    answers={204: Answer(description="Deleted")},
)
@endpoint
async def delete_connection(request: Request, services: Services, principal: Principal) -> Response:
    force = query_flag(request, "force")
    await services.connections.delete(principal, request.path_params["connection_id"], force=force)
    return Response(status_code=204)


@describe(
    summary="Test a configuration",
    description="Reaches the target with the configuration (merged over a stored connection's with "
    "`connection_id`); a failed test is a 400 `connection_test_failed`.",
    tag="Connections",
    body=schemas.TestConnectionBody,
    body_examples={"api": {"type": "api", "configuration": _CONNECTION_EXAMPLE["configuration"]}},
    answers={200: Answer(schemas.ConnectionHealthEnvelope)},
    errors=_POST_ERRORS,
)
@endpoint
async def test_connection(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.TestConnectionBody, await _body(request, services))
    health = await services.connections.test(
        principal,
        ConnectionTest(type_id=body.type, configuration=body.configuration, connection_id=body.connection_id),
    )
    answer: schemas.ConnectionHealthEnvelope = {"data": {"status": health.status}}
    return JSONResponse(answer)


@describe(
    summary="Values a connection's configuration fields may take",
    tag="Connections",
    answers={200: Answer(schemas.ParameterValuesEnvelope)},
)
@endpoint
async def connection_parameter_values(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.connections.get(principal, request.path_params["connection_id"])
    values = await services.connections.parameter_values(principal, view.type.id, None, connection_id=view.id)
    return _parameter_values(values)
