"""Activity over HTTP: the organization's calls with their filters and pages, the chart of the
last day (its numbers are the calls made), a call's detail, who may see what, and every bad
filter a clear 400 page."""

from __future__ import annotations

import base64
import html
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import QueryParams

from keyhole.api.console.activity import Filters
from proxy.support import LocalUpstream

from .conftest import ConsoleServer
from .playground_support import SECRET, Tenant, call_id_of, run, tenant
from .support import ConsoleClient, sign_in

_ROW = re.compile(r'<tr data-call="([0-9a-f-]{36})">')
_CHART_ROW = re.compile(
    r'<tr data-connection="([0-9a-f-]{36})" data-hour="([^"]+)">\s*<td>[^<]*</td><td>[^<]*</td>\s*'
    r'<td class="num">(\d+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>'
)
_NEXT = re.compile(r'<a rel="next" href="([^"]+)">')


@dataclass
class Made:
    """An organization's calls, each labelled, made once for the module."""

    org: Tenant
    connections: dict[str, str]  # label → id
    calls: dict[str, str]  # label → call id
    foreign_call: str  # a call of another organization

    def ids(self, *labels: str) -> set[str]:
        return {self.calls[label] for label in labels}


def listed(console: ConsoleClient, query: str = "") -> set[str]:
    """Every call id the listing shows under ``query``, following its pages."""
    found: list[str] = []
    path: str | None = f"/console/activity{query}"
    while path is not None:
        page = console.get(path)
        assert page.status_code == 200, page.text
        found.extend(_ROW.findall(page.text))
        following = _NEXT.search(page.text)
        path = None if following is None else following.group(1).replace("&amp;", "&")
    assert len(found) == len(set(found)), "a call was listed twice"
    return set(found)


def chart_numbers(page: str) -> dict[str, tuple[int, int, int]]:
    """The chart's table summed per connection: calls, answered 4xx/5xx, refused or failed."""
    totals: dict[str, Counter[str]] = {}
    for connection, _hour, calls, upstream, failed in _CHART_ROW.findall(page):
        counter = totals.setdefault(connection, Counter())
        counter.update({"calls": int(calls), "upstream": int(upstream), "failed": int(failed)})
    return {key: (c["calls"], c["upstream"], c["failed"]) for key, c in totals.items()}


@pytest.fixture(scope="module")
def upstream() -> Iterator[LocalUpstream]:
    instance = LocalUpstream().start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def made(console_server: ConsoleServer, httpbin_url: str, upstream: LocalUpstream) -> Iterator[Made]:
    with tenant(console_server) as org, tenant(console_server) as rival:
        alpha, beta = org.connection(httpbin_url, name="alpha"), org.connection(upstream.url(), name="beta")

        def through(connection: str, **fields: str) -> str:
            return call_id_of(run(org.console, connection, **fields).text)

        def refused(connection: str, **fields: str) -> str:
            page = run(org.console, connection, **fields).text
            found = re.search(r'as call <a href="/console/activity/([0-9a-f-]{36})">', page)
            assert found is not None, page
            return found.group(1)

        calls = {
            "alpha_ok": through(alpha, path="/get"),
            "alpha_created": through(alpha, method="POST", path="/status/201"),
            "alpha_404": through(alpha, path="/status/404"),
            "alpha_locked": refused(alpha, path="/get", headers="Authorization: Bearer mine"),
            "beta_ok": through(beta, path="/one"),
            "beta_invalid": refused(beta, path="/../two"),
        }
        rest = org.proxy(beta, {"method": "GET", "path": "/rest"})  # another surface, same log
        calls["beta_rest"] = rest["data"]["proxyCallId"]
        foreign = rival.connection(httpbin_url)
        foreign_call = rival.proxy(foreign, {"method": "GET", "path": "/get"})["data"]["proxyCallId"]
        yield Made(org, {"alpha": alpha, "beta": beta}, calls, foreign_call)


def test_the_log_lists_every_call_of_the_organization(made: Made) -> None:
    assert listed(made.org.console) == set(made.calls.values())


