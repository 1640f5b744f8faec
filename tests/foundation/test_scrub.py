"""The one scrubber (``keyhole.vault.scrub``): its forms, case-insensitive matching, the fixed tail
of a cut body, and the same bytes whether a body is scrubbed whole or in chunks.

The properties compare the scrubber with a model written here on ``re`` (leftmost match, the
longest form first, ASCII case folding), so they check it against the rule, not against itself."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keyhole.vault.scrub import (
    NO_SECRETS,
    REDACTED,
    TAIL_STEP,
    Scrubber,
    echo_forms,
    scrub_message,
)

MARK = REDACTED.encode()
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Secrets long enough that no form fits inside "[REDACTED]", and without the brackets that could
# let a form straddle one: so "no form in the output" means exactly "no echo leaked".
secrets = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="[]", exclude_categories=["Cs"]),
    min_size=12,
    max_size=40,
)
fillers = st.binary(max_size=200)


def model(data: bytes, forms: tuple[str, ...], *, cap: int | None = None) -> bytes:
    """What the caller must get: leftmost, longest-first, case-insensitive replacement; a body
    longer than ``cap`` cut there and short of its last (longest form - 1, rounded up) bytes."""
    ordered = sorted({form.encode("utf-8", "surrogatepass") for form in forms}, key=len, reverse=True)
    if not ordered:
        return data if cap is None else data[:cap]
    pattern = re.compile(b"|".join(re.escape(form) for form in ordered), re.IGNORECASE)
    truncated = cap is not None and len(data) > cap
    body = data[:cap] if truncated else data
    tail = -(-(len(ordered[0]) - 1) // TAIL_STEP) * TAIL_STEP
    end = len(body) - tail if truncated else len(body)
    out, position = [], 0
    for match in pattern.finditer(body):
        if match.start() >= end:
            break
        out += [body[position : match.start()], MARK]
        position = match.end()
    out.append(body[position : max(position, end)])
    return b"".join(out)


def whole(scrubber: Scrubber, data: bytes, cap: int | None = None) -> bytes:
    truncated = cap is not None and len(data) > cap
    return scrubber.scrub(data[:cap] if truncated else data, truncated=truncated)


def chunked(scrubber: Scrubber, data: bytes, cuts: list[int], cap: int | None = None) -> bytes:
    truncated = cap is not None and len(data) > cap
    body = data[:cap] if truncated else data
    stream = scrubber.stream()
    out, start = [], 0
    for cut in [*sorted({min(cut, len(body)) for cut in cuts}), len(body)]:
        out.append(stream.feed(body[start:cut]))
        start = cut
    out.append(stream.finish(truncated=truncated))
    return b"".join(out)


def any_case(draw: st.DrawFn, form: str) -> bytes:
    """``form`` with its ASCII letters in a drawn case (others as they are)."""
    flips = draw(st.lists(st.booleans(), min_size=len(form), max_size=len(form)))
    spelled = "".join(
        char.swapcase() if flip and char.isascii() else char for char, flip in zip(form, flips, strict=True)
    )
    return spelled.encode("utf-8", "surrogatepass")


@st.composite
def echoed_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A secret and a body with some of its forms, in any case, between arbitrary bytes."""
    secret = draw(secrets)
    forms = echo_forms([secret])
    parts = [draw(fillers)]
    for _ in range(draw(st.integers(0, 4))):
        parts += [any_case(draw, draw(st.sampled_from(forms))), draw(fillers)]
    return secret, b"".join(parts)


# -- forms ------------------------------------------------------------------------------------


def test_forms_of_a_secret() -> None:
    secret = 'Tok en/+"é\n1234'
    forms = set(echo_forms([secret]))
    assert {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote_plus(secret, safe="/"),
        quote_plus(secret, safe="+"),
        quote_plus(secret, safe="/+"),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode(),
        base64.b64encode(secret.encode()).decode().rstrip("="),
    } <= forms
    assert echo_forms([""]) == ()
    assert list(echo_forms([secret])) == sorted(echo_forms([secret]), key=len, reverse=True)


def test_basic_credentials_add_the_encoded_pair_only() -> None:
    forms = echo_forms(["pw-123456"], pairs=[("robot", "pw-123456")])
    pair = base64.b64encode(b"robot:pw-123456").decode()
    assert {pair, base64.urlsafe_b64encode(b"robot:pw-123456").decode(), pair.rstrip("=")} <= set(forms)
    assert "robot" not in forms


def test_matching_ignores_ascii_case_and_prefers_the_longest_form() -> None:
    scrubber = Scrubber(["s3cr3t", "s3cr3t-TOKEN-value"])
    body = b"a S3CR3T-token-VALUE b s3CR3t c"
    assert scrubber.scrub(body) == b"a [REDACTED] b [REDACTED] c"
    assert scrubber.scrub_text("x-S3cr3t-y") == "x-[REDACTED]-y"
    assert scrubber.scrub(b"nothing here") == b"nothing here"
    assert NO_SECRETS.scrub(b"s3cr3t", truncated=True) == b"s3cr3t"
    assert repr(scrubber) == "Scrubber(<2 forms>)"


def test_the_tail_depends_on_the_longest_form_only() -> None:
    for length in (2, 20, 65, 66, 200):
        tail = Scrubber(["x" * length]).tail
        assert tail >= length - 1 and tail % TAIL_STEP == 0 and tail - (length - 1) < TAIL_STEP
    assert Scrubber(["x"]).tail == 0
    assert NO_SECRETS.tail == 0


