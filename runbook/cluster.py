"""The cluster model: one YAML file (= the notebooks' papermill parameters) describes a cluster.

Everything is validated here, before any host is touched, and every problem is reported at once
with the field path and the offending value, so a user fixes the file in one go.
The model is immutable; `to_parameters()` gives back the flat, JSON-able mapping papermill records.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import yaml

from runbook.backups import Backups, parse_backups
from runbook.errors import ClusterFileError

PARAMETER_KEYS: tuple[str, ...] = (
    "cluster_name",
    "nodes",
    "generation",
    "transport",
    "crypto",
    "rrp_mode",
    "pacemaker_plugin",
    "totem",
    "logging",
    "ssh",
    "backups",
)
GENERATIONS: tuple[int, ...] = (1, 2, 3)
TRANSPORTS: tuple[str, ...] = ("auto", "udpu", "udp", "knet")
CRYPTO_MODES: tuple[str, ...] = ("auto", "on", "off")
RRP_MODES: tuple[str, ...] = ("none", "passive", "active")
MAX_NODEID = 2**32 - 1  # corosync node ids are unsigned 32-bit; 0 is reserved
KNET_MAX_NODEID = 65535  # knet host ids are 16-bit
MAX_NODES = 64  # a sanity cap of this runbook, far above real Corosync clusters
MAX_FILE_BYTES = 1024 * 1024
_U32 = 2**32 - 1
_MIN_TOKEN_RETRANSMIT_MS = 30  # corosync refuses token / (retransmits + 0.2) below this

_NODE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}", re.ASCII | re.IGNORECASE)
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_SSH_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", re.ASCII)
_UNSAFE_IN_CONF = re.compile(r"[\x00-\x1f\x7f{}]")
_SECRET_WORDS = ("password", "passphrase", "secret", "private_key", "authkey")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": not a node's address


@dataclass(frozen=True)
class Node:
    """One cluster member: its name, its address on the cluster network, its Corosync node id."""

    name: str
    address: str
    nodeid: int
    role: str | None = None

    @property
    def is_primary(self) -> bool:
        """The primary makes the authkey (chapter: `corosync-keygen` on the primary node)."""
        return self.role == "primary"


@dataclass(frozen=True)
class Totem:
    """Totem timings and port; the defaults are the chapter's values."""

    token: int = 5000
    token_retransmits_before_loss_const: int = 20
    join: int = 1000
    consensus: int = 7500
    max_messages: int = 20
    port: int = 5405


@dataclass(frozen=True)
class Logging:
    """Corosync logging; the defaults are the chapter's (syslog and stderr, no debug)."""

    to_syslog: bool = True
    to_stderr: bool = True
    to_logfile: bool = False
    logfile: str = "/var/log/corosync/corosync.log"
    debug: bool = False
    timestamp: bool = True


