"""What an edit in the console keeps of a connection made through the REST API: every value as
stored, spaces around it included; a value the page cannot show (it holds the redaction
placeholder) stays as stored and is still sent upstream; the type's defaults a configuration
leaves out stay out; and Connect is offered exactly for what the connect flow authorizes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from .connection_pages import as_posted, parse, proxied, stored
from .support import SAME_ORIGIN, ConsoleClient

REDACTED = "[REDACTED]"


def _made(api: httpx.Client, name: str, configuration: dict[str, Any]) -> str:
    answer = api.post(
        "/api/connections",
        json={"name": name, "type": "api", "configuration": configuration, "validate": False},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["id"])


def _renamed(client: ConsoleClient, connection_id: str, name: str) -> None:
    """Save the edit page as a browser without scripts posts it, with only the name typed."""
    base = f"/console/connections/{connection_id}"
    page = client.get(f"{base}/edit")
    assert page.status_code == 200
    assert REDACTED not in page.text
    saved = client.post(f"{base}/edit", as_posted(parse(page.text), {"name": name}))
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{base}?done=saved"


def test_a_value_holding_the_placeholder_survives_an_edit(
    client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    connection_id = _made(
        api,
        "Traced",
        {"url": httpbin_url, "headers": {"X-Trace": REDACTED, "Accept": "application/json"}},
    )
    before = stored(api)[connection_id]["configuration"]
    page = client.get(f"/console/connections/{connection_id}/edit").text
    assert "Its stored value is not shown here" in page

    _renamed(client, connection_id, "Traced, renamed")
    after = stored(api)[connection_id]
    assert after["name"] == "Traced, renamed"
    assert after["configuration"] == before
    answer = proxied(api, connection_id, "/headers").json()["data"]
    assert answer["status"] == 200
    sent = json.loads(answer["body"])["headers"]
    assert "X-Trace" in sent and sent["Accept"] == "application/json"


def test_a_rename_keeps_every_value_as_stored_spaces_included(
    client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    connection_id = _made(
        api,
        "Padded",
        {
            "url": httpbin_url,
            "headers": {"X-Padded": "  padded value ", "X-Tab": "\tx"},
            "query": {"q": " spaced ", " name ": "v"},
            "healthcheck_path": "/get ",
        },
    )
    before = api.get(f"/api/connections/{connection_id}")
    assert before.status_code == 200, before.text
    assert before.json()["data"]["configuration"]["headers"]["X-Padded"] == "  padded value "

    _renamed(client, connection_id, "Padded, renamed")
    after = api.get(f"/api/connections/{connection_id}").json()["data"]
    assert after["name"] == "Padded, renamed"
    assert after["configuration"] == before.json()["data"]["configuration"]
    # The query string carries the spaces upstream; HTTP itself trims a header value's.
    echoed = json.loads(proxied(api, connection_id, "/get").json()["data"]["body"])
    assert echoed["args"]["q"] == " spaced " and echoed["args"][" name "] == "v"
    assert echoed["headers"]["X-Padded"].strip() == "padded value"


def test_an_edit_leaves_out_the_defaults_the_configuration_leaves_out(
    client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    connection_id = _made(api, "Defaults", {"url": httpbin_url, "auth": {"type": "bearer", "token": token}})
    before = stored(api)[connection_id]["configuration"]
    assert "proxy" not in before

    _renamed(client, connection_id, "Defaults, renamed")
    assert stored(api)[connection_id]["configuration"] == before  # no proxy limits written
    echoed = proxied(api, connection_id, "/bearer").json()["data"]
    assert echoed["status"] == 200  # the kept token still authenticates

    # A limit changed in the console writes the limits, as the form showed them.
    base = f"/console/connections/{connection_id}"
    page = parse(client.get(f"{base}/edit").text)
    tuned = client.post(f"{base}/edit", as_posted(page, {"config/proxy/timeout_ms": "5000"}))
    assert tuned.status_code == 303, tuned.text
    proxy = stored(api)[connection_id]["configuration"]["proxy"]
    assert (proxy["timeout_ms"], proxy["rate_limit_per_minute"], proxy["scrub_echoed_secrets"]) == (
        5000,
        600,
        True,
    )


def test_connect_is_offered_exactly_where_the_flow_authorizes(
    client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    oauth = {"type": "oauth2", "token_url": f"{httpbin_url}/token", "client_id": "cid", "client_secret": "cs"}
    cases = {
        "with an authorization URL": ({**oauth, "authorization_url": f"{httpbin_url}/authorize"}, True),
        "without an authorization URL": (oauth, False),
        "client credentials": ({**oauth, "grant": "client_credentials"}, False),
    }
    for name, (auth, offered) in cases.items():
        connection_id = _made(api, name, {"url": httpbin_url, "auth": auth})
        base = f"/console/connections/{connection_id}"
        assert (f'href="{base}/connect"' in client.get(base).text) == offered, name
        started = client.get(f"{base}/connect", headers=SAME_ORIGIN)
        if offered:
            assert started.status_code == 303, started.text
        else:
            assert started.status_code == 400 and "oauth_not_configured" in started.text, name
