"""The composio SDK 0.30.0 on its pinned composio-client 2.0.0rc19 (/api/v3.1).

SDK calls where the SDK has them; the raw 2.0 client (``composio.client``) for the rest
(binary uploads, inline credentials), both against the same server.
"""

from __future__ import annotations

import base64
from typing import Any

import composio_client
from _common import API_KEY, HTTPBIN, TOKEN, UPLOAD, URL, USER_ID, download, finish, results, step

import composio as sdk
from composio import Composio

composio = Composio(api_key=API_KEY, base_url=URL, allow_tracking=False, max_retries=0)
raw = composio.client
results["version"] = sdk.__version__ if hasattr(sdk, "__version__") else "unknown"
results["client_version"] = composio_client.__version__


def dump(value: Any) -> Any:
    return value.model_dump(by_alias=True) if hasattr(value, "model_dump") else value


def echo(response: Any) -> dict[str, Any]:
    return {
        "status": response.status,
        "data": response.data,
        "headers": response.headers,
        "binary": dump(getattr(response, "binary_data", None)),
    }


config = step(
    "auth_config_create",
    lambda: dump(
        composio.auth_configs.create(
            "api",
            {
                "type": "use_custom_auth",
                "auth_scheme": "API_KEY",
                "credentials": {"api_key_header": "X-Api-Token"},
            },
        )
    ),
)
config_id = config["id"]
step("auth_config_list", lambda: [item.id for item in composio.auth_configs.list(toolkit_slug="api").items])
step("auth_config_get", lambda: dump(composio.auth_configs.get(config_id)))
step("auth_config_disable", lambda: dump(composio.auth_configs.disable(config_id)))
step("auth_config_enable", lambda: dump(composio.auth_configs.enable(config_id)))

request = step(
    "account_initiate",
    lambda: composio.connected_accounts.initiate(
        USER_ID,
        config_id,
        config={"auth_scheme": "API_KEY", "val": {"status": "ACTIVE", "api_key": TOKEN, "base_url": HTTPBIN}},
    ),
)
account = request.id
results["account_initiate"] = {"id": request.id, "status": request.status}
step("account_list", lambda: [item.id for item in composio.connected_accounts.list(user_ids=[USER_ID]).items])
step("account_get", lambda: dump(composio.connected_accounts.get(account)))
step("account_update", lambda: dump(composio.connected_accounts.update(account, alias="sdk-alias")))
step("account_disable", lambda: dump(composio.connected_accounts.disable(account)))
step("account_enable", lambda: dump(composio.connected_accounts.enable(account)))

step(
    "proxy_relative",
    lambda: echo(
        composio.tools.proxy(
            endpoint="/anything/sdk",
            method="GET",
            connected_account_id=account,
            user_id=USER_ID,
            parameters=[
                {"name": "X-Demo", "value": "sdk-1", "type": "header"},
                {"name": "page", "value": "2", "type": "query"},
            ],
        )
    ),
)
step(
    "proxy_absolute",
    lambda: echo(
        composio.tools.proxy(endpoint=f"{HTTPBIN}/anything/abs", method="GET", connected_account_id=account)
    ),
)
step(
    "user_mismatch",
    lambda: echo(
        composio.tools.proxy(
            endpoint="/anything", method="GET", connected_account_id=account, user_id="someone"
        )
    ),
)
step(
    "origin_mismatch",
    lambda: echo(
        composio.tools.proxy(endpoint="https://example.com/x", method="GET", connected_account_id=account)
    ),
)
step("missing_auth_context", lambda: echo(composio.tools.proxy(endpoint="/anything", method="GET")))
step(
    "binary_download",
    lambda: echo(composio.tools.proxy(endpoint="/image/png", method="GET", connected_account_id=account)),
)
downloaded = results.get("binary_download") or {}
if isinstance(downloaded, dict) and downloaded.get("binary") is not None:
    step("binary_fetch", lambda: download(downloaded["binary"]))
step(
    "binary_upload",
    lambda: echo(
        raw.tools.proxy(
            endpoint="/anything",
            method="PUT",
            connected_account_id=account,
            binary_body={
                "base64": base64.b64encode(UPLOAD).decode(),
                "content_type": "application/octet-stream",
            },
        )
    ),
)
step(
    "inline_basic",
    lambda: echo(
        raw.tools.proxy(
            endpoint="/basic-auth/ada/pw-1",
            method="GET",
            custom_connection_data={
                "auth_scheme": "BASIC",
                "toolkit_slug": "api",
                "val": {"username": "ada", "password": "pw-1", "base_url": HTTPBIN},
            },
        )
    ),
)

session = step("session_create", lambda: composio.create(user_id=USER_ID, toolkits=["api"]))
results["session_create"] = {"session_id": session.session_id}
step(
    "session_proxy",
    lambda: dict(
        session.proxy_execute(
            toolkit="api",
            endpoint="/anything/session",
            method="GET",
            parameters=[{"name": "X-Session", "value": "sdk-s", "in": "header"}],
        )
    ),
)
used = step("session_use", lambda: composio.use(session.session_id))
results["session_use"] = {"session_id": used.session_id}
step(
    "session_other_toolkit",
    lambda: dict(session.proxy_execute(toolkit="github", endpoint="/user", method="GET")),
)

bad = Composio(api_key="kh_u_not-a-key", base_url=URL, allow_tracking=False, max_retries=0)
step("unauthenticated", lambda: dump(bad.connected_accounts.list()))
step("not_found", lambda: dump(composio.connected_accounts.get("00000000-0000-4000-8000-000000000000")))
step("account_delete", lambda: dump(composio.connected_accounts.delete(account)))
step("auth_config_delete", lambda: dump(composio.auth_configs.delete(config_id)))
finish()