@pytest.mark.parametrize(
    ("query", "labels"),
    [
        ("?connection={alpha}", ("alpha_ok", "alpha_created", "alpha_404", "alpha_locked")),
        ("?connection={beta}&ok=true", ("beta_ok", "beta_rest")),
        ("?ok=false", ("alpha_locked", "beta_invalid")),
        ("?outcome=locked_header", ("alpha_locked",)),
        ("?status=2xx", ("alpha_ok", "alpha_created", "beta_ok", "beta_rest")),
        ("?status=4xx", ("alpha_404",)),
        ("?status=none&connection={beta}", ("beta_invalid",)),
        ("?status=5xx", ()),
        (
            "?period=1h",
            (
                "alpha_ok",
                "alpha_created",
                "alpha_404",
                "alpha_locked",
                "beta_ok",
                "beta_invalid",
                "beta_rest",
            ),
        ),
        ("?period=custom&from={future}", ()),
        ("?period=custom&to={past}", ()),
        ("?connection=00000000-0000-4000-8000-000000000000", ()),
    ],
)
def test_filters_narrow_the_log(made: Made, query: str, labels: tuple[str, ...]) -> None:
    now = datetime.now(UTC)
    filled = query.format(
        **made.connections,
        future=(now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        past=(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    )
    assert listed(made.org.console, filled) == made.ids(*labels)


def test_the_filters_are_kept_by_the_form_and_the_pages(
    console_server: ConsoleServer, upstream: LocalUpstream
) -> None:
    with tenant(console_server) as org:
        paged = org.connection(upstream.url())
        made_here = {call_id_of(run(org.console, paged, path=f"/page/{n}").text) for n in range(55)}
        first = org.console.get(f"/console/activity?connection={paged}&status=2xx&period=1h")
        assert len(_ROW.findall(first.text)) == 50
        following = _NEXT.search(first.text)
        assert following is not None
        kept = ("connection=" + paged, "status=2xx", "period=1h", "cursor=")
        assert all(part in following.group(1) for part in kept)
        assert f'<option value="{paged}" selected>' in first.text
        assert '<option value="2xx" selected>' in first.text
        assert listed(org.console, f"?connection={paged}&status=2xx&period=1h") == made_here
        second = org.console.get(following.group(1).replace("&amp;", "&"))
        assert '<a href="/console/activity?connection=' in second.text  # back to the newest


def test_the_form_s_times_are_utc_minutes_and_links_keep_them() -> None:
    filters = Filters.parse(QueryParams("period=custom&from=2025-01-31T12:00&to=2025-01-31T12:59"))
    assert (filters.start, filters.end) == (
        datetime(2025, 1, 31, 12, 0, tzinfo=UTC),
        datetime(2025, 1, 31, 12, 59, 59, 999999, tzinfo=UTC),  # through the end of the minute
    )
    assert Filters.parse(QueryParams(filters.href().partition("?")[2])) == filters
    exact = Filters.parse(QueryParams("from=2025-01-31T13:00:00%2B01:00&to=2025-01-31T12:30:15Z"))
    assert (exact.period, exact.start, exact.end) == (
        "custom",
        datetime(2025, 1, 31, 12, 0, tzinfo=UTC),
        datetime(2025, 1, 31, 12, 30, 15, tzinfo=UTC),
    )


def test_a_bar_of_the_chart_opens_its_hour(made: Made) -> None:
    page = made.org.console.get(f"/console/activity?connection={made.connections['alpha']}").text
    bars = re.findall(r'<a href="(/console/activity\?connection=[^"]+period=custom[^"]+)">', page)
    assert bars
    opened: set[str] = set()
    for bar in bars:
        opened |= listed(made.org.console, "?" + html.unescape(bar).partition("?")[2])
    assert opened == made.ids("alpha_ok", "alpha_created", "alpha_404", "alpha_locked")


def test_the_chart_counts_the_calls_made(made: Made) -> None:
    page = made.org.console.get("/console/activity")
    assert page.status_code == 200
    numbers = chart_numbers(page.text)
    assert numbers[made.connections["alpha"]] == (4, 1, 1)  # 4 calls: one 404, one refused
    assert numbers[made.connections["beta"]][1:] == (0, 1)
    beta_calls = len(listed(made.org.console, f"?connection={made.connections['beta']}&period=all"))
    assert numbers[made.connections["beta"]][0] == beta_calls
    only_alpha = chart_numbers(
        made.org.console.get(f"/console/activity?connection={made.connections['alpha']}").text
    )
    assert only_alpha == {made.connections["alpha"]: (4, 1, 1)}
    assert 'role="group"' in page.text and "<title" in page.text and "<desc" in page.text
    assert "style=" not in page.text


def test_a_call_s_detail_says_what_happened(made: Made) -> None:
    console = made.org.console
    ok = console.get(f"/console/activity/{made.calls['alpha_ok']}")
    assert ok.status_code == 200
    assert "The call went through, and the upstream answered 200 OK." in ok.text
    assert "<code>/get</code>" in ok.text and ">alpha</a>" in ok.text
    upstream = console.get(f"/console/activity/{made.calls['alpha_404']}")
    assert "the upstream answered 404 Not Found" in upstream.text
    locked = console.get(f"/console/activity/{made.calls['alpha_locked']}")
    assert "Keyhole refused or could not complete this call" in locked.text
    assert "carries the connection&#39;s credential and cannot be set by the caller" in locked.text
    assert "<code>locked_header</code>" in locked.text
    rest = console.get(f"/console/activity/{made.calls['beta_rest']}")
    assert "the REST API (Polytomic dialect)" in rest.text
    for page in (ok, upstream, locked, rest):
        assert SECRET not in page.text


def test_another_organization_s_call_is_not_found(made: Made) -> None:
    console = made.org.console
    for call_id in (
        made.foreign_call,
        "00000000-0000-4000-8000-000000000000",
        "not-a-call",
        "%00",
        "x" * 300,
    ):
        page = console.get(f"/console/activity/{call_id}")
        assert page.status_code == 404, (call_id, page.text)
        assert "<code>call_not_found</code>" in page.text
    assert made.foreign_call not in console.get("/console/activity?period=all").text


def test_the_call_id_box_opens_the_call(made: Made) -> None:
    console = made.org.console
    found = console.get("/console/activity/find", params={"call": made.calls["beta_ok"].upper()})
    assert (found.status_code, found.headers["location"]) == (
        303,
        f"/console/activity/{made.calls['beta_ok']}",
    )
    assert console.get("/console/activity/find", params={"call": "../keys"}).status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "connection=alpha",
        "connection=%00",
        "ok=maybe",
        "status=6xx",
        "status=%00",
        "period=forever",
        "period=custom&from=yesterday",
        "period=custom&from=2025-01-01T00:00%00",
        "period=custom&from=" + "9" * 80,
        "period=custom&from=2025-02-01T00:00&to=2025-01-01T00:00",
        "period=custom&from=0001-01-01T00:00%2B01:00",
        "outcome=OK!",
        "outcome=" + "a" * 65,
        "cursor=junk",
        "cursor=" + base64.urlsafe_b64encode(b"2025-01-31T12:00:00+00:00|x\x00").decode(),
        "cursor=" + "A" * 500,
    ],
)
def test_a_bad_filter_is_a_clear_400(made: Made, query: str) -> None:
    page = made.org.console.get(f"/console/activity?{query}")
    assert page.status_code == 400, page.text
    expected = "invalid_query_parameter" if "%00" in query else "(validation_error|invalid_cursor)"
    assert re.search(rf"Error code: <code>{expected}</code>", page.text)


