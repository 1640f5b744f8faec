"""Reading connection types from their JSON data files.

Each type is a file ``<id>.json``, in ``keyhole/connections/types/`` or a directory given to
:func:`load_catalog`. Files are checked when loaded: the file's own shape, the type's schema, and
that every secret and every field saying where a secret goes is declared; a malformed file fails
loudly with :class:`~keyhole.connections.catalog.CatalogError`.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from keyhole.connections.catalog import (
    CAPABILITIES,
    FORMAT_CHECKER,
    Catalog,
    CatalogError,
    ConnectionType,
    HttpSpec,
    SchemaValidator,
    SqlSpec,
)
from keyhole.connections.secrets import format_pointer, parse_pointer

__all__ = ["load_catalog"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SQL_DIALECTS = ("postgresql", "mysql", "sqlite", "duckdb")
OPERATIONS = {"http": "proxy", "sql": "query"}

# Fields of each auth form; the values of the secret ones must come from secret configuration fields.
AUTH_FORMS: Mapping[str, tuple[str, ...]] = {
    "none": (),
    "bearer": ("token",),
    "basic": ("username", "password"),
    "header": ("name", "value"),
    "query": ("name", "value"),
}
AUTH_SECRET_SLOTS = ("token", "password", "value")

# A client reads these top-level keywords as strings, and ``type`` as a single string.
_TOP_LEVEL_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$"
_NO_CRLF = "^[^\\r\\n\\u0000]*$"

_Fail = Callable[[str], CatalogError]


def load_catalog(directory: Path | None = None) -> Catalog:
    """Load every ``*.json`` type file, from ``directory`` or from the packaged ``types`` folder."""
    files: list[tuple[str, str]] = []
    if directory is None:
        root = importlib.resources.files("keyhole.connections").joinpath("types")
        where = "the packaged connection types"
        for entry in root.iterdir():
            if entry.name.endswith(".json") and entry.is_file():
                files.append((entry.name, entry.read_text(encoding="utf-8")))
    else:
        where = str(directory)
        for path in Path(directory).glob("*.json"):
            if path.is_file():
                files.append((path.name, path.read_text(encoding="utf-8")))
    if not files:
        raise CatalogError(f"no connection type files (*.json) in {where}")
    return Catalog(_parse_type_file(name, text) for name, text in sorted(files))


def _field_or_string() -> dict[str, Any]:
    field_ref = {
        "type": "object",
        "properties": {"$field": {"type": "string", "pattern": "^/"}},
        "required": ["$field"],
        "additionalProperties": False,
    }
    return {"anyOf": [{"type": "string"}, field_ref]}


def _auth_template_schema() -> dict[str, Any]:
    forms = []
    for kind, fields in AUTH_FORMS.items():
        properties: dict[str, Any] = {"type": {"const": kind}}
        properties.update({name: _field_or_string() for name in fields})
        forms.append(
            {
                "type": "object",
                "properties": properties,
                "required": ["type", *fields],
                "additionalProperties": False,
            }
        )
    return {"oneOf": forms}


_POINTER = {"type": "string", "pattern": "^/"}

# The shape of a type file; the cross-references are checked in _parse_type_file.
_FILE_SCHEMA: dict[str, Any] = {
    "$schema": SCHEMA_DIALECT,
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 128},
        "kind": {"enum": list(OPERATIONS)},
        "capabilities": {
            "type": "object",
            "properties": {name: {"type": "boolean"} for name in CAPABILITIES},
            "required": list(CAPABILITIES),
            "additionalProperties": False,
        },
        "logo_url": {"type": "string"},
        "logo_dark_url": {"type": "string"},
        "operations": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        "schema": {"type": "object"},
        "secret_fields": {"type": "array", "items": _POINTER, "uniqueItems": True},
        "target_fields": {"type": "array", "items": _POINTER, "uniqueItems": True},
        "http": {
            "type": "object",
            "properties": {
                "base_url": {"type": "string", "pattern": "^https://[^/?#\\s]+(/[^?#\\s]*[^/?#\\s])?$"},
                "base_url_field": _POINTER,
                "auth": _auth_template_schema(),
                "auth_field": _POINTER,
                "headers": {
                    "type": "object",
                    "propertyNames": {"pattern": _HEADER_NAME},
                    "additionalProperties": {"type": "string", "pattern": _NO_CRLF},
                },
                "healthcheck_path": {"type": "string", "pattern": "^/"},
                "proxy_defaults": {"type": "object"},
            },
            "additionalProperties": False,
            "allOf": [
                {"oneOf": [{"required": ["base_url"]}, {"required": ["base_url_field"]}]},
                {"oneOf": [{"required": ["auth"]}, {"required": ["auth_field"]}]},
            ],
        },
        "sql": {
            "type": "object",
            "properties": {
                "dialect": {"enum": list(SQL_DIALECTS)},
                "default_port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
            },
            "required": ["dialect"],
            "additionalProperties": False,
        },
    },
    "required": [
        "id",
        "name",
        "kind",
        "capabilities",
        "logo_url",
        "logo_dark_url",
        "operations",
        "schema",
        "secret_fields",
        "target_fields",
    ],
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"kind": {"const": kind}}},
            "then": {
                "required": [kind],
                "not": {"required": [other]},
                "properties": {"operations": {"items": {"const": operation}}},
            },
        }
        for kind, operation in OPERATIONS.items()
        for other in OPERATIONS
        if other != kind
    ],
}


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_type_file(filename: str, text: str) -> ConnectionType:
    def fail(problem: str) -> CatalogError:
        return CatalogError(f"connection type file {filename}: {problem}")

    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except ValueError as exc:
        raise fail(f"not valid JSON: {exc}") from None

    shape_errors = sorted(
        SchemaValidator(_FILE_SCHEMA).iter_errors(document), key=lambda e: list(map(str, e.path))
    )
    if shape_errors:
        details = "; ".join(
            f"{format_pointer(e.absolute_path) or '(root)'}: {e.message}" for e in shape_errors
        )
        raise fail(details)

    type_id: str = document["id"]
    stem = filename.removesuffix(".json")
    if type_id != stem:
        raise fail(f"id {type_id!r} must match the file name {stem!r}")

    schema: dict[str, Any] = document["schema"]
    _check_schema(schema, fail)
    secret_fields = tuple(document["secret_fields"])
    _check_secret_fields(schema, secret_fields, fail)

    http: HttpSpec | None = None
    sql: SqlSpec | None = None
    if document["kind"] == "http":
        http = _http_spec(document["http"], schema, secret_fields, fail)
    else:
        sql = _sql_spec(document["sql"], schema, fail)
    target_fields = tuple(document["target_fields"])
    _check_target_fields(schema, secret_fields, target_fields, http, fail)

    return ConnectionType(
        id=type_id,
        name=document["name"],
        kind=cast(Literal["http", "sql"], document["kind"]),
        capabilities={name: document["capabilities"][name] for name in CAPABILITIES},
        logo_url=document["logo_url"],
        logo_dark_url=document["logo_dark_url"],
        operations=tuple(document["operations"]),
        schema=schema,
        secret_fields=secret_fields,
        target_fields=target_fields,
        http=http,
        sql=sql,
    )


def _check_schema(schema: dict[str, Any], fail: _Fail) -> None:
    if schema.get("$schema") != SCHEMA_DIALECT:
        raise fail(f"schema: '$schema' must be {SCHEMA_DIALECT!r}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise fail(f"schema is not a valid 2020-12 schema: {exc.message}") from None
    if not isinstance(schema.get("title"), str) or not schema["title"]:
        raise fail("schema: 'title' must be a non-empty string")
    if schema.get("type") != "object":
        raise fail("schema: top-level 'type' must be the string 'object'")
    numeric = [keyword for keyword in _TOP_LEVEL_NUMERIC if keyword in schema]
    if numeric:
        raise fail(f"schema: numeric keywords are not allowed at the top level: {', '.join(numeric)}")
    if not isinstance(schema.get("properties"), dict):
        raise fail("schema: 'properties' must be an object")
    for pointer, node in _walk(schema, ()):
        where = format_pointer(pointer) or "(root)"
        required = node.get("required")
        properties = node.get("properties")
        if isinstance(required, list) and isinstance(properties, dict):
            undeclared = [name for name in required if name not in properties]
            if undeclared and node.get("additionalProperties") is False:
                raise fail(f"schema at {where}: required but not declared: {', '.join(undeclared)}")
        if "default" in node:
            candidate = {key: value for key, value in node.items() if key != "default"}
            if not SchemaValidator(candidate, format_checker=FORMAT_CHECKER).is_valid(node["default"]):
                raise fail(f"schema at {where}: the default does not satisfy its own schema")


def _walk(node: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every subschema reachable through ``properties`` and combinators, with its data path."""
    if not isinstance(node, Mapping):
        return
    yield path, node
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            yield from _walk(sub, (*path, name))
    for keyword in ("oneOf", "anyOf", "allOf"):
        for branch in node.get(keyword, ()):
            yield from _walk(branch, path)


