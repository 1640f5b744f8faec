"""Hostile and malformed input on every connection-type and connection endpoint.

Every case must answer a 4xx Polytomic error envelope (never a 5xx), leak no secret, and
write nothing: both organizations' connection lists are compared before and after.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer, Keys, require_service

from .helpers import REDACTED, UNKNOWN_ID, assert_envelope, basic

TARGET_SECRET = "tok-BADINPUT-SECRET-4b1d"
MARK = "MARK-SECRET-7f3a9c"
SECRETS = (TARGET_SECRET, MARK)
OVERSIZED = 1_048_576 + 1
NO_BODY = object()

PG_PARAMETERS = {"hostname": "127.0.0.1", "port": 5432, "username": "postgres", "database": "test"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    valid: Any = NO_BODY  # a body that would succeed, for endpoints that read one


TYPES_LIST = Endpoint("types-list", "GET", "/api/connection_types")
TYPE_GET = Endpoint("type-get", "GET", "/api/connection_types/api")
TYPE_VALUES = Endpoint(
    "type-values",
    "POST",
    "/api/connection_types/postgresql/parameter_values",
    {"field": "database", "parameters": PG_PARAMETERS},
)
LIST = Endpoint("list", "GET", "/api/connections")
CREATE = Endpoint(
    "create",
    "POST",
    "/api/connections",
    {"name": "bad-input probe", "type": "api", "configuration": {"url": "@HTTPBIN@"}},
)
TEST = Endpoint(
    "test", "POST", "/api/connections/test", {"type": "api", "configuration": {"url": "@HTTPBIN@"}}
)
GET = Endpoint("get", "GET", "/api/connections/@CID@")
UPDATE = Endpoint(
    "update",
    "PUT",
    "/api/connections/@CID@",
    {
        "name": "bad-input target",
        "configuration": {"url": "@HTTPBIN@", "auth": {"type": "bearer", "token": REDACTED}},
    },
)
DELETE = Endpoint("delete", "DELETE", "/api/connections/@CID@")
VALUES = Endpoint("values", "GET", "/api/connections/@CID@/parameter_values")

ENDPOINTS = (TYPES_LIST, TYPE_GET, TYPE_VALUES, LIST, CREATE, TEST, GET, UPDATE, DELETE, VALUES)
ID_ENDPOINTS = (GET, UPDATE, DELETE, VALUES)


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    key: str | None = None
    json: Any = NO_BODY
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False


def with_body(endpoint: Endpoint, /, **changes: Any) -> dict[str, Any]:
    body = dict(endpoint.valid)
    for name, value in changes.items():
        if value is NO_BODY:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def body_cases(endpoint: Endpoint) -> list[Case]:
    """Malformed or wrongly shaped bodies, the same for every endpoint that reads JSON."""
    raw = {
        "malformed-json": (b'{"name": "x",', "malformed_json"),
        "truncated-string": (b'{"name": "x', "malformed_json"),
        "invalid-utf8": (b'{"name": "\xff\xfe"}', "malformed_json"),
        "deep-nesting": (b"[" * 100_000, "malformed_json"),
        "json-array": (b"[]", "invalid_body"),
        "json-array-of-object": (b'[{"name": "x"}]', "invalid_body"),
        "json-number": (b"42", "invalid_body"),
        "json-string": (b'"connection"', "invalid_body"),
        "json-true": (b"true", "invalid_body"),
        "json-null": (b"null", "invalid_body"),
        "empty-body": (b"", "invalid_body"),
    }
    cases = [
        Case(f"{endpoint.name}-{label}", endpoint.method, endpoint.path, 400, key, content=content)
        for label, (content, key) in raw.items()
    ]
    padding = {"name": "x" * OVERSIZED} if endpoint is not TYPE_VALUES else {"query": "x" * OVERSIZED}
    cases += [
        Case(
            f"{endpoint.name}-oversized",
            endpoint.method,
            endpoint.path,
            413,
            "body_too_large",
            json=with_body(endpoint, **padding),
        ),
        Case(
            f"{endpoint.name}-oversized-chunked",
            endpoint.method,
            endpoint.path,
            413,
            "body_too_large",
            content=b" " * OVERSIZED + b"{}",
            chunked=True,
        ),
        Case(
            f"{endpoint.name}-unknown-field",
            endpoint.method,
            endpoint.path,
            400,
            "validation_error",
            json=with_body(endpoint, bogus=1),
        ),
    ]
    return cases


def case(label: str, endpoint: Endpoint, status: int, key: str | None, /, **changes: Any) -> Case:
    return Case(
        f"{endpoint.name}-{label}",
        endpoint.method,
        endpoint.path,
        status,
        key,
        json=with_body(endpoint, **changes),
    )


def config_case(
    name: str, endpoint: Endpoint, status: int, key: str | None, type_id: str, configuration: Any
) -> Case:
    changes: dict[str, Any] = {"configuration": configuration}
    if endpoint is not UPDATE:
        changes["type"] = type_id
    return case(name, endpoint, status, key, **changes)


def configuration_cases(endpoint: Endpoint) -> list[Case]:
    """Configurations that break the type's schema or point somewhere they must not."""
    invalid = "invalid_configuration"
    unreachable = "connection_test_failed" if endpoint is TEST else "connection_unreachable"
    unreachable_status = 400 if endpoint is TEST else 422
    api = [
        ("config-unknown-key", {"url": "@HTTPBIN@", "bogus": 1}),
        ("config-missing-url", {}),
        ("config-file-url", {"url": "file:///etc/passwd"}),
        ("config-javascript-url", {"url": "javascript:alert(1)"}),
        ("config-url-crlf", {"url": "http://127.0.0.1/\r\nHost: evil"}),
        ("config-url-too-long", {"url": "http://127.0.0.1/" + "a" * 5000}),
        ("config-header-name-crlf", {"url": "@HTTPBIN@", "headers": {"X-Evil\r\nInjected": "v"}}),
        ("config-header-name-nul", {"url": "@HTTPBIN@", "headers": {"X-Evil\x00": "v"}}),
        ("config-header-value-crlf", {"url": "@HTTPBIN@", "headers": {"X-Ok": "v\r\nSet-Cookie: a=b"}}),
        ("config-headers-not-object", {"url": "@HTTPBIN@", "headers": ["X-A: b"]}),
        ("config-token-crlf", {"url": "@HTTPBIN@", "auth": {"type": "bearer", "token": MARK + "\r\nX: y"}}),
        ("config-token-nul", {"url": "@HTTPBIN@", "auth": {"type": "bearer", "token": MARK + "\x00"}}),
        (
            "config-token-extra-key",
            {"url": "@HTTPBIN@", "auth": {"type": "bearer", "token": MARK, "x": MARK}},
        ),
        ("config-token-not-string", {"url": "@HTTPBIN@", "auth": {"type": "bearer", "token": 12345}}),
        ("config-auth-unknown-type", {"url": "@HTTPBIN@", "auth": {"type": "kerberos", "ticket": MARK}}),
        (
            "config-basic-username-colon",
            {"url": "@HTTPBIN@", "auth": {"type": "basic", "username": "a:b", "password": MARK}},
        ),
        ("config-proxy-timeout-string", {"url": "@HTTPBIN@", "proxy": {"timeout_ms": "fast"}}),
        ("config-proxy-rate-zero", {"url": "@HTTPBIN@", "proxy": {"rate_limit_per_minute": 0}}),
        ("config-proxy-huge-body", {"url": "@HTTPBIN@", "proxy": {"max_request_body_bytes": 10**12}}),
        ("config-healthcheck-relative", {"url": "@HTTPBIN@", "healthcheck_path": "status/200"}),
    ]
    cases = [config_case(name, endpoint, 422, invalid, "api", configuration) for name, configuration in api]
    cases += [
        config_case(
            "unreachable-url", endpoint, unreachable_status, unreachable, "api", {"url": "http://127.0.0.1:1"}
        ),
        config_case(
            "metadata-address",
            endpoint,
            unreachable_status,
            unreachable,
            "api",
            {"url": "http://169.254.169.254/latest/meta-data/", "auth": {"type": "bearer", "token": MARK}},
        ),
    ]
    if endpoint is UPDATE:
        # The stored connection has no password: a placeholder cannot stand in for one.
        cases.append(
            config_case(
                "placeholder-without-stored-secret",
                endpoint,
                422,
                invalid,
                "api",
                {"url": "@HTTPBIN@", "auth": {"type": "basic", "username": "u", "password": REDACTED}},
            )
        )
        return cases
    sql = [
        ("sqlite-dotdot", "sqlite", {"path": "../../etc/passwd"}),
        ("sqlite-absolute", "sqlite", {"path": "/etc/passwd"}),
        ("sqlite-nul", "sqlite", {"path": "db.sqlite\x00.txt"}),
        ("sqlite-empty-path", "sqlite", {"path": ""}),
        ("duckdb-dotdot", "duckdb", {"path": "../../../../etc/passwd"}),
        ("pg-hostname-injection", "postgresql", {**PG_PARAMETERS, "hostname": "127.0.0.1; DROP TABLE x"}),
        ("pg-port-string", "postgresql", {**PG_PARAMETERS, "port": "5432"}),
        ("pg-port-out-of-range", "postgresql", {**PG_PARAMETERS, "port": 70000}),
        ("pg-missing-username", "postgresql", {"hostname": "127.0.0.1", "database": "test"}),
        ("pg-password-not-string", "postgresql", {**PG_PARAMETERS, "password": {"v": MARK}}),
    ]
    cases += [
        config_case(name, endpoint, 422, invalid, type_id, configuration)
        for name, type_id, configuration in sql
    ]
    cases.append(
        config_case(
            "pg-unreachable",
            endpoint,
            unreachable_status,
            unreachable,
            "postgresql",
            {**PG_PARAMETERS, "port": 1, "password": MARK},
        )
    )
    return cases


