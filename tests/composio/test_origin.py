"""The core origin rule: an absolute endpoint only on the base URL's own site (scheme, effective port,
registrable domain under the whole public-suffix list) and under its path, decided offline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import unquote

import pytest
import yarl
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from keyhole.connections.target import HttpTarget, build_http_target
from keyhole.connections.type_files import load_catalog
from keyhole.errors import InvalidRequest
from keyhole.proxy.origin import (
    PublicSuffixList,
    bundled_suffixes,
    canonical_host,
    check_origin,
    public_suffixes,
    registrable_domain,
    same_site,
    split_endpoint,
    under_base_path,
    use_public_suffix_list,
)
from keyhole.proxy.request import ProxyCall, build_upstream
from keyhole.settings import Settings

CATALOG = load_catalog()
# Suffixes of the list's private section, where every customer's host is a site of its own.
PRIVATE_SUFFIXES = (
    "herokuapp.com",
    "github.io",
    "gitlab.io",
    "appspot.com",
    "s3.amazonaws.com",
    "s3.us-west-2.amazonaws.com",
    "execute-api.us-east-1.amazonaws.com",
    "cloudfront.net",
    "googleapis.com",
    "blogspot.com",
    "netlify.app",
    "vercel.app",
    "pages.dev",
    "workers.dev",
    "web.app",
    "firebaseapp.com",
    "azurewebsites.net",
    "myshopify.com",
    "readthedocs.io",
    "ngrok.io",
)
ICANN_SUFFIXES = ("com", "io", "co.uk", "com.au", "de", "jp")
# Cyrillic look-alikes of Latin letters.
CONFUSABLES = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456",
    "o": "\u043e",
    "p": "\u0440",
    "x": "\u0445",
    "y": "\u0443",
}
MINIMAL_LIST = """\
// ===BEGIN ICANN DOMAINS===
com
// ===END ICANN DOMAINS===
// ===BEGIN PRIVATE DOMAINS===
tenants.example.com
// ===END PRIVATE DOMAINS===
"""


def allowed(base: str, candidate: str) -> bool:
    return same_site(yarl.URL(base), yarl.URL(candidate))


def http_target(base_url: str) -> HttpTarget:
    return build_http_target(
        connection_id="c",
        organization_id="o",
        proxy_enabled=True,
        connection_type=CATALOG.get("api"),
        configuration={"url": base_url, "auth": {"type": "bearer", "token": "tok"}},
    )


def upstream_url(base_url: str, endpoint: str) -> yarl.URL:
    """The URL the upstream would receive for ``endpoint``, through the real parse and checks."""
    target = http_target(base_url)
    resolved = split_endpoint(endpoint)
    call = ProxyCall(
        method="GET", path=resolved.path, headers={}, raw_query=resolved.raw_query, origin=resolved.origin
    )
    upstream = build_upstream(target, call)
    return target.url_for(upstream.url_path, upstream.encoded_query, upstream.origin)


def refusal(base_url: str, endpoint: str) -> str:
    """The error key of a refused endpoint (the test fails if it is accepted)."""
    with pytest.raises(InvalidRequest) as caught:
        upstream_url(base_url, endpoint)
    return caught.value.key


# -- registrable domains ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("api.github.com", "github.com"),
        ("shop.example.co.uk", "example.co.uk"),
        # Private section: each customer's host is its own registrable domain.
        ("gmail.googleapis.com", "gmail.googleapis.com"),
        ("www.googleapis.com", "www.googleapis.com"),
        ("user.github.io", "user.github.io"),
        ("api.victim.herokuapp.com", "victim.herokuapp.com"),
        ("bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com"),
        ("app.appspot.com", "app.appspot.com"),
        # Wildcard and exception rules.
        ("ec2-1-2-3-4.compute-1.amazonaws.com", None),
        ("x.www.ck", "www.ck"),
        ("a.b.city.kawasaki.jp", "city.kawasaki.jp"),
        # Spellings of one host.
        ("API.GitHub.com.", "github.com"),
        ("www.bücher.de", "xn--bcher-kva.de"),
        ("www.xn--bcher-kva.de", "xn--bcher-kva.de"),
        # No registrable domain: exact match only.
        ("github.io", None),
        ("herokuapp.com", None),
        ("co.uk", None),
        ("localhost", None),
        ("intranet", None),
        ("db.internal", None),
        ("127.0.0.1", None),
        ("::1", None),
        ("[::1]", None),
    ],
)
def test_registrable_domain(host: str, domain: str | None) -> None:
    assert registrable_domain(host) == domain


def test_every_private_suffix_used_here_is_on_the_bundled_list() -> None:
    for suffix in PRIVATE_SUFFIXES:
        assert registrable_domain(suffix) is None, suffix
        assert registrable_domain(f"tenant.{suffix}") == f"tenant.{suffix}", suffix


def test_googleapis_is_a_private_suffix_so_gmail_and_www_are_two_sites() -> None:
    """Hosted Composio documents ``gmail.googleapis.com`` → ``www.googleapis.com`` as allowed (ICANN
    section only); the whole list makes ``googleapis.com`` a suffix, so Keyhole refuses it."""
    assert not allowed("https://gmail.googleapis.com/gmail/v1", "https://www.googleapis.com")
    assert allowed("https://gmail.googleapis.com/gmail/v1", "https://GMAIL.googleapis.com.")


@pytest.mark.parametrize(
    "host",
    [
        "API.X.com.",
        "api.x.com..",
        "[::1]",
        "::0:1",
        "bücher.de",
        "\uff21\uff30\uff29.x.com",
        "api\u3002x.com",
    ],
)
def test_canonical_host(host: str) -> None:
    expected = {"[::1]": "::1", "::0:1": "::1", "bücher.de": "xn--bcher-kva.de"}.get(host, "api.x.com")
    assert canonical_host(host) == expected


# -- same site ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "candidate", "expected"),
    [
        ("https://api.github.com", "https://uploads.github.com", True),
        ("https://api.github.com", "https://github.com", True),
        ("https://api.github.com", "http://api.github.com", False),
        ("https://api.github.com", "https://github.com.evil.io", False),
        ("https://api.github.com", "https://evilgithub.com", False),
        # The review's examples.
        ("https://api.x.com:8080", "https://api.x.com:9999", False),
        ("https://api.x.com:8080", "https://www.x.com:9999", False),
        ("https://api.x.com:8080", "https://api.x.com", False),
        ("https://victim.herokuapp.com", "https://attacker.herokuapp.com", False),
        ("https://a.github.io", "https://b.github.io", False),
        ("https://a.github.io", "https://github.io", False),
        ("https://a.github.io", "https://api.a.github.io", True),
        ("https://bucket-a.s3.amazonaws.com", "https://bucket-b.s3.amazonaws.com", False),
        ("https://herokuapp.com", "https://victim.herokuapp.com", False),
        # Effective ports: the default filled in.
        ("https://api.x.com", "https://api.x.com:443", True),
        ("https://api.x.com:443", "https://www.x.com", True),
        ("http://api.x.com", "http://www.x.com:80", True),
        ("http://api.x.com", "http://api.x.com:443", False),
        ("https://api.x.com", "https://api.x.com:80", False),
        # Spellings of the same host.
        ("https://api.x.com", "https://API.X.COM.", True),
        ("https://bücher.de", "https://www.xn--bcher-kva.de", True),
        ("https://xn--bcher-kva.de", "https://WWW.BÜCHER.de", True),
        ("https://github.com", "https://g\u0456thub.com", False),  # a Cyrillic i
        # No registrable domain: the same host and port only.
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080", True),
        ("http://127.0.0.1:8080", "http://127.0.0.1:9090", False),
        ("http://127.0.0.1:8080", "http://localhost:8080", False),
        ("http://127.0.0.1:8080", "http://127.0.0.2:8080", False),
        ("http://[::1]:8080", "http://[0:0::1]:8080", True),
        ("http://127.0.0.1:8080", "http://[::ffff:127.0.0.1]:8080", False),
        ("http://localhost:80", "http://localhost", True),
        ("http://localhost", "http://LOCALHOST.", True),
        ("http://intranet", "http://wiki.intranet", False),
        ("https://a.db.internal", "https://b.db.internal", False),
        ("ftp://api.x.com", "ftp://api.x.com", False),
    ],
)
def test_same_site(base: str, candidate: str, expected: bool) -> None:
    assert allowed(base, candidate) is expected


# -- the base URL's path -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_path", "path", "expected"),
    [
        ("/v2", "/v2/users", True),
        ("/v2", "/v2", True),
        ("/v2/", "/v2", True),
        ("/v2/", "/v2/users/1", True),
        ("/", "/anything", True),
        ("", "/anything", True),
        ("/v2", "/v2x", False),
        ("/v2", "/v1/users", False),
        ("/v2", "/", False),
        ("/v2", "/V2/users", False),
        ("/v2", "//v2/users", False),
        ("/v2", "/v2%2F..%2Fadmin", False),
        ("/v2", "/v%32/users", False),
        ("/a/b", "/a/bc/d", False),
        ("/a/b", "/a", False),
    ],
)
def test_under_base_path(base_path: str, path: str, expected: bool) -> None:
    assert under_base_path(base_path, path) is expected


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://api.x.com/v2/users?page=2",
        "https://www.x.com/v2/users",
        "https://API.X.com.:443/v2/users",
        "https://api.x.com/v2",
        "https://api.x.com/v2/a%20b",
    ],
)
def test_absolute_endpoints_under_the_base_path_are_sent_whole(endpoint: str) -> None:
    url = upstream_url("https://api.x.com/v2", endpoint)
    assert url.raw_path == yarl.URL(endpoint).raw_path
    assert url.raw_path.startswith("/v2")


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [
        ("https://api.x.com/v2x", "OriginMismatch"),
        ("https://api.x.com/v1/users", "OriginMismatch"),
        ("https://api.x.com/", "OriginMismatch"),
        ("https://api.x.com", "OriginMismatch"),
        ("https://api.x.com/V2/users", "OriginMismatch"),
        ("https://api.x.com/v%32/users", "OriginMismatch"),
        ("https://api.x.com/v2%2Fusers", "OriginMismatch"),
        ("https://api.x.com/v2%2F..%2Fadmin", "invalid_proxy_request"),
        ("https://api.x.com/v2/../admin", "invalid_proxy_request"),
        ("https://api.x.com/v2/%2e%2e/admin", "invalid_proxy_request"),
        ("https://api.x.com//v2/users", "invalid_proxy_request"),
        ("https://api.x.com:8443/v2/users", "OriginMismatch"),
        ("http://api.x.com/v2/users", "OriginMismatch"),
        ("https://api.evil.com/v2/users", "OriginMismatch"),
    ],
)
def test_absolute_endpoints_off_the_base_path_are_refused(endpoint: str, key: str) -> None:
    assert refusal("https://api.x.com/v2", endpoint) == key


def test_check_origin_compares_the_wire_form() -> None:
    base = yarl.URL("https://api.x.com/v2/~tools")  # yarl keeps '~' unencoded
    check_origin(base, yarl.URL("https://api.x.com"), "/v2/~tools/run")
    with pytest.raises(InvalidRequest) as caught:
        check_origin(base, yarl.URL("https://api.x.com"), "/v2/%7Etools/run")
    assert caught.value.key == "OriginMismatch"
    with pytest.raises(InvalidRequest) as caught:
        check_origin(yarl.URL("https://api.github.com"), yarl.URL("https://example.com"), "/")
    assert caught.value.key == "OriginMismatch"
    assert "not on the connection's site" in caught.value.message


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


# -- generated spellings -----------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
SEGMENT = st.from_regex(r"[A-Za-z0-9_~-]{1,8}", fullmatch=True)
PORT = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))
GENERATED = settings(max_examples=200, deadline=None, database=None)


def _url(scheme: str, host: str, port: int | None = None, path: str = "") -> str:
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"


@GENERATED
@given(
    suffix=st.sampled_from(PRIVATE_SUFFIXES),
    victim=LABEL,
    attacker=LABEL,
    prefix=st.lists(LABEL, max_size=2),
    scheme=st.sampled_from(["http", "https"]),
)
@example(suffix="herokuapp.com", victim="victim", attacker="attacker", prefix=[], scheme="https")
@example(suffix="github.io", victim="a", attacker="b", prefix=[], scheme="https")
def test_sibling_hosts_under_private_suffixes_are_refused(
    suffix: str, victim: str, attacker: str, prefix: list[str], scheme: str
) -> None:
    assume(victim != attacker)
    base = _url(scheme, f"api.{victim}.{suffix}")
    candidate = _url(scheme, ".".join([*prefix, attacker, suffix]))
    assert not allowed(base, candidate)
    assert refusal(base, candidate + "/x") == "OriginMismatch"
    # The suffix itself is no one's site either.
    assert refusal(base, _url(scheme, suffix, path="/x")) == "OriginMismatch"


@GENERATED
@given(suffix=st.sampled_from(PRIVATE_SUFFIXES), tenant=LABEL, sub=LABEL)
def test_hosts_of_one_tenant_under_a_private_suffix_are_one_site(suffix: str, tenant: str, sub: str) -> None:
    site = f"{tenant}.{suffix}"
    assume(registrable_domain(f"api.{site}") == site and registrable_domain(f"{sub}.{site}") == site)
    assert allowed(f"https://api.{site}", f"https://{sub}.{site}")


@GENERATED
@given(
    domain=st.tuples(LABEL, st.sampled_from(ICANN_SUFFIXES + PRIVATE_SUFFIXES)).map(".".join),
    subs=st.tuples(LABEL, LABEL),
    ports=st.tuples(PORT, PORT),
    scheme=st.sampled_from(["http", "https"]),
)
def test_a_different_effective_port_is_refused(
    domain: str, subs: tuple[str, str], ports: tuple[int | None, int | None], scheme: str
) -> None:
    default = {"http": 80, "https": 443}[scheme]
    assume((ports[0] or default) != (ports[1] or default))
    base = _url(scheme, f"{subs[0]}.{domain}", ports[0])
    for host in (f"{subs[0]}.{domain}", f"{subs[1]}.{domain}"):
        assert not allowed(base, _url(scheme, host, ports[1]))
        assert refusal(base, _url(scheme, host, ports[1], "/x")) == "OriginMismatch"


@GENERATED
@given(
    host=st.one_of(
        st.tuples(LABEL, LABEL, st.sampled_from(ICANN_SUFFIXES + PRIVATE_SUFFIXES)).map(".".join),
        st.sampled_from(["127.0.0.1", "[::1]", "localhost", "intranet"]),
    ),
    port=PORT,
)
def test_a_different_scheme_is_refused(host: str, port: int | None) -> None:
    for base_scheme, other in (("https", "http"), ("http", "https")):
        base = _url(base_scheme, host, port)
        assert not allowed(base, _url(other, host, port))
        assert refusal(base, _url(other, host, port, "/x")) == "OriginMismatch"


def _respell(host: str, data: st.DataObject) -> str:
    """The same host in another (ASCII) case, with or without a trailing dot."""
    cased = "".join(char.upper() if char.isascii() and data.draw(st.booleans()) else char for char in host)
    return cased + ("." if data.draw(st.booleans()) else "")


@GENERATED
@given(
    labels=st.tuples(LABEL, LABEL),
    suffix=st.sampled_from(ICANN_SUFFIXES + PRIVATE_SUFFIXES),
    data=st.data(),
)
def test_case_and_trailing_dot_spell_the_same_host(
    labels: tuple[str, str], suffix: str, data: st.DataObject
) -> None:
    host = ".".join([*labels, suffix])
    assert allowed(f"https://{host}", f"https://{_respell(host, data)}")
    url = upstream_url(f"https://{host}/v1", f"https://{_respell(host, data)}/v1/x")
    assert canonical_host(url.raw_host) == host and url.raw_path == "/v1/x"


@GENERATED
@given(
    label=st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    unicode=st.text(alphabet="äöüßéñçøåłž", min_size=1, max_size=4),
    suffix=st.sampled_from(ICANN_SUFFIXES),
    sub=LABEL,
    data=st.data(),
)
def test_unicode_and_punycode_spell_the_same_site(
    label: str, unicode: str, suffix: str, sub: str, data: st.DataObject
) -> None:
    name = f"{label}{unicode}.{suffix}"
    ascii_name = canonical_host(name)
    assert ascii_name.startswith("xn--")
    assert allowed(f"https://{name}", f"https://{sub}.{ascii_name}")
    assert allowed(f"https://{ascii_name}", f"https://{sub}.{_respell(name, data)}")


@GENERATED
@given(
    domain=st.sampled_from(["github.com", "paypal.com", "apple.com", "openai.com", "example.co.uk", "x.com"]),
    choice=st.integers(min_value=0, max_value=64),
    sub=st.sampled_from(["", "api.", "www."]),
)
def test_a_confusable_spelling_is_not_the_base_domain(domain: str, choice: int, sub: str) -> None:
    """One letter of the registrable label swapped for a look-alike from another script."""
    label = domain.split(".")[0]
    positions = [index for index, char in enumerate(label) if char in CONFUSABLES]
    index = positions[choice % len(positions)]
    spoof = domain[:index] + CONFUSABLES[domain[index]] + domain[index + 1 :]
    assert canonical_host(spoof) != domain
    assert not allowed(f"https://{sub}{domain}", f"https://{sub}{spoof}")
    assert refusal(f"https://{sub}{domain}", f"https://{sub}{spoof}/x") == "OriginMismatch"


@GENERATED
@given(base=st.lists(SEGMENT, min_size=1, max_size=3), rest=st.lists(SEGMENT, max_size=3))
def test_paths_under_the_base_path_are_allowed(base: list[str], rest: list[str]) -> None:
    base_path = "/" + "/".join(base)
    path = "/".join([base_path, *rest])
    assert upstream_url(f"https://api.x.com{base_path}", f"https://www.x.com{path}").raw_path == path


@GENERATED
@given(base=st.lists(SEGMENT, min_size=1, max_size=3), extra=SEGMENT)
def test_near_misses_of_the_base_path_are_refused(base: list[str], extra: str) -> None:
    base_path = "/" + "/".join(base)
    escaped_first = "%" + format(ord(base_path[1]), "02X") + base_path[2:]
    near_misses = [
        "/",
        "/" + "/".join(base[:-1]),  # the parent
        base_path + extra,  # a longer last segment
        base_path[:-1] + "/x",  # a shorter one
        "/" + base_path,
        "/" + escaped_first + "/x",
        base_path + "%2F" + extra,
        base_path + "%2f..%2fadmin",
        base_path + "%252F..%252Fadmin",
        base_path + "/%2E%2E/admin",
        base_path + "/../admin",
        base_path + "/./x",
    ]
    if base_path.swapcase() != base_path:
        near_misses.append(base_path.swapcase() + "/x")
    for path in near_misses:
        key = refusal(f"https://api.x.com{base_path}", f"https://api.x.com{path}")
        assert key in {"OriginMismatch", "invalid_proxy_request"}, path


PATH_TEXT = st.text(alphabet="/.%2fFeE5cCvV0x~;:@a-", min_size=1, max_size=24)


@GENERATED
@given(path=PATH_TEXT.map(lambda text: "/" + text))
@example(path="/v2%2F..%2Fadmin")
@example(path="/v2/%252e%252e/admin")
@example(path="/v2;/../admin")
@example(path="/v2/x")
def test_whatever_is_accepted_stays_under_the_base_path_when_decoded(path: str) -> None:
    """However the path is spelt, an accepted one reaches the upstream under ``/v2/`` and keeps
    no dot segment after any number of decodings."""
    try:
        url = upstream_url("https://api.x.com/v2", f"https://www.x.com{path}")
    except InvalidRequest:
        return
    wire = url.raw_path
    for _ in range(4):
        assert wire == "/v2" or wire.startswith("/v2/"), (path, wire)
        assert not {".", ".."} & set(wire.split("/")), (path, wire)
        wire = unquote(wire)


# -- the list: whole, offline, replaceable -----------------------------------------------------


def test_an_operator_list_replaces_the_snapshot(tmp_path: Path) -> None:
    custom = PublicSuffixList.parse(MINIMAL_LIST)
    assert registrable_domain("api.example.com", custom) == "example.com"
    assert registrable_domain("a.tenants.example.com", custom) == "a.tenants.example.com"
    assert registrable_domain("api.github.io", custom) is None  # not on this list: exact match
    base = yarl.URL("https://a.tenants.example.com")
    assert not same_site(base, yarl.URL("https://b.tenants.example.com"), custom)
    assert same_site(base, yarl.URL("https://b.tenants.example.com"), bundled_suffixes())

    path = tmp_path / "public_suffix_list.dat"
    path.write_text(MINIMAL_LIST, encoding="utf-8")
    try:
        use_public_suffix_list(path)
        assert registrable_domain("a.tenants.example.com") == "a.tenants.example.com"
        assert not allowed("https://a.tenants.example.com", "https://b.tenants.example.com")
    finally:
        use_public_suffix_list(None)
    assert public_suffixes() is bundled_suffixes()
    assert allowed("https://a.tenants.example.com", "https://b.tenants.example.com")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html>Not Found</html>",
        "// ===BEGIN ICANN DOMAINS===\ncom\n// ===END ICANN DOMAINS===\n",  # private section cut off
        MINIMAL_LIST.replace("// ===END PRIVATE DOMAINS===\n", ""),
        "// ===BEGIN PRIVATE DOMAINS===\nx.com\n// ===END PRIVATE DOMAINS===\n// ===BEGIN ICANN DOMAINS===\n",
    ],
)
def test_an_incomplete_list_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "public_suffix_list.dat"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="KEYHOLE_PUBLIC_SUFFIX_LIST"):
        use_public_suffix_list(path)
    assert public_suffixes() is bundled_suffixes()


def test_the_setting_names_an_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "public_suffix_list.dat"
    path.write_text(MINIMAL_LIST, encoding="utf-8")
    monkeypatch.setenv("KEYHOLE_PUBLIC_SUFFIX_LIST", str(path))
    assert Settings().public_suffix_list == path
    monkeypatch.setenv("KEYHOLE_PUBLIC_SUFFIX_LIST", str(tmp_path / "missing.dat"))
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("KEYHOLE_PUBLIC_SUFFIX_LIST")
    assert Settings().public_suffix_list is None


def test_public_suffix_list_never_touches_the_network_or_disk(tmp_path: Path) -> None:
    """A fresh process with sockets disabled and an empty home resolves domains from the snapshot,
    and from an operator's file, without writing anything."""
    listed = tmp_path / "list" / "public_suffix_list.dat"
    listed.parent.mkdir()
    listed.write_text(MINIMAL_LIST, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    script = textwrap.dedent(
        f"""
        import socket
        def refuse(*args, **kwargs):
            raise AssertionError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from pathlib import Path
        from keyhole.proxy.origin import registrable_domain, use_public_suffix_list
        assert registrable_domain("api.github.com") == "github.com"
        assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
        assert registrable_domain("victim.herokuapp.com") == "victim.herokuapp.com"
        use_public_suffix_list(Path({str(listed)!r}))
        assert registrable_domain("a.tenants.example.com") == "a.tenants.example.com"
        print("ok")
        """
    )
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    env.pop("TLDEXTRACT_CACHE", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert not any(home.rglob("*")), list(home.rglob("*"))  # no suffix-list cache written
