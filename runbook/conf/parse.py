"""Reading any existing corosync.conf, and comparing two of them key by key.

Parsing follows corosync's own reader: `name {` opens a section (`name: {` too), `}` closes it,
`key: value` splits at the first colon (so IPv6 values survive), lines starting with `#` are comments.
Two shapes:

- `parse_entries()` -> ordered tree `[(key, value), ...]`, a value is a `str` or a nested entry list.
  Exact order and repetition, for comparing files.
- `parse()` -> `{key: [occurrence, ...]}` with every key mapping to the LIST of its occurrences in file
  order (a value is a `str`, a section is again such a dict); keys keep first-appearance order.

Writing one is render.py's.
"""

from __future__ import annotations

import re
from typing import Any, Union

from runbook.errors import ConfigParseError

Entry = tuple[str, Union[str, "list[Entry]"]]
Parsed = dict[str, list[Any]]

MAX_CONF_BYTES = 1024 * 1024
MAX_DEPTH = 16
TIMING_KEYS = ("token", "token_retransmits_before_loss_const", "join", "consensus", "max_messages")
LOGGING_KEYS = ("to_syslog", "to_stderr", "to_logfile", "logfile", "debug", "timestamp")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- rendering -----------------------------------------------------------------------------------


# --- parsing -------------------------------------------------------------------------------------


def parse_entries(text: str | bytes, source: str = "corosync.conf") -> list[Entry]:
    """Ordered tree of (key, value) entries; a section's value is its own entry list."""
    text = _as_text(text, source)
    root: list[Entry] = []
    stack: list[tuple[str, int, list[Entry]]] = [("", 0, root)]
    for number, raw in enumerate(text.split("\n"), start=1):
        if _CONTROL.search(raw):
            raise ConfigParseError("control character in line: not a text corosync.conf", source, number)
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, _, rest = line.partition("{")
            name = name.strip()
            name = name.strip().removesuffix(":").strip()  # corosync also reads `interface: {`
            if not name or rest.strip() or any(c in name for c in ":}"):
                raise ConfigParseError(f"bad section opening {_quote(line)}: expected 'name {{'", source, number)
            if len(stack) > MAX_DEPTH:
                raise ConfigParseError(f"sections nested deeper than {MAX_DEPTH}", source, number)
            body: list[Entry] = []
            stack[-1][2].append((name, body))
            stack.append((name, number, body))
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            if not key or "}" in key:
                raise ConfigParseError(f"bad line {_quote(line)}: expected 'key: value'", source, number)
            stack[-1][2].append((key, value.strip()))
        elif line == "}":
            if len(stack) == 1:
                raise ConfigParseError("'}' without an open section", source, number)
            stack.pop()
        else:
            raise ConfigParseError(
                f"cannot read {_quote(line)}: expected 'name {{', 'key: value', '}}' or a # comment", source, number
            )
    if len(stack) > 1:
        name, opened, _ = stack[-1]
        message = f"section {name!r} opened at line {opened} is never closed (missing '}}')"
        raise ConfigParseError(message, source, opened)
    return root


def parse(text: str | bytes, source: str = "corosync.conf") -> Parsed:
    """`{key: [occurrence, ...]}` (see module doc): every key holds the list of its values/sections."""
    return _to_dict(parse_entries(text, source))


def _to_dict(entries: list[Entry]) -> Parsed:
    result: Parsed = {}
    for key, value in entries:
        result.setdefault(key, []).append(_to_dict(value) if isinstance(value, list) else value)
    return result


def _as_text(text: str | bytes, source: str) -> str:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigParseError(f"not UTF-8 text (bad byte at offset {error.start})", source) from None
    if not isinstance(text, str):
        raise ConfigParseError(f"expected the file's text, got {type(text).__name__}", source)
    if len(text) > MAX_CONF_BYTES:
        raise ConfigParseError(f"larger than {MAX_CONF_BYTES} characters: not a corosync.conf", source)
    return text