def create_cases() -> list[Case]:
    e = CREATE
    return [
        *body_cases(e),
        case("missing-name", e, 400, "validation_error", name=NO_BODY),
        case("missing-type", e, 400, "validation_error", type=NO_BODY),
        case("missing-configuration", e, 400, "validation_error", configuration=NO_BODY),
        case("name-number", e, 400, "validation_error", name=123),
        case("name-null", e, 400, "validation_error", name=None),
        case("name-empty", e, 400, "validation_error", name=""),
        case("name-201-chars", e, 400, "validation_error", name="n" * 201),
        case("name-100k-chars", e, 400, "validation_error", name="n" * 100_000),
        case("name-nul", e, 400, "validation_error", name="bad\x00name"),
        case("name-crlf", e, 400, "validation_error", name="bad\r\nname"),
        case("name-object", e, 400, "validation_error", name={"$ne": ""}),
        case("type-number", e, 400, "validation_error", type=7),
        case("type-empty", e, 400, "validation_error", type=""),
        case("type-unknown", e, 404, "unknown_connection_type", type="no-such-type"),
        case("type-traversal", e, 404, "unknown_connection_type", type="../api"),
        case("type-nul", e, 404, "unknown_connection_type", type="api\x00"),
        case("type-wrong-case", e, 404, "unknown_connection_type", type="API"),
        case("configuration-string", e, 400, "validation_error", configuration="x"),
        case("configuration-array", e, 400, "validation_error", configuration=[]),
        case("configuration-null", e, 400, "validation_error", configuration=None),
        case("validate-string", e, 400, "validation_error", validate="yes"),
        case("validate-number", e, 400, "validation_error", validate=1),
        case("policies-string", e, 400, "validation_error", policies="x"),
        case("policies-numbers", e, 400, "validation_error", policies=[1]),
        case("organization-id-number", e, 400, "validation_error", organization_id=5),
        case("organization-id-foreign", e, 403, "organization_mismatch", organization_id="@ORG_B@"),
        case("healthcheck-number", e, 400, "validation_error", healthcheck_interval=5),
        case("healthcheck-too-long", e, 400, "validation_error", healthcheck_interval="1" * 33),
        case("healthcheck-nul", e, 400, "validation_error", healthcheck_interval="1h\x00"),
        case("redirect-url-number", e, 400, "validation_error", redirect_url=5),
        *configuration_cases(e),
    ]


