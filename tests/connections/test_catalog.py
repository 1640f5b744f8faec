from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keyhole.connections.catalog import (
    CAPABILITIES,
    Catalog,
    CatalogError,
    ConnectionType,
)
from keyhole.connections.type_files import load_catalog
from keyhole.errors import NotFound, Unprocessable

TYPES_DIR = Path(__file__).resolve().parents[2] / "src" / "keyhole" / "connections" / "types"
EXPECTED_IDS = [
    "api",
    "duckdb",
    "github",
    "hubspot",
    "mysql",
    "notion",
    "openai",
    "postgresql",
    "slack",
    "sqlite",
    "stripe",
]
TOP_LEVEL_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def errors_of(connection_type: ConnectionType, configuration: object) -> list[dict[str, str]]:
    with pytest.raises(Unprocessable) as caught:
        connection_type.validate(configuration)
    assert caught.value.key == "invalid_configuration"
    assert caught.value.status == 422
    errors: list[dict[str, str]] = caught.value.metadata["errors"]
    assert errors, "an invalid configuration must list at least one error"
    assert errors == sorted(errors, key=lambda e: (e["field"].split("/"), e["message"]))
    return errors


def fields_of(connection_type: ConnectionType, configuration: object) -> set[str]:
    return {error["field"] for error in errors_of(connection_type, configuration)}


# --- the data files --------------------------------------------------------------------------------


def test_every_file_loads(catalog: Catalog) -> None:
    assert [t.id for t in catalog.all()] == EXPECTED_IDS
    assert sorted(p.stem for p in TYPES_DIR.glob("*.json")) == EXPECTED_IDS
    assert [t.id for t in load_catalog(TYPES_DIR).all()] == EXPECTED_IDS


@pytest.mark.parametrize("type_id", EXPECTED_IDS)
def test_file_has_exactly_the_documented_keys(type_id: str) -> None:
    document = json.loads((TYPES_DIR / f"{type_id}.json").read_text())
    common = {
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
    }
    assert set(document) == common | {document["kind"]}


@pytest.mark.parametrize("type_id", EXPECTED_IDS)
def test_capabilities_are_five_booleans(catalog: Catalog, type_id: str) -> None:
    connection_type = catalog.get(type_id)
    assert (
        set(connection_type.capabilities)
        == set(CAPABILITIES)
        == {
            "source",
            "destination",
            "enrichment",
            "logging",
            "orchestration",
        }
    )
    assert all(isinstance(v, bool) for v in connection_type.capabilities.values())
    assert connection_type.capabilities["source"] is (connection_type.kind == "sql")


@pytest.mark.parametrize("type_id", EXPECTED_IDS)
def test_schema_top_level_is_client_safe(catalog: Catalog, type_id: str) -> None:
    schema = catalog.get(type_id).schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert isinstance(schema["title"], str) and schema["title"]
    assert schema["type"] == "object"
    assert not any(keyword in schema for keyword in TOP_LEVEL_NUMERIC)


@pytest.mark.parametrize("type_id", EXPECTED_IDS)
def test_kind_specific_blocks(catalog: Catalog, type_id: str) -> None:
    connection_type = catalog.get(type_id)
    if connection_type.kind == "http":
        assert connection_type.operations == ("proxy",)
        assert connection_type.http is not None and connection_type.sql is None
        assert (connection_type.http.base_url is None) != (connection_type.http.base_url_field is None)
        assert (connection_type.http.auth is None) != (connection_type.http.auth_field is None)
    else:
        assert connection_type.operations == ("query",)
        assert connection_type.sql is not None and connection_type.http is None
        assert connection_type.sql.dialect == type_id


def test_preset_details(catalog: Catalog) -> None:
    github = catalog.get("github")
    assert github.http is not None
    assert github.http.base_url == "https://api.github.com"
    assert github.http.auth == {"type": "bearer", "token": {"$field": "/token"}}
    assert github.http.headers == {"Accept": "application/vnd.github+json"}
    assert github.http.healthcheck_path == "/user"
    assert github.secret_fields == ("/token",)
    notion = catalog.get("notion")
    assert notion.http is not None and notion.http.headers == {"Notion-Version": "2022-06-28"}
    assert catalog.get("stripe").secret_fields == ("/api_key",)
    assert catalog.get("hubspot").secret_fields == ("/access_token",)
    assert catalog.get("mysql").name == "MySQL / MariaDB"
    assert catalog.get("postgresql").secret_fields == ("/password",)
    assert catalog.get("sqlite").secret_fields == ()
    api = catalog.get("api")
    assert api.http is not None
    assert api.http.base_url_field == "/url" and api.http.auth_field == "/auth"
    assert set(api.secret_fields) == {"/auth/token", "/auth/password", "/auth/value", "/auth/client_secret"}


