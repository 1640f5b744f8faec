"""The official Composio clients drive every route against a real server and a real httpbin.

Each client runs in its own cached virtual environment (``client_envs``) and prints what it saw.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from conftest import KeyholeServer, Keys

from .client_envs import CLIENTS
from .conftest import TOKEN, run_client

REDACTED = "[REDACTED]"


def _scenario(server: KeyholeServer, keys: Keys, httpbin_url: str, user_id: str) -> dict[str, str]:
    return {
        "KEYHOLE_URL": server.url,
        "KEYHOLE_API_KEY": keys.user_api_key,
        "HTTPBIN_URL": httpbin_url,
        "COMPOSIO_USER_ID": user_id,
        "UPSTREAM_TOKEN": TOKEN,
    }


def _error(result: dict[str, Any], cls: str, status: int, slug: str | None = None) -> None:
    assert result.get("error") == cls, result
    assert result["status"] == status, result
    assert isinstance(result["code"], int), result
    assert isinstance(result["slug"], str), result
    if slug is not None:
        assert result["slug"] == slug, result


def _check_binary(results: dict[str, Any]) -> None:
    download = results["binary_download"]
    assert download["status"] == 200
    assert download["headers"]["content-type"] == "image/png"
    assert download["data"] == {}
    binary = download["binary"]
    assert binary["content_type"] == "image/png" and binary["size"] > 0 and binary["expires_at"]
    fetched = results["binary_fetch"]
    assert fetched["size"] == binary["size"] and fetched["type"] == "image/png"
    assert base64.b64decode(fetched["head"]) == b"\x89PNG\r\n\x1a\n"
    assert "binary_data" not in str(results["proxy_relative"].get("data"))


def _check_proxy_results(results: dict[str, Any], httpbin_url: str) -> None:
    relative = results["proxy_relative"]
    assert relative["status"] == 200, relative
    echoed = relative["data"]
    assert echoed["headers"]["X-Demo"] == "demo-1"
    assert echoed["args"] == {"fixed": "1", "per_page": "5"}
    assert echoed["headers"]["Authorization"] == f"Bearer {REDACTED}"  # echo scrubbed
    assert TOKEN not in str(results)
    assert relative["headers"]["content-type"] == "application/json"
    assert relative["binary"] is None

    assert results["proxy_bearer"]["data"] == {"authenticated": True, "token": REDACTED}
    absolute = results["proxy_absolute"]
    assert absolute["status"] == 200 and absolute["data"]["url"] == f"{httpbin_url}/anything/absolute"
    assert results["proxy_post_json"]["data"]["json"] == {"a": [1, 2]}
    assert results["proxy_status"]["status"] == 418
    assert results["proxy_head"]["status"] == 200 and results["proxy_head"]["data"] is None
    _error(results["origin_mismatch"], "BadRequestError", 400, "OriginMismatch")
    _error(results["missing_auth_context"], "BadRequestError", 400, "MissingAuthContext")
    _error(results["locked_header"], "BadRequestError", 400, "LockedHeader")
    _error(results["proxy_disabled"], "BadRequestError", 400, "ConnectedAccount_Disabled")

    _check_binary(results)

    upload = results["binary_upload"]
    assert upload["status"] == 200
    sent = bytes(range(256)) * 4
    assert upload["data"]["data"] == "data:application/octet-stream;base64," + base64.b64encode(sent).decode()
    assert upload["data"]["headers"]["Content-Type"] == "application/octet-stream"
    inline = results["inline_credentials"]
    assert inline["status"] == 200 and inline["data"]["authenticated"] is True


def _check_crud(results: dict[str, Any], user_id: str, httpbin_url: str) -> None:
    config = results["auth_config_create"]["auth_config"]
    assert config["auth_scheme"] == "BEARER_TOKEN" and config["is_composio_managed"] is False
    assert config["id"] in results["auth_config_list"]
    assert results["auth_config_get"]["status"] == "ENABLED"
    created = results["account_create"]
    assert created["status"] == "ACTIVE"
    assert created["connectionData"]["val"]["token"] == REDACTED
    account = created["id"]
    assert account in results["account_list"]
    filtered = results["account_list_filtered"]
    assert [item["id"] for item in filtered["items"]] == [account]
    assert filtered["total_items"] == 1 and filtered["next_cursor"] is None
    got = results["account_get"]
    assert got["user_id"] == user_id and got["toolkit"]["slug"] == "api"
    assert got["state"]["authScheme"] == "BEARER_TOKEN"
    assert got["state"]["val"]["token"] == REDACTED and got["state"]["val"]["base_url"] == httpbin_url
    assert got["auth_config"]["id"] == config["id"] and got["is_disabled"] is False
    assert results["account_patch"] == {"id": account, "status": "ACTIVE", "success": True}
    assert results["account_disable"] == {"success": True}
    assert results["account_enable"] == {"success": True}
    assert results["account_delete"]["success"] is True
    _error(results["account_gone"], "NotFoundError", 404)
    _error(results["not_found"], "NotFoundError", 404, "ConnectedAccount_NotFound")
    _error(results["unauthenticated"], "AuthenticationError", 401)
    assert "api" in results["toolkits"] and "github" in results["toolkits"]
    assert "postgresql" not in results["toolkits"]
    assert results["toolkit_get"]["slug"] == "api"


def _check_session(results: dict[str, Any], user_id: str, *, v31: bool) -> None:
    session = results["session_create"]
    assert session["session_id"].startswith("trs_")
    config = results["session_get"]["config"]
    assert config["user_id"] == user_id
    assert config["toolkits"] == {"enabled": ["api"]}
    account = results["account_create"]["id"]
    assert config["connected_accounts"] == {"api": [account] if v31 else account}
    proxied = results["session_proxy"]
    assert proxied["status"] == 200 and proxied["result_type"] == "completed"
    assert proxied["data"]["headers"]["X-Session"] == "s-1"
    _error(results["session_other_toolkit"], "BadRequestError", 400, "ToolRouter_ToolkitNotEnabled")
    _error(results["session_missing"], "NotFoundError", 404)


@pytest.mark.parametrize("name", ["composio-client-1.35", "composio-client-1.43"])
def test_stainless_client(
    name: str, server: KeyholeServer, org_a: Keys, httpbin_url: str, user_id: str
) -> None:
    results = run_client(name, "stainless_client.py", _scenario(server, org_a, httpbin_url, user_id))
    assert results["version"] == name.rsplit("-", 1)[1] + ".0"
    failures = {
        key: value for key, value in results.items() if isinstance(value, dict) and "traceback" in value
    }
    assert not failures, failures
    _check_crud(results, user_id, httpbin_url)
    _check_proxy_results(results, httpbin_url)
    _check_session(results, user_id, v31=CLIENTS[name].prefix == "/api/v3.1")


def test_composio_sdk(server: KeyholeServer, org_a: Keys, httpbin_url: str, user_id: str) -> None:
    results = run_client("composio-sdk-0.30", "sdk_client.py", _scenario(server, org_a, httpbin_url, user_id))
    assert results["client_version"].startswith("2.0.0")
    failures = {
        key: value for key, value in results.items() if isinstance(value, dict) and "traceback" in value
    }
    assert not failures, failures
    config_id = results["auth_config_create"]["id"]
    assert config_id in results["auth_config_list"]
    assert results["auth_config_get"]["credentials"] == {"api_key_header": "X-Api-Token"}
    account = results["account_initiate"]["id"]
    assert results["account_initiate"]["status"] == "ACTIVE"
    assert account in results["account_list"]
    got = results["account_get"]
    assert got["state"]["val"]["api_key"] == REDACTED
    assert got["state"]["val"]["api_key_header"] == "X-Api-Token"

    relative = results["proxy_relative"]
    assert relative["status"] == 200
    assert relative["data"]["headers"]["X-Api-Token"] == REDACTED  # injected, then scrubbed
    assert relative["data"]["headers"]["X-Demo"] == "sdk-1"
    assert relative["data"]["args"] == {"page": "2"}
    assert results["proxy_absolute"]["status"] == 200
    _error(results["user_mismatch"], "BadRequestError", 400, "ActionExecute_ConnectedAccountEntityIdMismatch")
    assert results["user_mismatch"]["code"] == 1812
    assert results["user_mismatch"]["details_slug"] == "ActionExecute_ConnectedAccountEntityIdMismatch"
    assert results["user_mismatch"]["request_id"]
    _error(results["origin_mismatch"], "BadRequestError", 400, "OriginMismatch")
    _error(results["missing_auth_context"], "BadRequestError", 400, "MissingAuthContext")
    _check_binary(results)
    sent = bytes(range(256)) * 4
    upload = results["binary_upload"]["data"]
    assert upload["method"] == "PUT"
    assert upload["data"] == "data:application/octet-stream;base64," + base64.b64encode(sent).decode()
    assert results["inline_basic"]["data"] == {"authenticated": True, "user": "ada"}

    assert results["session_use"]["session_id"] == results["session_create"]["session_id"]
    proxied = results["session_proxy"]
    assert proxied["result_type"] == "completed" and proxied["status"] == 200
    assert proxied["data"]["headers"]["X-Session"] == "sdk-s"
    _error(results["session_other_toolkit"], "BadRequestError", 400, "ToolRouter_ToolkitNotEnabled")
    _error(results["unauthenticated"], "AuthenticationError", 401)
    _error(results["not_found"], "NotFoundError", 404)
    assert TOKEN not in str(results)