def update_cases() -> list[Case]:
    e = UPDATE
    return [
        *body_cases(e),
        case("missing-name", e, 400, "validation_error", name=NO_BODY),
        case("missing-configuration", e, 400, "validation_error", configuration=NO_BODY),
        case("name-number", e, 400, "validation_error", name=123),
        case("name-201-chars", e, 400, "validation_error", name="n" * 201),
        case("name-nul", e, 400, "validation_error", name="bad\x00name"),
        case("configuration-string", e, 400, "validation_error", configuration="x"),
        case("validate-string", e, 400, "validation_error", validate="yes"),
        case("reconnect-string", e, 400, "validation_error", reconnect="no"),
        case("policies-string", e, 400, "validation_error", policies="x"),
        case("healthcheck-nul", e, 400, "validation_error", healthcheck_interval="\x00"),
        case("type-change", e, 400, "type_mismatch", type="postgresql"),
        case("type-unknown", e, 400, "type_mismatch", type="no-such-type"),
        case("organization-id-foreign", e, 403, "organization_mismatch", organization_id="@ORG_B@"),
        *configuration_cases(e),
    ]


def connection_test_cases() -> list[Case]:
    e = TEST
    return [
        *body_cases(e),
        case("missing-type", e, 400, "validation_error", type=NO_BODY),
        case("missing-configuration", e, 400, "validation_error", configuration=NO_BODY),
        case("type-number", e, 400, "validation_error", type=7),
        case("configuration-string", e, 400, "validation_error", configuration="x"),
        case("connection-id-number", e, 400, "validation_error", connection_id=5),
        case("connection-id-too-long", e, 400, "validation_error", connection_id="c" * 65),
        case("type-unknown", e, 404, "unknown_connection_type", type="no-such-type"),
        case("connection-id-unknown", e, 404, "not_found", connection_id=UNKNOWN_ID),
        case("connection-id-not-uuid", e, 404, "not_found", connection_id="not-a-uuid"),
        case("connection-id-traversal", e, 404, "not_found", connection_id="../../etc/passwd"),
        case("connection-id-nul", e, 404, "not_found", connection_id="@CID@\x00"),
        case(
            "connection-id-other-type",
            e,
            400,
            "type_mismatch",
            type="postgresql",
            configuration=PG_PARAMETERS,
            connection_id="@CID@",
        ),
        *configuration_cases(e),
    ]