def _resolves(schema: Mapping[str, Any], pointer: str) -> bool:
    """Whether the schema declares a property at ``pointer`` (in any combinator branch)."""
    tokens = parse_pointer(pointer)
    return any(path == tokens for path, _ in _walk(schema, ()))


def _check_secret_fields(schema: Mapping[str, Any], secret_fields: tuple[str, ...], fail: _Fail) -> None:
    for pointer in secret_fields:
        try:
            parse_pointer(pointer)
        except ValueError as exc:
            raise fail(f"secret_fields: {exc}") from None
        if not _resolves(schema, pointer):
            raise fail(f"secret_fields: {pointer} is not a property of the schema")
    write_only = {format_pointer(path) for path, node in _walk(schema, ()) if node.get("writeOnly") is True}
    if write_only != set(secret_fields):
        raise fail(
            "secret_fields must list exactly the writeOnly properties; "
            f"not listed: {sorted(write_only - set(secret_fields))}, "
            f"not writeOnly: {sorted(set(secret_fields) - write_only)}"
        )


# Properties that say where a secret goes: top-level ones, and OAuth endpoints wherever declared.
_TARGET_PROPERTIES = frozenset({"url", "hostname", "port", "database", "username", "ssl_mode"})
_TARGET_ENDPOINTS = frozenset({"token_url", "authorization_url"})


