"""The catalog of connection types.

Each type is a JSON data file in ``keyhole/connections/types/<id>.json``. A file describes what a
connection of that type is configured with (a JSON Schema, draft 2020-12), which configuration values
are secrets (JSON pointers), and how the type is used: ``http`` types are called through the proxy,
``sql`` types through the query runner.

Files are checked when loaded, and a malformed file fails loudly with :class:`CatalogError`.
Configurations are checked by :meth:`ConnectionType.validate`, which reports every problem with a
JSON-pointer field and a message that never repeats the submitted value (it could be a secret).
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import SchemaError

from keyhole.connections.secrets import format_pointer, parse_pointer
from keyhole.errors import NotFound, Unprocessable

__all__ = [
    "CAPABILITIES",
    "Catalog",
    "CatalogError",
    "ConnectionType",
    "HttpSpec",
    "SqlSpec",
    "load_catalog",
]

CAPABILITIES = ("source", "destination", "enrichment", "logging", "orchestration")
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
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SHOWN_ID_LENGTH = 64


class CatalogError(ValueError):
    """A connection type data file is malformed."""


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """How an ``http`` type is called. Exactly one of each pair (``base_url``/``base_url_field``,
    ``auth``/``auth_field``) is set. ``auth`` is an auth object whose string values may be
    ``{"$field": "/pointer"}`` references into the configuration; ``*_field`` are pointers."""

    base_url: str | None = None
    base_url_field: str | None = None
    auth: Mapping[str, Any] | None = None
    auth_field: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    healthcheck_path: str | None = None
    proxy_defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SqlSpec:
    """How a ``sql`` type is queried."""

    dialect: str
    default_port: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionType:
    """One connection type. Treat every mapping as read-only."""

    id: str
    name: str
    kind: Literal["http", "sql"]
    capabilities: Mapping[str, bool]
    logo_url: str
    logo_dark_url: str
    operations: tuple[str, ...]
    schema: Mapping[str, Any]
    secret_fields: tuple[str, ...]
    # Where the secrets go (base URL, OAuth endpoints, database host…): see connections.binding.
    target_fields: tuple[str, ...]
    http: HttpSpec | None = None
    sql: SqlSpec | None = None

    def validate(self, configuration: object) -> dict[str, Any]:
        """Check ``configuration`` against the schema; return a deep copy with defaults applied.

        Raises ``Unprocessable`` (key ``invalid_configuration``) whose metadata ``errors`` lists every
        problem as ``{"field": <JSON pointer>, "message": ...}``, sorted by field.
        """
        if not isinstance(configuration, Mapping):
            raise self._invalid([((), "must be an object")])
        instance: dict[str, Any] = copy.deepcopy(dict(configuration))
        validator = _Validator(self.schema, format_checker=_FORMAT_CHECKER)
        problems = [problem for error in validator.iter_errors(instance) for problem in _describe(error)]
        if problems:
            raise self._invalid(problems)
        _apply_defaults(self.schema, instance)
        return instance

    def _invalid(self, problems: Iterable[tuple[tuple[str | int, ...], str]]) -> Unprocessable:
        ordered = sorted(set(problems), key=lambda item: ([str(token) for token in item[0]], item[1]))
        errors = [{"field": format_pointer(path), "message": message} for path, message in ordered]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return Unprocessable(
            f"invalid configuration for connection type '{self.id}': "
            f"{first['field'] or 'the configuration'} {first['message']}{more}",
            key="invalid_configuration",
            metadata={"errors": errors},
        )


class Catalog:
    """The connection types, by id."""

    def __init__(self, types: Iterable[ConnectionType]) -> None:
        by_id: dict[str, ConnectionType] = {}
        for connection_type in types:
            if connection_type.id in by_id:
                raise CatalogError(f"duplicate connection type id {connection_type.id!r}")
            by_id[connection_type.id] = connection_type
        self._types = dict(sorted(by_id.items()))

    def get(self, type_id: str) -> ConnectionType:
        found = self._types.get(type_id) if isinstance(type_id, str) else None
        if found is None:
            raise NotFound(f"unknown connection type '{_shown_id(type_id)}'", key="unknown_connection_type")
        return found

    def all(self) -> list[ConnectionType]:
        """Every type, sorted by id."""
        return list(self._types.values())

    def __contains__(self, type_id: object) -> bool:
        return isinstance(type_id, str) and type_id in self._types

    def __len__(self) -> int:
        return len(self._types)


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


# --- configuration errors ------------------------------------------------------------------------

_Problem = tuple[tuple[str | int, ...], str]
_Fail = Callable[[str], CatalogError]


def _describe(error: ValidationError) -> list[_Problem]:
    """Turn one jsonschema error into ``(path, message)`` pairs whose messages never contain the
    instance value (jsonschema's own messages do, and the value may be a secret)."""
    path = tuple(error.absolute_path)
    keyword = error.validator
    value = error.validator_value
    instance = error.instance
    schema_path = list(error.relative_schema_path)
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        return [(path, f"has an invalid property name: {_message(keyword, value)}")]
    if keyword in ("oneOf", "anyOf"):
        return _describe_combinator(error, path)
    if keyword == "required" and isinstance(instance, dict):
        return [((*path, name), "is a required property") for name in value if name not in instance]
    if keyword == "additionalProperties" and isinstance(instance, dict) and isinstance(error.schema, Mapping):
        extras = _extra_properties(error.schema, instance)
        if extras:
            return [((*path, name), "is not an allowed property") for name in extras]
    return [(path, _message(keyword, value))]


def _describe_combinator(error: ValidationError, path: tuple[str | int, ...]) -> list[_Problem]:
    branches = error.validator_value
    instance = error.instance
    if isinstance(branches, list):
        discriminator = _discriminator(branches)
        if discriminator is not None and isinstance(instance, dict):
            name, values = discriminator
            if name not in instance:
                return [((*path, name), "is a required property")]
            chosen = [
                index for index, candidate in enumerate(values) if _json_equal(candidate, instance[name])
            ]
            if not chosen:
                return [((*path, name), "must be one of: " + ", ".join(_show(v) for v in values))]
            inner = [e for e in error.context or () if e.relative_schema_path[0] == chosen[0]]
            if inner:
                return [problem for e in inner for problem in _describe(e)]
        else:
            types = [branch.get("type") for branch in branches if isinstance(branch, Mapping)]
            if types and all(isinstance(t, str) for t in types) and len(types) == len(branches):
                checker = Draft202012Validator.TYPE_CHECKER
                if not any(checker.is_type(instance, t) for t in types):
                    return [(path, _message("type", list(dict.fromkeys(types))))]
    return [(path, _message(error.validator, branches))]


def _message(keyword: str | None, value: Any) -> str:
    """A message built from the keyword and the schema's value only."""
    match keyword:
        case "type":
            kinds = value if isinstance(value, list) else [value]
            return "must be of type " + " or ".join(str(kind) for kind in kinds)
        case "enum":
            return "must be one of: " + ", ".join(_show(option) for option in value)
        case "const":
            return f"must be equal to {_show(value)}"
        case "minLength":
            return f"must be at least {value} character{_plural(value)} long"
        case "maxLength":
            return f"must be at most {value} character{_plural(value)} long"
        case "pattern":
            return f"must match pattern {value}"
        case "format":
            return f"must be a valid {value}"
        case "minimum":
            return f"must be at least {value}"
        case "maximum":
            return f"must be at most {value}"
        case "exclusiveMinimum":
            return f"must be greater than {value}"
        case "exclusiveMaximum":
            return f"must be less than {value}"
        case "multipleOf":
            return f"must be a multiple of {value}"
        case "minProperties":
            return f"must have at least {value} propert{'y' if value == 1 else 'ies'}"
        case "maxProperties":
            return f"must have at most {value} propert{'y' if value == 1 else 'ies'}"
        case "minItems":
            return f"must have at least {value} item{_plural(value)}"
        case "maxItems":
            return f"must have at most {value} item{_plural(value)}"
        case "uniqueItems":
            return "must not contain duplicate items"
        case "contains" | "minContains" | "maxContains":
            return "does not contain the expected number of matching items"
        case "not":
            return "must not match the disallowed schema"
        case "required":
            return "is missing a required property"
        case "additionalProperties" | "unevaluatedProperties":
            return "contains properties that are not allowed"
        case "unevaluatedItems" | "items" | "prefixItems":
            return "contains items that are not allowed"
        case "dependentRequired":
            return "is missing a property required by another property"
        case "oneOf":
            return "must match exactly one of the allowed forms"
        case "anyOf":
            return "must match at least one of the allowed forms"
        case None:
            return "is not allowed"
        case _:
            return f"is invalid ({keyword})"


def _plural(count: Any) -> str:
    return "" if count == 1 else "s"


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _json_equal(left: Any, right: Any) -> bool:
    return isinstance(left, bool) == isinstance(right, bool) and bool(left == right)


def _extra_properties(schema: Mapping[str, Any], instance: Mapping[str, Any]) -> list[str]:
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        name
        for name in instance
        if name not in declared and not any(re.search(pattern, name) for pattern in patterns)
    ]


