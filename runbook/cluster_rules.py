"""Validation: a cluster mapping (YAML file or papermill parameters) -> Cluster, or every problem at once.

Each problem reads `field.path: value problem`, so a user fixes the file in one go; any input, however
hostile, ends either in a Cluster or in one ClusterFileError (exit 2). `to_parameters` is the way back.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import asdict, fields
from typing import Any, Mapping

from runbook.cluster_model import (
    CIPHERS,
    CRYPTO_MODELS,
    CRYPTO_MODES,
    GENERATIONS,
    HASHES,
    IP_VERSIONS,
    KNET_MAX_NODEID,
    KNET_TRANSPORTS,
    MAX_LINKS,
    MAX_NODEID,
    MAX_NODES,
    RRP_MODES,
    TRANSPORTS,
    Cluster,
    Extra,
    Link,
    Logging,
    NetDevice,
    Node,
    Quorum,
    QuorumDevice,
    SshSettings,
    Totem,
    extra_to_yaml,
)
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
    "links",
    "quorum",
    "extra",
    "legacy_1x",
    "name_in_conf",
    "nodelist",
    "ssh",
)
_U32 = 2**32 - 1
_MIN_TOKEN_RETRANSMIT_MS = 30  # corosync refuses a token, and token / (retransmits + 0.2), below this
_DEFAULT_RETRANSMITS = 4  # token_retransmits_before_loss_const when the file sets none (every generation)
_MAX_EXTRA_DEPTH = 8

_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", re.ASCII)
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?",
    re.ASCII,
)
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_SSH_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", re.ASCII)
_EXTRA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
_UNSAFE_IN_CONF = re.compile(r"[\x00-\x1f\x7f{}]")
_SECRET_WORDS = ("password", "passphrase", "secret", "private_key", "authkey")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": not a node's address

# Keys a section's `extra` may not hold, because the model holds them (or the runbook writes them).
_TOTEM_OWN = ("version", "cluster_name", "transport", "rrp_mode", "link_mode", "interface", "port")
_LINK_OWN = ("ringnumber", "linknumber", "member", "number")
_NODE_OWN = ("name", "nodeid", "quorum_votes", *(f"ring{i}_addr" for i in range(8)))
_TOP_OWN = ("totem", "nodelist", "quorum", "logging")


# --- messages ------------------------------------------------------------------------------------


def clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show(value: Any) -> str:
    """A short, safe rendering of any value for a message (huge ints and deep nesting included)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__} too large to show>"
    return clip(text)


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else show(key)


def _names(cls: Any, *drop: str) -> tuple[str, ...]:
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
        if isinstance(value, bool) or not isinstance(value, (str, int)) or _UNSAFE_IN_CONF.search(str(value)):
            self.bad(path, value, f"is not {what} (one line, no braces)")
            return None
        return str(value)


# --- the whole file -------------------------------------------------------------------------------


