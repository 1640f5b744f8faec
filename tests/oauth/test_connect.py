"""The authorization-code flow with PKCE through both dialects, against a real OAuth2 server."""

from __future__ import annotations

import time

import httpx

from conftest import KeyholeServer, Keys

from .conftest import CLIENT_SECRET, AuthServer, callback_url_of, follow_connect
from .helpers import REDIRECT, connect, proxy


def test_polytomic_connect_flow(server: KeyholeServer, org_a: Keys, authserver: AuthServer) -> None:
    started = connect(server.url, org_a, authserver, ttl=600)
    assert set(started) == {"redirect_url", "token"}
    assert started["redirect_url"].startswith(authserver.url + "/authorize?")
    assert (
        "code_challenge=" in started["redirect_url"]
        and "code_challenge_method=S256" in started["redirect_url"]
    )
    assert CLIENT_SECRET not in started["redirect_url"]

    session = httpx.get(
        server.url + "/api/connections/connect/session",
        params={"token": started["token"]},
        headers=org_a.bearer,
    )
    assert session.status_code == 200, session.text
    connection_id = session.json()["data"]["connection_id"]
    assert session.json()["data"]["redirect_url"] == REDIRECT
    before = httpx.get(f"{server.url}/api/connections/{connection_id}", headers=org_a.bearer).json()["data"]
    assert before["status"] == "unhealthy"  # awaiting authorization
    pending = proxy(server.url, org_a, connection_id)
    assert pending.status_code == 409 and pending.json()["key"] == "authorization_required"
    assert authserver.count("resource") == 0 and authserver.count("token:refresh_token") == 0

    done = follow_connect(started["redirect_url"])
    assert done.status_code == 302, done.text
    location = done.headers["location"]
    assert location.startswith(REDIRECT) and "status=success" in location and connection_id in location
    assert authserver.count("token:authorization_code") == 1

    view = httpx.get(f"{server.url}/api/connections/{connection_id}", headers=org_a.bearer).json()["data"]
    assert view["status"] == "healthy" and not view["status_error"]
    assert view["configuration"]["auth"]["client_secret"] == "[REDACTED]"
    assert "access_token" not in str(view) and "refresh_token" not in str(view)

    reply = proxy(server.url, org_a, connection_id)
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"]["status"] == 200
    assert '"ok":true' in reply.json()["data"]["body"].replace(" ", "")
    assert "Bearer" not in reply.text
    assert CLIENT_SECRET not in server.logs()


def test_wrong_and_reused_state_exchange_nothing(
    server: KeyholeServer, org_a: Keys, authserver: AuthServer
) -> None:
    started = connect(server.url, org_a, authserver)
    callback = callback_url_of(started["redirect_url"])
    forged = callback.replace("state=", "state=x")
    refused = httpx.get(forged, follow_redirects=False)
    assert refused.status_code == 400 and refused.json()["key"] == "oauth_state_invalid"
    no_state = httpx.get(server.url + "/api/oauth/callback?code=abc", follow_redirects=False)
    assert no_state.status_code == 400
    assert authserver.count("token:authorization_code") == 0

    first = httpx.get(callback, follow_redirects=False)
    assert first.status_code == 302
    again = httpx.get(callback, follow_redirects=False)
    assert again.status_code == 400 and again.json()["key"] == "oauth_state_used"
    assert authserver.count("token:authorization_code") == 1


def test_expired_link(server: KeyholeServer, org_a: Keys, authserver: AuthServer) -> None:
    started = connect(server.url, org_a, authserver, ttl=1)
    time.sleep(1.5)
    refused = follow_connect(started["redirect_url"])
    assert refused.status_code == 400 and refused.json()["key"] == "oauth_link_expired"
    assert authserver.count("token:authorization_code") == 0


def test_bad_ttl_and_non_oauth_connection(server: KeyholeServer, org_a: Keys, authserver: AuthServer) -> None:
    body = {
        "name": "x",
        "redirect_url": REDIRECT,
        "type": "api",
        "configuration": {"url": authserver.url, "auth": authserver.auth()},
        "ttl": 604801,
    }
    too_long = httpx.post(server.url + "/api/connections/connect/", json=body, headers=org_a.bearer)
    assert too_long.status_code == 400 and too_long.json()["key"] == "invalid_ttl"
    body = {
        **body,
        "ttl": 60,
        "configuration": {"url": authserver.url, "auth": {"type": "bearer", "token": "t"}},
    }
    plain = httpx.post(server.url + "/api/connections/connect/", json=body, headers=org_a.bearer)
    assert plain.status_code == 400 and plain.json()["key"] == "oauth_not_configured"


