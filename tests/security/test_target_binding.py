"""A colleague with an ordinary user key tries to send a stored secret to a target of their choosing.

Every entry point that can name a target (create, update, test, parameter values, Composio account
and auth-config writes, OAuth flows) is played against every way of keeping a stored secret
(a ``"[REDACTED]"`` placeholder, an omitted field, a ``connection_id`` to borrow from, an auth
config's shared credential). Trap listeners on loopback record every byte that reaches them: a
refused request must answer a clear 4xx, change nothing, and leave the trap untouched. Controls
show the traps do catch a secret that is sent on purpose, so a silent trap means something.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polytomic import Polytomic
from polytomic.core.api_error import ApiError

from conftest import KeyholeServer, Keys, require_service

from .traps import Trap

STORED_TOKEN = "tok_Stored_Q7vN2kX9pL4mZ8wR"
STORED_DB_PASSWORD = "Pg_Stored_Secret_5hT3"
STORED_CLIENT_SECRET = "cs_Stored_Client_8jW2nQ"
SHARED_API_KEY = "ak_Shared_AuthConfig_3xR7"
REDACTED = "[REDACTED]"
STORED = [STORED_TOKEN, STORED_DB_PASSWORD, STORED_CLIENT_SECRET, SHARED_API_KEY]
RETARGET = "secret_required_for_new_target"
HYPOTHESIS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _token_answer(number: int) -> tuple[str, bytes]:
    body = {"access_token": f"at_issued_{number}_Yh4", "token_type": "bearer", "expires_in": 3600}
    return "application/json", json.dumps(body).encode()


@pytest.fixture(scope="module")
def home() -> Iterator[Trap]:
    """The connections' own HTTP upstream: an honest recorder."""
    with Trap("http") as instance:
        yield instance


@pytest.fixture(scope="module")
def token_server() -> Iterator[Trap]:
    with Trap("http", answer=_token_answer) as instance:
        yield instance


@pytest.fixture
def trap() -> Iterator[Trap]:
    with Trap("http") as instance:
        yield instance


@pytest.fixture
def pg_trap() -> Iterator[Trap]:
    with Trap("postgresql") as instance:
        yield instance


@pytest.fixture
def mysql_trap() -> Iterator[Trap]:
    with Trap("mysql") as instance:
        yield instance


@pytest.fixture(scope="module")
def client(server: KeyholeServer, org_a: Keys) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=org_a.bearer, timeout=30) as instance:
        yield instance


def _no_secret(trap: Trap) -> None:
    seen = trap.seen()
    assert not any(secret.encode() in seen for secret in STORED), seen[:500]


def _untouched(trap: Trap) -> None:
    assert trap.connections == 0, trap.seen()[:500]
    _no_secret(trap)


