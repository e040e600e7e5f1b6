"""Turn an existing corosync.conf (the chapter's 1.x files, or a 2.x/3.x one) into a cluster file.

So a cluster built by hand from the book can be brought under the runbook: the result is YAML that
`load_cluster` accepts, headed by comments that say where it came from and what changed on the way
(plugin dropped, rrp_mode -> link_mode, udpu -> knet with crypto, settings the model does not carry).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import yaml

from runbook.cluster import PARAMETER_KEYS, cluster_from_mapping
from runbook.corosync_conf import Entry, Parsed, guess_generation, parse, parse_entries, settings_of
from runbook.errors import ClusterFileError

DEFAULT_CLUSTER_NAME = "cluster"

# (section path, key) -> value the runbook itself writes; other values are reported as not carried.
_FIXED: dict[tuple[str, str], str | None] = {
    ("totem", "version"): "2",
    ("totem", "vsftype"): "none",
    ("totem", "clear_node_high_bit"): "yes",
    ("totem", "threads"): "0",
    ("amf", "mode"): "disabled",
    ("service", "ver"): "0",
    ("service", "name"): "pacemaker",
    ("aisexec", "user"): "root",
    ("aisexec", "group"): "root",
    ("logging", "fileline"): "off",
    ("logging", "syslog_facility"): "daemon",
    ("logging.logger_subsys", "subsys"): "AMF",
    ("logging.logger_subsys", "debug"): "off",
    ("logging.logger_subsys", "tags"): "enter|leave|trace1|trace2|trace3|trace4|trace6",
    ("quorum", "provider"): "corosync_votequorum",
}
# (section path, key) the model carries (values checked by validation, not here).
_CARRIED: set[tuple[str, str]] = {
    *(("totem", k) for k in (
        "cluster_name", "token", "token_retransmits_before_loss_const", "join", "consensus", "max_messages",
        "transport", "secauth", "crypto_cipher", "crypto_hash", "rrp_mode", "link_mode", "interface", "nodeid",
    )),
    *(("totem.interface", k) for k in ("ringnumber", "linknumber", "bindnetaddr", "mcastport", "member")),
    ("totem.interface.member", "memberaddr"),
    ("nodelist", "node"),
    *(("nodelist.node", k) for k in ("name", "nodeid", "ring0_addr")),
    ("quorum", "two_node"),
    *(("logging", k) for k in (
        "to_syslog", "to_stderr", "to_logfile", "logfile", "debug", "timestamp", "logger_subsys",
    )),
    *((name, "") for name in ("totem", "nodelist", "quorum", "logging", "amf", "service", "aisexec")),
}


class Migration(NamedTuple):
    """A cluster-file mapping and the human notes on what changed to get it."""

    mapping: dict[str, Any]
    notes: list[str]


def not_carried(entries: list[Entry], path: str = "") -> list[str]:
    """`section.key: value` for every setting of the file the cluster model neither carries nor writes."""
    found = []
    for key, value in entries:
        if isinstance(value, list):
            if (path, key) in _CARRIED or (path, key) in _FIXED or (not path and (key, "") in _CARRIED):
                found.extend(not_carried(value, f"{path}.{key}" if path else key))
            else:
                found.append(f"{path + '.' if path else ''}{key} {{ ... }}")
        elif (path, key) in _FIXED:
            if _FIXED[(path, key)] != value:
                found.append(f"{path}.{key}: {value}")
        elif (path, key) not in _CARRIED:
            found.append(f"{path + '.' if path else ''}{key}: {value}")
    return found


def _target(generation: int | str | None) -> int | None:
    if generation in (None, "auto"):
        return None
    if isinstance(generation, str) and generation in ("1", "2", "3"):
        return int(generation)
    if isinstance(generation, int) and not isinstance(generation, bool) and generation in (1, 2, 3):
        return generation
    raise ClusterFileError(f"generation: {generation!r} is not one of auto, 1, 2, 3")


def cluster_mapping_from_conf(
    parsed: Parsed, cluster_name: str | None = None, generation: int | str | None = 3
) -> Migration:
    """A cluster-file mapping from a parsed corosync.conf, for the target `generation` (None = auto)."""
    target = _target(generation)
    s = settings_of(parsed)
    source_gen = s["generation"]
    notes: list[str] = []
    mapping: dict[str, Any] = {
        "cluster_name": cluster_name or s["cluster_name"] or DEFAULT_CLUSTER_NAME,
        "nodes": _nodes(s, notes),
        "generation": "auto" if target is None else target,
    }
    if not (cluster_name or s["cluster_name"]):
        notes.append(f"cluster_name: the file has none; set to {DEFAULT_CLUSTER_NAME!r}")

    transport, crypto = s["transport"], s["crypto"]
    if target is None or (target == 3 and source_gen != 3):
        mapping["transport"], mapping["crypto"] = "auto", "auto"
        if transport != "knet":
            notes.append(
                f"transport: {transport} -> auto: knet on Corosync 3, unicast like udpu, so no multicast is needed"
                + ("; udpu on 1.x/2.x" if target is None else "")
            )
        if not crypto:
            notes.append(
                "crypto: turned on (auto): knet encrypts with crypto_cipher aes256 / crypto_hash sha256 "
                "and /etc/corosync/authkey; the source had it off"
                + (" (off stays on 1.x)" if target is None else "")
            )
    else:
        if transport == "knet" and target < 3:
            notes.append(f"transport: knet does not exist on Corosync {target}.x -> auto (udpu)")
            transport = "auto"
        mapping["transport"] = transport or "auto"
        mapping["crypto"] = "on" if crypto else "off"

    rrp = s["rrp_mode"]
    mapping["rrp_mode"] = rrp
    if rrp not in (None, "none") and target in (3, None) and source_gen != 3:
        notes.append(f"rrp_mode: {rrp} is written as link_mode: {rrp} on Corosync 3 (knet)")

    plugin = s["pacemaker_plugin"]
    if plugin and target in (2, 3):
        notes.append(
            "pacemaker_plugin: the file's service { name: pacemaker ver: 0 } is dropped: "
            "on Corosync 2/3 Pacemaker runs as its own daemon"
        )
        plugin = False
    elif plugin and target is None:
        notes.append("pacemaker_plugin: kept; the service { name: pacemaker } section is written on 1.x only")
    mapping["pacemaker_plugin"] = plugin

    totem = {k: v for k, v in s["totem"].items() if v is not None}
    if "token" in totem and "consensus" not in totem and isinstance(totem["token"], int):
        totem["consensus"] = math.ceil(totem["token"] * 1.2)
        notes.append(f"totem.consensus: not in the file; set to 1.2 x token = {totem['consensus']}, as Corosync does")
    missing = [k for k in ("token", "token_retransmits_before_loss_const", "join", "consensus", "max_messages")
               if k not in totem]
    if missing:
        notes.append(f"totem: not in the file, the runbook's defaults (the chapter's) apply: {', '.join(missing)}")
    mapping["totem"] = totem
    mapping["logging"] = {k: v for k, v in s["logging"].items() if v is not None}
    return Migration(mapping, notes)


def _nodes(s: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    """Nodes with names and ids; 1.x files have neither, so node1..N / 1..N, primary = bindnetaddr's node."""
    nodes: list[dict[str, Any]] = []
    used_ids = {n["nodeid"] for n in s["nodes"] if isinstance(n["nodeid"], int)}
    free_ids = (i for i in range(1, 2**32) if i not in used_ids)
    unnamed = unnumbered = False
    for index, node in enumerate(s["nodes"]):
        name = node["name"]
        if name is None:
            name, unnamed = f"node{index + 1}", True
        elif "." in name and name.split(".")[0]:
            notes.append(f"nodes[{index}].name: {name} -> {name.split('.')[0]} (a short hostname)")
            name = name.split(".")[0]
        entry: dict[str, Any] = {"name": name, "address": node["address"]}
        if s["generation"] == 1:
            entry["nodeid"] = index + 1
            unnumbered = True
        elif node["nodeid"] is None:
            entry["nodeid"], unnumbered = next(free_ids), True
        else:
            entry["nodeid"] = node["nodeid"]
        nodes.append(entry)
    if unnamed:
        notes.append("nodes: the file names no nodes; named node1..nodeN in file order")
    if unnumbered:
        notes.append("nodes: node ids the file does not fix were numbered in file order")
    bind = s["bindnetaddr"]
    if bind is not None:
        owners = [n for n in nodes if n["address"] == bind]
        if owners:
            owners[0]["role"] = "primary"
            notes.append(f"role: primary is {owners[0]['name']}, whose address is this file's bindnetaddr ({bind})")
        else:
            notes.append(f"role: bindnetaddr {bind} is no member's address; the first node is primary")
    return nodes


