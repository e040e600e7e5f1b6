"""What a node's Corosync is running, read from its configuration map, in the key space of corosync.conf.

Corosync keeps what it read from corosync.conf in its configuration map (cmap on 2.x/3.x, objdb on
1.x) under flat keys: `totem.token`, `totem.interface.0.mcastport`, `nodelist.node.1.ring0_addr`,
`quorum.two_node`, `logging.to_syslog`. Step 06 compares those keys with the new file's, key by key,
to decide between nothing, a reload and a restart (runbook.change_kind). Three pure parts:

- `read_command(generation)`: the read-only command (`corosync-cmapctl`; `corosync-objctl` on 1.x).
- `parse_cmapctl(text)` / `parse_objctl(text)`: its output -> `{key: value}`.
- `file_keys(text, generation)`: a corosync.conf -> the same key space, built the way Corosync's own
  parser (exec/coroparse.c, checked at v2.4.6 and v3.1.7) builds it.

`differences(running, wanted)` lists the keys that differ. It compares only what the file sets, or
removes, because the map holds much more than the file: `runtime.*` (membership, statistics, the
values in force such as `runtime.config.totem.token`), `config.*` (the last reload's status),
`resources.*` and `internal_configuration.*` (Corosync's own), and keys Corosync derives itself
(`DERIVED`). A key the file does not set is compared only under the prefixes Corosync itself treats as
the file's on a reload (exec/cfg.c `remove_deleted_entries`: logging, totem, nodelist, quorum,
uidgid.config, nozzle), plus system (read only at start, so a removal there needs a restart).

What cmap cannot say: after a reload it holds the reloaded file's values even for some keys the
daemon did not apply (an interface's mcastport, quorum.wait_for_all: seen on 3.1.7 in the lab), and
a failed reload leaves it half-changed (deleted keys are gone, changed ones are not). `reload_status`
tells whether the daemon was reloaded since it started and how that went.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from runbook.conf.parse import Entry, parse_entries
from runbook.errors import HostError

Keys = dict[str, str]

# Prefixes whose keys belong to the file: a running key there that the new file lacks is a removal.
FILE_PREFIXES = ("totem.", "nodelist.", "quorum.", "logging.", "uidgid.config.", "nozzle.", "system.")
# 1.x has no nodelist, quorum or nozzle of its own worth comparing; its objdb holds these from the file.
FILE_PREFIXES_1 = ("totem.", "logging.", "quorum.")

# Keys Corosync writes itself: compared only when the file sets them.
DERIVED = (
    re.compile(r"nodelist\.local_node_pos"),  # totemconfig.c find_local_node
    re.compile(r"totem\.interface\.\d+\.bindnetaddr"),  # totemconfig.c config_convert_nodelist_to_interface
    re.compile(r"nodelist\.node\.\d+\.nodeid"),  # put_nodelist_members_to_config: generated for udp/udpu
    re.compile(r"quorum\.cancel_wait_for_all"),  # votequorum.c: a control key, reset to 0 after use
)

# Values that are secrets: kept only as a digest, so that no output, record or page shows them.
SECRET_KEYS = ("totem.key",)

CS_OK = 1  # config.reload_status after a reload that worked (cs_error_t CS_OK)

# `totem.token (u32) = 3000`; a value may be empty or end in spaces (runtime.members.N.ip).
_CMAPCTL_LINE = re.compile(r"^(?P<key>[^\s=]+) \((?P<type>[a-z0-9]+)\) = ?(?P<value>.*)$")
_NOT_RUNNING = ("Failed to initialize", "Cannot initialize", "CS_ERR_LIBRARY", "Could not initialize")

# The interface keys coroparse stores under the link's number (exec/coroparse.c PARSER_CB_SECTION_END);
# any other key of an interface section lands, unnumbered, at `totem.interface.<key>`.
_INTERFACE_KEYS = {
    1: ("bindnetaddr", "mcastaddr", "broadcast", "mcastport", "ttl"),
    2: ("bindnetaddr", "mcastaddr", "broadcast", "mcastport", "ttl"),
    3: ("bindnetaddr", "mcastaddr", "broadcast", "mcastport", "ttl", "knet_link_priority", "knet_ping_interval",
        "knet_ping_timeout", "knet_ping_precision", "knet_pong_count", "knet_transport"),
}
# Which key numbers an interface: 3.x reads only linknumber (a ringnumber there is an unnumbered key).
_NUMBER_KEY = {1: "ringnumber", 2: "ringnumber", 3: "linknumber"}


class RunningConfigUnavailable(HostError):
    """A node's running configuration cannot be read (Corosync not running, no tool): names the host."""


def read_command(generation: int) -> str:
    """The read-only command that prints a node's running configuration map.

    All keys, not a list of prefixes: `corosync-cmapctl PREFIX...` exits 1 when the last prefix
    matches nothing, whatever the others printed, so its exit status would say nothing. stderr joins
    stdout, so that "not running" reaches the parser.
    """
    if generation == 1:
        return "LC_ALL=C corosync-objctl 2>&1"
    if generation in (2, 3):
        return "LC_ALL=C corosync-cmapctl 2>&1"
    raise ValueError(f"generation {generation!r}: expected 1, 2 or 3")