def type_values_cases() -> list[Case]:
    e = TYPE_VALUES
    values = "no_parameter_values"
    return [
        *body_cases(e),
        case("missing-field", e, 400, "validation_error", field=NO_BODY),
        case("field-number", e, 400, "validation_error", field=123),
        case("field-empty", e, 400, "validation_error", field=""),
        case("field-too-long", e, 400, "validation_error", field="f" * 129),
        case("field-unknown", e, 400, values, field="no_such_field"),
        case("field-nul", e, 400, values, field="database\x00"),
        case("parameters-string", e, 400, "validation_error", parameters="x"),
        case("query-number", e, 400, "validation_error", query=5),
        case("connection-id-number", e, 400, "validation_error", connection_id=5),
        case("connection-id-unknown", e, 404, "not_found", connection_id=UNKNOWN_ID),
        case("connection-id-not-uuid", e, 404, "not_found", connection_id="x/../y"),
        case("connection-id-other-type", e, 400, "type_mismatch", connection_id="@CID@"),
        case(
            "parameters-missing-hostname", e, 400, "invalid_parameters", parameters={"username": "postgres"}
        ),
        case("parameters-hostname-number", e, 400, None, parameters={**PG_PARAMETERS, "hostname": 5}),
        case("parameters-port-string", e, 400, None, parameters={**PG_PARAMETERS, "port": "abc"}),
        case(
            "parameters-unreachable",
            e,
            400,
            "connection_unreachable",
            parameters={**PG_PARAMETERS, "port": 1, "password": MARK},
        ),
        case(
            "parameters-metadata-address",
            e,
            403,
            "egress_denied",
            parameters={**PG_PARAMETERS, "hostname": "169.254.169.254"},
        ),
        Case(
            "unknown-type",
            "POST",
            "/api/connection_types/no-such-type/parameter_values",
            404,
            "unknown_connection_type",
            json={"field": "database"},
        ),
        Case(
            "http-type",
            "POST",
            "/api/connection_types/api/parameter_values",
            400,
            values,
            json={"field": "database"},
        ),
        Case(
            "encoded-slash-type",
            "POST",
            "/api/connection_types/a%2Fb/parameter_values",
            404,
            json={"field": "database"},
        ),
    ]