def _oauth_auth_config(server: KeyholeServer, org_a: Keys, authserver: AuthServer) -> str:
    credentials = {**authserver.auth(), "base_url": authserver.url}
    del credentials["type"], credentials["grant"]
    response = httpx.post(
        server.url + "/api/v3.1/auth_configs",
        headers={"x-api-key": org_a.user_api_key},
        json={
            "toolkit": {"slug": "api"},
            "auth_config": {"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": credentials},
        },
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["auth_config"]["id"])


def test_composio_initiate_and_link(server: KeyholeServer, org_a: Keys, authserver: AuthServer) -> None:
    headers = {"x-api-key": org_a.user_api_key}
    config_id = _oauth_auth_config(server, org_a, authserver)
    created = httpx.post(
        server.url + "/api/v3.1/connected_accounts",
        headers=headers,
        json={
            "auth_config": {"id": config_id},
            "connection": {
                "user_id": "ada",
                "callback_url": REDIRECT,
                "state": {"authScheme": "OAUTH2", "val": {"status": "INITIATED"}},
            },
        },
    )
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["status"] == "INITIATED" and account["redirect_url"].startswith(authserver.url)
    assert CLIENT_SECRET not in created.text
    shown = httpx.get(f"{server.url}/api/v3.1/connected_accounts/{account['id']}", headers=headers).json()
    assert shown["status"] == "INITIATED"

    done = follow_connect(account["redirect_url"])
    assert done.status_code == 302 and done.headers["location"].startswith(REDIRECT)
    shown = httpx.get(f"{server.url}/api/v3.1/connected_accounts/{account['id']}", headers=headers).json()
    assert shown["status"] == "ACTIVE" and shown["auth_config"]["auth_scheme"] == "OAUTH2"
    assert CLIENT_SECRET not in str(shown)
    executed = httpx.post(
        server.url + "/api/v3.1/tools/execute/proxy",
        headers=headers,
        json={"connected_account_id": account["id"], "endpoint": "/api/me", "method": "GET"},
    )
    assert executed.status_code == 200 and executed.json()["status"] == 200, executed.text

    linked = httpx.post(
        server.url + "/api/v3.1/connected_accounts/link",
        headers=headers,
        json={"auth_config_id": config_id, "user_id": "bob"},
    )
    assert linked.status_code == 201, linked.text
    link = linked.json()
    assert {"connected_account_id", "link_token", "redirect_url", "expires_at"} <= set(link)
    done = follow_connect(link["redirect_url"])
    assert done.status_code == 302 and "/api/oauth/done" in done.headers["location"]
    shown = httpx.get(
        f"{server.url}/api/v3.1/connected_accounts/{link['connected_account_id']}", headers=headers
    )
    assert shown.json()["status"] == "ACTIVE" and shown.json()["user_id"] == "bob"
    assert authserver.count("token:authorization_code") == 2


def test_official_polytomic_sdk_connect(server: KeyholeServer, org_a: Keys, authserver: AuthServer) -> None:
    from polytomic import Polytomic

    client = Polytomic(base_url=server.url, token=org_a.user_api_key)
    created = client.connections.create(
        name="SDK OAuth", type="api", configuration={"url": authserver.url, "auth": authserver.auth()}
    )
    assert created.data is not None and created.data.status == "unhealthy"
    card = client.connections.connect(
        name="SDK OAuth", redirect_url=REDIRECT, connection=created.data.id, ttl=120
    )
    assert card.data is not None and card.data.redirect_url and card.data.token
    session = client.connections.get_connect_session(
        request_options={"additional_query_parameters": {"token": card.data.token}}
    )
    assert session.data is not None and session.data.connection_id == created.data.id
    done = follow_connect(card.data.redirect_url)
    assert done.status_code == 302 and "status=success" in done.headers["location"]
    fetched = client.connections.get(id=created.data.id)
    assert fetched.data is not None and fetched.data.status == "healthy"