def parse_cmapctl(text: str, host: str = "node") -> Keys:
    """Pure: `corosync-cmapctl` output -> `{key: value}` (types dropped, values stripped, secrets digested)."""
    keys: Keys = {}
    for line in text.splitlines():
        match = _CMAPCTL_LINE.match(line)
        if match:
            keys[match.group("key")] = _kept(match.group("key"), match.group("value"))
    if not keys:
        _unavailable(host, "corosync-cmapctl", text)
    return keys


def parse_objctl(text: str, host: str = "node") -> Keys:
    """Pure: `corosync-objctl` output (Corosync 1.x) -> the key space of `file_keys(text, 1)`.

    objctl prints `path.key=value`, one object after another, depth first: an object's keys, then
    its child objects (tools/corosync-objctl.c print_config_tree, v1.4.10). Two interface sections
    both print as `totem.interface.*`, so the objects are rebuilt first: a line for a path left for a
    deeper one, or a key the current object already has, starts the next object of that name.
    """
    root: list[Entry] = []
    chain: list[tuple[str, list[Entry]]] = []  # the objects the last line was in, outermost first
    seen = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("Failed", "Could not", "Cannot")):
            continue
        path, has_value, value = line.partition("=")
        parts = path.split(".")
        names, key = (parts, None) if not has_value else (parts[:-1], parts[-1])
        common = 0
        while common < min(len(chain), len(names)) and chain[common][0] == names[common]:
            common += 1
        if common == len(names) and names and (
            len(chain) > len(names) or key is None or any(k == key for k, _ in chain[-1][1])
        ):
            common -= 1  # the same path again: the next object of that name
        del chain[common:]
        for name in names[common:]:
            body: list[Entry] = []
            (chain[-1][1] if chain else root).append((name, body))
            chain.append((name, body))
        if key is not None:
            (chain[-1][1] if chain else root).append((key, value.strip()))
        seen += 1
    if not seen:
        _unavailable(host, "corosync-objctl", text)
    return _flatten(root, 1, secrets=True)


def file_keys(text: str | bytes, generation: int, source: str = "corosync.conf") -> Keys:
    """Pure: a corosync.conf -> `{key: value}` as Corosync `generation` stores it in its map.

    Follows exec/coroparse.c: `section.key` paths; repeated sections merged and a repeated key's last
    value kept; interface keys numbered by the interface's linknumber (3.x) / ringnumber (1.x, 2.x),
    its members as `member.M` in the order Corosync stores them (the file's, reversed); each nodelist
    node numbered by its place in the file (`nodelist.node.N.key`); logger_subsys by its subsys. An
    empty section sets nothing. Values of `SECRET_KEYS` are kept as a digest.
    """
    if generation not in (1, 2, 3):
        raise ValueError(f"generation {generation!r}: expected 1, 2 or 3")
    return _flatten(parse_entries(text, source), generation, secrets=True)


def _flatten(entries: list[Entry], generation: int, secrets: bool) -> Keys:
    keys: Keys = {}
    _walk(entries, (), generation, keys, counters={})
    return {k: _kept(k, v) for k, v in keys.items()} if secrets else keys


def _walk(entries: list[Entry], path: tuple[str, ...], generation: int, keys: Keys, counters: dict[str, int]) -> None:
    for name, value in entries:
        if isinstance(value, str):
            keys[".".join(path + (name,))] = value.strip()
            continue
        where = path + (name,)
        if where == ("totem", "interface"):
            _interface(value, generation, keys)
        elif where == ("nodelist", "node") and generation != 1:
            number = counters.get("nodelist.node", 0)
            counters["nodelist.node"] = number + 1
            for key, item in value:
                if isinstance(item, str):
                    keys[f"nodelist.node.{number}.{key}"] = item.strip()
        elif where == ("logging", "logger_subsys"):
            scalars = [(k, v.strip()) for k, v in value if isinstance(v, str)]
            subsys = next((v for k, v in reversed(scalars) if k == "subsys"), None)
            if subsys is None:
                continue  # Corosync refuses the file: "No subsys key in logger_subsys directive"
            for key, item in scalars:
                keys[f"logging.logger_subsys.{subsys}.{key}"] = item
        else:
            _walk(value, where, generation, keys, counters)


def _interface(body: list[Entry], generation: int, keys: Keys) -> None:
    scalars = [(k, v.strip()) for k, v in body if isinstance(v, str)]
    number_key = _NUMBER_KEY[generation]
    number = next((v for k, v in reversed(scalars) if k == number_key), "0")
    number = str(int(number)) if number.isdigit() else number
    for key, value in scalars:
        if key == number_key:
            continue
        if key in _INTERFACE_KEYS[generation]:
            keys[f"totem.interface.{number}.{key}"] = value
        else:
            keys[f"totem.interface.{key}"] = value
    members = [item for k, item in body if k == "member" and not isinstance(item, str)]
    # coroparse adds each member at its list's head (2.x/3.x); 1.x's objdb keeps the file's order
    for index, member in enumerate(members if generation == 1 else reversed(members)):
        for key, value in member:
            if isinstance(value, str):
                suffix = f".{key}" if generation == 1 else ""  # 1.x keeps memberaddr; 2.x/3.x store the value
                keys[f"totem.interface.{number}.member.{index}{suffix}"] = value.strip()