def test_unknown_type_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as caught:
        catalog.get("nope")
    assert caught.value.key == "unknown_connection_type"
    assert caught.value.status == 404
    assert "'nope'" in caught.value.message


def test_unknown_type_id_is_sanitized(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as caught:
        catalog.get("a" * 500 + "'\n\x00")
    message = caught.value.message
    assert len(message) < 120
    assert "\n" not in message and "\x00" not in message
    with pytest.raises(NotFound):
        catalog.get(["not", "a", "string"])  # type: ignore[arg-type]
    assert "api" in catalog and "nope" not in catalog and len(catalog) == len(EXPECTED_IDS)


# --- validating configurations -----------------------------------------------------------------------


def test_api_defaults(catalog: Catalog) -> None:
    api = catalog.get("api")
    given: dict[str, Any] = {"url": "https://example.com/v1"}
    assert api.validate(given) == {"url": "https://example.com/v1", "auth": {"type": "none"}}
    assert given == {"url": "https://example.com/v1"}, "the input must not be modified"
    with_proxy = api.validate({"url": "https://example.com", "proxy": {"timeout_ms": 1000}})
    assert with_proxy["proxy"] == {
        "rate_limit_per_minute": 600,
        "timeout_ms": 1000,
        "max_request_body_bytes": 262144,
        "max_response_body_bytes": 1048576,
        "scrub_echoed_secrets": True,
        "max_async_body_bytes": 1073741824,
    }


def test_api_returns_a_deep_copy(catalog: Catalog) -> None:
    given = {"url": "https://example.com", "headers": {"X-A": "1"}}
    result = catalog.get("api").validate(given)
    result["headers"]["X-A"] = "2"
    assert given["headers"] == {"X-A": "1"}


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "none"},
        {"type": "bearer", "token": "t"},
        {"type": "basic", "username": "u", "password": ""},
        {"type": "header", "name": "X-Api-Key", "value": "v"},
        {"type": "query", "name": "api_key", "value": "v"},
    ],
)
def test_api_accepts_each_auth_form(catalog: Catalog, auth: dict[str, str]) -> None:
    result = catalog.get("api").validate({"url": "http://localhost:8080", "auth": auth})
    assert result["auth"] == auth


def test_api_full_configuration(catalog: Catalog) -> None:
    configuration = {
        "url": "https://api.example.com",
        "auth": {"type": "bearer", "token": "abc"},
        "headers": {"Accept": "application/json"},
        "query": {"version": "2"},
        "healthcheck_path": "/health",
        "proxy": {
            "rate_limit_per_minute": 1,
            "timeout_ms": 100,
            "max_request_body_bytes": 0,
            "max_response_body_bytes": 1024,
            "scrub_echoed_secrets": False,
            "max_async_body_bytes": 2048,
        },
    }
    assert catalog.get("api").validate(configuration) == configuration


def test_api_missing_url(catalog: Catalog) -> None:
    errors = errors_of(catalog.get("api"), {})
    assert errors == [{"field": "/url", "message": "is a required property"}]


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ({"url": 5}, {"/url"}),
        ({"url": "ftp://example.com"}, {"/url"}),
        ({"url": "https://exa mple.com"}, {"/url"}),
        ({"url": "https://x", "headers": {"A": 1}}, {"/headers/A"}),
        ({"url": "https://x", "headers": []}, {"/headers"}),
        ({"url": "https://x", "query": {"a": ["b"]}}, {"/query/a"}),
        ({"url": "https://x", "healthcheck_path": "health"}, {"/healthcheck_path"}),
        ({"url": "https://x", "proxy": {"timeout_ms": "1000"}}, {"/proxy/timeout_ms"}),
        ({"url": "https://x", "proxy": {"timeout_ms": 99}}, {"/proxy/timeout_ms"}),
        (
            {"url": "https://x", "proxy": {"rate_limit_per_minute": 100_000_001}},
            {"/proxy/rate_limit_per_minute"},
        ),
        ({"url": "https://x", "proxy": {"scrub_echoed_secrets": "yes"}}, {"/proxy/scrub_echoed_secrets"}),
        ({"url": "https://x", "proxy": {"burst": 1}}, {"/proxy/burst"}),
        ({"url": "https://x", "auth": "bearer"}, {"/auth"}),
        ({"url": "https://x", "auth": {}}, {"/auth/type"}),
        ({"url": "https://x", "auth": {"type": "oauth"}}, {"/auth/type"}),
        (
            {"url": 1, "auth": {"type": "basic", "username": "u"}, "extra": True},
            {"/url", "/auth/password", "/extra"},
        ),
    ],
)
def test_api_error_fields(catalog: Catalog, configuration: dict[str, Any], expected: set[str]) -> None:
    assert fields_of(catalog.get("api"), configuration) == expected