HOSTILE_IDS = {
    "unknown-uuid": UNKNOWN_ID,
    "not-a-uuid": "not-a-uuid",
    "encoded-slash": "abc%2Fdef",
    "encoded-traversal": "..%2F..%2Fetc%2Fpasswd",
    "encoded-nul": "%00",
    "uuid-with-nul": "@CID@%00",
    "uuid-with-space": "@CID@%20",
    "uuid-upper-case": "@CID_UPPER@",
    "sql-injection": "x'%20OR%20'1'='1",
    "very-long": "a" * 4000,
}


def id_cases() -> list[Case]:
    cases = []
    for endpoint in ID_ENDPOINTS:
        for label, hostile in HOSTILE_IDS.items():
            path = endpoint.path.replace("@CID@", hostile)
            json_body = endpoint.valid if endpoint.valid is not NO_BODY else NO_BODY
            cases.append(
                Case(f"{endpoint.name}-id-{label}", endpoint.method, path, 404, None, json=json_body)
            )
    for label, hostile in {
        "unknown": "no-such-type",
        "encoded-slash": "a%2Fb",
        "encoded-nul": "api%00",
        "encoded-traversal": "..%2F..%2Fetc%2Fpasswd",
        "very-long": "t" * 4000,
    }.items():
        cases.append(Case(f"type-get-{label}", "GET", f"/api/connection_types/{hostile}", 404))
    cases += [
        Case(
            "delete-force-not-boolean",
            "DELETE",
            "/api/connections/@CID@?force=maybe",
            400,
            "validation_error",
        ),
        Case(
            "patch-connection",
            "PATCH",
            "/api/connections/@CID@",
            405,
            "method_not_allowed",
            json={"name": "x"},
        ),
        Case("post-types-list", "POST", "/api/connection_types", 405, "method_not_allowed", json={}),
        Case("delete-list", "DELETE", "/api/connections", 405, "method_not_allowed"),
        Case("put-test-as-id", "PUT", "/api/connections/test", 404, "not_found", json=UPDATE.valid),
    ]
    return cases


CASES = [*create_cases(), *update_cases(), *connection_test_cases(), *type_values_cases(), *id_cases()]


def auth_variants() -> dict[str, Any]:
    """Credentials that must all be refused; built from the fixtures' keys at run time."""
    return {
        "no-credentials": lambda a, b: {},
        "unknown-bearer": lambda a, b: {"Authorization": "Bearer kh_u_" + "A" * 43},
        "empty-bearer": lambda a, b: {"Authorization": "Bearer"},
        "oversized-bearer": lambda a, b: {"Authorization": "Bearer " + "k" * 5000},
        "unknown-scheme": lambda a, b: {"Authorization": f"Token {a.user_api_key}"},
        "basic-with-user-key": lambda a, b: basic(a.organization_id, a.user_api_key),
        "basic-with-wrong-org": lambda a, b: basic(b.organization_id, a.org_api_key),
        "basic-with-unknown-org": lambda a, b: basic(UNKNOWN_ID, a.org_api_key),
        "basic-not-base64": lambda a, b: {"Authorization": "Basic !!!not-base64!!!"},
        "basic-without-colon": lambda a, b: {
            "Authorization": "Basic " + base64.b64encode(a.org_api_key.encode()).decode()
        },
        "unknown-x-api-key": lambda a, b: {"x-api-key": "kh_o_" + "B" * 43},
    }


AUTH_CASES = [(endpoint, label) for endpoint in ENDPOINTS for label in auth_variants()]


