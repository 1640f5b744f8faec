"""Helpers of the connections pages' tests: the generated form's field names, a parser of the
controls a page holds, and the organization's connections as the REST API reports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx

from conftest import Keys

from .support import ConsoleClient

CONNECTION_PATH = "/console/connections/"


@dataclass
class Control:
    tag: str
    attrs: dict[str, str]
    text: str = ""  # a textarea's content, a select's selected option

    @property
    def name(self) -> str:
        return self.attrs.get("name", "")

    @property
    def value(self) -> str:
        return self.text if self.tag in ("textarea", "select") else self.attrs.get("value", "")


@dataclass
class Parsed:
    controls: list[Control] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # for= → text
    links: list[str] = field(default_factory=list)
    options: dict[str, list[str]] = field(default_factory=dict)  # select name → option values

    def control(self, name: str) -> Control:
        found = [control for control in self.controls if control.name == name]
        assert len(found) == 1, (name, [control.name for control in self.controls])
        return found[0]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parsed = Parsed()
        self._textarea: Control | None = None
        self._select: Control | None = None
        self._label: str | None = None
        self._label_text: list[str] = []

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        attrs = {key: value or "" for key, value in attributes}
        if tag in ("input", "select", "textarea"):
            control = Control(tag, attrs)
            self.parsed.controls.append(control)
            if tag == "textarea":
                self._textarea = control
            if tag == "select":
                self._select = control
                self.parsed.options[control.name] = []
        elif tag == "option" and self._select is not None:
            self.parsed.options[self._select.name].append(attrs.get("value", ""))
            if "selected" in attrs:
                self._select.text = attrs.get("value", "")
        elif tag == "label":
            self._label, self._label_text = attrs.get("for", ""), []
        elif tag == "a" and "href" in attrs:
            self.parsed.links.append(attrs["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "label" and self._label is not None:
            self.parsed.labels[self._label] = " ".join("".join(self._label_text).split())
            self._label = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.text += data
        if self._label is not None:
            self._label_text.append(data)


def parse(html: str) -> Parsed:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.parsed


def branch(auth_type: str, name: str) -> str:
    """The field name of one authentication option's control."""
    return f"config/auth/~:{auth_type}/{name}"


def api_fields(
    name: str,
    url: str,
    auth: dict[str, str] | None = None,
    *,
    healthcheck_path: str = "",
    validate: bool = True,
) -> list[tuple[str, str]]:
    """The fields of the ``api`` type's form as a browser posts them when its script has disabled
    the other authentication options' fields."""
    auth = auth or {"type": "none"}
    fields = [
        ("name", name),
        ("config/url", url),
        ("config/auth/type", auth["type"]),
        ("config/healthcheck_path", healthcheck_path),
    ]
    fields += [(branch(auth["type"], key), value) for key, value in auth.items() if key != "type"]
    return fields + ([("validate", "on")] if validate else [])


def as_posted(
    page: Parsed, typed: dict[str, str], *, unchecked: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """What a browser without scripts posts from the page's form: every control as the page fills
    it (a checkbox only when checked, every option's fields), with ``typed`` typed over them."""
    pairs = []
    for control in page.controls:
        name = control.name
        if not name or name == "csrf_token":
            continue
        if control.attrs.get("type") == "checkbox":
            if ("checked" in control.attrs or name in typed) and name not in unchecked:
                pairs.append((name, "on"))
            continue
        pairs.append((name, typed.get(name, control.value)))
    return pairs


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(CONNECTION_PATH) and location.endswith("?done=created"), location
    return location.removeprefix(CONNECTION_PATH).split("?")[0]


def create(client: ConsoleClient, type_id: str, fields: list[tuple[str, str]]) -> str:
    return created_id(client.post(f"/console/connections/new/{type_id}", fields))


def rest(base_url: str, keys: Keys) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=keys.bearer, timeout=30)


def stored(api: httpx.Client) -> dict[str, dict[str, Any]]:
    """The organization's connections by id, as the REST API shows them."""
    answer = api.get("/api/connections")
    assert answer.status_code == 200, answer.text
    return {item["id"]: item for item in answer.json()["data"]}


def proxied(api: httpx.Client, connection_id: str, path: str) -> httpx.Response:
    return api.post(
        f"/api/connections/{connection_id}/proxy", json={"request": {"method": "GET", "path": path}}
    )
