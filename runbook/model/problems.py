"""Naming what is wrong in a cluster file: the problem collector, addresses, and verbatim keys.

Every message reads `field.path: value problem`; the validators of `model/sections.py` and
`model/rules.py` add to one `Problems`, so a user sees every problem of a file at once.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import fields
from typing import Any, Mapping

from runbook.model.types import Extra
from runbook.text import show

U32 = 2**32 - 1
_MAX_EXTRA_DEPTH = 8
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?",
    re.ASCII,
)
_EXTRA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
UNSAFE_IN_CONF = re.compile(r"[\x00-\x1f\x7f{}]")
_SECRET_WORDS = ("password", "passphrase", "secret", "private_key", "authkey")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": not a node's address


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else show(key)


def field_names(cls: Any, *drop: str) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name not in drop)


class Problems:
    """Collects messages of the form `path: value problem` so all are reported at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.messages.append(f"{path}: {message}")

    def bad(self, path: str, value: Any, problem: str) -> None:
        self.add(path, f"{show(value)} {problem}")

    def section(self, path: str, value: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        """A sub-mapping (None = defaults), with unknown keys reported."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.bad(path, value, f"is not a mapping (expected keys: {', '.join(allowed)})")
            return {}
        self.unknown_keys(path, value, allowed)
        return value

    def unknown_keys(self, path: str, mapping: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
        prefix = f"{path}." if path else ""
        for key in mapping:
            if key in allowed:
                continue
            text = _key_text(key)
            if isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS):
                self.add(
                    prefix + text,
                    "secrets never go in the cluster file (it is recorded as notebook parameters); "
                    "a sudo password comes from the environment variable RUNBOOK_SUDO_PASSWORD",
                )
                continue
            close = difflib.get_close_matches(text, allowed, n=1, cutoff=0.6) if isinstance(key, str) else []
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
            if "extra" in allowed and not close:
                hint += f" (a Corosync key the model does not hold goes in {prefix}extra)"
            self.add(prefix + text, "unknown key" + hint)

    def integer(self, path: str, value: Any, low: int, high: int, what: str = "") -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(path, value, "is not an integer")
            return None
        if value < low or value > high:
            self.bad(path, value, what or f"is out of range; use {low}..{high}")
            return None
        return value

    def boolean(self, path: str, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.bad(path, value, "is not true or false")
            return None
        return value

    def choice(self, path: str, value: Any, choices: tuple[str, ...]) -> str | None:
        if not isinstance(value, str) or value not in choices:
            self.bad(path, value, f"is not one of {', '.join(choices)}")
            return None
        return value

    def text(self, path: str, value: Any, what: str = "a value") -> str | None:
        """A single-line value Corosync can hold (no braces, no control characters)."""
        if isinstance(value, bool) or not isinstance(value, (str, int)) or UNSAFE_IN_CONF.search(str(value)):
            self.bad(path, value, f"is not {what} (one line, no braces)")
            return None
        return str(value)


def check_address(p: Problems, path: str, value: Any) -> str | None:
    """An IP address (canonical form) or a hostname; refused: what no node can use."""
    if not isinstance(value, str):
        p.bad(path, value, "is not an IPv4 or IPv6 address or a hostname")
        return None
    text = value.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if re.fullmatch(r"[0-9.]+", text) or ":" in text or not _HOSTNAME.fullmatch(text):
            p.bad(path, value, "is not an IPv4 or IPv6 address or a hostname")
            return None
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        p.bad(path, value, "has a zone index (%...), which corosync.conf cannot carry")
    elif address.is_unspecified:
        p.bad(path, value, "is the unspecified address; use the node's address on the cluster network")
    elif address.is_multicast:
        p.bad(path, value, "is a multicast address; use the node's own unicast address")
    elif isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        p.bad(path, value, f"is an IPv4-mapped IPv6 address; write the IPv4 address {address.ipv4_mapped}")
    elif not address.is_loopback and (address.is_reserved or address in _THIS_NETWORK):
        p.bad(path, value, "is a reserved address (broadcast, 0.0.0.0/8, 240.0.0.0/4, ...) that no node can use")
    else:
        return str(address)
    return None


def verbatim(p: Problems, path: str, value: Any, owned: tuple[str, ...], depth: int = 0) -> Extra:
    """Keys carried verbatim: a mapping of key -> text, section (mapping) or repeats (list)."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        p.bad(path, value, "is not a mapping of Corosync keys to values (carried verbatim)")
        return ()
    if depth > _MAX_EXTRA_DEPTH:
        p.add(path, f"sections nested deeper than {_MAX_EXTRA_DEPTH}")
        return ()
    result: list[tuple[str, Any]] = []
    for key, raw in value.items():
        where = f"{path}.{_key_text(key)}"
        if not isinstance(key, str) or not _EXTRA_KEY.fullmatch(key):
            p.bad(where, key, "is not a Corosync key (letters, digits, _ . -)")
            continue
        if key in owned:
            p.add(where, f"is held by the model, not by extra: set {path.rsplit('.extra', 1)[0]}.{key} instead"
                  if path.endswith(".extra") else "is held by the model, not by extra; use its own key")
            continue
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        if not items:
            p.bad(where, raw, "is an empty list; give a value")
        for item in items:
            if isinstance(item, Mapping):
                result.append((key, verbatim(p, where, item, (), depth + 1)))
            elif isinstance(item, bool):
                p.bad(where, item, "is a YAML boolean; write Corosync's exact word in quotes ('yes', 'on', '1', ...)")
            elif item is None:
                p.add(where, "is null; write '' in quotes for an empty value")
            elif isinstance(item, float):
                result.append((key, repr(item)))
            else:
                text = p.text(where, item)
                if text is not None:
                    result.append((key, text))
    return tuple(result)