def cluster_from_mapping(data: Mapping[str, Any], source: str | None = None) -> Cluster:
    """Validate a cluster mapping (YAML file or papermill parameters) into a Cluster.

    All problems are collected into one ClusterFileError; any input, however hostile, ends either
    in a Cluster or in that error.
    """
    if not isinstance(data, Mapping):
        raise ClusterFileError(
            f"the cluster file must be a mapping with keys {', '.join(PARAMETER_KEYS)}; "
            f"got {type(data).__name__} {show(data)}",
            source,
        )
    p = Problems()
    p.unknown_keys("", data, PARAMETER_KEYS)

    name = _cluster_name(p, data)
    nodes = _nodes(p, data.get("nodes"), "nodes" in data)
    generation = _generation(p, data.get("generation"))
    transport = _or_default(p.choice, "transport", data.get("transport"), TRANSPORTS, "auto")
    crypto = _crypto(p, data.get("crypto"))
    rrp_mode = None if data.get("rrp_mode") is None else p.choice("rrp_mode", data["rrp_mode"], RRP_MODES)
    plugin = data.get("pacemaker_plugin")
    pacemaker_plugin = False if plugin is None else p.boolean("pacemaker_plugin", plugin)
    totem = _totem(p, data.get("totem"))
    logging = _logging(p, data.get("logging"))
    ssh = _ssh(p, data.get("ssh"), nodes or ())
    links = _links(p, data.get("links"), nodes or ())
    quorum = _quorum(p, data.get("quorum"))
    extra = _extra(p, "extra", data.get("extra"), _TOP_OWN)
    legacy = _legacy(p, data.get("legacy_1x"))
    flags = {}
    for key in ("name_in_conf", "nodelist"):
        flags[key] = True if data.get(key) is None else p.boolean(key, data[key])
    if totem is not None and totem.port is not None and links and links[0].number == 0 and links[0].mcastport is not None:
        p.add("totem.port", "is also links[0].mcastport; keep one (totem.port is the older name)")

    if p.messages:
        raise ClusterFileError(p.messages, source)
    assert name is not None and nodes is not None and transport is not None and crypto is not None
    assert pacemaker_plugin is not None and totem is not None and logging is not None and ssh is not None
    assert links is not None and quorum is not None and extra is not None and legacy is not None
    cluster = Cluster(
        name=name, nodes=nodes, generation=generation, transport=transport, crypto=crypto,
        rrp_mode=rrp_mode, pacemaker_plugin=pacemaker_plugin, totem=totem, logging=logging, ssh=ssh,
        links=links, quorum=quorum, extra=extra, legacy_1x=legacy,
        name_in_conf=bool(flags["name_in_conf"]), nodelist=bool(flags["nodelist"]), source=source,
    )
    problems = _cluster_problems(cluster)
    if generation is not None:
        problems += generation_problems(cluster, generation)
    if problems:
        raise ClusterFileError(problems, source)
    return cluster


def _or_default(check: Any, path: str, value: Any, choices: tuple[str, ...], default: str) -> str | None:
    return default if value is None else check(path, value, choices)


def _cluster_name(p: Problems, data: Mapping[str, Any]) -> str | None:
    if "cluster_name" not in data or data["cluster_name"] is None:
        p.add("cluster_name", "missing; give a name such as 'chapter' (letters, digits, _ and -, 1-64 chars)")
        return None
    value = data["cluster_name"]
    if not isinstance(value, str) or not _CLUSTER_NAME.fullmatch(value):
        p.bad("cluster_name", value, "is not a cluster name (letters, digits, _ and -, 1-64 chars)")
        return None
    return value


def _generation(p: Problems, value: Any) -> int | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, str) and value in ("1", "2", "3"):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in GENERATIONS:
        return value
    p.bad("generation", value, "is not one of auto, 1, 2, 3")
    return None


def _crypto(p: Problems, value: Any) -> str | None:
    if value is None:
        return "auto"
    if isinstance(value, bool):  # YAML 1.1 reads a bare `on`/`off` as a boolean
        return "on" if value else "off"
    return p.choice("crypto", value, CRYPTO_MODES)


# --- nodes ---------------------------------------------------------------------------------------


def _nodes(p: Problems, value: Any, present: bool) -> tuple[Node, ...] | None:
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
        Node(
            name=n["name"], address=n["addresses"][0], nodeid=n["nodeid"],
            role="primary" if i == primary else None, addresses=tuple(n["addresses"]), named=n["named"],
            quorum_votes=n.get("quorum_votes"), extra=n.get("extra", ()), listed=bool(n.get("listed", True)),
        )
        for i, n in enumerate(parsed)
        if n is not None  # always true here: a non-mapping node added a problem
    )


