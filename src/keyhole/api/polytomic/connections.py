"""Polytomic routes for connection types and connections (spec sections 2.7 and 2.8)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.polytomic import schemas
from keyhole.api.polytomic.endpoint import endpoint
from keyhole.api.requests import parse, query_flag, read_json
from keyhole.api.responses import JSONResponse
from keyhole.connections.schemas import ConnectionCreate, ConnectionTest, ConnectionUpdate
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


@endpoint
async def list_types(request: Request, services: Services, principal: Principal) -> Response:
    return JSONResponse({"data": [schemas.connection_type_item(t) for t in services.catalog.all()]})


@endpoint
async def get_type(request: Request, services: Services, principal: Principal) -> Response:
    return JSONResponse(schemas.sdk_json_schema(services.catalog.get(request.path_params["type_id"]).schema))


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
    return JSONResponse({"data": schemas.parameter_values(values)})


@endpoint
async def list_connections(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.connections.list(principal)
    return JSONResponse({"data": [schemas.connection(view) for view in views]})


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
    return JSONResponse({"data": schemas.connection(view)})


@endpoint
async def get_connection(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.connections.get(principal, request.path_params["connection_id"])
    return JSONResponse({"data": schemas.connection(view)})


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
    return JSONResponse({"data": schemas.connection(view)})


@endpoint
async def delete_connection(request: Request, services: Services, principal: Principal) -> Response:
    force = query_flag(request, "force")
    await services.connections.delete(principal, request.path_params["connection_id"], force=force)
    return Response(status_code=204)


@endpoint
async def test_connection(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.TestConnectionBody, await _body(request, services))
    health = await services.connections.test(
        principal,
        ConnectionTest(type_id=body.type, configuration=body.configuration, connection_id=body.connection_id),
    )
    return JSONResponse({"data": {"status": health.status}})


@endpoint
async def connection_parameter_values(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.connections.get(principal, request.path_params["connection_id"])
    values = await services.connections.parameter_values(principal, view.type.id, None, connection_id=view.id)
    return JSONResponse({"data": schemas.parameter_values(values)})
