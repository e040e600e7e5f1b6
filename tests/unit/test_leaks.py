"""The one leak checker: a secret is found raw, as hex, and as base64 wherever it sits in a stream."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest

from runbook.report.leaks import find_secret

KEY = random.Random(20261126).randbytes(256)  # an authkey's size; fixed, so a failure repeats
OTHER = random.Random(7).randbytes(256)
PASSWORD = "Right-0f3a9c27d15e4b68"


def test_the_key_has_both_alphabets_in_it() -> None:
    """Otherwise the urlsafe cases below would prove nothing."""
    assert {b"+", b"/"} & set(base64.b64encode(KEY)[i : i + 1] for i in range(344))


@pytest.mark.parametrize("before", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("after", [0, 1, 2])
@pytest.mark.parametrize(
    "encode", [base64.b64encode, base64.urlsafe_b64encode, base64.encodebytes], ids=["standard", "urlsafe", "wrapped-76"]
)
def test_base64_of_a_stream_holding_the_key_at_any_offset(before: int, after: int, encode) -> None:
    stream = bytes(range(250, 250 + before)) + KEY + b"~" * after
    text = b"output: " + encode(stream) + b" end"
    assert find_secret(KEY, text), f"key at offset {before} of a base64 stream was missed"
    assert find_secret(KEY, text.decode())  # text and bytes alike


@pytest.mark.parametrize("before", [0, 1, 2])
def test_a_piece_of_the_key_in_base64_is_found_too(before: int) -> None:
    """A truncated copy (first 60 characters) and a notebook's JSON of wrapped `base64` output."""
    stream = b"x" * before + KEY
    assert find_secret(KEY, base64.b64encode(stream)[:60])
    lines = base64.encodebytes(stream).decode().splitlines(keepends=True)
    assert find_secret(KEY, json.dumps({"name": "stdout", "text": lines}, indent=1))


@pytest.mark.parametrize(
    "text, form",
    [
        (b"<p>" + KEY + b"</p>", "raw bytes"),
        (("key=" + KEY.hex() + "\n").encode(), "hex"),
        (("KEY=" + KEY.hex().upper()).encode(), "HEX"),
        (KEY[100:160], "raw bytes"),
        (KEY[37:120].hex().encode(), "hex"),
    ],
)
def test_the_key_raw_or_as_hex_whole_or_in_part(text: bytes, form: str) -> None:
    found = find_secret(KEY, text)
    assert found is not None and found.startswith(form)


def test_what_is_not_the_key_is_not_reported() -> None:
    fine = [
        b"",
        b"sha256 " + KEY.hex()[:12].encode(),  # a short, digest-like id
        hashlib.sha256(KEY).hexdigest().encode(),
        base64.b64encode(OTHER),
        OTHER,
        OTHER.hex().encode(),
        KEY[:20] + b"...",  # less than a piece
    ]
    for text in fine:
        assert find_secret(KEY, text) is None, text[:40]


def test_the_answer_never_holds_the_secret() -> None:
    for text in (KEY, KEY.hex(), base64.b64encode(b"ab" + KEY).decode()):
        found = find_secret(KEY, text)
        assert found is not None
        assert KEY.hex()[:16] not in found and base64.b64encode(KEY)[:16].decode() not in found


@pytest.mark.parametrize("before", [0, 1, 2])
def test_a_password_in_base64_at_any_offset(before: int) -> None:
    secret = PASSWORD.encode()
    assert find_secret(secret, base64.b64encode(b"u" * before + b"ops:" + secret + b"\n"))
    assert find_secret(secret, f"sudo -S <<< {PASSWORD}")
    assert find_secret(secret, base64.b64encode(b"ops:Wrong-0f3a9c27d15e4b68")) is None


def test_a_secret_too_short_to_search_for_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        find_secret(b"1234567", "anything")
