"""A connection type's JSON Schema as an HTML form, and a submitted form as a configuration.

Translation only: what a configuration must hold is checked by the connection service, and which
secret a blank field keeps is decided there too (``ConnectionUpdate.unchanged_secrets``).

Each property becomes one control: ``enum`` a select, ``boolean`` a checkbox, ``integer`` a
number, a secret (what the type's ``secret_fields`` list, and nothing else) a password input that
is never filled, whatever its JSON type. A nested object is a fieldset, a ``oneOf`` whose branches
pin one property with a ``const`` (``auth.type``) a select plus one fieldset per branch, a string
map (extra headers) a textarea of ``name: value`` lines, a list of strings a textarea of lines,
anything else a textarea of JSON. Text is read as typed, spaces included: a line's name is what
precedes its first colon, its value what follows that colon and one space.

A control's name is ``config`` and its configuration pointer, with ``~:`` and the branch's value as
a segment inside a branch, so that every branch posts its own fields (without JavaScript all of
them are posted; only the chosen branch is read). ``~:`` never occurs in an escaped pointer token.

Read against the stored configuration, a form writes what was there and what was changed: a
control shows a stored value only when what a browser posts back of it reads as exactly that
value; one whose stored value the page cannot show (it holds the redaction placeholder, or text
the control would change: a line break in a one-line input, a map's name holding a colon) keeps
that value when left empty. A default left as it is stays out of an object the configuration
leaves out, so the connection keeps following its type's defaults.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from keyhole.api.console.endpoint import Form
from keyhole.connections.catalog import ConnectionType
from keyhole.connections.schema_errors import discriminator, json_equal
from keyhole.connections.secrets import format_pointer, parse_pointer
from keyhole.errors import KeyholeError
from keyhole.vault.scrub import REDACTED

PREFIX = "config"
_BRANCH = "~:"
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,30}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TEXTAREAS = ("lines", "pairs", "json")

Widget = Literal["text", "url", "integer", "number", "checkbox", "select", "secret", "lines", "pairs", "json"]


@dataclass(frozen=True, slots=True)
class Control:
    """One input: the configuration value at ``pointer``."""

    name: str
    id: str
    pointer: str
    label: str
    widget: Widget
    required: bool
    hint: str
    in_branch: bool
    nullable: bool = False
    default: Any = None
    options: tuple[tuple[str, Any], ...] = ()  # (label and posted value, value) of a select
    reads_as: Widget = "text"  # how the text typed into a secret's password input is read
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None

    kind = "control"


@dataclass(frozen=True, slots=True)
class Branch:
    key: str  # the discriminator's value
    title: str
    hint: str
    nodes: tuple[Node, ...]
    constants: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Choice:
    """A ``oneOf`` of objects told apart by ``discriminator``: a select and a fieldset per branch."""

    name: str
    id: str
    pointer: str
    discriminator: str
    label: str
    hint: str
    required: bool
    default: str | None
    branches: tuple[Branch, ...]

    kind = "choice"

    def branch(self, key: str) -> Branch | None:
        return next((branch for branch in self.branches if branch.key == key), None)


@dataclass(frozen=True, slots=True)
class Group:
    """A nested object with properties of its own: a fieldset."""

    pointer: str
    label: str
    hint: str
    required: bool
    nodes: tuple[Node, ...]
    constants: tuple[tuple[str, Any], ...] = ()

    kind = "group"


Node = Control | Choice | Group


@dataclass(frozen=True, slots=True)
class SchemaForm:
    type_id: str
    nodes: tuple[Node, ...]
    constants: tuple[tuple[str, Any], ...]

    def names(self) -> set[str]:
        """Every field name the form may post."""
        return {node.name for node in all_nodes(self.nodes) if not isinstance(node, Group)}


@dataclass
class Reading:
    """A submitted form read: the configuration, what is wrong with it by field name, and the
    pointers of secret fields left blank on the chosen path (kept by the service)."""

    configuration: dict[str, Any]
    problems: dict[str, str] = field(default_factory=dict)
    blank_secrets: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Shown:
    """One line of a configuration's summary."""

    label: str
    value: str
    secret: bool = False


