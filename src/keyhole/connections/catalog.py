"""The catalog of connection types: the type model, its configuration check and the registry.

A type says what a connection of that type is configured with (a JSON Schema, draft 2020-12), which
configuration values are secrets (JSON pointers), and how the type is used: ``http`` types are called
through the proxy, ``sql`` types through the query runner. The types are read from JSON data files
by :mod:`keyhole.connections.type_files`.

Configurations are checked by :meth:`ConnectionType.validate`, which reports every problem with a
JSON-pointer field and a message that never repeats the submitted value (it could be a secret; see
:mod:`keyhole.connections.schema_errors`).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from keyhole.connections.schema_errors import Problem, describe, discriminator, json_equal
from keyhole.connections.secrets import format_pointer
from keyhole.errors import NotFound, Unprocessable

__all__ = [
    "CAPABILITIES",
    "FORMAT_CHECKER",
    "Catalog",
    "CatalogError",
    "ConnectionType",
    "HttpSpec",
    "SchemaValidator",
    "SqlSpec",
]

CAPABILITIES = ("source", "destination", "enrichment", "logging", "orchestration")

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
        validator = SchemaValidator(self.schema, format_checker=FORMAT_CHECKER)
        problems = [problem for error in validator.iter_errors(instance) for problem in describe(error)]
        if problems:
            raise self._invalid(problems)
        _apply_defaults(self.schema, instance)
        return instance

    def _invalid(self, problems: Iterable[Problem]) -> Unprocessable:
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
    pinned = discriminator(branches)
    if pinned is not None:
        name, values = pinned
        for branch, candidate in zip(branches, values, strict=True):
            if name in instance and json_equal(candidate, instance[name]):
                return branch
        return None
    for branch in branches:
        if SchemaValidator(branch, format_checker=FORMAT_CHECKER).is_valid(instance):
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
SchemaValidator: Any = validators.extend(Draft202012Validator, {"pattern": _pattern_keyword})


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


FORMAT_CHECKER = _format_checker()
"""The formats checked in configurations and type files: jsonschema's, with ``uri`` always on."""


def _shown_id(type_id: object) -> str:
    text = type_id if isinstance(type_id, str) else f"<{type(type_id).__name__}>"
    shown = text[:_SHOWN_ID_LENGTH].encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return shown + ("..." if len(text) > _SHOWN_ID_LENGTH else "")