@pytest.fixture(scope="module")
def context(server: KeyholeServer, org_a: Keys, org_b: Keys, httpbin_url: str) -> Iterator[dict[str, str]]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        created = client.post(
            "/api/connections",
            json={
                "name": "bad-input target",
                "type": "api",
                "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": TARGET_SECRET}},
            },
            headers=org_a.bearer,
        )
        assert created.status_code == 200, created.text
        connection_id = created.json()["data"]["id"]
        yield {
            "@CID_UPPER@": connection_id.upper(),
            "@CID@": connection_id,
            "@HTTPBIN@": httpbin_url,
            "@ORG_B@": org_b.organization_id,
        }
        assert client.delete(f"/api/connections/{connection_id}", headers=org_a.bearer).status_code == 204


@pytest.fixture(scope="module")
def client(server: KeyholeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as instance:
        yield instance


def fill(value: Any, context: dict[str, str]) -> Any:
    if isinstance(value, str):
        for token, replacement in context.items():
            value = value.replace(token, replacement)
        return value
    if isinstance(value, dict):
        return {fill(k, context): fill(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(item, context) for item in value]
    return value


def snapshot(api: httpx.Client, *orgs: Keys) -> list[Any]:
    state = []
    for keys in orgs:
        response = api.get("/api/connections", headers=keys.bearer)
        assert response.status_code == 200, response.text
        state.append(response.json()["data"])
    return state


def send(api: httpx.Client, case: Case, headers: dict[str, str], context: dict[str, str]) -> httpx.Response:
    path = fill(case.path, context)
    all_headers = {**headers, **case.headers}
    if case.chunked:
        assert case.content is not None
        content = case.content
        chunks = (content[i : i + 65_536] for i in range(0, len(content), 65_536))
        return api.request(case.method, path, content=chunks, headers=all_headers)
    if case.content is not None:
        return api.request(case.method, path, content=case.content, headers=all_headers)
    if case.json is not NO_BODY:
        return api.request(case.method, path, json=fill(case.json, context), headers=all_headers)
    return api.request(case.method, path, headers=all_headers)


def assert_no_secret(response: httpx.Response) -> None:
    for secret in SECRETS:
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_without_writing(
    case: Case, client: httpx.Client, org_a: Keys, org_b: Keys, context: dict[str, str]
) -> None:
    before = snapshot(client, org_a, org_b)
    response = send(client, case, org_a.bearer, context)
    assert_envelope(response, case.status, case.key)
    assert_no_secret(response)
    assert snapshot(client, org_a, org_b) == before


@pytest.mark.parametrize(("endpoint", "variant"), AUTH_CASES, ids=[f"{e.name}-{v}" for e, v in AUTH_CASES])
def test_bad_credentials_are_refused_without_writing(
    endpoint: Endpoint, variant: str, client: httpx.Client, org_a: Keys, org_b: Keys, context: dict[str, str]
) -> None:
    before = snapshot(client, org_a, org_b)
    headers = auth_variants()[variant](org_a, org_b)
    probe = Case(endpoint.name, endpoint.method, endpoint.path, 401, json=endpoint.valid)
    response = send(client, probe, headers, context)
    body = assert_envelope(response, 401)
    assert body["key"] in {"missing_credentials", "invalid_authorization", "invalid_api_key"}
    assert org_a.org_api_key not in response.text and org_a.user_api_key not in response.text
    assert snapshot(client, org_a, org_b) == before


BASELINE = [e for e in ENDPOINTS if e not in (CREATE, DELETE)]


@pytest.mark.parametrize("endpoint", BASELINE, ids=[e.name for e in BASELINE])
def test_valid_probe_bodies_are_accepted(
    endpoint: Endpoint, client: httpx.Client, org_a: Keys, context: dict[str, str]
) -> None:
    """The baseline of the cases above: good credentials and the valid body succeed.

    (Create and delete write; the SDK lifecycle test covers them.)
    """
    if endpoint is TYPE_VALUES:
        require_service("PostgreSQL", "127.0.0.1", 5432)
    probe = Case(endpoint.name, endpoint.method, endpoint.path, 200, json=endpoint.valid)
    response = send(client, probe, org_a.bearer, context)
    assert response.status_code == 200, response.text
    assert_no_secret(response)