@dataclass(frozen=True)
class SshSettings:
    """How the controller reaches the nodes. Never holds a secret: sudo's password comes from env."""

    user: str | None = None  # None: ssh_config's User, else root
    port: int | None = None  # None: ssh_config's Port, else 22
    identity_file: str | None = None
    known_hosts: str | None = None
    config: str | None = None
    sudo: bool = False
    connect_timeout: float = 10
    trust_unknown_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    """A validated cluster. `generation` None means auto (detected on the nodes later).

    `source` (where it was loaded from) is not part of equality: the same settings are the same
    cluster wherever they came from.
    """

    name: str
    nodes: tuple[Node, ...]
    generation: int | None = None
    transport: str = "auto"
    crypto: str = "auto"
    rrp_mode: str = "passive"
    pacemaker_plugin: bool = True
    totem: Totem = Totem()
    logging: Logging = Logging()
    ssh: SshSettings = SshSettings()
    backups: Backups = Backups()
    source: str | None = field(default=None, compare=False)

    @property
    def primary(self) -> Node:
        """The node that generates the authkey."""
        for node in self.nodes:
            if node.is_primary:
                return node
        return self.nodes[0]

    def node(self, name: str) -> Node:
        """The node called `name` (case-insensitive, as hostnames are)."""
        wanted = name.lower() if isinstance(name, str) else name
        for node in self.nodes:
            if node.name.lower() == wanted:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise ClusterFileError(f"node {_show(name)} is not in this cluster; known nodes: {known}", self.source)

    def transport_for(self, generation: int) -> str:
        """The transport actually written for `generation` ('auto': udpu on 1 and 2, knet on 3)."""
        self._check_generation(generation)
        if self.transport != "auto":
            return self.transport
        return "knet" if generation >= 3 else "udpu"

    def crypto_for(self, generation: int) -> bool:
        """Whether traffic is encrypted on `generation` ('auto': off on 1, on on 2, on 3 only with knet)."""
        self._check_generation(generation)
        if self.crypto != "auto":
            return self.crypto == "on"
        if generation == 1:
            return False  # the chapter's `secauth: off`
        if generation == 2:
            return True
        return self.transport_for(generation) == "knet"

    def with_generation(self, generation: int) -> Cluster:
        """The same cluster with its generation fixed (e.g. once detected), fully re-validated."""
        params = self.to_parameters()
        params["generation"] = generation
        return cluster_from_mapping(params, self.source)

    def to_parameters(self) -> dict[str, Any]:
        """The flat JSON-able mapping (same keys as the YAML file), e.g. for papermill."""
        ssh = asdict(self.ssh)
        ssh["trust_unknown_hosts"] = list(self.ssh.trust_unknown_hosts)
        return {
            "cluster_name": self.name,
            "nodes": [
                {"name": n.name, "address": n.address, "nodeid": n.nodeid, "role": n.role} for n in self.nodes
            ],
            "generation": "auto" if self.generation is None else self.generation,
            "transport": self.transport,
            "crypto": self.crypto,
            "rrp_mode": self.rrp_mode,
            "pacemaker_plugin": self.pacemaker_plugin,
            "totem": asdict(self.totem),
            "logging": asdict(self.logging),
            "ssh": ssh,
            "backups": self.backups.to_parameters(),
        }

    def _check_generation(self, generation: int) -> None:
        if isinstance(generation, bool) or generation not in GENERATIONS:
            raise ClusterFileError(f"generation: {_show(generation)} is not one of 1, 2, 3", self.source)
        problems = _generation_problems(self.nodes, self.transport, self.crypto, generation)
        if problems:
            raise ClusterFileError(problems, self.source)


