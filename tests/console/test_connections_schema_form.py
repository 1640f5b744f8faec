"""The form generated from a connection type's JSON Schema, without a server: every catalog type
gets a labelled control per property, a stored configuration shown in the form and posted back
is the same configuration, byte for byte (secrets left blank are named, never shown; defaults it
leaves out stay out; a value the page cannot show, such as one holding the redaction placeholder,
is kept), what is secret is what the type lists, and what the form cannot say as a control it
takes as JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyhole.api.console import schema_form
from keyhole.api.console.endpoint import Form
from keyhole.connections.catalog import ConnectionType, HttpSpec
from keyhole.connections.secrets import join_secrets, redact, split_secrets
from keyhole.connections.type_files import load_catalog
from keyhole.errors import Unprocessable

CATALOG = load_catalog()

SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("api", {"url": "https://api.example.com"}),
    ("api", {"url": "https://api.example.com", "auth": {"type": "bearer", "token": "tok"}}),
    (
        "api",
        {
            "url": "https://api.example.com/v1",
            "auth": {"type": "header", "name": "X-Key", "value": "k"},
            "headers": {"X-Team": "data", "Accept": "application/json"},
            "query": {"region": "eu"},
            "healthcheck_path": "/status",
            "proxy": {"rate_limit_per_minute": None, "timeout_ms": 5000, "scrub_echoed_secrets": False},
        },
    ),
    (
        "api",
        {
            "url": "https://api.example.com",
            "auth": {
                "type": "oauth2",
                "grant": "client_credentials",
                "token_url": "https://id.example.com/token",
                "client_id": "cid",
                "client_secret": "cs",
                "scopes": ["read", "write"],
            },
        },
    ),
    ("github", {"token": "ghp_x"}),
    (
        "postgresql",
        {"hostname": "db.example.com", "port": 6432, "database": "app", "username": "u", "password": "p"},
    ),
    ("mysql", {"hostname": "db.example.com", "database": "app", "username": "u", "ssl_mode": "require"}),
    ("sqlite", {"path": "warehouse.db", "query": {"max_rows": 10, "read_only": False}}),
]


def _posted(
    form: schema_form.SchemaForm, values: dict[str, str], secrets: dict[str, str] | None = None
) -> Form:
    """What a browser posts of a form filled with ``values``: a checkbox only when checked."""
    boxes = {
        node.name
        for node in schema_form.all_nodes(form.nodes)
        if isinstance(node, schema_form.Control) and node.widget == "checkbox"
    }
    shown = [(name, value) for name, value in values.items() if name not in boxes or value == "on"]
    return Form([*shown, *(secrets or {}).items()])


@pytest.mark.parametrize("type_id", [connection_type.id for connection_type in CATALOG.all()])
def test_every_type_gets_a_labelled_control_per_property(type_id: str) -> None:
    form = schema_form.build(CATALOG.get(type_id))
    controls = [node for node in schema_form.all_nodes(form.nodes) if not isinstance(node, schema_form.Group)]
    assert controls
    assert len({control.name for control in controls}) == len(controls)
    assert len({control.id for control in controls}) == len(controls)
    assert all(control.label for control in controls)
    assert form.names() == {control.name for control in controls}
    secrets = {c.pointer for c in controls if isinstance(c, schema_form.Control) and c.widget == "secret"}
    assert secrets == set(CATALOG.get(type_id).secret_fields)


@pytest.mark.parametrize(("type_id", "configuration"), SAMPLES)
def test_a_stored_configuration_round_trips_through_the_form(
    type_id: str, configuration: dict[str, Any]
) -> None:
    connection_type = CATALOG.get(type_id)
    validated = connection_type.validate(configuration)
    public, secrets = split_secrets(validated, connection_type.secret_fields)
    form = schema_form.build(connection_type)
    shown = redact(public, secrets)
    values, kept = schema_form.stored_values(form, shown)
    assert all(value != "[REDACTED]" and value not in secrets.values() for value in values.values())

    blank = schema_form.read(form, _posted(form, values), shown)
    assert blank.problems == {}
    assert set(secrets) <= set(blank.blank_secrets)  # each stored secret left unchanged
    # Exactly what was stored: a group it leaves out (the proxy limits) stays out.
    assert connection_type.validate(join_secrets(blank.configuration, secrets)) == validated

    by_pointer = {
        node.pointer: node.name
        for node in schema_form.chosen_path(form, values)
        if isinstance(node, schema_form.Control)
    }
    assert {by_pointer[pointer] for pointer in secrets} == kept
    typed = schema_form.read(
        form, _posted(form, values, {by_pointer[p]: str(v) for p, v in secrets.items()}), shown
    )
    assert connection_type.validate(typed.configuration) == validated
    assert typed.blank_secrets == [pointer for pointer in blank.blank_secrets if pointer not in secrets]


def test_the_summary_says_set_and_never_the_secret() -> None:
    connection_type = CATALOG.get("api")
    public, secrets = split_secrets(
        {"url": "https://x.example", "auth": {"type": "basic", "username": "ada", "password": "pw-123"}},
        connection_type.secret_fields,
    )
    lines = schema_form.summary(schema_form.build(connection_type), redact(public, secrets))
    shown = {line.label: line.value for line in lines}
    assert shown["Authentication"] == "HTTP basic"
    assert shown["Authentication · Username"] == "ada"
    assert shown["Authentication · Password"] == "set"
    assert all("pw-123" not in line.value and "[REDACTED]" not in line.value for line in lines)


def _synthetic(schema: dict[str, Any], secret_fields: tuple[str, ...] = ()) -> ConnectionType:
    return ConnectionType(
        id="synthetic",
        name="Synthetic",
        kind="http",
        capabilities={},
        logo_url="",
        logo_dark_url="",
        operations=(),
        schema={"type": "object", **schema},
        secret_fields=secret_fields,
        target_fields=(),
    )


def test_what_no_control_can_say_is_taken_as_json() -> None:
    connection_type = _synthetic(
        {
            "properties": {
                "version": {"const": 2},
                "routes": {"type": "array", "items": {"type": "object"}},
                "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "level": {"enum": [1, 2, 3], "default": 2},
                "ratio": {"type": "number"},
                "flag": {"type": ["boolean", "null"]},
            },
        }
    )
    form = schema_form.build(connection_type)
    widgets = {
        node.pointer: node.widget
        for node in schema_form.all_nodes(form.nodes)
        if isinstance(node, schema_form.Control)
    }
    assert widgets == {
        "/routes": "json",
        "/either": "json",
        "/level": "select",
        "/ratio": "number",
        "/flag": "json",
    }
    assert schema_form.initial_values(form)["config/level"] == "2"
    reading = schema_form.read(
        form,
        _posted(
            form,
            {
                "config/routes": '[{"to": "/a"}]',
                "config/either": "7",
                "config/level": "3",
                "config/ratio": "0.5",
                "config/flag": "null",
            },
        ),
    )
    assert reading.configuration == {
        "version": 2,
        "routes": [{"to": "/a"}],
        "either": 7,
        "level": 3,
        "ratio": 0.5,
        "flag": None,
    }
    refused = schema_form.read(
        form,
        _posted(form, {"config/routes": "[", "config/level": "9", "config/ratio": "nan", "config/flag": ""}),
    )
    assert refused.problems == {
        "config/routes": "is not valid JSON",
        "config/level": "choose one of the options",
        "config/ratio": "must be a finite number",
    }


def test_service_problems_land_on_their_controls() -> None:
    connection_type = CATALOG.get("api")
    form = schema_form.build(connection_type)
    values = {"config/url": "x", "config/auth/type": "header"}
    error = Unprocessable(
        "invalid configuration",
        metadata={
            "errors": [
                {"field": "/url", "message": "must be a valid uri"},
                {"field": "/headers/X Bad", "message": "has an invalid property name"},
                {"field": "/auth/name", "message": "must match pattern"},
                {"field": "", "message": "must be an object"},
            ]
        },
    )
    assert schema_form.problems_of(form, values, error) == {
        "config/url": "must be a valid uri",
        "config/headers": "has an invalid property name",
        "config/auth/~:header/name": "must match pattern",
    }
    moved = Unprocessable("send the secret", metadata={"fields": ["/url"], "secrets": ["/auth/value"]})
    assert schema_form.problems_of(form, values, moved) == {
        "config/auth/~:header/value": "type it again: where the credential goes has changed"
    }


def test_a_proxy_limit_starts_from_the_types_own_default() -> None:
    api = CATALOG.get("api")
    tuned = replace(
        api, http=HttpSpec(base_url_field="/url", auth_field="/auth", proxy_defaults={"timeout_ms": 5000})
    )
    values = schema_form.initial_values(schema_form.build(tuned))
    assert values["config/proxy/timeout_ms"] == "5000"
    assert values["config/proxy/rate_limit_per_minute"] == "600"  # the schema's, where the type sets none
    stored, _ = schema_form.stored_values(schema_form.build(tuned), {"url": "https://x.example"})
    assert stored["config/proxy/timeout_ms"] == "5000"


def _widgets(form: schema_form.SchemaForm) -> dict[str, str]:
    return {
        node.pointer: node.widget
        for node in schema_form.all_nodes(form.nodes)
        if isinstance(node, schema_form.Control)
    }


def test_what_is_secret_is_what_the_type_lists_whatever_its_json_type() -> None:
    connection_type = _synthetic(
        {
            "properties": {
                "pin": {"type": "integer", "writeOnly": True},
                "keys": {"type": "object", "properties": {"a": {"type": "string"}}},
                "shown": {"type": "string", "format": "password"},
                "marked": {"type": "string", "writeOnly": True},
            },
        },
        secret_fields=("/pin", "/keys"),
    )
    form = schema_form.build(connection_type)
    assert _widgets(form) == {"/pin": "secret", "/keys": "secret", "/shown": "text", "/marked": "text"}
    reading = schema_form.read(
        form, Form([("config/pin", "1234"), ("config/keys", '{"a": "x"}'), ("config/shown", "plain")])
    )
    assert reading.configuration == {"pin": 1234, "keys": {"a": "x"}, "shown": "plain"}
    wrong = schema_form.read(form, Form([("config/pin", "12a"), ("config/keys", "{")]))
    assert wrong.problems == {"config/pin": "must be a whole number", "config/keys": "is not valid JSON"}
    values, kept = schema_form.stored_values(
        form, {"pin": "[REDACTED]", "keys": "[REDACTED]", "shown": "plain", "marked": "m"}
    )
    assert values == {"config/shown": "plain", "config/marked": "m"}
    assert kept == {"config/pin", "config/keys"}
    blank = schema_form.read(form, Form([("config/pin", ""), ("config/keys", "")]))
    assert blank.blank_secrets == ["/pin", "/keys"] and blank.configuration == {}


def test_a_value_holding_the_placeholder_is_kept_when_left_empty() -> None:
    connection_type = CATALOG.get("api")
    form = schema_form.build(connection_type)
    stored = {
        "url": "https://api.example.com",
        "auth": {"type": "none"},
        "headers": {"X-Trace": "[REDACTED]", "Accept": "json"},
    }
    values, kept = schema_form.stored_values(form, stored)
    assert "config/headers" not in values and kept == {"config/headers"}
    untouched = schema_form.read(form, _posted(form, {**values, "config/headers": ""}), stored)
    assert untouched.problems == {}
    assert untouched.configuration["headers"] == {"X-Trace": "[REDACTED]", "Accept": "json"}
    replaced = schema_form.read(form, _posted(form, {**values, "config/headers": "Accept: xml"}), stored)
    assert replaced.configuration["headers"] == {"Accept": "xml"}
    lines = {line.label: line.value for line in schema_form.summary(form, stored)}
    assert lines["Extra headers"] == "(not shown here)"


def test_defaults_left_as_they_are_stay_out_of_the_configuration() -> None:
    connection_type = CATALOG.get("api")
    form = schema_form.build(connection_type)
    stored = {"url": "https://api.example.com", "auth": {"type": "none"}}
    values, _ = schema_form.stored_values(form, stored)
    assert values["config/proxy/timeout_ms"] == "30000"  # what applies, shown
    assert values["config/proxy/scrub_echoed_secrets"] == "on"
    renamed = schema_form.read(form, _posted(form, values), stored)
    assert renamed.configuration == stored
    new = schema_form.read(form, _posted(form, schema_form.initial_values(form)), {})
    assert "proxy" not in new.configuration

    # A changed limit writes the group, with what the form showed for the others.
    tuned = schema_form.read(form, _posted(form, {**values, "config/proxy/timeout_ms": "5000"}), stored)
    assert tuned.configuration["proxy"]["timeout_ms"] == 5000
    assert tuned.configuration["proxy"]["rate_limit_per_minute"] == 600
    unchecked = schema_form.read(
        form, _posted(form, {**values, "config/proxy/scrub_echoed_secrets": ""}), stored
    )
    assert unchecked.configuration["proxy"]["scrub_echoed_secrets"] is False
    # A key the configuration holds is written even when it holds the default.
    held = {**stored, "proxy": {"timeout_ms": 30000}}
    kept = schema_form.read(form, _posted(form, schema_form.stored_values(form, held)[0]), held)
    assert kept.configuration["proxy"]["timeout_ms"] == 30000


# -- an edit writes back exactly what is stored --------------------------------------------------

_PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
_PAD = st.text(" \t", max_size=2)  # what HTTP values may start or end with
_TOKEN = st.from_regex(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,24}", fullmatch=True)  # a header name


def _padded(core: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(_PAD, core, _PAD).map("".join)


_WORDS = st.text(_PRINTABLE, min_size=1, max_size=16).filter(str.strip)
_AUTH = st.one_of(
    st.just({"type": "none"}),
    st.fixed_dictionaries({"type": st.just("header"), "name": _TOKEN, "value": _padded(_WORDS)}),
    st.fixed_dictionaries(
        {
            "type": st.just("oauth2"),
            "grant": st.sampled_from(["authorization_code", "client_credentials"]),
            "token_url": st.just("https://id.example.com/token"),
            "client_id": _padded(_WORDS),
            "client_secret": _padded(_WORDS),
            "scopes": st.lists(st.from_regex(r"[!#-\[\]-~]{1,16}", fullmatch=True), min_size=1, max_size=5),
        }
    ),
)
_API_CONFIGURATIONS = st.fixed_dictionaries(
    {"url": st.sampled_from(["https://api.example.com", "http://10.0.0.1:8080/v1"]), "auth": _AUTH},
    optional={
        "headers": st.dictionaries(_TOKEN, _padded(st.text(_PRINTABLE, max_size=16)), min_size=1, max_size=4),
        "query": st.dictionaries(
            st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters=":"))
            .filter(str.strip)
            .map(lambda name: name[:64]),
            _padded(st.text(_PRINTABLE, max_size=16)),
            min_size=1,
            max_size=4,
        ),
        "healthcheck_path": _padded(st.text(_PRINTABLE, max_size=16)).map(lambda path: f"/{path}"),
    },
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(configuration=_API_CONFIGURATIONS)
def test_an_edit_writes_back_exactly_what_is_stored(configuration: dict[str, Any]) -> None:
    connection_type = CATALOG.get("api")
    validated = connection_type.validate(configuration)
    public, secrets = split_secrets(validated, connection_type.secret_fields)
    form = schema_form.build(connection_type)
    shown = redact(public, secrets)
    values, kept = schema_form.stored_values(form, shown)
    secret_names = {
        node.name
        for node in schema_form.chosen_path(form, values)
        if isinstance(node, schema_form.Control) and node.pointer in secrets
    }
    assert kept == secret_names  # every other value is shown, spaces and all

    blank = schema_form.read(form, _posted(form, values), shown)
    assert blank.problems == {}
    assert connection_type.validate(join_secrets(blank.configuration, secrets)) == validated


def test_text_is_read_as_typed() -> None:
    form = schema_form.build(CATALOG.get("api"))
    reading = schema_form.read(
        form,
        _posted(
            form,
            {
                "config/url": "https://api.example.com",
                "config/auth/type": "oauth2",
                "config/auth/~:oauth2/client_id": " cid ",
                "config/auth/~:oauth2/scopes": "read\r\n\r\nwrite\u2028all",
                "config/headers": "X-A:  padded \r\nX-B:tight\nX-C: a: b\n\n",
                "config/query": " q : v\u0085w",
            },
        ),
    )
    assert reading.problems == {}
    configuration = reading.configuration
    assert configuration["auth"]["client_id"] == " cid "
    assert configuration["auth"]["scopes"] == ["read", "write\u2028all"]
    assert configuration["headers"] == {"X-A": " padded ", "X-B": "tight", "X-C": "a: b"}
    assert configuration["query"] == {" q ": "v\u0085w"}


def test_a_value_the_page_would_change_is_kept_instead_of_shown() -> None:
    connection_type = CATALOG.get("api")
    form = schema_form.build(connection_type)
    stored = {
        "url": "https://api.example.com",
        "auth": {"type": "none"},
        "healthcheck_path": "/status\n",  # a one-line input drops line breaks
        "query": {"a:b": "c"},  # a line's name ends at its first colon
        "headers": {"X-A": "kept"},
    }
    values, kept = schema_form.stored_values(form, stored)
    assert kept == {"config/healthcheck_path", "config/query"}
    assert "config/healthcheck_path" not in values and "config/query" not in values
    assert values["config/headers"] == "X-A: kept"
    renamed = schema_form.read(form, _posted(form, values), stored)
    assert renamed.problems == {} and renamed.configuration == stored
    typed = schema_form.read(form, _posted(form, {**values, "config/query": "a: b"}), stored)
    assert typed.configuration["query"] == {"a": "b"}
    assert typed.configuration["healthcheck_path"] == "/status\n"

    multiline = {"url": "https://api.example.com", "query": {"note": "two\nlines", "b": ""}}
    values, kept = schema_form.stored_values(form, multiline)
    assert kept == {"config/query"}
    assert (
        schema_form.read(form, _posted(form, values), multiline).configuration["query"] == multiline["query"]
    )


def test_a_number_reads_back_as_the_json_number_it_was() -> None:
    form = schema_form.build(_synthetic({"properties": {"ratio": {"type": "number"}}}))
    for stored in ({"ratio": 2}, {"ratio": 2.0}, {"ratio": 0.25}):
        values, kept = schema_form.stored_values(form, stored)
        assert not kept
        read_back = schema_form.read(form, _posted(form, values), stored).configuration
        assert read_back == stored and type(read_back["ratio"]) is type(stored["ratio"])