def _node(p: Problems, index: int, item: Any) -> dict[str, Any] | None:
    path = f"nodes[{index}]"
    allowed = ("name", "address", "addresses", "nodeid", "role", "quorum_votes", "extra", "listed")
    if not isinstance(item, Mapping):
        p.bad(path, item, "is not a mapping with name and address")
        return None
    p.unknown_keys(path, item, allowed)
    node: dict[str, Any] = {}
    raw = item.get("addresses")
    if item.get("address") is not None and raw is not None:
        p.add(f"{path}.addresses", "is given with address too; give addresses (one per link) only")
    elif raw is not None:
        if not isinstance(raw, (list, tuple)) or not 1 <= len(raw) <= 8:
            p.bad(f"{path}.addresses", raw, "is not a list of 1 to 8 addresses (one per link)")
        else:
            checked = [_address(p, f"{path}.addresses[{i}]", a) for i, a in enumerate(raw)]
            if all(c is not None for c in checked):
                node["addresses"] = checked
    elif item.get("address") is None:
        p.add(f"{path}.address", "missing; give the node's address on the cluster network (IPv4, IPv6 or a hostname)")
    else:
        canonical = _address(p, f"{path}.address", item["address"])
        if canonical is not None:
            node["addresses"] = [canonical]
    name = item.get("name")
    if name is None:
        node["named"] = False  # corosync.conf names no node: the runbook calls it by its address
        if "addresses" in node:
            node["name"] = node["addresses"][0]
    elif not isinstance(name, str) or not _NODE_NAME.fullmatch(name) or ".." in name or name.endswith(("-", ".")):
        p.bad(f"{path}.name", name, "is not a hostname (letters, digits, - and ., starting with a letter or digit)")
    else:
        node["name"], node["named"] = name, True
    if "nodeid" not in item:
        node["nodeid"] = index + 1
        node["nodeid_default"] = True
    elif item["nodeid"] is None:
        node["nodeid"] = None  # written nowhere: Corosync derives it (2.x, IPv4)
    elif isinstance(item["nodeid"], int) and not isinstance(item["nodeid"], bool) and item["nodeid"] == 0:
        p.bad(f"{path}.nodeid", item["nodeid"], f"is reserved; use 1..{MAX_NODEID}")
    else:
        checked = p.integer(f"{path}.nodeid", item["nodeid"], 1, MAX_NODEID, f"is out of range; use 1..{MAX_NODEID}")
        if checked is not None:
            node["nodeid"] = checked
    role = item.get("role")
    if role is not None and role != "primary":
        p.bad(f"{path}.role", role, "is not 'primary' or null (only the primary's role is written)")
    node["role"] = role
    if item.get("quorum_votes") is not None:
        node["quorum_votes"] = p.integer(f"{path}.quorum_votes", item["quorum_votes"], 0, _U32)
    node["extra"] = _extra(p, f"{path}.extra", item.get("extra"), _NODE_OWN)
    node["listed"] = True if item.get("listed") is None else p.boolean(f"{path}.listed", item["listed"])
    return node


def _address(p: Problems, path: str, value: Any) -> str | None:
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


def _check_unique(p: Problems, nodes: list[dict[str, Any] | None]) -> None:
    """Names (case-insensitive), node ids and each link's addresses differ; one family per link;
    every node has an address on every link; loopback only when a whole link is on this machine."""
    names: dict[str, int] = {}
    ids: dict[int, int] = {}
    for index, node in enumerate(nodes):
        if node is None:
            continue
        if "name" in node and node.get("named"):
            marker = node["name"].lower()
            if marker in names:
                p.bad(f"nodes[{index}].name", node["name"], f"is also nodes[{names[marker]}].name (names are case-insensitive)")
            else:
                names[marker] = index
        nodeid = node.get("nodeid")
        if isinstance(nodeid, int):
            if nodeid in ids:
                note = " (the default: position + 1; set nodeid explicitly)" if node.get("nodeid_default") else ""
                p.bad(f"nodes[{index}].nodeid", nodeid, f"is also nodes[{ids[nodeid]}].nodeid{note}")
            else:
                ids[nodeid] = index
    with_addresses = [(i, n) for i, n in enumerate(nodes) if n is not None and "addresses" in n]
    if not with_addresses:
        return
    for link in range(max(len(n["addresses"]) for _, n in with_addresses)):
        on_link = [(i, n) for i, n in with_addresses if len(n["addresses"]) > link]
        seen: dict[str, int] = {}
        family: tuple[int, int] | None = None
        loopback = [i for i, n in on_link if _is_loopback(n["addresses"][link])]
        for index, node in on_link:
            address = node["addresses"][link]
            field_path = f"nodes[{index}].address" if len(node["addresses"]) == 1 else f"nodes[{index}].addresses[{link}]"
            if address.lower() in seen:
                other = seen[address.lower()]
                p.bad(field_path, address, f"is also nodes[{other}]'s address on link {link}" if link
                      else f"is also nodes[{other}].address")
                continue
            seen[address.lower()] = index
            if loopback and len(loopback) < len(on_link) and index in loopback:
                p.bad(field_path, address, "is a loopback address; use the node's address on the cluster network")
                continue
            version = _ip_version(address)
            if version is None:
                continue
            if family is None:
                family = (index, version)
            elif version != family[1]:
                p.bad(field_path, address, f"is IPv{version} but nodes[{family[0]}].address is IPv{family[1]}; "
                      "one link needs one address family")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address.lower() == "localhost"


