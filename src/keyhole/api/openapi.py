"""OpenAPI 3.1 documents generated from the wire types the handlers use.

A handler states what it accepts and answers with :func:`describe`, next to its code: the request
models it parses with, the typed shapes its renderers return, the error statuses it may answer.
:func:`build_document` turns the routes of one or more :class:`Section` s (a dialect, or the
service's own routes) into one document, so the description cannot drift from the code that
validates and renders: a renderer that leaves its shape fails the type checker, and the fuzzing
suite checks every answer against the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter
from starlette.routing import BaseRoute, Route

from keyhole.tenancy.access import Access

DESCRIPTION_ATTRIBUTE = "__openapi__"
ACCESS_ATTRIBUTE = "__keyhole_access__"  # set by each dialect's endpoint wrapper
_PATH_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]+)?}")
_REF_TEMPLATE = "#/components/schemas/{model}"
_LOCAL_REF = "#/$defs/{model}"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


@dataclass(frozen=True)
class Answer:
    """One success answer: its JSON shape (``None``: no body), or another media type."""

    shape: Any = None
    description: str = "Success"
    media_type: str | tuple[str, ...] = "application/json"  # several: one of them, by the resource


@dataclass(frozen=True)
class Description:
    summary: str
    tag: str
    description: str = ""
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_examples: Mapping[str, Any] = field(default_factory=dict)
    query: type[BaseModel] | None = None
    path: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # a path parameter's schema
    answers: Mapping[int, Answer] = field(default_factory=lambda: {200: Answer()})
    errors: tuple[int, ...] = ()
    error_headers: Mapping[int, tuple[str, ...]] = field(default_factory=dict)  # status -> header names
    extension: bool = False  # a Keyhole extension of the dialect
    public: bool = False  # no API key (the capability is in the URL, or nothing is protected)
    links: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # status -> OpenAPI links


def describe(**fields: Any) -> Callable[[Endpoint], Endpoint]:
    """Attach a :class:`Description` to a handler (keeps it through ``functools.wraps``)."""
    description = Description(**fields)

    def attach(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, DESCRIPTION_ATTRIBUTE, description)
        return endpoint

    return attach


def description_of(endpoint: Callable[..., Any]) -> Description | None:
    found = getattr(endpoint, DESCRIPTION_ATTRIBUTE, None)
    return found if isinstance(found, Description) else None


SECURITY_SCHEMES: Mapping[str, Mapping[str, Any]] = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A user key (`kh_u_…`) or an organization key (`kh_o_…`): "
        "`Authorization: Bearer <key>`.",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The same keys in a header (`x-user-api-key` and `x-org-api-key` work too).",
    },
    "organizationBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "The organization id as user name and, as password, that organization's key or "
        "a partner key of the partner account that manages it (acting for that organization).",
    },
    "partnerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A partner key (`kh_p_…`): organizations, their users and keys, shared connections.",
    },
}
_ORGANIZATION_KEYS: list[dict[str, list[str]]] = [
    {"bearerKey": []},
    {"apiKeyHeader": []},
    {"organizationBasic": []},
]
_SECURITY: dict[Access, list[dict[str, list[str]]]] = {
    Access.RESOURCES: _ORGANIZATION_KEYS,
    Access.ADMINISTRATION: _ORGANIZATION_KEYS,
    Access.IDENTITY: [*_ORGANIZATION_KEYS, {"partnerKey": []}],
    Access.MANAGEMENT: [*_ORGANIZATION_KEYS, {"partnerKey": []}],
    Access.PARTNER: [{"partnerKey": []}, {"organizationBasic": []}],
}


def security_of(endpoint: Callable[..., Any]) -> list[dict[str, list[str]]]:
    """The credentials that reach ``endpoint``, by the access its dialect wrapper recorded."""
    access = getattr(endpoint, ACCESS_ATTRIBUTE, None)
    if not isinstance(access, Access):
        raise ValueError(f"{endpoint.__qualname__} records no access level")
    return [dict(requirement) for requirement in _SECURITY[access]]


# The headers of a rate-limited or deferred answer, in every dialect.
RATE_LIMIT_HEADERS: Mapping[str, Mapping[str, Any]] = {
    "X-RateLimit-Limit": {
        "description": "Calls allowed per minute by the limit.",
        "schema": {"type": "string"},
    },
    "X-RateLimit-Remaining": {
        "description": "Calls left in the current window.",
        "schema": {"type": "string"},
    },
    "X-RateLimit-Reset": {
        "description": "When the window resets (Unix seconds).",
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "Seconds to wait before sending again.", "schema": {"type": "string"}},
}
RATE_LIMITED = {429: tuple(RATE_LIMIT_HEADERS)}  # a rate-limited call's answer carries them all


@dataclass(frozen=True)
class Section:
    """The routes of one dialect and how that dialect authenticates and fails."""

    routes: Sequence[BaseRoute]
    error_shape: Any
    common_errors: tuple[int, ...]  # every authenticated operation may answer these
    operation_prefix: str = ""
    variants: Mapping[str, str] = field(default_factory=dict)  # path prefix -> operation id suffix
    empty_query_is_absent: bool = False  # ``?limit=`` reads as no limit given
    headers: Callable[[str], list[dict[str, Any]]] = lambda method: []  # header parameters by method
    tag_descriptions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Info:
    title: str
    version: str
    description: str


def documented_routes(routes: Iterable[BaseRoute]) -> list[tuple[str, str, Callable[..., Any]]]:
    """``(method, path, endpoint)`` for every route method (HEAD, added for GET, left out)."""
    found = []
    for route in routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, route.path, route.endpoint))
    return found


def build_document(info: Info, sections: Sequence[Section]) -> dict[str, Any]:
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, str] = {}
    operation_ids: set[str] = set()
    for section in sections:
        for tag, text in section.tag_descriptions.items():
            tags.setdefault(tag, text)
        for method, path, endpoint in documented_routes(section.routes):
            description = description_of(endpoint)
            if description is None:
                raise ValueError(f"{method} {path} has no OpenAPI description")
            tags.setdefault(description.tag, "")
            operation = builder.operation(section, method, path, endpoint, description)
            operation["operationId"] = _unique(operation["operationId"], operation_ids)
            paths.setdefault(path, {})[method.lower()] = operation
    schemas = builder.schemas()
    return {
        "openapi": "3.1.0",
        "info": {"title": info.title, "version": info.version, "description": info.description},
        "tags": [
            {"name": name, "description": text} if text else {"name": name} for name, text in tags.items()
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {name: dict(scheme) for name, scheme in SECURITY_SCHEMES.items()},
            "headers": {name: dict(header) for name, header in RATE_LIMIT_HEADERS.items()},
        },
    }


class _Builder:
    """Collects every type the operations name, then generates their schemas in one pass so that
    shared types become one component each."""

    def __init__(self) -> None:
        self._types: dict[tuple[int, str], tuple[Any, dict[str, Any]]] = {}

    def ref(self, shape: Any, mode: str) -> dict[str, Any]:
        """A reference to ``shape``'s schema, filled in by :meth:`schemas`."""
        return self._types.setdefault((id(shape), mode), (shape, {}))[1]

    def schemas(self) -> dict[str, Any]:
        inputs = [(key, key[1], TypeAdapter(shape)) for key, (shape, _) in self._types.items()]
        generated, definitions = TypeAdapter.json_schemas(
            inputs,  # type: ignore[arg-type]
            ref_template=_REF_TEMPLATE,
        )
        components: dict[str, Any] = dict(definitions.get("$defs", {}))
        for (key, _mode), schema in generated.items():
            shape, reference = self._types[key]
            reference.update(_inline_or_ref(schema, components, _type_name(shape)))
        # Client generators name a model by its title: a generic's instances (``Page[Toolkit]``)
        # would all be "Page".
        for name, schema in components.items():
            if isinstance(schema, dict) and "title" in schema:
                schema["title"] = name
        return components

    def operation(
        self,
        section: Section,
        method: str,
        path: str,
        endpoint: Callable[..., Any],
        description: Description,
    ) -> dict[str, Any]:
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": dict(description.path.get(name, {"type": "string", "minLength": 1})),
            }
            for name in _PATH_PARAMETER.findall(path)
        ]
        if description.query is not None:
            parameters.extend(_query_parameters(description.query, section.empty_query_is_absent))
        parameters.extend(section.headers(method))
        operation: dict[str, Any] = {
            "operationId": section.operation_prefix + _operation_id(endpoint) + _variant(section, path),
            "summary": description.summary,
            "tags": [description.tag],
        }
        if description.description:
            operation["description"] = description.description
        if description.extension:
            operation["x-keyhole-extension"] = True
        if parameters:
            operation["parameters"] = parameters
        if description.body is not None:
            content: dict[str, Any] = {"schema": self.ref(description.body, "validation")}
            if description.body_examples:
                content["examples"] = {
                    name: {"value": value} for name, value in description.body_examples.items()
                }
            operation["requestBody"] = {
                "required": description.body_required,
                "content": {"application/json": content},
            }
        operation["security"] = [] if description.public else security_of(endpoint)
        operation["responses"] = self._responses(section, description)
        return operation

    def _responses(self, section: Section, description: Description) -> dict[str, Any]:
        responses: dict[str, Any] = {}
        for status, answer in sorted(description.answers.items()):
            response: dict[str, Any] = {"description": answer.description}
            media_types = (answer.media_type,) if isinstance(answer.media_type, str) else answer.media_type
            if answer.shape is not None:
                media = {"schema": self.ref(answer.shape, "serialization")}
                response["content"] = {media_type: media for media_type in media_types}
            elif media_types != ("application/json",):
                response["content"] = {
                    media_type: {"schema": {"type": "string"}} for media_type in media_types
                }
            if status in description.links:
                response["links"] = dict(description.links[status])
            responses[str(status)] = response
        statuses = set(description.errors) | (set() if description.public else set(section.common_errors))
        for status in sorted(statuses):
            error: dict[str, Any] = {
                "description": HTTPStatus(status).phrase,
                "content": {"application/json": {"schema": self.ref(section.error_shape, "serialization")}},
            }
            names = list(description.error_headers.get(status, ()))
            if status in (429, 503) and "Retry-After" not in names:
                names.append("Retry-After")
            if names:
                error["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in names}
            responses[str(status)] = error
        return responses


def _query_parameters(model: type[BaseModel], empty_is_absent: bool) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, ref_template=_LOCAL_REF)
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    parameters = []
    for name, found in schema.get("properties", {}).items():
        prop = _inlined(found, definitions)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if empty_is_absent and name not in required:
            parameter["allowEmptyValue"] = True
        prop = _without_null(prop)
        prop.pop("title", None)
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