def test_api_lists_every_error(catalog: Catalog) -> None:
    errors = errors_of(
        catalog.get("api"),
        {"url": 1, "headers": {"A": 1, "B": 2}, "proxy": {"timeout_ms": 1, "max_rows": 3}},
    )
    assert [e["field"] for e in errors] == [
        "/headers/A",
        "/headers/B",
        "/proxy/max_rows",
        "/proxy/timeout_ms",
        "/url",
    ]


def test_api_unknown_top_level_key(catalog: Catalog) -> None:
    errors = errors_of(catalog.get("api"), {"url": "https://x", "token": "abc"})
    assert errors == [{"field": "/token", "message": "is not an allowed property"}]


def test_api_bearer_without_token(catalog: Catalog) -> None:
    errors = errors_of(catalog.get("api"), {"url": "https://x", "auth": {"type": "bearer"}})
    assert errors == [{"field": "/auth/token", "message": "is a required property"}]


def test_api_auth_extra_field_rejected(catalog: Catalog) -> None:
    fields = fields_of(catalog.get("api"), {"url": "https://x", "auth": {"type": "none", "token": "t"}})
    assert fields == {"/auth/token"}


@pytest.mark.parametrize("name", ["bad name", "", "X:Y", "x" * 129, "Ünïcode", "X-Key\n", "X-Key\r\n"])
def test_api_bad_header_name(catalog: Catalog, name: str) -> None:
    api = catalog.get("api")
    auth = {"type": "header", "name": name, "value": "v"}
    assert fields_of(api, {"url": "https://x", "auth": auth}) == {"/auth/name"}
    assert fields_of(api, {"url": "https://x", "headers": {name: "v"}}) == {"/headers"}


def test_api_header_value_without_line_breaks(catalog: Catalog) -> None:
    api = catalog.get("api")
    auth = {"type": "header", "name": "X-Key", "value": "a\r\nX-Evil: 1"}
    assert fields_of(api, {"url": "https://x", "auth": auth}) == {"/auth/value"}
    assert fields_of(api, {"url": "https://x", "headers": {"X-A": "a\nb"}}) == {"/headers/X-A"}


@pytest.mark.parametrize("value", ["tok\n", "tok\r", "\ntok", "to\x00k"])
def test_trailing_newline_does_not_pass_anchored_patterns(catalog: Catalog, value: str) -> None:
    # Python's ``$`` matches before a final newline; JSON Schema patterns are ECMA-262, where it does not.
    assert fields_of(catalog.get("github"), {"token": value}) == {"/token"}
    auth = {"type": "bearer", "token": value}
    assert fields_of(catalog.get("api"), {"url": "https://x", "auth": auth}) == {"/auth/token"}


def test_url_pattern_and_format(catalog: Catalog) -> None:
    api = catalog.get("api")
    for url in ["https://example.com", "http://127.0.0.1:8080/base", "https://[::1]/x"]:
        assert api.validate({"url": url})["url"] == url
    for url in ["https://", "https://x:99999", "example.com", "HTTPS://x", "https://x\n"]:
        assert fields_of(api, {"url": url}) == {"/url"}, url


def test_api_too_many_headers(catalog: Catalog) -> None:
    headers = {f"X-H{i}": "v" for i in range(51)}
    assert fields_of(catalog.get("api"), {"url": "https://x", "headers": headers}) == {"/headers"}


