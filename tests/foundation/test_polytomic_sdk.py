"""The official Polytomic SDK (25.9.10) drives connection types and connections CRUD (spec 2.7, 2.8)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import httpx
import pytest
from polytomic import Polytomic
from polytomic.errors import BadRequestError, NotFoundError, UnprocessableEntityError

from conftest import KeyholeServer, Keys, require_service

from .helpers import REDACTED, proxy_call

CAPABILITIES = ("source", "destination", "enrichment", "logging", "orchestration")
TOP_LEVEL_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


@pytest.fixture
def sdk(server: KeyholeServer, org_a: Keys) -> Polytomic:
    # No retries: a 5xx must surface as a failure instead of being retried away.
    return Polytomic(base_url=server.url, token=org_a.user_api_key, max_retries=0)


@pytest.fixture
def api_connection(sdk: Polytomic, httpbin_url: str) -> Iterator[str]:
    created = sdk.connections.create(
        name="sdk api",
        type="api",
        configuration={"url": httpbin_url, "auth": {"type": "bearer", "token": "tok-SECRET-1"}},
    )
    yield created.data.id
    with contextlib.suppress(NotFoundError):
        sdk.connections.delete(id=created.data.id)


def echoed_authorization(api: httpx.Client, keys: Keys, connection_id: str) -> str:
    """The Authorization header httpbin received through the proxy (scrubbing must be off)."""
    response = proxy_call(api, connection_id, keys.bearer, "/headers")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == 200
    authorization: str = json.loads(response.json()["data"]["body"])["headers"]["Authorization"]
    return authorization


def test_get_types_have_all_capabilities(sdk: Polytomic) -> None:
    types = sdk.connections.get_types().data
    assert types
    ids = {item.id for item in types}
    assert {"api", "postgresql", "sqlite"} <= ids
    for item in types:
        capabilities = item.capabilities
        for name in CAPABILITIES:
            assert isinstance(getattr(capabilities, name), bool), (item.id, name)


def test_connection_type_schema_has_no_numeric_top_level_keywords(
    sdk: Polytomic, api: httpx.Client, org_a: Keys
) -> None:
    schema = sdk.connections.get_connection_type_schema("api")
    assert schema.type == "object"
    assert schema.properties is not None and "url" in schema.properties
    # The type forbids unknown keys; served as the SDK-parsable equivalent of `false`.
    assert schema.additional_properties is not None and schema.additional_properties.not_ is not None
    for field in ("minimum", "maximum", "exclusive_minimum", "exclusive_maximum", "multiple_of"):
        assert getattr(schema, field) is None, field
    raw = api.get("/api/connection_types/api", headers=org_a.bearer)
    assert raw.status_code == 200
    document = raw.json()
    assert "data" not in document  # a bare JSON Schema, no envelope
    assert not set(TOP_LEVEL_NUMERIC) & set(document)
    assert isinstance(document.get("type"), str)


def test_every_connection_type_schema_parses_in_the_sdk(sdk: Polytomic) -> None:
    for item in sdk.connections.get_types().data:
        schema = sdk.connections.get_connection_type_schema(item.id)
        assert schema.type == "object", item.id
        assert schema.properties, item.id


def test_unknown_connection_type_schema_is_not_found(sdk: Polytomic) -> None:
    with pytest.raises(NotFoundError) as caught:
        sdk.connections.get_connection_type_schema("no-such-type")
    assert caught.value.status_code == 404


def test_api_connection_lifecycle(
    sdk: Polytomic, api: httpx.Client, org_a: Keys, httpbin_url: str, api_connection: str
) -> None:
    connection_id = api_connection

    fetched = sdk.connections.get(id=connection_id).data
    assert fetched.status == "healthy"
    assert fetched.type.id == "api"
    assert fetched.organization_id == org_a.organization_id
    assert fetched.configuration == {"url": httpbin_url, "auth": {"type": "bearer", "token": REDACTED}}
    assert "tok-SECRET-1" not in fetched.json()

    listed = sdk.connections.list().data
    assert connection_id in [item.id for item in listed]
    assert all("tok-SECRET-1" not in item.json() for item in listed)

    # Rename, sending the placeholder back: the stored token is kept.
    renamed = sdk.connections.update(
        id=connection_id,
        name="sdk api renamed",
        configuration={"url": httpbin_url, "auth": {"type": "bearer", "token": REDACTED}},
    ).data
    assert renamed.name == "sdk api renamed"
    assert renamed.status == "healthy"
    assert renamed.configuration["auth"]["token"] == REDACTED
    bearer = proxy_call(api, connection_id, org_a.bearer, "/bearer")
    assert bearer.status_code == 200, bearer.text
    assert bearer.json()["data"]["status"] == 200
    assert json.loads(bearer.json()["data"]["body"])["authenticated"] is True

    # The stored token is the one sent: scrubbed from the echo (an old or another one would not be).
    assert echoed_authorization(api, org_a, connection_id) == "Bearer [REDACTED]"
    # Scrubbing may not be turned off while keeping the stored token (the echo would show it)...
    keep_placeholder = {
        "url": httpbin_url,
        "auth": {"type": "bearer", "token": REDACTED},
        "proxy": {"scrub_echoed_secrets": False},
    }
    with pytest.raises(UnprocessableEntityError) as refused:
        sdk.connections.update(id=connection_id, name="sdk api renamed", configuration=keep_placeholder)
    assert refused.value.body.key == "secret_required_for_new_target"
    # ...only by whoever sends the token; httpbin then shows exactly which token went upstream.
    new_token = {**keep_placeholder, "auth": {"type": "bearer", "token": "tok-SECRET-2"}}
    updated = sdk.connections.update(id=connection_id, name="sdk api renamed", configuration=new_token).data
    assert updated.configuration["auth"]["token"] == REDACTED
    assert "tok-SECRET-2" not in updated.json()
    assert echoed_authorization(api, org_a, connection_id) == "Bearer tok-SECRET-2"
    assert sdk.connections.get(id=connection_id).data.name == "sdk api renamed"

    assert sdk.connections.delete(id=connection_id) is None
    with pytest.raises(NotFoundError) as caught:
        sdk.connections.get(id=connection_id)
    assert caught.value.status_code == 404
    assert connection_id not in [item.id for item in sdk.connections.list().data]
    with pytest.raises(NotFoundError):
        sdk.connections.delete(id=connection_id)


def test_update_of_a_missing_connection_is_not_found(sdk: Polytomic, httpbin_url: str) -> None:
    with pytest.raises(NotFoundError):
        sdk.connections.update(
            id="00000000-0000-4000-8000-000000000000", name="x", configuration={"url": httpbin_url}
        )


def test_test_connection(sdk: Polytomic, httpbin_url: str, api_connection: str) -> None:
    good = {"url": httpbin_url, "auth": {"type": "bearer", "token": "tok-SECRET-1"}}
    assert sdk.connections.test_connection(type="api", configuration=good) is None
    # With a connection id, the stored configuration fills in the redacted secret.
    assert (
        sdk.connections.test_connection(
            type="api",
            configuration={"auth": {"type": "bearer", "token": REDACTED}},
            connection_id=api_connection,
        )
        is None
    )
    with pytest.raises(BadRequestError) as caught:
        sdk.connections.test_connection(type="api", configuration={"url": "http://127.0.0.1:1"})
    assert caught.value.status_code == 400
    assert caught.value.body.key == "connection_test_failed"
    # Testing never saves anything: the stored connection still points at httpbin.
    assert sdk.connections.get(id=api_connection).data.configuration["url"] == httpbin_url


def test_postgresql_connection(sdk: Polytomic, api: httpx.Client, org_a: Keys) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    created = sdk.connections.create(
        name="sdk postgres",
        type="postgresql",
        configuration={
            "hostname": "127.0.0.1",
            "port": 5432,
            "database": "test",
            "username": "postgres",
            "password": "pw-SECRET",
            "ssl_mode": "disable",
        },
        validate=True,
    ).data
    try:
        assert created.status == "healthy"
        assert created.type.id == "postgresql"
        assert created.configuration["password"] == REDACTED

        fetched = sdk.connections.get(id=created.id).data
        assert fetched.configuration["password"] == REDACTED
        assert fetched.configuration["hostname"] == "127.0.0.1"
        raw = api.get(f"/api/connections/{created.id}", headers=org_a.bearer)
        assert "pw-SECRET" not in raw.text

        values = sdk.connections.get_parameter_values(id=created.id).data
        assert values is not None and values["database"] is not None
        assert "test" in [value.value for value in values["database"].values]

        by_type = sdk.connections.get_type_parameter_values(
            "postgresql", field="database", connection_id=created.id, query="tes"
        ).data
        assert by_type is not None and by_type["database"] is not None
        names = [value.value for value in by_type["database"].values]
        assert "test" in names
        assert all("tes" in name for name in names)
    finally:
        sdk.connections.delete(id=created.id)
    with pytest.raises(NotFoundError):
        sdk.connections.get(id=created.id)


def test_basic_auth_through_the_sdk(
    server: KeyholeServer, sdk: Polytomic, org_a: Keys, org_b: Keys, api_connection: str
) -> None:
    with_org_key = Polytomic(base_url=server.url, headers=org_a.basic, max_retries=0)
    assert api_connection in [item.id for item in with_org_key.connections.list().data]
    assert with_org_key.connections.get(id=api_connection).data.id == api_connection

    other_org = Polytomic(base_url=server.url, headers=org_b.basic, max_retries=0)
    assert api_connection not in [item.id for item in other_org.connections.list().data]