def _kept(key: str, value: str) -> str:
    value = value.strip()
    if key in SECRET_KEYS:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
    return value


def _unavailable(host: str, tool: str, text: str) -> None:
    said = next((line.strip() for line in text.splitlines() if line.strip()), "nothing")
    if any(word in text for word in _NOT_RUNNING):
        why = f"Corosync is not running ({tool} said: {said})"
    elif "not found" in text:
        why = f"{tool} is not there ({said}): is Corosync installed?"
    else:
        why = f"{tool} printed no key ({tool} said: {said})"
    raise RunningConfigUnavailable(host, why, command=tool)


# --- comparing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One key whose running value is not the file's: None on a side means the key is absent there."""

    key: str
    running: str | None
    wanted: str | None

    def __str__(self) -> str:
        return f"{self.key}: {_shown(self.running)} -> {_shown(self.wanted)}"


def _shown(value: str | None) -> str:
    return "(absent)" if value is None else repr(value) if not value or value != value.strip() else value


def same_value(a: str | None, b: str | None) -> bool:
    """Equal as Corosync reads them: the same text, or the same number (`0100` and `100` in a u32)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    try:
        return int(a, 10) == int(b, 10)
    except ValueError:
        return False


def file_owned(key: str, generation: int) -> bool:
    """True when `key`, absent from the file, would be a removal (see the module docstring)."""
    prefixes = FILE_PREFIXES_1 if generation == 1 else FILE_PREFIXES
    return key.startswith(prefixes) and not any(p.fullmatch(key) for p in DERIVED)


def differences(running: Mapping[str, str], wanted: Mapping[str, str], generation: int) -> list[Difference]:
    """Every key the file sets with another value than the running one, and every file key it removes.

    Keys the file sets come first, in sorted order; then removals. Interface members are compared as
    a set per link (Corosync numbers them by position, reversed).
    """
    running_c, wanted_c = _members_as_sets(running), _members_as_sets(wanted)
    found = [Difference(k, running_c.get(k), v) for k, v in sorted(wanted_c.items()) if not same_value(running_c.get(k), v)]
    found += [Difference(k, v, None) for k, v in sorted(running_c.items()) if k not in wanted_c and file_owned(k, generation)]
    return found


_MEMBER = re.compile(r"(totem\.interface\.\d+)\.member\.\d+((?:\.memberaddr)?)")


def _members_as_sets(keys: Mapping[str, str]) -> Keys:
    out: Keys = {}
    members: dict[str, list[str]] = {}
    for key, value in keys.items():
        match = _MEMBER.fullmatch(key)
        if match:
            members.setdefault(match.group(1) + ".member" + match.group(2), []).append(value)
        else:
            out[key] = value
    for key, values in members.items():
        out[key] = " ".join(sorted(values))
    return out


# --- the nodelist, by node -------------------------------------------------------------------------

_NODE_KEY = re.compile(r"nodelist\.node\.(\d+)\.(.+)")


def node_entries(keys: Mapping[str, str]) -> list[dict[str, str]]:
    """The nodelist's nodes in their order (position N of `nodelist.node.N.*`), each `{key: value}`.

    Corosync numbers nodes by their place in the file, so removing the second of three renumbers the
    third: compare nodes by who they are (runbook.change_kind matches them by nodeid, name, address),
    never by N.
    """
    nodes: dict[int, dict[str, str]] = {}
    for key, value in keys.items():
        match = _NODE_KEY.fullmatch(key)
        if match:
            nodes.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [nodes[n] for n in sorted(nodes)]


def without_nodes(keys: Mapping[str, str]) -> Keys:
    """Every key but the nodelist's nodes (`nodelist.node.N.*`)."""
    return {k: v for k, v in keys.items() if not _NODE_KEY.fullmatch(k)}


def links(keys: Mapping[str, str]) -> set[int]:
    """The link (ring) numbers the nodelist gives addresses on: N of each `ringN_addr`."""
    return {int(m.group(1)) for node in node_entries(keys) for k in node for m in [re.fullmatch(r"ring(\d+)_addr", k)] if m}


def reload_status(keys: Mapping[str, str]) -> int | None:
    """None when the daemon was not reloaded since it started; else the last reload's cs_error_t (1 = CS_OK).

    `config.reload_status` appears with the first `corosync-cfgtool -R` (exec/cfg.c, 3.x). A failed
    reload (7 = CS_ERR_INVALID_PARAM, e.g. a node's address changed) has already removed the keys the
    new file deletes, so cmap no longer says what runs.
    """
    value = keys.get("config.reload_status")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


__all__ = [
    "CS_OK", "DERIVED", "Difference", "FILE_PREFIXES", "Keys", "RunningConfigUnavailable", "differences",
    "file_keys", "file_owned", "links", "node_entries", "parse_cmapctl", "parse_objctl", "read_command",
    "reload_status", "same_value", "without_nodes",
]
