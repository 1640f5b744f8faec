"""A real OAuth2 authorization server for the tests, built from Authlib's server components.

Run as ``python authserver.py PORT``. Everything is in memory. Endpoints:

- ``GET /authorize``: consents at once (PKCE S256 required) and redirects with a code;
- ``POST /token``: authorization_code (+ PKCE), refresh_token (rotation: every refresh issues a
  new refresh token and revokes the old one), client_credentials; client_secret_basic only;
- ``GET /api/me``: the protected resource, 401 unless the bearer token is live; its answer names
  the token by its issue number (``token``: 1 for the first issued), never by its value;
- ``GET /admin/stats``: token requests by grant type, resource calls, last token per grant;
- ``POST /admin/config``: ``{"expires_in": N}`` for tokens issued from now on,
  ``{"resource_always_401": true}`` to make the resource refuse every token;
- ``POST /admin/revoke``: ``{"refresh": true}`` revokes every refresh token, ``{"access": true}``
  every access token (so a still-valid-looking token gets a 401).
"""

from __future__ import annotations

import itertools
import secrets
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, request

CLIENT_ID = "keyhole-test-client"
CLIENT_SECRET = "s3cret-client-secret-value"
USER = "ada"

_lock = threading.Lock()
config: dict[str, Any] = {"expires_in": 3600, "resource_always_401": False}
counts: Counter[str] = Counter()
codes: dict[str, Any] = {}
access_tokens: dict[str, dict[str, Any]] = {}
refresh_tokens: dict[str, dict[str, Any]] = {}
redirects_seen: list[str] = []
issued = itertools.count(1)


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    redirect_uris: list[str] = field(default_factory=list)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri.startswith("http://127.0.0.1:")

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token", "client_credentials")


@dataclass
class Code:
    code: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Refresh:
    token: str
    scope: str
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return True

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.revoked


CLIENT = Client()


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        codes[code] = Code(
            code,
            request.payload.redirect_uri,
            request.payload.scope or "",
            data.get("code_challenge"),
            data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        return codes.get(code)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> str:
        return USER


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

    def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:
        entry = refresh_tokens.get(refresh_token)
        found: Refresh | None = entry["obj"] if entry is not None else None
        return found if found is not None and not found.revoked else None

    def authenticate_user(self, refresh_token: Any) -> str:
        return USER

    def revoke_old_credential(self, refresh_token: Any) -> None:
        refresh_token.revoked = True


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]


def _save_token(token: dict[str, Any], req: Any) -> None:
    expires_at = time.time() + int(token.get("expires_in", 0))
    access_tokens[token["access_token"]] = {
        "expires_at": expires_at,
        "revoked": False,
        "serial": next(issued),
    }
    if token.get("refresh_token"):
        obj = Refresh(token["refresh_token"], token.get("scope", ""))
        refresh_tokens[token["refresh_token"]] = {"obj": obj}


app = Flask(__name__)
server = AuthorizationServer(
    app, query_client=lambda cid: CLIENT if cid == CLIENT_ID else None, save_token=_save_token
)
server.register_token_generator(
    "default",
    BearerTokenGenerator(
        lambda *a, **k: secrets.token_urlsafe(24),
        lambda *a, **k: secrets.token_urlsafe(32),
        lambda client, grant_type: int(config["expires_in"]),
    ),
)
server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
server.register_grant(RefreshTokenGrant)
server.register_grant(ClientCredentialsGrant)


@app.get("/authorize")
def authorize() -> Any:
    if request.args.get("code_challenge_method") != "S256" or not request.args.get("code_challenge"):
        return jsonify(error="invalid_request", error_description="PKCE S256 is required"), 400
    redirects_seen.append(request.args.get("redirect_uri", ""))
    return server.create_authorization_response(grant_user=USER)


@app.post("/token")
def token() -> Any:
    with _lock:
        counts[f"token:{request.form.get('grant_type', '')}"] += 1
        return server.create_token_response()


@app.get("/api/me")
def me() -> Any:
    header = request.headers.get("Authorization", "")
    value = header.removeprefix("Bearer ")
    with _lock:
        counts["resource"] += 1
        entry = access_tokens.get(value)
        if (
            config["resource_always_401"]
            or not header.startswith("Bearer ")
            or entry is None
            or entry["revoked"]
            or entry["expires_at"] < time.time()
        ):
            counts["resource:401"] += 1
            return jsonify(error="invalid_token"), 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return jsonify(user=USER, ok=True, token=entry["serial"])


@app.get("/admin/stats")
def stats() -> Any:
    return jsonify(counts=dict(counts), redirect_uris=redirects_seen)


@app.post("/admin/config")
def set_config() -> Any:
    config.update(request.get_json())
    return jsonify(config)


@app.post("/admin/revoke")
def revoke() -> Any:
    body = request.get_json()
    with _lock:
        if body.get("refresh"):
            for entry in refresh_tokens.values():
                entry["obj"].revoked = True
        if body.get("access"):
            for entry in access_tokens.values():
                entry["revoked"] = True
    return jsonify(ok=True)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