# --- loading -------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (no alias bombs, no hidden sharing) and duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in a cluster file; write the values out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _HugeInt(int):
    """An integer too long for Python to convert (over 4300 digits): kept as a stand-in of the right
    sign, far outside every range, so validation names the field instead of YAML failing as a whole."""

    def __new__(cls, digits: int, negative: bool) -> _HugeInt:
        value = super().__new__(cls, -(10**30) if negative else 10**30)
        value.digits = digits  # type: ignore[attr-defined]
        return value

    def __repr__(self) -> str:
        return f"<{'a negative ' if self < 0 else 'an '}integer of {self.digits} digits>"  # type: ignore[attr-defined]

    __str__ = __repr__


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        text = str(node.value)
        return _HugeInt(sum(c.isdigit() for c in text), text.lstrip().startswith("-"))


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_cluster(path: str | os.PathLike[str]) -> Cluster:
    """Read, parse and validate a cluster file; every failure is a ClusterFileError naming the path."""
    source = os.fspath(path)
    if os.path.isdir(source):
        raise ClusterFileError("is a directory, not a cluster file", source)
    try:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ClusterFileError("no such file", source) from None
    except PermissionError:
        raise ClusterFileError("cannot read it: permission denied", source) from None
    except OSError as error:
        raise ClusterFileError(f"cannot read it: {error.strerror or error}", source) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ClusterFileError(f"is larger than {MAX_FILE_BYTES} bytes; a cluster file is small", source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ClusterFileError(f"is not UTF-8 text (bad byte at offset {error.start})", source) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ClusterFileError(f"invalid YAML{where}: {error.problem or error.context}", source) from None
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise ClusterFileError(f"invalid YAML: {type(error).__name__}: {_clip(str(error))}", source) from None
    if data is None:
        raise ClusterFileError("is empty; expected a mapping with at least cluster_name and nodes", source)
    return cluster_from_mapping(data, source)


# --- validation ----------------------------------------------------------------------------------


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """A short, safe rendering of any value for a message (huge ints and deep nesting included)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__} too large to show>"
    return _clip(text)


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else _show(key)


class _Problems:
    """Collects messages of the form `path: value problem` so all are reported at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.messages.append(f"{path}: {message}")

    def bad(self, path: str, value: Any, problem: str) -> None:
        self.add(path, f"{_show(value)} {problem}")

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


def cluster_from_mapping(data: Mapping[str, Any], source: str | None = None) -> Cluster:
    """Validate a cluster mapping (YAML file or papermill parameters) into a Cluster.

    All problems are collected into one ClusterFileError; any input, however hostile, ends either
    in a Cluster or in that error.
    """
    if not isinstance(data, Mapping):
        raise ClusterFileError(
            f"the cluster file must be a mapping with keys {', '.join(PARAMETER_KEYS)}; "
            f"got {type(data).__name__} {_show(data)}",
            source,
        )
    p = _Problems()
    p.unknown_keys("", data, PARAMETER_KEYS)

    name = _cluster_name(p, data)
    nodes = _nodes(p, data.get("nodes"), "nodes" in data)
    generation = _generation(p, data.get("generation"))
    transport = _or_default(p.choice, "transport", data.get("transport"), TRANSPORTS, "auto")
    crypto = _crypto(p, data.get("crypto"))
    rrp_mode = _or_default(p.choice, "rrp_mode", data.get("rrp_mode"), RRP_MODES, "passive")
    plugin = data.get("pacemaker_plugin")
    pacemaker_plugin = True if plugin is None else p.boolean("pacemaker_plugin", plugin)
    totem = _totem(p, data.get("totem"))
    logging = _logging(p, data.get("logging"))
    ssh = _ssh(p, data.get("ssh"), nodes or ())
    backups, backup_problems = parse_backups(data.get("backups"))
    p.messages.extend(backup_problems)

    if generation is not None and transport is not None and crypto is not None:
        p.messages.extend(_generation_problems(nodes or (), transport, crypto, generation))
    if p.messages:
        raise ClusterFileError(p.messages, source)
    assert name is not None and nodes is not None and transport is not None and crypto is not None
    assert rrp_mode is not None and pacemaker_plugin is not None
    assert totem is not None and logging is not None and ssh is not None
    return Cluster(
        name=name, nodes=nodes, generation=generation, transport=transport, crypto=crypto,
        rrp_mode=rrp_mode, pacemaker_plugin=pacemaker_plugin, totem=totem, logging=logging, ssh=ssh,
        backups=backups or Backups(), source=source,
    )


def _or_default(check: Any, path: str, value: Any, choices: tuple[str, ...], default: str) -> str | None:
    return default if value is None else check(path, value, choices)


def _cluster_name(p: _Problems, data: Mapping[str, Any]) -> str | None:
    if "cluster_name" not in data or data["cluster_name"] is None:
        p.add("cluster_name", "missing; give a name such as 'chapter' (letters, digits, _ and -, 1-64 chars)")
        return None
    value = data["cluster_name"]
    if not isinstance(value, str) or not _CLUSTER_NAME.fullmatch(value):
        p.bad("cluster_name", value, "is not a cluster name (letters, digits, _ and -, 1-64 chars)")
        return None
    return value


def _generation(p: _Problems, value: Any) -> int | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, str) and value in ("1", "2", "3"):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in GENERATIONS:
        return value
    p.bad("generation", value, "is not one of auto, 1, 2, 3")
    return None