def build(connection_type: ConnectionType) -> SchemaForm:
    # What applies to a proxy limit the configuration leaves out is the type's own default, where
    # it sets one, so that is what its control starts from.
    proxy_defaults = connection_type.http.proxy_defaults if connection_type.http else {}
    builder = _Builder(
        set(connection_type.secret_fields),
        {format_pointer(["proxy", key]): value for key, value in proxy_defaults.items()},
    )
    nodes, constants = builder.properties(connection_type.schema, (), PREFIX, in_branch=False)
    return SchemaForm(connection_type.id, nodes, constants)


@dataclass
class _Builder:
    secrets: set[str]
    defaults: dict[str, Any]
    counter: Iterator[int] = field(default_factory=lambda: iter(range(1_000_000)))

    def next_id(self) -> str:
        return f"field-{next(self.counter)}"

    def properties(
        self,
        schema: Mapping[str, Any],
        tokens: tuple[str, ...],
        name: str,
        *,
        in_branch: bool,
        skip: str | None = None,
    ) -> tuple[tuple[Node, ...], tuple[tuple[str, Any], ...]]:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return (), ()
        required = set(schema.get("required") or ())
        nodes: list[Node] = []
        constants: list[tuple[str, Any]] = []
        for key, sub in properties.items():
            if key == skip or not isinstance(sub, Mapping):
                continue
            if "const" in sub:
                constants.append((key, sub["const"]))
                continue
            where = (*tokens, key)
            nodes.append(
                self.node(
                    sub,
                    where,
                    f"{name}{format_pointer([key])}",
                    required=key in required,
                    in_branch=in_branch,
                )
            )
        return tuple(nodes), tuple(constants)

    def node(
        self,
        schema: Mapping[str, Any],
        tokens: tuple[str, ...],
        name: str,
        *,
        required: bool,
        in_branch: bool,
    ) -> Node:
        pointer = format_pointer(tokens)
        label = str(schema.get("title") or tokens[-1].replace("_", " ").capitalize())
        hint = _sentence(schema.get("description"))
        branches = schema.get("oneOf")
        if (
            pointer not in self.secrets
            and isinstance(branches, list)
            and all(isinstance(branch, Mapping) for branch in branches)
        ):
            pinned = discriminator(branches)
            if pinned is not None and all(isinstance(value, str) for value in pinned[1]):
                return self.choice(schema, branches, pinned, tokens, name, required, label, hint)
        types = schema.get("type")
        kinds = [types] if isinstance(types, str) else list(types) if isinstance(types, list) else []
        nullable = "null" in kinds
        kinds = [kind for kind in kinds if kind != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
        low, high = schema.get("minLength"), schema.get("maxLength")
        control = Control(
            name=name,
            id=self.next_id(),
            pointer=pointer,
            label=label,
            widget="json",
            required=required,
            hint=hint,
            in_branch=in_branch,
            nullable=nullable,
            default=self.defaults.get(pointer, schema.get("default")),
            min_length=low if isinstance(low, int) else None,
            max_length=high if isinstance(high, int) else None,
        )
        if pointer in self.secrets:
            return replace(control, widget="secret", reads_as=_secret_reading(kind))
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            options = tuple((value if isinstance(value, str) else json.dumps(value), value) for value in enum)
            return replace(control, widget="select", options=options)
        if kind == "boolean" and not nullable:
            return replace(control, widget="checkbox")
        if kind in ("integer", "number"):
            return replace(
                control,
                widget="integer" if kind == "integer" else "number",
                minimum=_number(schema.get("minimum")),
                maximum=_number(schema.get("maximum")),
            )
        if kind == "string":
            return replace(control, widget="url" if schema.get("format") == "uri" else "text")
        if kind == "object" and not nullable:
            closed = schema.get("additionalProperties") in (None, False)
            if isinstance(schema.get("properties"), Mapping) and closed:
                nodes, constants = self.properties(schema, tokens, name, in_branch=in_branch)
                return Group(pointer, label, hint, required, nodes, constants)
            if "properties" not in schema and _is_string_schema(schema.get("additionalProperties")):
                return replace(control, widget="pairs")
        if kind == "array" and not nullable and _is_string_schema(schema.get("items")):
            return replace(control, widget="lines")
        return control

    def choice(
        self,
        schema: Mapping[str, Any],
        branches: list[Mapping[str, Any]],
        pinned: tuple[str, list[Any]],
        tokens: tuple[str, ...],
        name: str,
        required: bool,
        label: str,
        hint: str,
    ) -> Choice:
        key, values = pinned
        built = []
        for branch, value in zip(branches, values, strict=True):
            prefix = f"{name}/{_BRANCH}{format_pointer([value])[1:]}"
            nodes, constants = self.properties(branch, tokens, prefix, in_branch=True, skip=key)
            title, description = str(branch.get("title") or value), _sentence(branch.get("description"))
            built.append(Branch(value, title, description, nodes, constants))
        default = schema.get("default")
        default_key = default.get(key) if isinstance(default, Mapping) else None
        return Choice(
            name=f"{name}{format_pointer([key])}",
            id=self.next_id(),
            pointer=format_pointer(tokens),
            discriminator=key,
            label=label,
            hint=hint,
            required=required,
            default=default_key if isinstance(default_key, str) else None,
            branches=tuple(built),
        )


def _secret_reading(kind: str | None) -> Widget:
    """How a secret's typed text is read: as the number or text its type says, else as JSON (a
    password input holds one line, so no list of lines nor checkbox)."""
    if kind in ("integer", "number"):
        return "integer" if kind == "integer" else "number"
    return "text" if kind in ("string", None) else "json"


def _sentence(text: object) -> str:
    """A description as a hint: a sentence, however the schema ends it."""
    shown = str(text or "").strip()
    return shown if not shown or shown[-1] in ".!?" else f"{shown}."


def _number(value: object) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _is_string_schema(schema: object) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "string" and "enum" not in schema


def all_nodes(nodes: tuple[Node, ...]) -> Iterator[Node]:
    """Every node, every branch's included."""
    for node in nodes:
        yield node
        if isinstance(node, Group):
            yield from all_nodes(node.nodes)
        elif isinstance(node, Choice):
            for branch in node.branches:
                yield from all_nodes(branch.nodes)


def chosen_path(form: SchemaForm, values: Mapping[str, str]) -> Iterator[Node]:
    """The nodes a submission with ``values`` uses: only the chosen branch of each choice."""

    def walk(nodes: tuple[Node, ...]) -> Iterator[Node]:
        for node in nodes:
            yield node
            if isinstance(node, Group):
                yield from walk(node.nodes)
            elif isinstance(node, Choice):
                branch = node.branch(values.get(node.name, ""))
                if branch is not None:
                    yield from walk(branch.nodes)

    return walk(form.nodes)


# -- values shown in the form ------------------------------------------------------------------


def initial_values(form: SchemaForm) -> dict[str, str]:
    """A new connection's form: each control's default."""
    values: dict[str, str] = {}
    for node in all_nodes(form.nodes):
        if isinstance(node, Choice):
            key = node.default or (node.branches[0].key if node.required and node.branches else None)
            if key is not None:
                values[node.name] = key
        elif isinstance(node, Control) and node.widget != "secret" and node.default is not None:
            values[node.name] = _shown(node, node.default)
    return values


def stored_values(form: SchemaForm, configuration: Mapping[str, Any]) -> tuple[dict[str, str], set[str]]:
    """A stored connection's form, from its redacted configuration: the values of its controls on
    the chosen path (a value it does not hold shows as its default, which is what applies to it),
    and the names of the controls that keep their stored value when left empty: a secret control
    whose secret is stored, and any other whose value the page cannot show (``_kept``). Neither
    gets a value."""
    values: dict[str, str] = {}
    kept: set[str] = set()
    for node in chosen_path_of(form, configuration):
        if isinstance(node, Group):
            continue
        found = _at(configuration, node.pointer)
        if isinstance(node, Choice):
            picked = _picked(node, configuration)
            if picked is not None:
                values[node.name] = picked
        elif node.widget == "secret":
            if found == REDACTED:
                kept.add(node.name)
        elif found is _ABSENT:
            if node.default is not None:
                values[node.name] = _shown(node, node.default)
        elif _kept(node, found):
            kept.add(node.name)
        else:
            values[node.name] = _shown(node, found)
    return values, kept


def chosen_path_of(form: SchemaForm, configuration: Mapping[str, Any]) -> Iterator[Node]:
    """The nodes a stored configuration uses (its branch of each choice)."""
    chosen: dict[str, str] = {}
    for node in all_nodes(form.nodes):
        if isinstance(node, Choice):
            picked = _picked(node, configuration)
            if picked is not None:
                chosen[node.name] = picked
    return chosen_path(form, chosen)


def _picked(choice: Choice, configuration: Mapping[str, Any]) -> str | None:
    """The branch a stored configuration chose (its default where it holds none)."""
    found = _at(configuration, choice.pointer)
    picked = found.get(choice.discriminator) if isinstance(found, Mapping) else choice.default
    return picked if isinstance(picked, str) else None


def submitted_values(form: SchemaForm, posted: Form) -> dict[str, str]:
    """What was posted, to show again after an error: never a secret."""
    values: dict[str, str] = {}
    for node in all_nodes(form.nodes):
        if isinstance(node, Group) or (isinstance(node, Control) and node.widget == "secret"):
            continue
        if node.name in posted:
            values[node.name] = posted.get(node.name)
    return values


def summary(form: SchemaForm, configuration: Mapping[str, Any]) -> list[Shown]:
    """A stored configuration as label and value lines, secrets as "set" (never their value)."""
    lines: list[Shown] = []

    def walk(nodes: tuple[Node, ...], prefix: str) -> None:
        for node in nodes:
            if isinstance(node, Group):
                walk(node.nodes, f"{prefix}{node.label} · ")
                continue
            found = _at(configuration, node.pointer)
            if isinstance(node, Choice):
                picked = found.get(node.discriminator) if isinstance(found, Mapping) else None
                branch = node.branch(picked) if isinstance(picked, str) else None
                if branch is not None:
                    lines.append(Shown(f"{prefix}{node.label}", branch.title))
                    walk(branch.nodes, f"{prefix}{node.label} · ")
                continue
            label = f"{prefix}{node.label}"
            if node.widget == "secret":
                lines.append(Shown(label, "set" if found == REDACTED else "not set", secret=True))
            elif node.widget == "checkbox" and isinstance(found, bool):
                lines.append(Shown(label, "yes" if found else "no"))
            elif found is None:
                lines.append(Shown(label, "none"))
            elif found is not _ABSENT:
                shown = "(not shown here)" if _holds_placeholder(found) else _shown(node, found)
                lines.append(Shown(label, shown or "—"))

    walk(form.nodes, "")
    return lines


def _shown(control: Control, value: Any) -> str:
    if value is None:
        return ""
    match control.widget:
        case "checkbox":
            return "on" if value is True else ""
        case "lines" if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        case "pairs" if isinstance(value, Mapping):
            return "\n".join(f"{key}: {item}" for key, item in value.items())
        case "select":
            return next((label for label, option in control.options if option == value), str(value))
        case "json":
            return json.dumps(value, indent=2, ensure_ascii=False)
    return value if isinstance(value, str) else json.dumps(value)


_ABSENT = object()


def _at(document: Any, pointer: str) -> Any:
    node = document
    for token in parse_pointer(pointer) if pointer else ():
        if not isinstance(node, Mapping) or token not in node:
            return _ABSENT
        node = node[token]
    return node


def _kept(control: Control, held: Any) -> bool:
    """Whether the control does not show the stored value ``held``, so that left empty it keeps
    it: it holds the redaction placeholder, or the control would change it on its way back."""
    return held is not _ABSENT and (_holds_placeholder(held) or not _shows_exactly(control, held))


def _shows_exactly(control: Control, value: Any) -> bool:
    """Whether what a browser posts of the control filled with ``value`` reads as ``value``."""
    if control.widget == "checkbox":
        return isinstance(value, bool)
    text = _posted_back(control.widget, _shown(control, value))
    try:
        read_back = _read_text(control, control.widget, text)
    except ValueError:
        return False
    # Compared as JSON text, so that 1 is not 1.0 nor true.
    return read_back is not _ABSENT and _as_json(read_back) == _as_json(value)


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _posted_back(widget: Widget, shown: str) -> str:
    """What a browser posts of a control filled with ``shown``: HTML reads a NUL as U+FFFD and a
    carriage return as a line break, a textarea drops the line break it starts with, a one-line
    input drops every line break, and a URL input the whitespace around its value too."""
    text = _LINE_BREAK.sub("\n", shown.replace("\0", "\ufffd"))
    if widget in _TEXTAREAS:
        return text.removeprefix("\n")
    text = text.replace("\n", "")
    return text.strip("\t\n\f\r ") if widget == "url" else text


def _holds_placeholder(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_holds_placeholder(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_placeholder(item) for item in value)
    return isinstance(value, str) and value == REDACTED


# -- a submitted form --------------------------------------------------------------------------


def read(form: SchemaForm, posted: Form, stored: Mapping[str, Any] | None = None) -> Reading:
    """The configuration a submission describes, read along the chosen branch of each choice,
    over ``stored``: the redacted configuration of the connection being edited (none for a new
    one)."""
    reading = Reading({})
    reading.configuration = _read_object(form.nodes, form.constants, posted, reading, stored or {})
    return reading


def _read_object(
    nodes: tuple[Node, ...],
    constants: tuple[tuple[str, Any], ...],
    posted: Form,
    reading: Reading,
    stored: Mapping[str, Any],
) -> dict[str, Any]:
    """An object's members. A control left at the default of a key ``stored`` does not hold is
    written only along with something else of its object, so an object the configuration leaves
    out stays out when nothing in it changed (the service fills in every default of an object a
    configuration holds, so writing them then changes nothing)."""
    members: list[tuple[str, Any, bool]] = [(key, value, False) for key, value in constants]
    for node in nodes:
        key = parse_pointer(node.pointer)[-1]
        if isinstance(node, Group):
            inner = _read_object(node.nodes, node.constants, posted, reading, stored)
            if inner or node.required:
                members.append((key, inner, False))
        elif isinstance(node, Choice):
            picked = posted.get(node.name)
            branch = node.branch(picked)
            if branch is None:
                if picked or node.required:
                    reading.problems[node.name] = "choose one of the options"
                continue
            inner = _read_object(branch.nodes, branch.constants, posted, reading, stored)
            members.append((key, {node.discriminator: branch.key, **inner}, False))
        else:
            held = _at(stored, node.pointer)
            read_value = _read_control(node, posted, reading, held)
            if read_value is not _ABSENT:
                members.append((key, read_value, _follows_default(node, read_value, held)))
    if all(follows for _, _, follows in members):
        return {}
    return {key: value for key, value, _ in members}


def _follows_default(control: Control, value: Any, held: Any) -> bool:
    """Whether ``value`` only repeats the default of a key the configuration does not hold."""
    return (
        held is _ABSENT
        and not control.required
        and control.default is not None
        and json_equal(value, control.default)
    )


def _read_control(control: Control, posted: Form, reading: Reading, held: Any) -> Any:
    """The control's value; ``held`` is the stored (redacted) value at its pointer."""
    if control.widget == "checkbox":
        return control.name in posted
    text = posted.get(control.name)
    if control.widget == "secret":
        if text == "":
            reading.blank_secrets.append(control.pointer)
            return _ABSENT
        widget = control.reads_as
    else:
        widget = control.widget
        if text.strip() == "" and _kept(control, held):
            # Left empty as shown: the stored value, its placeholders sent back as a REST client
            # would (the service puts each stored secret back where its placeholder is).
            return copy.deepcopy(held)
    try:
        return _read_text(control, widget, text)
    except ValueError as problem:
        reading.problems[control.name] = str(problem)
        return _ABSENT


def _read_text(control: Control, widget: Widget, text: str) -> Any:
    """The value of a control's text: none when it is empty (null where the control allows it),
    but for a secret's, read as typed."""
    if control.widget != "secret" and text.strip() == "":
        return None if control.nullable else _ABSENT
    return _parse(widget, control, text)


def _parse(widget: Widget, control: Control, text: str) -> Any:
    match widget:
        case "integer":
            if not _WHOLE_NUMBER.fullmatch(text.strip()):
                raise ValueError("must be a whole number")
            return int(text.strip())
        case "number":
            if _WHOLE_NUMBER.fullmatch(text.strip()):
                return int(text.strip())  # as a JSON number without a fraction reads
            try:
                number = float(text.strip())
            except ValueError:
                raise ValueError("must be a number") from None
            if not math.isfinite(number):
                raise ValueError("must be a finite number")
            return number
        case "select":
            for label, option in control.options:
                if label == text:
                    return option
            raise ValueError("choose one of the options")
        case "lines":
            return [line for line in _LINE_BREAK.split(text) if line.strip()]
        case "pairs":
            return _pairs(text)
        case "json":
            try:
                return json.loads(text)
            except ValueError:
                raise ValueError("is not valid JSON") from None
    return text


def _pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"line {number} must read name: value")
        if name in pairs:
            raise ValueError(f"line {number} repeats the name {name[:64]}")
        pairs[name] = value.removeprefix(" ")
    return pairs


def problems_of(form: SchemaForm, values: Mapping[str, str], error: KeyholeError) -> dict[str, str]:
    """The service's complaints about a configuration, by the name of the control they concern
    (on the path ``values`` chose); a complaint about no control stays in the error's message."""
    by_pointer: dict[str, str] = {}
    for node in chosen_path(form, values):
        if isinstance(node, Choice):
            by_pointer[f"{node.pointer}/{node.discriminator}"] = node.name
        elif isinstance(node, Control):
            by_pointer[node.pointer] = node.name

    def control_of(pointer: object) -> str | None:
        """The control of ``pointer`` or of its nearest ancestor (a map's entry is its map's)."""
        if not isinstance(pointer, str) or not pointer.startswith("/"):
            return None
        tokens = parse_pointer(pointer)
        for end in range(len(tokens), 0, -1):
            found = by_pointer.get(format_pointer(tokens[:end]))
            if found is not None:
                return found
        return None

    problems: dict[str, str] = {}
    errors = error.metadata.get("errors")
    for item in errors if isinstance(errors, list) else ():
        name = control_of(item.get("field")) if isinstance(item, Mapping) else None
        if name is not None:
            problems.setdefault(name, str(item.get("message", "is invalid")))
    name = control_of(error.metadata.get("field"))
    if name is not None:
        problems.setdefault(name, error.message)
    for pointer in error.metadata.get("secrets") or ():
        name = control_of(pointer)
        if name is not None:
            problems[name] = "type it again: where the credential goes has changed"
    return problems