def _ip_version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


# --- links ---------------------------------------------------------------------------------------


def _links(p: Problems, value: Any, nodes: tuple[Node, ...]) -> tuple[Link, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or len(value) > 8:
        p.bad("links", value, "is not a list of at most 8 links (each the options of one interface { })")
        return None
    allowed = _names(Link)
    result: list[Link] = []
    numbers: dict[int, int] = {}
    before = len(p.messages)
    for index, item in enumerate(value):
        path = f"links[{index}]"
        if not isinstance(item, Mapping):
            p.bad(path, item, "is not a mapping of link options (number, mcastport, knet_link_priority, ...)")
            continue
        p.unknown_keys(path, item, allowed)
        got: dict[str, Any] = {}
        number = item.get("number", index)
        got["number"] = p.integer(f"{path}.number", number, 0, 7, "is not a link number (0..7)")
        if got["number"] is not None:
            if got["number"] in numbers:
                p.bad(f"{path}.number", number, f"is also links[{numbers[got['number']]}].number")
            numbers[got["number"]] = index
        ints = {"mcastport": (1, 65535), "ttl": (0, 255), "knet_link_priority": (0, 255),
                "knet_ping_interval": (0, _U32), "knet_ping_timeout": (0, _U32),
                "knet_ping_precision": (0, _U32), "knet_pong_count": (0, _U32)}
        for key, (low, high) in ints.items():
            if item.get(key) is not None:
                got[key] = p.integer(f"{path}.{key}", item[key], low, high)
        for key in ("mcastaddr", "bindnetaddr"):
            if item.get(key) is not None:
                got[key] = _ip_text(p, f"{path}.{key}", item[key])
        if item.get("broadcast") is not None:
            got["broadcast"] = p.boolean(f"{path}.broadcast", item["broadcast"])
        if item.get("knet_transport") is not None:
            got["knet_transport"] = p.choice(f"{path}.knet_transport", item["knet_transport"], KNET_TRANSPORTS)
        got["extra"] = _extra(p, f"{path}.extra", item.get("extra"), _LINK_OWN + allowed)
        if len(p.messages) == before:
            result.append(Link(**got))
    if len(p.messages) > before:
        return None
    return tuple(result)


def _ip_text(p: Problems, path: str, value: Any) -> str | None:
    text = value.strip() if isinstance(value, str) else value
    try:
        return str(ipaddress.ip_address(text))
    except (ValueError, TypeError):
        p.bad(path, value, "is not an IPv4 or IPv6 address")
        return None


# --- totem, logging, quorum ----------------------------------------------------------------------


def _totem(p: Problems, value: Any) -> Totem | None:
    allowed = _names(Totem)
    section = p.section("totem", value, allowed)
    result: dict[str, Any] = {}
    before = len(p.messages)
    for key in ("token", "join", "consensus"):
        if section.get(key) is not None:
            result[key] = p.integer(f"totem.{key}", section[key], 1, _U32,
                                    f"must be a positive number of milliseconds (1..{_U32})")
    for key in ("max_messages", "token_retransmits_before_loss_const"):
        if section.get(key) is not None:
            result[key] = p.integer(f"totem.{key}", section[key], 1, _U32, f"must be a positive count (1..{_U32})")
    if section.get("port") is not None:
        result["port"] = p.integer("totem.port", section["port"], 1, 65535, "is not a UDP port (1..65535)")
    for key, choices in (("crypto_cipher", CIPHERS), ("crypto_hash", HASHES), ("crypto_model", CRYPTO_MODELS),
                         ("ip_version", IP_VERSIONS)):
        if section.get(key) is not None:
            result[key] = p.choice(f"totem.{key}", section[key], choices)
    if section.get("secauth") is not None:
        result["secauth"] = p.boolean("totem.secauth", section["secauth"])
    result["extra"] = _extra(p, "totem.extra", section.get("extra"), _TOTEM_OWN + allowed)
    token, consensus = result.get("token"), result.get("consensus")  # None where unset or already refused
    if token is not None and consensus is not None:
        if consensus * 5 < token * 6:
            minimum = token * 6 / 5
            shown = int(minimum) if minimum == int(minimum) else round(minimum, 1)
            p.bad("totem.consensus", consensus, f"is below 1.2 x totem.token ({shown})")
    retransmits = result.get("token_retransmits_before_loss_const")
    if token is not None and token < _MIN_TOKEN_RETRANSMIT_MS:
        p.bad("totem.token", token, f"is below Corosync's minimum of {_MIN_TOKEN_RETRANSMIT_MS} ms; raise it (Corosync refuses to start)")
    elif token is not None:
        counted = retransmits if retransmits is not None else _DEFAULT_RETRANSMITS
        retransmit = token / (counted + 0.2)
        if retransmit < _MIN_TOKEN_RETRANSMIT_MS:
            which = (f"totem.token_retransmits_before_loss_const {retransmits}" if retransmits is not None
                     else f"Corosync's default of {_DEFAULT_RETRANSMITS} token retransmits")
            p.bad(
                "totem.token", token,
                f"is too short for {which}: token / (retransmits + 0.2) = "
                f"{retransmit:.1f} ms, below Corosync's minimum of {_MIN_TOKEN_RETRANSMIT_MS} ms",
            )
    if len(p.messages) > before:
        return None
    return Totem(**result)


def _logging(p: Problems, value: Any) -> Logging | None:
    allowed = _names(Logging)
    section = p.section("logging", value, allowed)
    result: dict[str, Any] = {}
    before = len(p.messages)
    for key in ("to_syslog", "to_stderr", "to_logfile"):
        if section.get(key) is not None:
            result[key] = p.boolean(f"logging.{key}", section[key])
    for key, word in (("debug", "trace"), ("timestamp", "hires")):
        raw = section.get(key)
        if raw is not None and raw != word:
            result[key] = p.boolean(f"logging.{key}", raw) if isinstance(raw, bool) else None
            if not isinstance(raw, bool):
                p.bad(f"logging.{key}", raw, f"is not true or false (or '{word}')")
        elif raw is not None:
            result[key] = raw
    raw = section.get("logfile")
    if raw is not None:
        if not isinstance(raw, str) or not raw.startswith("/") or _UNSAFE_IN_CONF.search(raw):
            p.bad("logging.logfile", raw, "is not an absolute path (no control characters or braces)")
        else:
            result["logfile"] = raw
    result["extra"] = _extra(p, "logging.extra", section.get("extra"), allowed)
    return None if len(p.messages) > before else Logging(**result)


def _quorum(p: Problems, value: Any) -> Quorum | None:
    allowed = _names(Quorum)
    section = p.section("quorum", value, allowed)
    result: dict[str, Any] = {}
    before = len(p.messages)
    if section.get("provider") is not None:
        result["provider"] = p.choice("quorum.provider", section["provider"], ("corosync_votequorum", "none"))
    for key in ("two_node", "wait_for_all", "last_man_standing", "auto_tie_breaker"):
        if section.get(key) is not None:
            result[key] = p.boolean(f"quorum.{key}", section[key])
    if section.get("last_man_standing_window") is not None:
        result["last_man_standing_window"] = p.integer("quorum.last_man_standing_window",
                                                       section["last_man_standing_window"], 1, _U32)
    if section.get("expected_votes") is not None:
        result["expected_votes"] = p.integer("quorum.expected_votes", section["expected_votes"], 0, _U32)
    node = section.get("auto_tie_breaker_node")
    if node is not None:
        text = str(node) if isinstance(node, int) and not isinstance(node, bool) else node
        if not isinstance(text, str) or not re.fullmatch(r"lowest|highest|[0-9]+( [0-9]+)*", text):
            p.bad("quorum.auto_tie_breaker_node", node, "is not lowest, highest or node ids separated by spaces")
        else:
            result["auto_tie_breaker_node"] = text
    if section.get("device") is not None:
        result["device"] = _device(p, section["device"])
    result["extra"] = _extra(p, "quorum.extra", section.get("extra"), allowed)
    return None if len(p.messages) > before else Quorum(**result)


def _device(p: Problems, value: Any) -> QuorumDevice | None:
    allowed = _names(QuorumDevice)
    section = p.section("quorum.device", value, allowed)
    if not isinstance(value, Mapping):
        return None
    result: dict[str, Any] = {}
    if section.get("model") is not None:
        result["model"] = p.choice("quorum.device.model", section["model"], ("net",))
    for key in ("votes", "timeout", "sync_timeout"):
        if section.get(key) is not None:
            result[key] = p.integer(f"quorum.device.{key}", section[key], 0 if key == "votes" else 1, _U32)
    net = section.get("net")
    if net is None:
        p.add("quorum.device.net", "missing; model net needs net: {host: <the qnetd server>}")
    else:
        result["net"] = _net(p, net)
    result["heuristics"] = _extra(p, "quorum.device.heuristics", section.get("heuristics"), ())
    result["extra"] = _extra(p, "quorum.device.extra", section.get("extra"), allowed)
    return QuorumDevice(**result)


def _net(p: Problems, value: Any) -> NetDevice | None:
    allowed = _names(NetDevice)
    section = p.section("quorum.device.net", value, allowed)
    if not isinstance(value, Mapping):
        return None
    host = section.get("host")
    if host is None:
        p.add("quorum.device.net.host", "missing; give the address or hostname of the corosync-qnetd server")
        host_text = None
    else:
        host_text = _address(p, "quorum.device.net.host", host)
    result: dict[str, Any] = {"host": host_text or ""}
    if section.get("port") is not None:
        result["port"] = p.integer("quorum.device.net.port", section["port"], 1, 65535)
    for key, choices in (("algorithm", ("ffsplit", "lms", "test", "2nodelms")), ("tls", ("on", "off", "required"))):
        raw = section.get(key)
        if isinstance(raw, bool):
            raw = "on" if raw else "off"
        if raw is not None:
            result[key] = p.choice(f"quorum.device.net.{key}", raw, choices)
    tie = section.get("tie_breaker")
    if tie is not None:
        text = str(tie) if isinstance(tie, int) and not isinstance(tie, bool) else tie
        if not isinstance(text, str) or not re.fullmatch(r"lowest|highest|[0-9]+", text):
            p.bad("quorum.device.net.tie_breaker", tie, "is not lowest, highest or a node id")
        else:
            result["tie_breaker"] = text
    if section.get("connect_timeout") is not None:
        result["connect_timeout"] = p.integer("quorum.device.net.connect_timeout", section["connect_timeout"], 1, _U32)
    if section.get("force_ip_version") is not None:
        result["force_ip_version"] = p.choice("quorum.device.net.force_ip_version",
                                              str(section["force_ip_version"]), ("0", "4", "6"))
        if result["force_ip_version"] is not None:
            result["force_ip_version"] = int(result["force_ip_version"])
    result["extra"] = _extra(p, "quorum.device.net.extra", section.get("extra"), allowed)
    return NetDevice(**result)


# --- verbatim keys -------------------------------------------------------------------------------


def _extra(p: Problems, path: str, value: Any, owned: tuple[str, ...], depth: int = 0) -> Extra:
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
                result.append((key, _extra(p, where, item, (), depth + 1)))
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


def _legacy(p: Problems, value: Any) -> Extra | None:
    """legacy_1x: sections (and totem/logging keys) written on Corosync 1.x only."""
    return _extra(p, "legacy_1x", value, ("nodelist", "quorum"))


# --- ssh -----------------------------------------------------------------------------------------


def _ssh(p: Problems, value: Any, nodes: tuple[Node, ...]) -> SshSettings | None:
    allowed = _names(SshSettings)
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


def _trusted(p: Problems, value: Any, nodes: tuple[Node, ...]) -> tuple[str, ...]:
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


# --- rules across sections -----------------------------------------------------------------------


def _cluster_problems(cluster: Cluster) -> list[str]:
    """Rules that tie sections together, whatever the generation."""
    problems = []
    t = cluster.totem
    if cluster.crypto in ("on", "off") and (t.crypto_cipher or t.crypto_hash):
        on = (t.crypto_cipher or "none") != "none" or (t.crypto_hash or "none") != "none"
        if on != (cluster.crypto == "on"):
            problems.append(f"crypto: {cluster.crypto!r} contradicts totem.crypto_cipher/crypto_hash "
                            f"({t.crypto_cipher}/{t.crypto_hash}); set crypto: auto or make them agree")
    if not cluster.nodelist and cluster.transport not in ("udp", "default"):
        problems.append("nodelist: false needs transport udp (multicast finds the members); "
                        "udpu and knet need the nodelist")
    for index, node in enumerate(cluster.nodes):
        if not node.listed and (not cluster.nodelist or cluster.transport not in ("udp", "default")):
            problems.append(f"nodes[{index}].listed: false is for a multicast (udp) cluster whose nodelist lists "
                            "only some members; " + ("nodelist is false: every node is unlisted already"
                                                      if not cluster.nodelist else "udpu and knet need every node listed"))
    device = cluster.quorum.device
    if device is not None and cluster.quorum.two_node:
        problems.append("quorum.two_node: true with a quorum device: votequorum refuses both; "
                        "remove two_node (the device breaks the tie)")
    return problems


def generation_problems(cluster: Cluster, generation: int) -> list[str]:
    """Rules that depend on the Corosync generation, checked once it is known (file or detection)."""
    problems = []
    transport, crypto = cluster.transport, cluster.crypto
    t = cluster.totem
    if transport == "knet" and generation < 3:
        problems.append(f"transport: 'knet' needs Corosync 3, not {generation}.x; use udpu (or auto)")
    link0 = cluster.link(0)
    if transport in ("udp", "default") and generation == 1 and (link0 is None or link0.mcastaddr is None) \
            and not (link0 is not None and link0.broadcast):
        problems.append(
            f"transport: {transport!r} (multicast) on Corosync 1.x needs a multicast address: set "
            "links[0].mcastaddr (or broadcast), or use udpu (or auto), as the chapter does"
        )
    effective = {"auto": "knet" if generation >= 3 else "udpu",
                 "default": "knet" if generation >= 3 else "udp"}.get(transport, transport)
    if generation >= 3 and crypto == "on" and effective in ("udpu", "udp"):
        problems.append(
            f"crypto: 'on' with transport {transport!r}: Corosync 3 cannot encrypt udpu/udp; "
            "use transport: knet (or auto) to encrypt, or crypto: off"
        )
    if generation >= 3 and effective == "knet":
        for index, node in enumerate(cluster.nodes):
            if node.nodeid is not None and node.nodeid > KNET_MAX_NODEID:
                problems.append(
                    f"nodes[{index}].nodeid: {node.nodeid} is above {KNET_MAX_NODEID}, the highest node id knet allows"
                )
    if generation >= 3:
        for index, node in enumerate(cluster.nodes):
            if not node.listed:
                problems.append(f"nodes[{index}].listed: false needs multicast, which Corosync 3 (knet) does not "
                                "have; list every node")
            if node.nodeid is None:
                problems.append(f"nodes[{index}].nodeid: null, but Corosync 3 needs a node id for every node; set one")
    count = cluster.link_count
    counts = {len(n.addresses) for n in cluster.nodes}
    if len(counts) > 1 and (generation != 2 or cluster.rrp_mode not in (None, "none")):
        most = max(counts)
        for index, node in enumerate(cluster.nodes):
            if len(node.addresses) < most:
                problems.append(
                    f"nodes[{index}].addresses: {len(node.addresses)} address(es) but another node has {most}: every "
                    "node needs one address per link (ring); add the missing ones or remove the extra link "
                    "(only Corosync 2 without rrp_mode ignores addresses beyond ring 0)"
                )
    if effective != "udp":
        for index, link in enumerate(cluster.links):
            if link.number >= count:
                problems.append(f"links[{index}].number: {link.number} has no node addresses: the nodes have {count} "
                                f"link(s) (give each node one address per link in addresses; only multicast (udp) "
                                "rings need none)")
    if count > MAX_LINKS[generation]:
        what = "knet links" if generation >= 3 else "rings (RRP)"
        problems.append(f"nodes: {count} addresses per node, but Corosync {generation}.x has at most "
                        f"{MAX_LINKS[generation]} {what}")
    if generation >= 3 and count > 1:
        for index, node in enumerate(cluster.nodes):
            if not node.named:
                problems.append(f"nodes[{index}].name: missing, but Corosync 3 needs a name for every node of a "
                                "multi-link cluster; give the node's hostname")
    if generation >= 3 and effective != "knet" and count > 1:
        problems.append(f"nodes: {count} links need transport knet on Corosync 3 (udpu/udp have one link)")
    if cluster.rrp_mode == "rr" and generation < 3:
        problems.append(f"rrp_mode: 'rr' is a knet link_mode (Corosync 3), not an rrp_mode of {generation}.x")
    if t.crypto_model is not None and generation < 3:
        problems.append(f"totem.crypto_model: Corosync {generation}.x has no crypto_model (3.x only)")
    if generation == 1 and (t.crypto_cipher or t.crypto_hash):
        problems.append("totem.crypto_cipher/crypto_hash: Corosync 1.x has only secauth; set totem.secauth")
    if t.ip_version in ("ipv4-6", "ipv6-4") and generation < 3:
        problems.append(f"totem.ip_version: {t.ip_version!r} is Corosync 3 only; use ipv4 or ipv6")
    if generation < 3:
        for index, link in enumerate(cluster.links):
            knet = [f.name for f in fields(Link) if f.name.startswith("knet_") and getattr(link, f.name) is not None]
            if knet:
                problems.append(f"links[{index}].{knet[0]}: knet options need Corosync 3, not {generation}.x")
    return problems


# --- the way back --------------------------------------------------------------------------------


def to_parameters(cluster: Cluster) -> dict[str, Any]:
    """The flat JSON-able mapping (same keys as the YAML file), e.g. for papermill."""
    ssh = asdict(cluster.ssh)
    ssh["trust_unknown_hosts"] = list(cluster.ssh.trust_unknown_hosts)
    nodes = []
    for n in cluster.nodes:
        entry: dict[str, Any] = {"name": n.name if n.named else None}
        if len(n.addresses) == 1:
            entry["address"] = n.address
        else:
            entry["addresses"] = list(n.addresses)
        entry["nodeid"] = n.nodeid
        entry["role"] = n.role
        if n.quorum_votes is not None:
            entry["quorum_votes"] = n.quorum_votes
        if n.extra:
            entry["extra"] = extra_to_yaml(n.extra)
        if not n.listed:
            entry["listed"] = False
        nodes.append(entry)
    return {
        "cluster_name": cluster.name,
        "nodes": nodes,
        "generation": "auto" if cluster.generation is None else cluster.generation,
        "transport": cluster.transport,
        "crypto": cluster.crypto,
        "rrp_mode": cluster.rrp_mode,
        "pacemaker_plugin": cluster.pacemaker_plugin,
        "totem": _plain(cluster.totem),
        "logging": _plain(cluster.logging),
        "links": [_compact(link) for link in cluster.links],
        "quorum": _plain(cluster.quorum),
        "extra": extra_to_yaml(cluster.extra),
        "legacy_1x": extra_to_yaml(cluster.legacy_1x),
        "name_in_conf": cluster.name_in_conf,
        "nodelist": cluster.nodelist,
        "ssh": ssh,
    }


def _plain(obj: Any) -> dict[str, Any]:
    """A model section as a mapping: every field, extras in their YAML shape, nested sections compact."""
    result: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in ("extra", "heuristics"):
            result[f.name] = extra_to_yaml(value)
        elif hasattr(value, "__dataclass_fields__"):
            result[f.name] = _compact(value)
        else:
            result[f.name] = value
    return result


def _compact(obj: Any) -> dict[str, Any]:
    """Only the fields that are set (links, quorum device): short entries in the cluster file."""
    result: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in ("extra", "heuristics"):
            if value:
                result[f.name] = extra_to_yaml(value)
        elif hasattr(value, "__dataclass_fields__"):
            result[f.name] = _compact(value)
        elif value is not None:
            result[f.name] = value
    return result