def _quote(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:57] + "...")


def equivalent(text_a: str | bytes, text_b: str | bytes) -> bool:
    """Same sections, keys, values and order, comments and indentation aside (e.g. our header line).

    The header names the cluster file (or 'parameters'), so the same cluster rendered from the CLI
    and from a notebook differs in that comment only; idempotency checks should compare with this.
    """
    try:
        return parse_entries(text_a) == parse_entries(text_b)
    except ConfigParseError:
        return False


# --- comparing two files' settings ---------------------------------------------------------------

# Keys whose value is a yes/no switch: Corosync reads yes/on/true/1 alike (and no/off/false/0).
BOOLEAN_KEYS = frozenset((
    "secauth", "to_syslog", "to_stderr", "to_logfile", "debug", "timestamp", "broadcast", "two_node",
    "wait_for_all", "last_man_standing", "auto_tie_breaker",
))
_MERGED = ("totem", "logging", "quorum", "nodelist")


def settings(text: str | bytes, source: str = "corosync.conf") -> dict[str, Any]:
    """A file's settings as Corosync reads them, for comparing two files key by key.

    Normalized only where Corosync itself makes no difference (each is truly equivalent):
    comments, indentation, blank lines and key order; repeated top-level sections (merged, as
    Corosync does); a repeated key (the last value wins, as in Corosync); an empty section (= none);
    yes/on/true/1 and no/off/false/0 in `BOOLEAN_KEYS`; the order of repeated sections other than
    `node` (interface, member, logger_subsys: each is identified by its own keys); and two keys whose
    absence Corosync reads as their only or default value: totem.version (2, the only valid one) and an
    interface's ringnumber/linknumber (0).
    """
    result = _normal(parse_entries(text, source), top=True)
    totem = result.get("totem")
    if isinstance(totem, dict):
        totem.setdefault("version", "2")
        for interface in totem.get("interface", []):
            if "ringnumber" not in interface and "linknumber" not in interface:
                interface["ringnumber" if "member" in interface or "bindnetaddr" in interface else "linknumber"] = "0"
        if isinstance(totem.get("interface"), list):
            totem["interface"].sort(key=lambda n: repr(sorted(n.items())))
    return result


def _normal(entries: list[Entry], top: bool = False) -> dict[str, Any]:
    scalars: dict[str, str] = {}
    sections: dict[str, list[list[Entry]]] = {}
    for key, value in entries:
        if isinstance(value, list):
            sections.setdefault(key, []).append(value)
        else:
            scalars[key] = _normal_value(key, value)
    result: dict[str, Any] = dict(scalars)
    for key, bodies in sections.items():
        if top and key in _MERGED:
            merged = _normal([pair for body in bodies for pair in body])
            if merged:
                result[key] = merged
            continue
        normals = [n for n in (_normal(body) for body in bodies) if n]
        if not normals:
            continue
        if key != "node":
            normals.sort(key=lambda n: repr(sorted(n.items())))
        result[key] = normals
    return result


def _normal_value(key: str, value: str) -> str:
    lowered = value.strip().lower()
    if key in BOOLEAN_KEYS:
        if lowered in ("yes", "on", "true", "1"):
            return "1"
        if lowered in ("no", "off", "false", "0"):
            return "0"
    return value.strip()


def differences(before: dict[str, Any], after: dict[str, Any], path: str = "") -> list[str]:
    """`path: before -> after` for every setting that differs between two `settings()`."""
    found = []
    for key in list(before) + [k for k in after if k not in before]:
        where = f"{path}.{key}" if path else key
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            found.extend(differences(a, b, where))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b)):
                found.extend(differences(x, y, f"{where}[{index}]"))
        else:
            found.append(f"{where}: {_brief(a)} -> {_brief(b)}")
    return found


def _brief(value: Any) -> str:
    if value is None:
        return "(absent)"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