def _check_target_fields(
    schema: Mapping[str, Any],
    secret_fields: tuple[str, ...],
    target_fields: tuple[str, ...],
    http: HttpSpec | None,
    fail: _Fail,
) -> None:
    """Every property that says where a secret goes must be a target field, so a new type cannot
    forget one and let a stored secret follow a changed target."""
    for pointer in target_fields:
        _field_pointer(schema, pointer, "target_fields", fail)
        if pointer in secret_fields:
            raise fail(f"target_fields: {pointer} is a secret field, not a target")
    required = {
        format_pointer(path)
        for path, _ in _walk(schema, ())
        if (len(path) == 1 and path[0] in _TARGET_PROPERTIES) or (path and path[-1] in _TARGET_ENDPOINTS)
    }
    if http is not None and http.base_url_field is not None:
        required.add(http.base_url_field)
    if secret_fields and not required <= set(target_fields):
        raise fail(f"target_fields must list {sorted(required - set(target_fields))}")


def _field_pointer(schema: Mapping[str, Any], pointer: str, what: str, fail: _Fail) -> str:
    try:
        parse_pointer(pointer)
    except ValueError as exc:
        raise fail(f"{what}: {exc}") from None
    if not _resolves(schema, pointer):
        raise fail(f"{what}: {pointer} is not a property of the schema")
    return pointer


def _http_spec(
    block: Mapping[str, Any], schema: Mapping[str, Any], secret_fields: tuple[str, ...], fail: _Fail
) -> HttpSpec:
    base_url_field = block.get("base_url_field")
    if base_url_field is not None:
        _field_pointer(schema, base_url_field, "http.base_url_field", fail)
    auth = block.get("auth")
    if auth is not None:
        for slot, value in auth.items():
            if slot == "type":
                continue
            where = f"http.auth.{slot}"
            if isinstance(value, Mapping):
                pointer = _field_pointer(schema, value["$field"], where, fail)
                if slot in AUTH_SECRET_SLOTS and pointer not in secret_fields:
                    raise fail(f"{where}: {pointer} holds a secret and must be listed in secret_fields")
            elif slot in AUTH_SECRET_SLOTS:
                raise fail(f"{where}: a secret must come from a configuration field, not the data file")
    auth_field = block.get("auth_field")
    if auth_field is not None:
        _field_pointer(schema, auth_field, "http.auth_field", fail)
        for slot in AUTH_SECRET_SLOTS:
            pointer = f"{auth_field}/{slot}"
            if _resolves(schema, pointer) and pointer not in secret_fields:
                raise fail(f"http.auth_field: {pointer} holds a secret and must be listed in secret_fields")
    proxy_defaults: dict[str, Any] = dict(block.get("proxy_defaults", {}))
    if proxy_defaults:
        limits = schema["properties"].get("proxy")
        if not isinstance(limits, Mapping):
            raise fail("http.proxy_defaults needs a 'proxy' property in the schema to check it against")
        if not SchemaValidator(limits, format_checker=FORMAT_CHECKER).is_valid(proxy_defaults):
            raise fail("http.proxy_defaults does not satisfy the schema's 'proxy' property")
    return HttpSpec(
        base_url=block.get("base_url"),
        base_url_field=base_url_field,
        auth=auth,
        auth_field=auth_field,
        headers=dict(block.get("headers", {})),
        healthcheck_path=block.get("healthcheck_path"),
        proxy_defaults=proxy_defaults,
    )


def _sql_spec(block: Mapping[str, Any], schema: Mapping[str, Any], fail: _Fail) -> SqlSpec:
    default_port = block.get("default_port")
    port = schema["properties"].get("port")
    if isinstance(port, Mapping) and "default" in port and port["default"] != default_port:
        raise fail("sql.default_port must equal the default of the schema's 'port' property")
    return SqlSpec(dialect=block["dialect"], default_port=default_port)