def _refused(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["key"] == RETARGET, body
    assert "send the secret" in body["message"]
    assert not any(secret in response.text for secret in STORED)
    return body


def _create(client: httpx.Client, type_id: str, configuration: dict[str, Any]) -> str:
    response = client.post(
        "/api/connections",
        json={
            "name": f"binding-{uuid.uuid4().hex[:8]}",
            "type": type_id,
            "configuration": configuration,
            "validate": False,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def _configuration(client: httpx.Client, connection_id: str) -> dict[str, Any]:
    response = client.get(f"/api/connections/{connection_id}")
    assert response.status_code == 200, response.text
    configuration: dict[str, Any] = response.json()["data"]["configuration"]
    return configuration


def _bearer_connection(client: httpx.Client, home: Trap) -> str:
    return _create(
        client, "api", {"url": home.url + "/v1", "auth": {"type": "bearer", "token": STORED_TOKEN}}
    )


def _proxy_reaches_home(client: httpx.Client, connection_id: str, home: Trap) -> None:
    home.reset()
    response = client.post(
        f"/api/connections/{connection_id}/proxy", json={"request": {"method": "GET", "path": "/ping"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == 200
    assert f"Bearer {STORED_TOKEN}".encode() in home.seen()


# -- HTTP connections: update, test -----------------------------------------------------------------

# Other targets than the stored ``home/v1``, by every part of a URL that names one.
_OTHER_TARGETS = st.sampled_from(
    [
        "{trap}/v1",
        "{trap}",
        "{trap}/v1/",
        "http://localhost:{trap_port}/v1",
        "{home}/v2",
        "{home}/v1/admin",
        "{home}",
        "http://localhost:{home_port}/v1",
        "https://127.0.0.1:{home_port}/v1",
        "{home}/V1",
        "{home}/v1%2F..%2Fadmin",
    ]
)


def _spell(template: str, home: Trap, trap: Trap) -> str:
    return template.format(trap=trap.url, trap_port=trap.port, home=home.url, home_port=home.port)


@HYPOTHESIS
@given(template=_OTHER_TARGETS, keep=st.sampled_from(["placeholder", "token-omitted-auth-kept"]))
def test_update_to_another_target_keeping_the_token_is_refused(
    client: httpx.Client, home: Trap, trap: Trap, template: str, keep: str
) -> None:
    trap.reset()
    connection_id = _bearer_connection(client, home)
    url = _spell(template, home, trap)
    auth: dict[str, Any] = {"type": "bearer", "token": REDACTED}
    response = client.put(
        f"/api/connections/{connection_id}",
        json={
            "name": "moved",
            "configuration": {"url": url, "auth": auth} if keep == "placeholder" else {"url": url},
            "validate": True,
        },
    )
    if keep == "placeholder":
        body = _refused(response)
        assert body["metadata"]["fields"] == ["/url"]
        assert body["metadata"]["secrets"] == ["/auth/token"]
    else:
        # Without the auth member the update drops the token: allowed, and nothing secret moves
        # (the health check may reach the new target, without a credential).
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            assert _configuration(client, connection_id)["auth"] == {"type": "none"}
        _no_secret(trap)
        return
    _untouched(trap)
    assert _configuration(client, connection_id)["url"] == home.url + "/v1"
    _proxy_reaches_home(client, connection_id, home)


@pytest.mark.parametrize(
    "same",
    ["{home}/v1", "{home}/v1/", "http://127.0.0.1:{home_port}/v1//"],
)
def test_the_same_target_spelled_differently_keeps_the_token(
    client: httpx.Client, home: Trap, trap: Trap, same: str
) -> None:
    connection_id = _bearer_connection(client, home)
    response = client.put(
        f"/api/connections/{connection_id}",
        json={
            "name": "renamed",
            "configuration": {"url": _spell(same, home, trap), "auth": {"type": "bearer", "token": REDACTED}},
            "validate": False,
        },
    )
    assert response.status_code == 200, response.text
    _proxy_reaches_home(client, connection_id, home)


def test_update_with_the_secret_sent_again_may_move_it(client: httpx.Client, home: Trap, trap: Trap) -> None:
    connection_id = _bearer_connection(client, home)
    response = client.put(
        f"/api/connections/{connection_id}",
        json={
            "name": "moved",
            "configuration": {"url": trap.url, "auth": {"type": "bearer", "token": "tok_new_for_trap"}},
            "validate": False,
        },
    )
    assert response.status_code == 200, response.text
    client.post(f"/api/connections/{connection_id}/proxy", json={"request": {"method": "GET", "path": "/"}})
    assert b"Bearer tok_new_for_trap" in trap.seen()
    assert STORED_TOKEN.encode() not in trap.seen()


@HYPOTHESIS
@given(
    template=_OTHER_TARGETS,
    auth=st.sampled_from([None, {"type": "bearer", "token": REDACTED}]),
)
def test_connection_test_never_pairs_a_stored_secret_with_a_caller_target(
    client: httpx.Client, home: Trap, trap: Trap, template: str, auth: dict[str, Any] | None
) -> None:
    trap.reset()
    connection_id = _bearer_connection(client, home)
    configuration: dict[str, Any] = {"url": _spell(template, home, trap)}
    if auth is not None:
        configuration["auth"] = auth
    response = client.post(
        "/api/connections/test",
        json={"type": "api", "connection_id": connection_id, "configuration": configuration},
    )
    _refused(response)
    _untouched(trap)


def test_connection_test_with_a_new_secret_for_a_new_target_sends_only_that(
    client: httpx.Client, home: Trap, trap: Trap
) -> None:
    connection_id = _bearer_connection(client, home)
    response = client.post(
        "/api/connections/test",
        json={
            "type": "api",
            "connection_id": connection_id,
            "configuration": {"url": trap.url, "auth": {"type": "bearer", "token": "tok_caller_own"}},
        },
    )
    assert response.status_code == 200, response.text
    assert b"Bearer tok_caller_own" in trap.seen()
    assert STORED_TOKEN.encode() not in trap.seen()


# -- OAuth2: endpoints bound, tokens bound ----------------------------------------------------------


def _oauth_connection(client: httpx.Client, home: Trap, token_server: Trap) -> str:
    return _create(
        client,
        "api",
        {
            "url": home.url,
            "auth": {
                "type": "oauth2",
                "grant": "client_credentials",
                "token_url": token_server.url + "/token",
                "client_id": "keyhole-test",
                "client_secret": STORED_CLIENT_SECRET,
            },
        },
    )


@pytest.mark.parametrize("moved", ["token_url", "url"])
def test_oauth_client_secret_stays_with_its_endpoints(
    client: httpx.Client, home: Trap, token_server: Trap, trap: Trap, moved: str
) -> None:
    connection_id = _oauth_connection(client, home, token_server)
    configuration = _configuration(client, connection_id)
    assert configuration["auth"]["client_secret"] == REDACTED
    if moved == "token_url":
        configuration["auth"]["token_url"] = trap.url + "/token"
    else:
        configuration["url"] = trap.url
    response = client.put(
        f"/api/connections/{connection_id}",
        json={"name": "moved", "configuration": configuration, "validate": False},
    )
    _refused(response)
    client.post(f"/api/connections/{connection_id}/proxy", json={"request": {"method": "GET", "path": "/"}})
    _untouched(trap)


def test_oauth_tokens_never_follow_a_new_base_url(
    client: httpx.Client, home: Trap, token_server: Trap, trap: Trap
) -> None:
    connection_id = _oauth_connection(client, home, token_server)
    home.reset()
    response = client.post(
        f"/api/connections/{connection_id}/proxy", json={"request": {"method": "GET", "path": "/"}}
    )
    assert response.status_code == 200, response.text
    first_token = home.seen().split(b"Bearer ")[1].split(b"\r\n")[0]
    assert first_token.startswith(b"at_issued_")
    # The caller knows the client secret and sends it again: the move is allowed, but the token
    # granted for the old base URL must not go to the new one.
    configuration = _configuration(client, connection_id)
    configuration["url"] = trap.url
    configuration["auth"]["client_secret"] = STORED_CLIENT_SECRET
    response = client.put(
        f"/api/connections/{connection_id}",
        json={"name": "moved", "configuration": configuration, "validate": False},
    )
    assert response.status_code == 200, response.text
    client.post(f"/api/connections/{connection_id}/proxy", json={"request": {"method": "GET", "path": "/"}})
    assert trap.connections == 1
    assert first_token not in trap.seen()
    assert b"Bearer at_issued_" in trap.seen()  # a token granted for the new target


def test_validate_checks_oauth_endpoints_against_the_egress_policy(client: httpx.Client, home: Trap) -> None:
    response = client.post(
        "/api/connections",
        json={
            "name": "metadata",
            "type": "api",
            "configuration": {
                "url": home.url,
                "auth": {
                    "type": "oauth2",
                    "grant": "client_credentials",
                    "token_url": "http://169.254.169.254/latest/meta-data/token",
                    "client_id": "x",
                    "client_secret": "y",
                },
            },
            "validate": True,
        },
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["key"] == "connection_unreachable"
    assert body["metadata"]["reason"] == "egress_denied"
    assert body["metadata"]["field"] == "/auth/token_url"


# -- databases: update, test, parameter values ------------------------------------------------------


def _database_connection(client: httpx.Client, type_id: str) -> str:
    return _create(
        client,
        type_id,
        {
            "hostname": "127.0.0.1",
            "port": 5432 if type_id == "postgresql" else 3306,
            "database": "test",
            "username": "keyhole_binding",
            "password": STORED_DB_PASSWORD,
        },
    )


_DB_MOVES = st.sampled_from(
    [
        {"port": "{trap_port}"},
        {"hostname": "localhost", "port": "{trap_port}"},
        {"hostname": "LOCALHOST."},
        {"hostname": "127.0.0.2"},
        {"database": "other"},
        {"username": "postgres"},
        {"ssl_mode": "disable"},
    ]
)


def _moved(move: dict[str, str], trap: Trap) -> dict[str, Any]:
    return {
        name: int(value.format(trap_port=trap.port)) if name == "port" else value
        for name, value in move.items()
    }


@pytest.mark.parametrize("type_id", ["postgresql", "mysql"])
@HYPOTHESIS
@given(move=_DB_MOVES, path=st.sampled_from(["update", "test", "parameter_values"]))
def test_a_stored_database_password_never_reaches_another_server(
    client: httpx.Client, pg_trap: Trap, mysql_trap: Trap, type_id: str, move: dict[str, str], path: str
) -> None:
    trap = pg_trap if type_id == "postgresql" else mysql_trap
    trap.reset()
    connection_id = _database_connection(client, type_id)
    changes = _moved(move, trap)
    if path == "update":
        configuration = {**_configuration(client, connection_id), **changes}
        assert configuration["password"] == REDACTED
        response = client.put(
            f"/api/connections/{connection_id}",
            json={"name": "moved", "configuration": configuration, "validate": True},
        )
    elif path == "test":
        response = client.post(
            "/api/connections/test",
            json={"type": type_id, "connection_id": connection_id, "configuration": changes},
        )
    else:
        response = client.post(
            f"/api/connection_types/{type_id}/parameter_values",
            json={"field": "database", "connection_id": connection_id, "parameters": changes},
        )
    _refused(response)
    _untouched(trap)
    assert _configuration(client, connection_id)["port"] == (5432 if type_id == "postgresql" else 3306)


@pytest.mark.parametrize("type_id", ["postgresql", "mysql"])
def test_the_database_traps_catch_a_password_sent_on_purpose(
    client: httpx.Client, pg_trap: Trap, mysql_trap: Trap, type_id: str
) -> None:
    """Control: the fake servers get a real driver to hand over a password in clear, so the
    silent traps above mean the stored password was never offered to them."""
    trap = pg_trap if type_id == "postgresql" else mysql_trap
    connection_id = _database_connection(client, type_id)
    response = client.post(
        "/api/connections/test",
        json={
            "type": type_id,
            "connection_id": connection_id,
            "configuration": {"port": trap.port, "password": "Caller_Own_Pw_42"},
        },
    )
    assert response.status_code == 400, response.text
    assert trap.connections >= 1
    assert b"Caller_Own_Pw_42" in trap.seen()
    assert STORED_DB_PASSWORD.encode() not in trap.seen()


def test_the_stored_database_target_still_works(client: httpx.Client) -> None:
    """No false refusal: the same target with the password kept is tested as before."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    connection_id = _create(
        client,
        "postgresql",
        {"hostname": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres", "password": "x"},
    )
    response = client.post(
        "/api/connections/test",
        json={"type": "postgresql", "connection_id": connection_id, "configuration": {"database": "test"}},
    )
    assert response.status_code == 200, response.text


# -- Composio: accounts and auth configs ------------------------------------------------------------


class Composio:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.client.post("/api/v3.1" + path, json=body)

    def patch(self, path: str, body: Any) -> httpx.Response:
        return self.client.patch("/api/v3.1" + path, json=body)

    def auth_config(self, scheme: str, **credentials: Any) -> str:
        response = self.post(
            "/auth_configs",
            {
                "toolkit": {"slug": "api"},
                "auth_config": {"type": "use_custom_auth", "authScheme": scheme, "credentials": credentials},
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["auth_config"]["id"])

    def account(self, config_id: str, scheme: str, val: dict[str, Any]) -> httpx.Response:
        return self.post(
            "/connected_accounts",
            {
                "auth_config": {"id": config_id},
                "connection": {
                    "user_id": "colleague",
                    "state": {"authScheme": scheme, "val": {"status": "ACTIVE", **val}},
                },
            },
        )

    def proxy_home(self, account_id: str, home: Trap, secret: str) -> None:
        home.reset()
        response = self.post(
            "/tools/execute/proxy", {"endpoint": "/ping", "method": "GET", "connected_account_id": account_id}
        )
        assert response.status_code == 200, response.text
        assert secret.encode() in home.seen()


def _composio_refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["slug"] == "SecretRequiredForNewTarget", error
    assert not any(secret in response.text for secret in STORED)


@pytest.fixture(scope="module")
def composio(server: KeyholeServer, org_a: Keys) -> Iterator[Composio]:
    with httpx.Client(base_url=server.url, headers={"x-api-key": org_a.user_api_key}, timeout=30) as instance:
        yield Composio(instance)


@pytest.mark.parametrize("token", [None, REDACTED])
def test_account_patch_cannot_move_its_token(
    composio: Composio, home: Trap, trap: Trap, token: str | None
) -> None:
    config_id = composio.auth_config("BEARER_TOKEN")
    created = composio.account(config_id, "BEARER_TOKEN", {"base_url": home.url, "token": STORED_TOKEN})
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    val: dict[str, Any] = {"base_url": trap.url}
    if token is not None:
        val["token"] = token
    response = composio.patch(
        f"/connected_accounts/{account_id}",
        {"connection": {"state": {"authScheme": "BEARER_TOKEN", "val": val}}},
    )
    _composio_refused(response)
    _untouched(trap)
    composio.proxy_home(account_id, home, STORED_TOKEN)


def test_account_patch_with_a_new_token_may_move(composio: Composio, home: Trap, trap: Trap) -> None:
    config_id = composio.auth_config("BEARER_TOKEN")
    account_id = composio.account(
        config_id, "BEARER_TOKEN", {"base_url": home.url, "token": STORED_TOKEN}
    ).json()["id"]
    response = composio.patch(
        f"/connected_accounts/{account_id}",
        {
            "connection": {
                "state": {"authScheme": "BEARER_TOKEN", "val": {"base_url": trap.url, "token": "t2"}}
            }
        },
    )
    assert response.status_code == 200, response.text
    composio.proxy_home(account_id, trap, "Bearer t2")
    assert STORED_TOKEN.encode() not in trap.seen()


@pytest.mark.parametrize("config_base_url", [None, "home"])
def test_an_auth_config_shared_key_goes_only_to_its_own_base_url(
    composio: Composio, home: Trap, trap: Trap, config_base_url: str | None
) -> None:
    credentials: dict[str, Any] = {"api_key": SHARED_API_KEY}
    if config_base_url is not None:
        credentials["base_url"] = home.url
    config_id = composio.auth_config("API_KEY", **credentials)
    _composio_refused(composio.account(config_id, "API_KEY", {"base_url": trap.url}))
    _composio_refused(composio.account(config_id, "API_KEY", {"base_url": trap.url, "api_key": REDACTED}))
    _untouched(trap)
    if config_base_url is None:
        _composio_refused(composio.account(config_id, "API_KEY", {}))
        return
    created = composio.account(config_id, "API_KEY", {})
    assert created.status_code == 201, created.text
    composio.proxy_home(created.json()["id"], home, SHARED_API_KEY)
    own = composio.account(config_id, "API_KEY", {"base_url": trap.url, "api_key": "ak_caller_own"})
    assert own.status_code == 201, own.text  # the caller's own key may go where the caller says


def test_an_auth_config_update_cannot_move_its_shared_key(composio: Composio, home: Trap, trap: Trap) -> None:
    config_id = composio.auth_config("API_KEY", api_key=SHARED_API_KEY, base_url=home.url)
    for credentials in (
        {"base_url": trap.url},
        {"base_url": trap.url, "api_key": REDACTED},
        {"base_url": None},
    ):
        response = composio.patch(
            f"/auth_configs/{config_id}", {"type": "custom", "credentials": credentials}
        )
        _composio_refused(response)
    created = composio.account(config_id, "API_KEY", {})
    assert created.status_code == 201, created.text
    composio.proxy_home(created.json()["id"], home, SHARED_API_KEY)
    _untouched(trap)


@pytest.mark.parametrize("moved", ["token_url", "authorization_url"])
def test_an_oauth_auth_config_client_secret_stays_with_its_endpoints(
    composio: Composio, home: Trap, trap: Trap, moved: str
) -> None:
    config_id = composio.auth_config(
        "OAUTH2",
        client_id="cid",
        client_secret=STORED_CLIENT_SECRET,
        token_url=home.url + "/token",
        authorization_url=home.url + "/authorize",
        base_url=home.url,
    )
    response = composio.post(
        "/connected_accounts/link",
        {"auth_config_id": config_id, "user_id": "colleague", "connection_data": {moved: trap.url + "/x"}},
    )
    _composio_refused(response)
    _untouched(trap)


def test_binary_body_url_is_fetched_without_any_credential(
    composio: Composio, home: Trap, trap: Trap
) -> None:
    config_id = composio.auth_config("BEARER_TOKEN")
    account_id = composio.account(
        config_id, "BEARER_TOKEN", {"base_url": home.url, "token": STORED_TOKEN}
    ).json()["id"]
    response = composio.post(
        "/tools/execute/proxy",
        {
            "endpoint": "/upload",
            "method": "POST",
            "connected_account_id": account_id,
            "binary_body": {"url": trap.url + "/file.bin", "content_type": "application/octet-stream"},
        },
    )
    assert response.status_code == 200, response.text
    assert trap.connections == 1
    assert b"authorization" not in trap.seen().lower()
    assert STORED_TOKEN.encode() not in trap.seen()


# -- the official SDK sees the same refusal ----------------------------------------------------------


def test_the_polytomic_sdk_gets_a_clear_refusal(
    server: KeyholeServer, org_a: Keys, home: Trap, trap: Trap
) -> None:
    sdk = Polytomic(base_url=server.url, token=org_a.user_api_key, max_retries=0)
    created = sdk.connections.create(
        name="sdk-binding",
        type="api",
        configuration={"url": home.url, "auth": {"type": "bearer", "token": STORED_TOKEN}},
        validate=False,
    )
    connection_id = created.data.id
    assert connection_id is not None
    moved = {"url": trap.url, "auth": {"type": "bearer", "token": REDACTED}}
    with pytest.raises(ApiError) as update:
        sdk.connections.update(id=connection_id, name="moved", configuration=moved, validate=False)
    with pytest.raises(ApiError) as test:
        sdk.connections.test_connection(
            type="api", configuration={"url": trap.url}, connection_id=connection_id
        )
    for refused in (update.value, test.value):
        assert refused.status_code == 422
        assert RETARGET in str(refused.body)
        assert STORED_TOKEN not in str(refused.body)
    _untouched(trap)
    assert sdk.connections.get(id=connection_id).data.configuration["url"] == home.url


# -- what else a kept secret may not be combined with ------------------------------------------------


def _header_connection(client: httpx.Client, home: Trap) -> str:
    return _create(
        client,
        "api",
        {"url": home.url, "auth": {"type": "header", "name": "X-Api-Key", "value": STORED_TOKEN}},
    )


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "header", "name": "X-Echo-Me", "value": REDACTED},
        {"type": "query", "name": "api_key", "value": REDACTED},
    ],
)
def test_a_kept_secret_cannot_be_moved_to_another_field(
    client: httpx.Client, home: Trap, auth: dict[str, Any]
) -> None:
    connection_id = _header_connection(client, home)
    response = client.put(
        f"/api/connections/{connection_id}",
        json={"name": "moved", "configuration": {"url": home.url, "auth": auth}, "validate": False},
    )
    body = _refused(response)
    assert set(body["metadata"]["fields"]) <= {"/auth/type", "/auth/name"}


def test_echo_scrubbing_cannot_be_turned_off_while_keeping_the_secret(
    client: httpx.Client, home: Trap
) -> None:
    connection_id = _header_connection(client, home)
    configuration = {
        "url": home.url,
        "auth": {"type": "header", "name": "X-Api-Key", "value": REDACTED},
        "proxy": {"scrub_echoed_secrets": False},
    }
    response = client.put(
        f"/api/connections/{connection_id}",
        json={"name": "unscrubbed", "configuration": configuration, "validate": False},
    )
    assert _refused(response)["metadata"]["fields"] == ["/proxy/scrub_echoed_secrets"]
    configuration["auth"] = {"type": "header", "name": "X-Api-Key", "value": "caller_knows_this_one"}
    response = client.put(
        f"/api/connections/{connection_id}",
        json={"name": "unscrubbed", "configuration": configuration, "validate": False},
    )
    assert response.status_code == 200, response.text  # whoever sends the secret may turn it off


@pytest.mark.parametrize("path", ["/../../other-tenant/collect", "/%2e%2e/x", "/a/%252e%252e/b", "//evil"])
def test_a_health_check_never_leaves_the_base_path(client: httpx.Client, home: Trap, path: str) -> None:
    connection_id = _bearer_connection(client, home)
    home.reset()
    response = client.post(
        "/api/connections/test",
        json={"type": "api", "connection_id": connection_id, "configuration": {"healthcheck_path": path}},
    )
    assert response.status_code == 422, response.text
    assert response.json()["metadata"]["errors"][0]["field"] == "/healthcheck_path"
    assert home.connections == 0


@pytest.mark.parametrize(
    "configuration",
    [
        {"auth": {"type": "header", "name": "Host", "value": "x"}},
        {"auth": {"type": "header", "name": "X_Forwarded_Host", "value": "x"}},
        {"headers": {"X_Forwarded_Host": "evil.example"}},
        {"headers": {"x-real_ip": "10.0.0.1"}},
        {"headers": {"Via": "1.1 evil"}},
    ],
)
def test_a_connection_cannot_configure_a_blocked_header(
    client: httpx.Client, home: Trap, configuration: dict[str, Any]
) -> None:
    response = client.post(
        "/api/connections",
        json={
            "name": "blocked",
            "type": "api",
            "configuration": {"url": home.url, **configuration},
            "validate": False,
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["key"] == "invalid_configuration"


def test_oauth_tokens_are_discarded_with_the_old_target(
    server: KeyholeServer, client: httpx.Client, home: Trap, token_server: Trap, trap: Trap
) -> None:
    """Tokens stored before they carried their target's fingerprint would not know it: a move
    deletes them in the same transaction, so no token of any age follows a new base URL."""
    connection_id = _oauth_connection(client, home, token_server)
    client.post(f"/api/connections/{connection_id}/proxy", json={"request": {"method": "GET", "path": "/"}})
    with sqlite3.connect(server.home / "keyhole.db") as database:
        (stored,) = database.execute(
            "SELECT tokens FROM oauth_tokens WHERE id = ?", (connection_id,)
        ).fetchone()
    assert stored is not None
    configuration = _configuration(client, connection_id)
    configuration["url"] = trap.url
    configuration["auth"]["client_secret"] = STORED_CLIENT_SECRET
    response = client.put(
        f"/api/connections/{connection_id}",
        json={"name": "moved", "configuration": configuration, "validate": False},
    )
    assert response.status_code == 200, response.text
    with sqlite3.connect(server.home / "keyhole.db") as database:
        (stored,) = database.execute(
            "SELECT tokens FROM oauth_tokens WHERE id = ?", (connection_id,)
        ).fetchone()
    assert stored is None