def _discriminator(branches: Sequence[Any]) -> tuple[str, list[Any]] | None:
    """The property every branch pins with a distinct ``const`` (``type`` preferred), if any."""
    names: set[str] | None = None
    for branch in branches:
        properties = branch.get("properties") if isinstance(branch, Mapping) else None
        if not isinstance(properties, Mapping):
            return None
        pinned = {name for name, sub in properties.items() if isinstance(sub, Mapping) and "const" in sub}
        names = pinned if names is None else names & pinned
    for name in sorted(names or (), key=lambda name: (name != "type", name)):
        values = [branch["properties"][name]["const"] for branch in branches]
        if len({json.dumps(v, sort_keys=True) for v in values}) == len(values):
            return name, values
    return None


def _apply_defaults(schema: Any, instance: Any) -> None:
    """Insert the ``default`` of every absent property whose parent object exists, recursively."""
    if not isinstance(schema, Mapping) or not isinstance(instance, dict):
        return
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            if name not in instance and isinstance(sub, Mapping) and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance:
                _apply_defaults(sub, instance[name])
    for branch in schema.get("allOf", ()):
        _apply_defaults(branch, instance)
    for keyword in ("oneOf", "anyOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list):
            _apply_defaults(_matching_branch(branches, instance), instance)


def _matching_branch(branches: list[Any], instance: dict[str, Any]) -> Any:
    discriminator = _discriminator(branches)
    if discriminator is not None:
        name, values = discriminator
        for branch, candidate in zip(branches, values, strict=True):
            if name in instance and _json_equal(candidate, instance[name]):
                return branch
        return None
    for branch in branches:
        if _Validator(branch, format_checker=_FORMAT_CHECKER).is_valid(instance):
            return branch
    return None


@functools.lru_cache(maxsize=256)
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """Compile a schema ``pattern`` with ECMA-262 anchoring.

    In ECMA-262 (what JSON Schema specifies) ``$`` matches only at the very end of the input, while
    Python's ``$`` also matches before a trailing newline, which would let ``"token\\n"`` through a
    ``^[^\\r\\n]*$`` pattern. Unescaped ``$`` outside character classes becomes ``\\Z``.
    """
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append("\\Z")
            continue
        out.append(char)
    return re.compile("".join(out))


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterable[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


# Draft 2020-12 with ECMA-262 ``$`` in ``pattern`` (and so in ``propertyNames`` patterns).
_Validator: Any = validators.extend(Draft202012Validator, {"pattern": _pattern_keyword})


def _is_uri(instance: object) -> bool:
    """An absolute URI (jsonschema checks ``uri`` only when an optional package is installed)."""
    if not isinstance(instance, str):
        return True
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in instance):
        return False
    try:
        parts = urlsplit(instance)
        _ = parts.port
    except ValueError:
        return False
    if not _URI_SCHEME.fullmatch(parts.scheme):
        return False
    return parts.scheme.lower() not in ("http", "https") or bool(parts.hostname)


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
    checker.checks("uri")(_is_uri)
    return checker


_FORMAT_CHECKER = _format_checker()


def _shown_id(type_id: object) -> str:
    text = type_id if isinstance(type_id, str) else f"<{type(type_id).__name__}>"
    shown = text[:_SHOWN_ID_LENGTH].encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return shown + ("..." if len(text) > _SHOWN_ID_LENGTH else "")


# --- data files ----------------------------------------------------------------------------------


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
        _Validator(_FILE_SCHEMA).iter_errors(document), key=lambda e: list(map(str, e.path))
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
            if not _Validator(candidate, format_checker=_FORMAT_CHECKER).is_valid(node["default"]):
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
        if not _Validator(limits, format_checker=_FORMAT_CHECKER).is_valid(proxy_defaults):
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
