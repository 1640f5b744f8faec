"""Creating and editing a connection in the console: the type picker, then a form generated from
the type's JSON Schema (``schema_form``), read back into a configuration for the connection
service. A refused form is shown again with the problems beside their fields and the values that
were typed, except secrets, which are never written into a page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.console import schema_form
from keyhole.api.console.endpoint import Form, Viewer, console_page, redirect
from keyhole.api.console.templating import render
from keyhole.connections.catalog import ConnectionType
from keyhole.connections.naming import MAX_NAME_LENGTH, name_problem
from keyhole.connections.schemas import ConnectionCreate, ConnectionUpdate, ConnectionView
from keyhole.errors import InvalidRequest, KeyholeError, Unprocessable
from keyhole.services import Services

NAME = "name"
VALIDATE = "validate"


@console_page()
async def pick_type(request: Request, services: Services, viewer: Viewer) -> Response:
    types = services.catalog.all()
    return render(
        request,
        "connections/types.html",
        {
            "http_types": [t for t in types if t.kind == "http"],
            "sql_types": [t for t in types if t.kind == "sql"],
        },
    )


@dataclass(frozen=True, slots=True)
class Filled:
    """What the form shows: the name, the controls' values, whether to check the target, and the
    connection being edited (None for a new one) with the names of its controls that keep their
    stored value when left empty (``schema_form.stored_values``)."""

    name: str
    values: Mapping[str, str]
    validate: bool = True
    view: ConnectionView | None = None
    kept: frozenset[str] = frozenset()


@console_page()
async def new_form(request: Request, services: Services, viewer: Viewer) -> Response:
    connection_type = services.catalog.get(request.path_params["type_id"])
    form = schema_form.build(connection_type)
    return _form_page(request, connection_type, form, Filled("", schema_form.initial_values(form)))


@console_page()
async def create(request: Request, services: Services, viewer: Viewer) -> Response:
    connection_type = services.catalog.get(request.path_params["type_id"])
    form = schema_form.build(connection_type)
    posted = _generated_by(form, viewer.form)
    reading, problems = _read(form, posted, {})
    filled = Filled(posted.get(NAME), schema_form.submitted_values(form, posted), VALIDATE in posted)
    if problems:
        return _form_page(request, connection_type, form, filled, problems=problems)
    try:
        view = await services.connections.create(
            viewer.principal,
            ConnectionCreate(
                name=filled.name,
                type_id=connection_type.id,
                configuration=reading.configuration,
                validate=filled.validate,
            ),
        )
    except (Unprocessable, InvalidRequest) as refused:
        return _form_page(request, connection_type, form, filled, refused=refused)
    return redirect(f"/console/connections/{view.id}?done=created")


@console_page()
async def edit_form(request: Request, services: Services, viewer: Viewer) -> Response:
    view = await services.connections.get(viewer.principal, request.path_params["connection_id"])
    form = _form_of(view)
    values, kept = schema_form.stored_values(form, view.configuration)
    filled = Filled(view.name, values, view=view, kept=frozenset(kept))
    return _form_page(request, view.type, form, filled)


@console_page()
async def update(request: Request, services: Services, viewer: Viewer) -> Response:
    view = await services.connections.get(viewer.principal, request.path_params["connection_id"])
    form = _form_of(view)
    posted = _generated_by(form, viewer.form)
    reading, problems = _read(form, posted, view.configuration)
    _, kept = schema_form.stored_values(form, view.configuration)
    filled = Filled(
        posted.get(NAME),
        schema_form.submitted_values(form, posted),
        VALIDATE in posted,
        view,
        frozenset(kept),
    )
    if problems:
        return _form_page(request, view.type, form, filled, problems=problems)
    try:
        await services.connections.update(
            viewer.principal,
            view.id,
            ConnectionUpdate(
                name=filled.name,
                # A shared copy holds no configuration of its own: only its name changes here.
                configuration={} if view.parent_connection_id else reading.configuration,
                validate=filled.validate,
                unchanged_secrets=tuple(reading.blank_secrets),
            ),
        )
    except (Unprocessable, InvalidRequest) as refused:
        return _form_page(request, view.type, form, filled, refused=refused)
    return redirect(f"/console/connections/{view.id}?done=saved")


def _form_of(view: ConnectionView) -> schema_form.SchemaForm:
    """The form of the connection's type; a shared copy's has no configuration controls (its
    configuration is its parent's)."""
    form = schema_form.build(view.type)
    return schema_form.SchemaForm(form.type_id, (), ()) if view.parent_connection_id else form


def _generated_by(form: schema_form.SchemaForm, posted: Form) -> Form:
    """The posted form, refused whole when it holds a field the generated form has no control
    for, or one of its fields twice (every control posts one value at most)."""
    return posted.only(*form.names(), NAME, VALIDATE)


def _read(
    form: schema_form.SchemaForm, posted: Form, stored: Mapping[str, Any]
) -> tuple[schema_form.Reading, dict[str, str]]:
    """The configuration the form describes over the ``stored`` one, and what is wrong with the
    form by field name (the name by the rule every API that names a connection follows)."""
    reading = schema_form.read(form, posted, stored)
    problems = dict(reading.problems)
    name_refused = name_problem(posted.get(NAME))
    if name_refused is not None:
        problems[NAME] = name_refused
    return reading, problems


def _form_page(
    request: Request,
    connection_type: ConnectionType,
    form: schema_form.SchemaForm,
    filled: Filled,
    *,
    problems: Mapping[str, str] | None = None,
    refused: KeyholeError | None = None,
) -> Response:
    """The form; after a refusal, with the service's message and its problems by field."""
    if refused is not None:
        problems = schema_form.problems_of(form, filled.values, refused)
    problems = problems or {}
    view = filled.view
    return render(
        request,
        "connections/form.html",
        {
            "connection_type": connection_type,
            "form": form,
            "filled": filled,
            "view": view,
            "problems": problems,
            "max_name": MAX_NAME_LENGTH,
            "message": refused.message if refused is not None else None,
            "unreachable": refused is not None and refused.key == "connection_unreachable",
            "action": f"/console/connections/{view.id}/edit"
            if view is not None
            else f"/console/connections/new/{connection_type.id}",
        },
        status_code=refused.status if refused is not None else 422 if problems else 200,
    )
