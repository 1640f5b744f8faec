"""Secret-safe messages for configurations that fail their JSON Schema.

jsonschema's own messages repeat the instance value, and a configuration value may be a secret, so
each error becomes ``(path, message)`` pairs built from the keyword and the schema's value only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

__all__ = ["Problem", "describe", "discriminator", "json_equal"]

Problem = tuple[tuple[str | int, ...], str]
"""A JSON path into the configuration and what is wrong there."""


def describe(error: ValidationError) -> list[Problem]:
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


def _describe_combinator(error: ValidationError, path: tuple[str | int, ...]) -> list[Problem]:
    branches = error.validator_value
    instance = error.instance
    if isinstance(branches, list):
        pinned = discriminator(branches)
        if pinned is not None and isinstance(instance, dict):
            name, values = pinned
            if name not in instance:
                return [((*path, name), "is a required property")]
            chosen = [
                index for index, candidate in enumerate(values) if json_equal(candidate, instance[name])
            ]
            if not chosen:
                return [((*path, name), "must be one of: " + ", ".join(_show(v) for v in values))]
            inner = [e for e in error.context or () if e.relative_schema_path[0] == chosen[0]]
            if inner:
                return [problem for e in inner for problem in describe(e)]
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


def json_equal(left: Any, right: Any) -> bool:
    return isinstance(left, bool) == isinstance(right, bool) and bool(left == right)


def _extra_properties(schema: Mapping[str, Any], instance: Mapping[str, Any]) -> list[str]:
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        name
        for name in instance
        if name not in declared and not any(re.search(pattern, name) for pattern in patterns)
    ]


def discriminator(branches: Sequence[Any]) -> tuple[str, list[Any]] | None:
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