def _crypto(p: _Problems, value: Any) -> str | None:
    if value is None:
        return "auto"
    if isinstance(value, bool):  # YAML 1.1 reads a bare `on`/`off` as a boolean
        return "on" if value else "off"
    return p.choice("crypto", value, CRYPTO_MODES)


def _nodes(p: _Problems, value: Any, present: bool) -> tuple[Node, ...] | None:
    if not present or value is None:
        p.add("nodes", "missing; a cluster needs at least 2 nodes")
        return None
    if not isinstance(value, (list, tuple)):
        p.bad("nodes", value, "is not a list of nodes")
        return None
    if len(value) < 2:
        p.add("nodes", f"a cluster needs at least 2 nodes, got {len(value)}")
        return None
    if len(value) > MAX_NODES:
        p.add("nodes", f"{len(value)} nodes is more than this runbook supports (at most {MAX_NODES})")
        return None
    before = len(p.messages)
    parsed = [_node(p, index, item) for index, item in enumerate(value)]
    _check_unique(p, parsed)
    roles = [i for i, n in enumerate(parsed) if n and n.get("role") == "primary"]
    for extra in roles[1:]:
        p.add(f"nodes[{extra}].role", f"'primary' is also nodes[{roles[0]}].role; exactly one node makes the authkey")
    if len(p.messages) > before:
        return None
    primary = roles[0] if roles else 0
    return tuple(
        Node(name=n["name"], address=n["address"], nodeid=n["nodeid"], role="primary" if i == primary else None)
        for i, n in enumerate(parsed)
        if n is not None  # always true here: a non-mapping node added a problem
    )


def _node(p: _Problems, index: int, item: Any) -> dict[str, Any] | None:
    path = f"nodes[{index}]"
    fields = ("name", "address", "nodeid", "role")
    if not isinstance(item, Mapping):
        p.bad(path, item, "is not a mapping with name and address")
        return None
    p.unknown_keys(path, item, fields)
    node: dict[str, Any] = {}
    name = item.get("name")
    if name is None:
        p.add(f"{path}.name", "missing; give the node's hostname")
    elif not isinstance(name, str) or not _NODE_NAME.fullmatch(name):
        p.bad(f"{path}.name", name, "is not a hostname (a-z, 0-9 and -, starting with a letter or digit, 1-63 chars)")
    else:
        node["name"] = name
    address = item.get("address")
    if address is None:
        p.add(f"{path}.address", "missing; give the node's IPv4 or IPv6 address on the cluster network")
    else:
        canonical = _address(p, f"{path}.address", address)
        if canonical is not None:
            node["address"] = canonical
    nodeid = item.get("nodeid")
    if nodeid is None:
        node["nodeid"] = index + 1
        node["nodeid_default"] = True
    elif isinstance(nodeid, int) and not isinstance(nodeid, bool) and nodeid == 0:
        p.bad(f"{path}.nodeid", nodeid, f"is reserved; use 1..{MAX_NODEID}")
    else:
        checked = p.integer(f"{path}.nodeid", nodeid, 1, MAX_NODEID, f"is out of range; use 1..{MAX_NODEID}")
        if checked is not None:
            node["nodeid"] = checked
    role = item.get("role")
    if role is not None and role != "primary":
        p.bad(f"{path}.role", role, "is not 'primary' or null (only the primary's role is written)")
    node["role"] = role
    return node


def _address(p: _Problems, path: str, value: Any) -> str | None:
    if not isinstance(value, str):
        p.bad(path, value, "is not an IPv4 or IPv6 address")
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        p.bad(path, value, "is not an IPv4 or IPv6 address")
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        p.bad(path, value, "has a zone index (%...), which corosync.conf cannot carry")
    elif address.is_loopback:
        p.bad(path, value, "is a loopback address; use the node's address on the cluster network")
    elif address.is_unspecified:
        p.bad(path, value, "is the unspecified address; use the node's address on the cluster network")
    elif address.is_multicast:
        p.bad(path, value, "is a multicast address; use the node's own unicast address")
    elif isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        p.bad(path, value, f"is an IPv4-mapped IPv6 address; write the IPv4 address {address.ipv4_mapped}")
    elif address.is_reserved or address in _THIS_NETWORK:
        p.bad(path, value, "is a reserved address (broadcast, 0.0.0.0/8, 240.0.0.0/4, ...) that no node can use")
    else:
        return str(address)
    return None