def _inlined(schema: Any, definitions: Mapping[str, Any]) -> Any:
    """``schema`` with the model's own definitions in place of its references: a parameter's
    schema has no components of its own to point at (an enum of the query string, say)."""
    if isinstance(schema, dict):
        if set(schema) == {"$ref"}:
            return _inlined(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
        return {key: _inlined(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    return schema


def _without_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An optional query parameter's schema without its ``null`` branch: absent is how it is left out."""
    shaped = dict(schema)
    branches = shaped.get("anyOf")
    if isinstance(branches, list):
        kept = [branch for branch in branches if branch != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(branches):
            del shaped["anyOf"]
            shaped = {**kept[0], **shaped}  # the field's own words before its type's
    if shaped.get("default", 0) is None:
        del shaped["default"]
    return shaped


def _inline_or_ref(schema: dict[str, Any], components: dict[str, Any], name: str) -> dict[str, Any]:
    """A generated top-level schema: a ``$ref`` already, or registered as a component of its own."""
    if set(schema) == {"$ref"}:
        return schema
    component = name
    counter = 2
    while component in components and components[component] != schema:
        component = f"{name}{counter}"
        counter += 1
    components[component] = schema
    return {"$ref": _REF_TEMPLATE.format(model=component)}


def _type_name(shape: Any) -> str:
    name = getattr(shape, "__name__", None)
    return name if isinstance(name, str) else "Shape"


def _unique(operation_id: str, taken: set[str]) -> str:
    """The id, or with a counter when one handler serves two spellings of a path."""
    unique, counter = operation_id, 2
    while unique in taken:
        unique = f"{operation_id}_{counter}"
        counter += 1
    taken.add(unique)
    return unique


def _variant(section: Section, path: str) -> str:
    return next((suffix for prefix, suffix in section.variants.items() if path.startswith(prefix)), "")


def _operation_id(endpoint: Callable[..., Any]) -> str:
    module = getattr(endpoint, "__module__", "").rsplit(".", 1)[-1]
    return f"{module}_{endpoint.__name__}"
