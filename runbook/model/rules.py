"""Validation: a cluster mapping (YAML file or papermill parameters) -> Cluster, or every problem at once.

Each problem reads `field.path: value problem`, so a user fixes the file in one go; any input, however
hostile, ends either in a Cluster or in one ClusterFileError (exit 2). `to_parameters` is the way back.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, fields
from typing import Any, Mapping

from runbook.errors import ClusterFileError
from runbook.model.backups import Backups, parse_backups
from runbook.model.generation import generation_problems
from runbook.model.problems import U32, Problems, check_address, verbatim
from runbook.model.sections import legacy_of, links_of, logging_of, quorum_of, ssh_of, totem_of
from runbook.model.types import CRYPTO_MODES, FIREWALL_MODES, GENERATIONS, MAX_NODEID, MAX_NODES, OMIT_UNSET, RRP_MODES, TRANSPORTS, Cluster, Node, extra_to_yaml
from runbook.text import show

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
    "backups",
    "firewall",
)
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", re.ASCII)
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_NODE_OWN = ("name", "nodeid", "quorum_votes", *(f"ring{i}_addr" for i in range(8)))
_TOP_OWN = ("totem", "nodelist", "quorum", "logging")


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
    firewall = _or_default(p.choice, "firewall", data.get("firewall"), FIREWALL_MODES, "check")
    rrp_mode = None if data.get("rrp_mode") is None else p.choice("rrp_mode", data["rrp_mode"], RRP_MODES)
    plugin = data.get("pacemaker_plugin")
    pacemaker_plugin = False if plugin is None else p.boolean("pacemaker_plugin", plugin)
    totem = totem_of(p, data.get("totem"))
    logging = logging_of(p, data.get("logging"))
    ssh = ssh_of(p, data.get("ssh"), nodes or ())
    links = links_of(p, data.get("links"), nodes or ())
    quorum = quorum_of(p, data.get("quorum"))
    extra = verbatim(p, "extra", data.get("extra"), _TOP_OWN)
    legacy = legacy_of(p, data.get("legacy_1x"))
    backups, backup_problems = parse_backups(data.get("backups"))
    p.messages.extend(backup_problems)
    flags = {}
    for key in ("name_in_conf", "nodelist"):
        flags[key] = True if data.get(key) is None else p.boolean(key, data[key])
    if totem is not None and totem.port is not None and links and links[0].number == 0 and links[0].mcastport is not None:
        p.add("totem.port", "is also links[0].mcastport; keep one (totem.port is the older name)")

    if p.messages:
        raise ClusterFileError(p.messages, source)
    assert name is not None and nodes is not None and transport is not None and crypto is not None and firewall is not None
    assert pacemaker_plugin is not None and totem is not None and logging is not None and ssh is not None
    assert links is not None and quorum is not None and extra is not None and legacy is not None
    cluster = Cluster(
        name=name, nodes=nodes, generation=generation, transport=transport, crypto=crypto,
        rrp_mode=rrp_mode, pacemaker_plugin=pacemaker_plugin, totem=totem, logging=logging, ssh=ssh,
        links=links, quorum=quorum, extra=extra, legacy_1x=legacy,
        name_in_conf=bool(flags["name_in_conf"]), nodelist=bool(flags["nodelist"]),
        backups=backups or Backups(), firewall=firewall, source=source,
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
            checked = [check_address(p, f"{path}.addresses[{i}]", a) for i, a in enumerate(raw)]
            if all(c is not None for c in checked):
                node["addresses"] = checked
    elif item.get("address") is None:
        p.add(f"{path}.address", "missing; give the node's address on the cluster network (IPv4, IPv6 or a hostname)")
    else:
        canonical = check_address(p, f"{path}.address", item["address"])
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
        node["quorum_votes"] = p.integer(f"{path}.quorum_votes", item["quorum_votes"], 0, U32)
    node["extra"] = verbatim(p, f"{path}.extra", item.get("extra"), _NODE_OWN)
    node["listed"] = True if item.get("listed") is None else p.boolean(f"{path}.listed", item["listed"])
    return node


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
    net = device.net if device is not None else None
    if net is not None:
        for node in cluster.nodes:
            if net.host in node.addresses or (net.name or net.host) == node.name:
                problems.append(f"quorum.device.net.host: {net.host} is node {node.name}; the tie-breaking vote must "
                                "come from a host outside the cluster (corosync-qnetd on a third machine)")
    return problems


SPLIT_BRAIN_WARNING = (
    "WARNING: a 2-node cluster without a quorum device: when the nodes lose each other, both stay quorate "
    "(two_node) and both may run the same resources. Set up fencing (Pacemaker STONITH) before running "
    "services on it, then say so with quorum.fencing: true; or add a quorum device (quorum.device, model net) "
    "on a third host"
)


def quorum_warnings(cluster: Cluster) -> list[str]:
    """A 2-node cluster without a quorum device stays quorate on both sides of a split (two_node): only
    fencing makes that safe, which Corosync alone does not do. `quorum.fencing: true` says the cluster
    has it (the runbook cannot see Pacemaker's STONITH), and satisfies the warning."""
    if len(cluster.nodes) != 2 or cluster.quorum.device is not None or cluster.quorum.fencing:
        return []
    return [SPLIT_BRAIN_WARNING]


def with_generation(cluster: Cluster, generation: int) -> Cluster:
    """The same cluster with its generation fixed (e.g. once detected), fully re-validated."""
    params = to_parameters(cluster)
    params["generation"] = generation
    return cluster_from_mapping(params, cluster.source)


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
        "backups": cluster.backups.to_parameters(),
        "firewall": cluster.firewall,
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
        elif value is not None or not f.metadata.get(OMIT_UNSET):
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
