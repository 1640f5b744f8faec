"""composio-client 1.x (Stainless): 1.35.0 speaks /api/v3, 1.43.0 /api/v3.1.

Strict response validation is on, so every answer must parse into the client's own models.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import composio_client
from _common import API_KEY, HTTPBIN, TOKEN, UPLOAD, URL, USER_ID, download, finish, results, step
from composio_client import Composio

client = Composio(api_key=API_KEY, base_url=URL, max_retries=0, _strict_response_validation=True)
results["version"] = composio_client.__version__


def echo(response: Any) -> dict[str, Any]:
    data = response.data
    return {
        "status": response.status,
        "data": data,
        "headers": response.headers,
        "binary": response.binary_data.model_dump() if response.binary_data else None,
    }


config = step(
    "auth_config_create",
    lambda: client.auth_configs.create(
        toolkit={"slug": "api"},
        auth_config={"type": "use_custom_auth", "auth_scheme": "BEARER_TOKEN", "name": "httpbin bearer"},
    ).model_dump(),
)
config_id = config["auth_config"]["id"]
step(
    "auth_config_list",
    lambda: [item.id for item in client.auth_configs.list(toolkit_slug="api", limit=50).items],
)
step("auth_config_get", lambda: client.auth_configs.retrieve(config_id).model_dump())

created = step(
    "account_create",
    lambda: client.connected_accounts.create(
        auth_config={"id": config_id},
        connection={
            "user_id": USER_ID,
            "state": {
                "auth_scheme": "BEARER_TOKEN",
                "val": {"status": "ACTIVE", "token": TOKEN, "base_url": HTTPBIN},
            },
        },
    ).model_dump(by_alias=True),
)
account = created["id"]
step(
    "account_list",
    lambda: [item.id for item in client.connected_accounts.list(user_ids=[USER_ID], limit=10).items],
)
step(
    "account_list_filtered",
    lambda: client.connected_accounts.list(
        toolkit_slugs=["api", "github"], statuses=["ACTIVE"], auth_config_ids=[config_id], limit=1
    ).model_dump(),
)
step("account_get", lambda: client.connected_accounts.retrieve(account).model_dump(by_alias=True))
step("account_patch", lambda: client.connected_accounts.patch(account, alias="work").model_dump())
step("account_disable", lambda: client.connected_accounts.update_status(account, enabled=False).model_dump())
step(
    "proxy_disabled",
    lambda: echo(client.tools.proxy(endpoint="/anything", method="GET", connected_account_id=account)),
)
step("account_enable", lambda: client.connected_accounts.update_status(account, enabled=True).model_dump())

step(
    "proxy_relative",
    lambda: echo(
        client.tools.proxy(
            endpoint="/anything/relative?fixed=1",
            method="GET",
            connected_account_id=account,
            parameters=[
                {"name": "X-Demo", "value": "demo-1", "type": "header"},
                {"name": "per_page", "value": "5", "type": "query"},
            ],
        )
    ),
)
step(
    "proxy_bearer",
    lambda: echo(client.tools.proxy(endpoint="/bearer", method="GET", connected_account_id=account)),
)
step(
    "proxy_absolute",
    lambda: echo(
        client.tools.proxy(
            endpoint=f"{HTTPBIN}/anything/absolute", method="GET", connected_account_id=account
        )
    ),
)
step(
    "proxy_post_json",
    lambda: echo(
        client.tools.proxy(
            endpoint="/anything", method="POST", connected_account_id=account, body={"a": [1, 2]}
        )
    ),
)
step(
    "proxy_status",
    lambda: echo(client.tools.proxy(endpoint="/status/418", method="GET", connected_account_id=account)),
)
step(
    "proxy_head",
    lambda: echo(client.tools.proxy(endpoint="/get", method="HEAD", connected_account_id=account)),
)
step(
    "origin_mismatch",
    lambda: echo(
        client.tools.proxy(
            endpoint="https://example.com/anything", method="GET", connected_account_id=account
        )
    ),
)
step("missing_auth_context", lambda: echo(client.tools.proxy(endpoint="/anything", method="GET")))
step(
    "locked_header",
    lambda: echo(
        client.tools.proxy(
            endpoint="/anything",
            method="GET",
            connected_account_id=account,
            parameters=[{"name": "Authorization", "value": "Bearer mine", "type": "header"}],
        )
    ),
)
step(
    "binary_download",
    lambda: echo(client.tools.proxy(endpoint="/image/png", method="GET", connected_account_id=account)),
)
downloaded = results.get("binary_download") or {}
if isinstance(downloaded, dict) and downloaded.get("binary") is not None:
    step("binary_fetch", lambda: download(downloaded["binary"]))
step(
    "binary_upload",
    lambda: echo(
        client.tools.proxy(
            endpoint="/anything",
            method="POST",
            connected_account_id=account,
            binary_body={
                "base64": base64.b64encode(UPLOAD).decode(),
                "content_type": "application/octet-stream",
            },
        )
    ),
)
step(
    "inline_credentials",
    lambda: echo(
        client.tools.proxy(
            endpoint="/bearer",
            method="GET",
            custom_connection_data={
                "auth_scheme": "BEARER_TOKEN",
                "toolkit_slug": "api",
                "val": {"token": "inline-" + TOKEN, "base_url": HTTPBIN},
            },
        )
    ),
)

v31 = tuple(int(part) for part in results["version"].split(".")[:2]) >= (1, 36)  # /api/v3.1
pinned: Any = [account] if v31 else account
session = step(
    "session_create",
    lambda: client.tool_router.session.create(
        user_id=USER_ID, toolkits={"enable": ["api"]}, connected_accounts={"api": pinned}
    ).model_dump(),
)
session_id = session["session_id"]
step("session_get", lambda: client.tool_router.session.retrieve(session_id).model_dump())
step(
    "session_proxy",
    lambda: client.tool_router.session.proxy_execute(
        session_id,
        toolkit_slug="api",
        endpoint="/anything/session",
        method="GET",
        parameters=[{"name": "X-Session", "value": "s-1", "type": "header"}],
    ).model_dump(),
)
step(
    "session_other_toolkit",
    lambda: client.tool_router.session.proxy_execute(
        session_id, toolkit_slug="github", endpoint="/user", method="GET"
    ).model_dump(),
)
step("session_missing", lambda: client.tool_router.session.retrieve("trs_missing").model_dump())

step(
    "not_found",
    lambda: client.connected_accounts.retrieve("00000000-0000-4000-8000-000000000000").model_dump(),
)
bad = Composio(api_key="kh_u_not-a-key", base_url=URL, max_retries=0)
step("unauthenticated", lambda: bad.toolkits.list().model_dump())
step("toolkits", lambda: [item.slug for item in client.toolkits.list(limit=50).items])
step("toolkit_get", lambda: client.toolkits.retrieve("api").model_dump())
step("account_delete", lambda: client.connected_accounts.delete(account).model_dump())
step("account_gone", lambda: client.connected_accounts.retrieve(account).model_dump())
step("auth_config_delete", lambda: client.auth_configs.delete(config_id))
results["json"] = json.dumps({"ok": True})
finish()