def _check_unique(p: _Problems, nodes: list[dict[str, Any] | None]) -> None:
    """Names (case-insensitive), addresses and node ids must differ; one address family per ring."""
    seen: dict[str, dict[Any, int]] = {"name": {}, "address": {}, "nodeid": {}}
    family_of_first: tuple[int, int] | None = None
    for index, node in enumerate(nodes):
        if node is None:
            continue
        for key, table in seen.items():
            if key not in node:
                continue
            marker = node[key].lower() if key == "name" else node[key]
            if marker in table:
                note = " (the default: position + 1; set nodeid explicitly)" if node.get(f"{key}_default") else ""
                note = note or (" (names are case-insensitive)" if key == "name" else "")
                p.bad(f"nodes[{index}].{key}", node[key], f"is also nodes[{table[marker]}].{key}{note}")
            else:
                table[marker] = index
        if "address" in node:
            version = ipaddress.ip_address(node["address"]).version
            if family_of_first is None:
                family_of_first = (index, version)
            elif version != family_of_first[1]:
                p.bad(
                    f"nodes[{index}].address", node["address"],
                    f"is IPv{version} but nodes[{family_of_first[0]}].address is IPv{family_of_first[1]}; "
                    "one ring needs one address family",
                )


def _totem(p: _Problems, value: Any) -> Totem | None:
    allowed = tuple(Totem.__dataclass_fields__)
    section = p.section("totem", value, allowed)
    defaults = asdict(Totem())
    result: dict[str, int] = {}
    ok = True
    for key, default in defaults.items():
        raw = section.get(key)
        if raw is None:
            result[key] = default
            continue
        if key == "port":
            checked = p.integer("totem.port", raw, 1, 65535, "is not a UDP port (1..65535)")
        elif key in ("max_messages", "token_retransmits_before_loss_const"):
            checked = p.integer(f"totem.{key}", raw, 1, _U32, f"must be a positive count (1..{_U32})")
        else:
            checked = p.integer(f"totem.{key}", raw, 1, _U32, f"must be a positive number of milliseconds (1..{_U32})")
        if checked is None:
            ok = False
        else:
            result[key] = checked
    if "token" in result and "consensus" in result:
        token, consensus = result["token"], result["consensus"]
        if consensus * 5 < token * 6:
            minimum = token * 6 / 5
            shown = int(minimum) if minimum == int(minimum) else round(minimum, 1)
            p.bad("totem.consensus", consensus, f"is below 1.2 x totem.token ({shown})")
            ok = False
    if "token" in result and "token_retransmits_before_loss_const" in result:
        retransmit = result["token"] / (result["token_retransmits_before_loss_const"] + 0.2)
        if retransmit < _MIN_TOKEN_RETRANSMIT_MS:
            p.bad(
                "totem.token", result["token"],
                f"is too short for totem.token_retransmits_before_loss_const "
                f"{result['token_retransmits_before_loss_const']}: token / (retransmits + 0.2) = "
                f"{retransmit:.1f} ms, below Corosync's minimum of {_MIN_TOKEN_RETRANSMIT_MS} ms",
            )
            ok = False
    return Totem(**result) if ok else None


