"""The core origin rule: absolute endpoints only on the base URL's own site, decided offline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yarl

from keyhole.errors import InvalidRequest
from keyhole.proxy.origin import check_origin, registrable_domain, same_site, split_endpoint


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("api.github.com", "github.com"),
        ("gmail.googleapis.com", "googleapis.com"),
        ("shop.example.co.uk", "example.co.uk"),
        ("user.github.io", "github.io"),  # ICANN section only, as hosted Composio
        ("127.0.0.1", None),
        ("::1", None),
        ("localhost", None),
        ("co.uk", None),
    ],
)
def test_registrable_domain(host: str, domain: str | None) -> None:
    assert registrable_domain(host) == domain


@pytest.mark.parametrize(
    ("base", "candidate", "allowed"),
    [
        ("https://gmail.googleapis.com/gmail/v1", "https://www.googleapis.com", True),
        ("https://api.github.com", "https://uploads.github.com", True),
        ("https://api.github.com", "http://api.github.com", False),
        ("https://api.github.com", "https://github.com.evil.io", False),
        ("https://a.github.io", "https://b.github.io", True),  # documented trade-off
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080", True),
        ("http://127.0.0.1:8080", "http://127.0.0.1:9090", False),
        ("http://127.0.0.1:8080", "http://localhost:8080", False),
        ("http://localhost:80", "http://localhost", True),
    ],
)
def test_same_site(base: str, candidate: str, allowed: bool) -> None:
    assert same_site(yarl.URL(base), yarl.URL(candidate)) is allowed


def test_split_endpoint() -> None:
    relative = split_endpoint("repos/x?per_page=5")
    assert (relative.path, relative.raw_query, relative.origin) == ("/repos/x", "per_page=5", None)
    absolute = split_endpoint("https://uploads.github.com/repos/x/assets?name=a%20b")
    assert absolute.path == "/repos/x/assets" and absolute.raw_query == "name=a%20b"
    assert str(absolute.origin) == "https://uploads.github.com"
    for bad in ("ftp://example.com/x", "javascript://x"):
        with pytest.raises(InvalidRequest) as caught:
            split_endpoint(bad)
        assert caught.value.key == "OriginMismatch"
    for bad in ("https://user:pw@api.github.com/x", "/x#frag", "/a\nb", ""):
        with pytest.raises(InvalidRequest) as caught:
            split_endpoint(bad)
        assert caught.value.key == "invalid_proxy_request"
    with pytest.raises(InvalidRequest) as caught:
        check_origin(yarl.URL("https://api.github.com"), yarl.URL("https://example.com"))
    assert caught.value.key == "OriginMismatch"


def test_public_suffix_list_never_touches_the_network_or_disk(tmp_path: Path) -> None:
    """A fresh process with sockets disabled and an empty home resolves domains from the snapshot."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise AssertionError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from keyhole.proxy.origin import registrable_domain
        assert registrable_domain("api.github.com") == "github.com"
        assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
        print("ok")
        """
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TLDEXTRACT_CACHE", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert not any(tmp_path.rglob("*")), list(tmp_path.rglob("*"))  # no suffix-list cache written