@pytest.mark.parametrize(
    ("type_id", "configuration", "secret"),
    [
        ("api", {"url": "https://x", "auth": {"type": "bearer", "token": 12345678}}, "12345678"),
        ("api", {"url": "https://x", "auth": {"type": "bearer", "token": "s3cr3t" * 2000}}, "s3cr3t"),
        ("api", {"url": "https://x", "auth": {"type": "bearer", "token": "s3cr3t\n"}}, "s3cr3t"),
        (
            "api",
            {"url": "https://x", "auth": {"type": "basic", "username": 1, "password": 12345678}},
            "12345678",
        ),
        ("api", {"url": "https://x", "auth": {"type": "header", "name": "X", "value": ["s3cr3t"]}}, "s3cr3t"),
        ("api", {"url": "https://x", "auth": {"type": "qurey", "value": "s3cr3t"}}, "s3cr3t"),
        ("api", {"url": "https://x", "auth": ["s3cr3t"]}, "s3cr3t"),
        ("api", {"url": "https://x", "headers": {"Authorization": 12345678}}, "12345678"),
        ("github", {"token": 12345678}, "12345678"),
        ("github", {"token": "s3cr3t" * 2000}, "s3cr3t"),
        ("github", {"token": "s3cr3t", "proxy": {"timeout_ms": "s3cr3t"}}, "s3cr3t"),
        ("postgresql", {"hostname": "h", "database": "d", "username": "u", "password": 12345678}, "12345678"),
        (
            "postgresql",
            {"hostname": "h", "database": "d", "username": "u", "password": "s3cr3t" * 2000},
            "s3cr3t",
        ),
    ],
)
def test_secret_never_in_errors(
    catalog: Catalog, type_id: str, configuration: dict[str, Any], secret: str
) -> None:
    with pytest.raises(Unprocessable) as caught:
        catalog.get(type_id).validate(configuration)
    error = caught.value
    assert secret not in error.message
    assert secret not in str(error)
    assert secret not in json.dumps(error.metadata)


@pytest.mark.parametrize("configuration", [None, "x", 1, [], ["url"], True])
def test_non_object_configuration(catalog: Catalog, configuration: object) -> None:
    errors = errors_of(catalog.get("api"), configuration)
    assert errors == [{"field": "", "message": "must be an object"}]


@pytest.mark.parametrize(
    ("type_id", "field"), [("github", "token"), ("stripe", "api_key"), ("hubspot", "access_token")]
)
def test_presets(catalog: Catalog, type_id: str, field: str) -> None:
    preset = catalog.get(type_id)
    assert preset.schema["properties"][field]["writeOnly"] is True
    assert preset.validate({field: "abc"}) == {field: "abc"}
    assert fields_of(preset, {}) == {f"/{field}"}
    assert fields_of(preset, {field: ""}) == {f"/{field}"}
    assert fields_of(preset, {field: "abc", "url": "https://evil.example"}) == {"/url"}
    assert preset.validate({field: "abc", "proxy": {}})["proxy"]["rate_limit_per_minute"] == 600


def test_postgresql_defaults(catalog: Catalog) -> None:
    configuration = {"hostname": "db.internal", "database": "app", "username": "reader", "password": "pw"}
    assert catalog.get("postgresql").validate(configuration) == {
        **configuration,
        "port": 5432,
        "ssl_mode": "prefer",
    }
    result = catalog.get("mysql").validate({**configuration, "query": {}})
    assert result["port"] == 3306
    assert result["query"] == {
        "statement_timeout_ms": 300000,
        "max_rows": 1000000,
        "max_bytes": 268435456,
        "read_only": True,
    }


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ({"database": "d", "username": "u"}, {"/hostname"}),
        ({"hostname": "h", "database": "d", "username": "u", "port": 70000}, {"/port"}),
        ({"hostname": "h", "database": "d", "username": "u", "port": 0}, {"/port"}),
        ({"hostname": "h", "database": "d", "username": "u", "port": "5432"}, {"/port"}),
        ({"hostname": "h", "database": "d", "username": "u", "ssl_mode": "allow"}, {"/ssl_mode"}),
        ({"hostname": "", "database": "d", "username": "u"}, {"/hostname"}),
        ({"hostname": "h x", "database": "d", "username": "u"}, {"/hostname"}),
        ({"hostname": "h", "database": "d", "username": "u", "query": {"max_rows": 0}}, {"/query/max_rows"}),
        (
            {"hostname": "h", "database": "d", "username": "u", "query": {"read_only": 1}},
            {"/query/read_only"},
        ),
        ({"port": 70000}, {"/database", "/hostname", "/port", "/username"}),
    ],
)
def test_postgresql_errors(catalog: Catalog, configuration: dict[str, Any], expected: set[str]) -> None:
    assert fields_of(catalog.get("postgresql"), configuration) == expected