def migrate_conf(
    text: str | bytes, source: str, cluster_name: str | None = None, generation: int | str | None = 3
) -> str:
    """Cluster-file YAML from a corosync.conf text; raises ConfigParseError / ClusterFileError."""
    entries = parse_entries(text, source)
    parsed = parse(text, source)
    migration = cluster_mapping_from_conf(parsed, cluster_name, generation)
    cluster = cluster_from_mapping(migration.mapping, f"{source} (migrated)")
    params = cluster.to_parameters()
    for node in params["nodes"]:
        if node["role"] is None:
            del node["role"]
    lost = not_carried(entries)
    lines = [
        f"# Cluster file migrated by corosync-runbook from {_one_line(source)}"
        f" (looks like Corosync {guess_generation(parsed) or '?'}.x).",
        f"# Target generation: {params['generation']}. Review, then run the runbook with it.",
    ]
    if migration.notes:
        lines.append("# Changed on the way:")
        lines.extend(f"#   - {_one_line(note)}" for note in migration.notes)
    if lost:
        lines.append("# Not carried over (the runbook does not manage these; re-add by hand if needed):")
        lines.extend(f"#   - {_one_line(item)}" for item in lost)
    body = yaml.safe_dump({k: params[k] for k in PARAMETER_KEYS}, sort_keys=False, default_flow_style=False)
    return "\n".join(lines) + "\n" + body


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)