def test_a_member_sees_the_calls_of_connections_it_reaches(
    console_server: ConsoleServer, httpbin_url: str
) -> None:
    with tenant(console_server) as org:
        kept, doomed = org.connection(httpbin_url), org.connection(httpbin_url)
        kept_call = call_id_of(run(org.console, kept, path="/get").text)
        gone_call = call_id_of(run(org.console, doomed, path="/get").text)
        member = sign_in(console_server.url, org.member_key())
        whole = member.get("/console/activity")
        assert whole.status_code == 200
        assert "needs an administrator" in whole.text and not _ROW.search(whole.text)
        assert chart_numbers(whole.text) == {kept: (1, 0, 0), doomed: (1, 0, 0)}
        assert listed(member, f"?connection={kept}") == {kept_call}
        assert member.get(f"/console/activity/{kept_call}").status_code == 200

        assert org.rest.delete(f"/api/connections/{doomed}").status_code in (200, 204)
        assert member.get(f"/console/activity/{gone_call}").status_code == 404
        assert member.get(f"/console/activity?connection={doomed}").status_code == 404
        assert chart_numbers(member.get("/console/activity").text) == {kept: (1, 0, 0)}
        admin = org.console.get(f"/console/activity/{gone_call}")  # the whole log still has it
        assert admin.status_code == 200 and "a deleted connection" in admin.text
        assert listed(org.console) == {kept_call, gone_call}
        assert chart_numbers(org.console.get("/console/activity").text) == {
            kept: (1, 0, 0),
            doomed: (1, 0, 0),
        }


def test_another_organization_sees_none_of_it(console_server: ConsoleServer, made: Made) -> None:
    with tenant(console_server) as stranger:
        for path in (
            "/console/activity?period=all",
            f"/console/activity?connection={made.connections['alpha']}",
        ):
            page = stranger.console.get(path)
            assert page.status_code == 200  # an administrator's filter that matches nothing
            assert not _ROW.search(page.text) and chart_numbers(page.text) == {}
            assert not any(call_id in page.text for call_id in made.calls.values())