def test_postgresql_messages(catalog: Catalog) -> None:
    errors = errors_of(
        catalog.get("postgresql"), {"database": "d", "username": "u", "port": 70000, "ssl_mode": "x"}
    )
    assert errors == [
        {"field": "/hostname", "message": "is a required property"},
        {"field": "/port", "message": "must be at most 65535"},
        {"field": "/ssl_mode", "message": "must be one of: disable, prefer, require, verify-full"},
    ]


@pytest.mark.parametrize("type_id", ["sqlite", "duckdb"])
def test_file_databases(catalog: Catalog, type_id: str) -> None:
    file_type = catalog.get(type_id)
    assert file_type.validate({"path": "/data/db"}) == {"path": "/data/db"}
    assert fields_of(file_type, {}) == {"/path"}
    assert fields_of(file_type, {"path": "x", "password": "p"}) == {"/password"}


# --- malformed data files fail loudly ----------------------------------------------------------------


def _github() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((TYPES_DIR / "github.json").read_text())
    return document


def _write(tmp_path: Path, document: dict[str, Any], name: str = "github") -> Path:
    (tmp_path / f"{name}.json").write_text(json.dumps(document))
    return tmp_path


def test_loads_a_valid_copy(tmp_path: Path) -> None:
    assert [t.id for t in load_catalog(_write(tmp_path, _github())).all()] == ["github"]


def _bad_secret_pointer(d: dict[str, Any]) -> None:
    d["secret_fields"] = ["/nope"]


def _missing_secret(d: dict[str, Any]) -> None:
    d["secret_fields"] = []


def _numeric_top_level(d: dict[str, Any]) -> None:
    d["schema"]["minimum"] = 1


def _type_list(d: dict[str, Any]) -> None:
    d["schema"]["type"] = ["object"]


def _invalid_schema(d: dict[str, Any]) -> None:
    d["schema"]["properties"]["token"]["minLength"] = "one"


def _wrong_dialect(d: dict[str, Any]) -> None:
    d["schema"]["$schema"] = "http://json-schema.org/draft-07/schema#"


def _missing_capability(d: dict[str, Any]) -> None:
    del d["capabilities"]["logging"]


def _extra_key(d: dict[str, Any]) -> None:
    d["extra"] = 1


def _literal_secret(d: dict[str, Any]) -> None:
    d["http"]["auth"]["token"] = "hard-coded"


def _auth_field_unknown(d: dict[str, Any]) -> None:
    d["http"]["auth"]["token"] = {"$field": "/nope"}


def _both_base_urls(d: dict[str, Any]) -> None:
    d["http"]["base_url_field"] = "/token"


def _sql_block_on_http(d: dict[str, Any]) -> None:
    d["sql"] = {"dialect": "postgresql"}


def _bad_default(d: dict[str, Any]) -> None:
    d["schema"]["properties"]["proxy"]["properties"]["timeout_ms"]["default"] = 1


def _bad_proxy_defaults(d: dict[str, Any]) -> None:
    d["http"]["proxy_defaults"] = {"timeout_ms": 1}


def _wrong_operation(d: dict[str, Any]) -> None:
    d["operations"] = ["query"]


def _bad_header(d: dict[str, Any]) -> None:
    d["http"]["headers"] = {"Bad Header": "x"}


@pytest.mark.parametrize(
    "mutate",
    [
        _bad_secret_pointer,
        _missing_secret,
        _numeric_top_level,
        _type_list,
        _invalid_schema,
        _wrong_dialect,
        _missing_capability,
        _extra_key,
        _literal_secret,
        _auth_field_unknown,
        _both_base_urls,
        _sql_block_on_http,
        _bad_default,
        _bad_proxy_defaults,
        _wrong_operation,
        _bad_header,
    ],
)
def test_malformed_file_fails_loudly(tmp_path: Path, mutate: Any) -> None:
    document = _github()
    mutate(document)
    with pytest.raises(CatalogError, match=r"github\.json"):
        load_catalog(_write(tmp_path, document))


def test_id_must_match_file_name(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="file name"):
        load_catalog(_write(tmp_path, _github(), name="gh"))


def test_duplicate_json_keys_rejected(tmp_path: Path) -> None:
    (tmp_path / "github.json").write_text('{"id": "github", "id": "github"}')
    with pytest.raises(CatalogError, match="duplicate key"):
        load_catalog(tmp_path)


def test_empty_directory_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        load_catalog(tmp_path)


def test_catalog_rejects_duplicate_ids(catalog: Catalog) -> None:
    with pytest.raises(CatalogError):
        Catalog([catalog.get("api"), catalog.get("api")])