def _logging(p: _Problems, value: Any) -> Logging | None:
    allowed = tuple(Logging.__dataclass_fields__)
    section = p.section("logging", value, allowed)
    result: dict[str, Any] = asdict(Logging())
    ok = True
    for key in allowed:
        raw = section.get(key)
        if raw is None:
            continue
        if key == "logfile":
            if not isinstance(raw, str) or not raw.startswith("/") or _UNSAFE_IN_CONF.search(raw):
                p.bad("logging.logfile", raw, "is not an absolute path (no control characters or braces)")
                ok = False
            else:
                result[key] = raw
        elif p.boolean(f"logging.{key}", raw) is None:
            ok = False
        else:
            result[key] = raw
    return Logging(**result) if ok else None


def _ssh(p: _Problems, value: Any, nodes: tuple[Node, ...]) -> SshSettings | None:
    allowed = tuple(SshSettings.__dataclass_fields__)
    section = p.section("ssh", value, allowed)
    result: dict[str, Any] = asdict(SshSettings())
    before = len(p.messages)
    user = section.get("user")
    if user is not None:
        if isinstance(user, str) and _SSH_USER.fullmatch(user):
            result["user"] = user
        else:
            p.bad("ssh.user", user, "is not a user name")
    if section.get("port") is not None:
        result["port"] = p.integer("ssh.port", section["port"], 1, 65535, "is not a TCP port (1..65535)")
    for key in ("identity_file", "known_hosts", "config"):
        raw = section.get(key)
        if raw is None:
            continue
        if isinstance(raw, str) and raw.strip() and not re.search(r"[\x00-\x1f]", raw):
            result[key] = raw
        else:
            p.bad(f"ssh.{key}", raw, "is not a file path (or null)")
    if section.get("sudo") is not None:
        result["sudo"] = p.boolean("ssh.sudo", section["sudo"])
    timeout = section.get("connect_timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
            p.bad("ssh.connect_timeout", timeout, "is not a number of seconds in (0, 600]")
        else:
            result["connect_timeout"] = timeout
    trusted = section.get("trust_unknown_hosts")
    if trusted is not None:
        result["trust_unknown_hosts"] = _trusted(p, trusted, nodes)
    if len(p.messages) > before:
        return None
    return SshSettings(**result)


def _trusted(p: _Problems, value: Any, nodes: tuple[Node, ...]) -> tuple[str, ...]:
    """Node names whose unknown host key may be accepted: an explicit opt-in, so names must exist."""
    if not isinstance(value, (list, tuple)):
        p.bad("ssh.trust_unknown_hosts", value, "is not a list of node names")
        return ()
    known = {n.name.lower(): n.name for n in nodes}
    names = []
    for index, item in enumerate(value):
        path = f"ssh.trust_unknown_hosts[{index}]"
        if not isinstance(item, str):
            p.bad(path, item, "is not a node name")
        elif nodes and item.lower() not in known:
            p.bad(path, item, f"is not a node of this cluster; known: {', '.join(known.values())}")
        else:
            names.append(known.get(item.lower(), item))
    return tuple(names)


def _generation_problems(nodes: tuple[Node, ...], transport: str, crypto: str, generation: int) -> list[str]:
    """Rules that depend on the Corosync generation, checked once it is known (file or detection)."""
    problems = []
    if transport == "knet" and generation < 3:
        problems.append(f"transport: 'knet' needs Corosync 3, not {generation}.x; use udpu (or auto)")
    if transport == "udp" and generation == 1:
        problems.append(
            "transport: 'udp' (multicast) on Corosync 1.x needs a multicast address, which this runbook "
            "does not write; use udpu (or auto), as the chapter does"
        )
    if generation >= 3 and crypto == "on" and transport in ("udpu", "udp"):
        problems.append(
            f"crypto: 'on' with transport {transport!r}: Corosync 3 cannot encrypt udpu/udp; "
            "use transport: knet (or auto) to encrypt, or crypto: off"
        )
    if generation >= 3 and transport in ("knet", "auto"):
        for index, node in enumerate(nodes):
            if node.nodeid > KNET_MAX_NODEID:
                problems.append(
                    f"nodes[{index}].nodeid: {node.nodeid} is above {KNET_MAX_NODEID}, the highest node id knet allows"
                )
    return problems