def test_a_cut_body_always_loses_the_same_tail() -> None:
    secret = "tok_Z9qR4vX2mL7pK3sW8nB5"
    scrubber = Scrubber.of([secret])
    tail = scrubber.tail
    filler = b"A" * 300
    outputs = {
        scrubber.scrub(filler + guess.encode(), truncated=True)
        for k in range(1, len(secret))
        for guess in (secret[:k], "#" * k, secret[:k].swapcase())
    }
    assert len({len(output) for output in outputs}) == len(outputs)  # one length per body length
    for k in range(1, len(secret)):
        right = scrubber.scrub(filler + secret[:k].encode(), truncated=True)
        wrong = scrubber.scrub(filler + b"#" * k, truncated=True)
        assert right == wrong == (filler + b"#" * k)[: 300 + k - tail]
    assert scrubber.scrub(b"short", truncated=True) == b""


def test_a_form_that_starts_before_the_tail_is_replaced_whole() -> None:
    secret = "tok_Z9qR4vX2mL7pK3sW8nB5"
    scrubber = Scrubber.of([secret])
    body = b"A" * 100 + secret.encode() + b"B" * (scrubber.tail - 5)
    assert scrubber.scrub(body, truncated=True) == b"A" * 100 + MARK


def test_error_messages() -> None:
    scrubber = Scrubber.of(["Pg_Secret_XYZ"])
    message = 'column "pg_secret_xyz" does not exist; postgresql://bob:hunter2@db/x'
    assert scrub_message(message, scrubber, 2000) == (
        'column "[REDACTED]" does not exist; postgresql://[REDACTED]@db/x'
    )
    assert scrub_message("Pg_Secret_XYZ" * 3, scrubber, 25) == "[REDACTED]" * 2 + "[REDA"


# -- properties -------------------------------------------------------------------------------


@PROPERTY
@given(echoed_bodies(), st.lists(st.integers(0, 2000), max_size=8), st.none() | st.integers(0, 1200))
def test_whole_and_chunked_agree_with_the_model(
    echoed: tuple[str, bytes], cuts: list[int], cap: int | None
) -> None:
    secret, body = echoed
    scrubber = Scrubber.of([secret])
    expected = model(body, echo_forms([secret]), cap=cap)
    assert whole(scrubber, body, cap) == expected
    assert chunked(scrubber, body, cuts, cap) == expected
    assert chunked(scrubber, body, list(range(1, len(body))), cap) == expected  # one byte at a time


@PROPERTY
@given(echoed_bodies(), st.lists(st.integers(0, 2000), max_size=8), st.none() | st.integers(0, 1200))
def test_no_form_of_the_secret_reaches_the_output(
    echoed: tuple[str, bytes], cuts: list[int], cap: int | None
) -> None:
    secret, body = echoed
    output = chunked(Scrubber.of([secret]), body, cuts, cap).lower()
    for form in echo_forms([secret]):
        assert form.encode().lower() not in output


@PROPERTY
@given(fillers, secrets, st.integers(0, 1200))
def test_a_cut_body_without_a_whole_form_keeps_a_fixed_length(filler: bytes, secret: str, cap: int) -> None:
    scrubber = Scrubber.of([secret])
    lowered = filler[:cap].lower()
    assume(not any(form.encode().lower() in lowered for form in scrubber.forms))
    body = filler + b"more"
    cap = min(cap, len(body) - 1)
    assert len(whole(scrubber, body, cap)) == max(0, cap - scrubber.tail)


@PROPERTY
@given(st.data(), fillers, secrets, st.lists(st.integers(0, 400), max_size=5))
def test_a_prefix_guess_and_a_wrong_guess_give_the_same_answer(
    data: st.DataObject, filler: bytes, secret: str, cuts: list[int]
) -> None:
    """The oracle: the caller's guess ends exactly at the cap, right or wrong, in any form."""
    scrubber = Scrubber.of([secret])
    form = data.draw(st.sampled_from(scrubber.forms)).encode()
    k = data.draw(st.integers(1, len(form) - 1))
    right = filler + form[:k]
    wrong = filler + bytes((byte + 1) % 256 if at == k - 1 else byte for at, byte in enumerate(form[:k]))
    for body in (right, wrong):  # neither holds a whole form: then there is nothing to find
        assume(not any(known.encode().lower() in body.lower() for known in scrubber.forms))
    cap = len(right)
    answers = {chunked(scrubber, body + b"rest", cuts, cap) for body in (right, wrong)}
    answers |= {whole(scrubber, body + b"rest", cap) for body in (right, wrong)}
    assert answers == {filler[: max(0, cap - scrubber.tail)]}


@pytest.mark.parametrize(
    "echo",
    [
        "p\\u0026ss\\u003cw\\u003eord\\u0027",  # Go's encoding/json
        "p&amp;ss&lt;w&gt;ord&#x27;",  # HTML and XML
        "p&#38;ss&lt;w&gt;ord&#39;",  # numeric entities
    ],
)
def test_html_safe_echoes_are_scrubbed(echo: str) -> None:
    scrubber = Scrubber.of(["p&ss<w>ord'"])
    assert scrubber.scrub_text(f"echo: {echo}!") == "echo: [REDACTED]!"


def test_a_header_credential_with_a_scheme_is_scrubbed_without_it() -> None:
    from keyhole.connections.target import preview_target
    from keyhole.connections.type_files import load_catalog

    target = preview_target(
        load_catalog().get("api"),
        {
            "url": "https://api.example",
            "auth": {"type": "header", "name": "Authorization", "value": "Token tk_Inner_Value_77"},
        },
    )
    assert target.scrubber.scrub_text("you sent tk_Inner_Value_77") == "you sent [REDACTED]"
