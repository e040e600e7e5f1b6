"""Is a secret in this text? The one check the tests and the docs build's pre-publish scan share.

A secret (the authkey, a password) can land in a record as its raw bytes, as hex, or as base64, and
base64 does not keep a secret's own bytes together: inside a longer stream, the key is encoded from
whichever of its first three bytes starts a 3-byte group, and the characters around it mix in the
neighbouring bytes. So base64 is searched at all three alignments, in the standard and the urlsafe
alphabet, without the groups at the edges.

Pieces count too: a secret longer than two pieces is searched as consecutive pieces of PIECE bytes
(and their hex and base64), so a truncated or line-wrapped copy (`base64` wraps at 76 characters,
a notebook splits output into JSON strings) is found once it holds about two pieces of the secret.
"""

from __future__ import annotations

import base64
from functools import lru_cache

PIECE = 24  # bytes: 192 bits, never found by chance; base64 pieces are 8 groups (32 characters)
MIN_SECRET = 8  # shorter secrets cannot be told from chance in base64


def _pieces(data: bytes, size: int) -> list[bytes]:
    """The whole of `data` when it is short, else its consecutive pieces of `size` (a copy of any
    2*size-1 consecutive bytes of data holds one of them, and a whole copy holds the first)."""
    if len(data) <= 2 * size:
        return [data]
    return [data[i : i + size] for i in range(0, len(data) - size + 1, size)]


@lru_cache(maxsize=64)
def secret_forms(secret: bytes) -> tuple[tuple[str, bytes], ...]:
    """(what it is, bytes to look for) for every form of the secret the checker knows."""
    if len(secret) < MIN_SECRET:
        raise ValueError(f"a secret of {len(secret)} bytes is too short to search for (at least {MIN_SECRET})")
    forms: list[tuple[str, bytes]] = []
    for piece in _pieces(secret, PIECE):
        forms += [("raw bytes", piece), ("hex", piece.hex().encode()), ("HEX", piece.hex().upper().encode())]
    for offset in range(3):
        body = secret[offset : offset + 3 * ((len(secret) - offset) // 3)]  # whole groups only: no padding
        for alphabet, encode in (("base64", base64.b64encode), ("urlsafe base64", base64.urlsafe_b64encode)):
            encoded = encode(body)
            if alphabet != "base64" and encoded == base64.b64encode(body):
                continue  # no + or / in it: the same as the standard alphabet
            forms += [(f"{alphabet} (from byte {offset} of the secret)", piece) for piece in _pieces(encoded, PIECE // 3 * 4)]
    return tuple(dict.fromkeys(forms))


def find_secret(secret: bytes, data: str | bytes) -> str | None:
    """How `secret` (or a piece of it) appears in `data`, e.g. "hex at byte 120", or None.

    The answer never contains the secret, so it can go into an assertion message or an error.
    """
    haystack = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    for what, needle in secret_forms(bytes(secret)):
        at = haystack.find(needle)
        if at >= 0:
            return f"{what} at byte {at}"
    return None
