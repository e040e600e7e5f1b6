"""Turn an existing corosync.conf (1.x, 2.x or 3.x, by anyone) into a cluster file, losing nothing.

Every key of the file lands somewhere: in the model (nodes with their ids and one address per link,
links, quorum and its device, crypto, timings, logging), or verbatim in the `extra` of its section
(`legacy_1x` for the openais-era keys of a 1.x file). Nothing is invented: a key the file leaves out
stays out (Corosync's own default), a node without a name or id keeps none. The generation is read
from the file's own keys. Rendering the result for that generation gives back the file's settings;
`tests/unit/test_corpus.py` checks this on real files written by others.

What cannot be carried (a `version` other than 2, earlier values of a repeated key, the file's
comments) is listed in the output header and returned, each with its reason. A file the model cannot
describe (no address for a node, duplicate node ids, a node missing a link) is refused with a
ClusterFileError that names the construct and what to do.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import yaml

from runbook.conf.parse import Entry, differences, parse_entries, settings
from runbook.conf.render import render
from runbook.errors import ClusterFileError
from runbook.migrate.options import NodeOption
from runbook.migrate.reader import KNET_HINTS, Reader, last_value, merged_section, sections_named
from runbook.model.rules import cluster_from_mapping

DEFAULT_CLUSTER_NAME = "cluster"


class Migration(NamedTuple):
    """A cluster-file mapping, the notes on how it was read, and what could not be carried (with why)."""

    mapping: dict[str, Any]
    notes: list[str]
    lost: list[str]
    generation: int
    source_generation: int


# --- reading the file ----------------------------------------------------------------------------


def detect_generation(entries: list[Entry]) -> tuple[int, str]:
    """Which Corosync the file is for, from its own keys, and why (a nodelist means 2.x or later)."""
    totem = merged_section(entries, "totem")
    interfaces = sections_named(totem, "interface")
    keys = {k for k, _ in totem} | {k for i in interfaces for k, _ in i}
    if last_value(totem, "transport") == "knet":
        return 3, "transport: knet"
    hints = sorted(k for k in keys if k in KNET_HINTS or k.startswith("knet_") or k == "linknumber")
    if hints:
        return 3, f"{hints[0]} (a knet key)"
    if sections_named(entries, "nodelist"):
        return 2, "a nodelist without knet keys"
    modern = sorted(k for k in ("cluster_name", "crypto_cipher", "crypto_hash") if k in keys)
    if modern:
        return 2, f"{modern[0]} (a 2.x key)"
    return 1, "no nodelist and no 2.x/3.x key"


def takes_members(text: str | bytes, source: str = "corosync.conf") -> bool:
    """Whether the file leaves members out, so --node / --from-nodes may give them: a multicast file
    without a node list (or one that lists only some). Raises ConfigParseError for a bad file."""
    entries = parse_entries(text, source)
    generation, _ = detect_generation(entries)
    totem = merged_section(entries, "totem")
    if any(k == "member" for i in sections_named(totem, "interface") for k, _ in i):
        return False
    multicast = last_value(totem, "transport") in (None, "udp") and generation < 3
    listed = any(k == "node" for section in sections_named(entries, "nodelist") for k, _ in section)
    return multicast or not listed


# --- the whole migration -------------------------------------------------------------------------


def cluster_mapping_from_conf(
    entries: list[Entry],
    cluster_name: str | None = None,
    generation: int | str | None = None,
    nodes: list[NodeOption] | None = None,
    from_nodes: str | None = None,
) -> Migration:
    """A cluster-file mapping from a parsed corosync.conf (`parse_entries`), for the file's own generation
    (or `generation`, converting what must change, each change noted)."""
    source_generation, why = detect_generation(entries)
    target = _target(generation) or source_generation
    reader = Reader(entries, source_generation)
    notes = reader.notes
    notes.append(f"generation: {source_generation}, read from the file ({why})")
    mapping: dict[str, Any] = {"cluster_name": None}
    reader.totem(mapping)
    members = reader.links(mapping)
    reader.nodes(mapping, members, list(nodes or []), "--from-nodes" if from_nodes else "--node")
    reader.quorum(mapping)
    reader.logging(mapping)
    reader.others(mapping)
    if reader.refusals:
        raise ClusterFileError(reader.refusals)
    if cluster_name is not None:
        if mapping["cluster_name"] not in (None, cluster_name) and source_generation >= 2:
            notes.append(f"cluster_name: {mapping['cluster_name']} -> {cluster_name} (--name)")
        mapping["cluster_name"] = cluster_name
        mapping.pop("name_in_conf", None)
    elif mapping["cluster_name"] is None:
        mapping["cluster_name"] = DEFAULT_CLUSTER_NAME
        notes.append(f"cluster_name: the file has none; the runbook calls it {DEFAULT_CLUSTER_NAME!r} "
                     + ("and writes none (name_in_conf: false)" if source_generation >= 2 else "(1.x writes no name)"))
    if target != source_generation:
        _convert(mapping, source_generation, target, notes)
    mapping["generation"] = target
    ordered = {key: mapping[key] for key in _ORDER if key in mapping and mapping[key] not in ({}, [])}
    return Migration(ordered, notes, reader.lost, target, source_generation)


_ORDER = ("cluster_name", "generation", "nodes", "links", "transport", "crypto", "rrp_mode", "pacemaker_plugin",
          "totem", "quorum", "logging", "extra", "legacy_1x", "name_in_conf", "nodelist")


def _convert(mapping: dict[str, Any], source: int, target: int, notes: list[str]) -> None:
    """What must change to run the file's cluster on another generation; every change is noted."""
    totem = mapping.setdefault("totem", {})
    if target == 3 and mapping.get("transport") in ("udpu", "udp", "default"):
        notes.append(f"transport: {mapping['transport']} -> auto: knet on Corosync 3, unicast like udpu")
        mapping["transport"] = "auto"
    if target < 3 and mapping.get("transport") == "knet":
        notes.append(f"transport: knet does not exist on Corosync {target}.x -> auto (udpu)")
        mapping["transport"] = "auto"
    if target == 3 and not any(k in totem for k in ("crypto_cipher", "crypto_hash")):
        secauth = totem.pop("secauth", None)
        notes.append("crypto: auto: knet encrypts with crypto_cipher aes256 / crypto_hash sha256 and the authkey"
                     + ("" if secauth is None else f" (the file had secauth: {'on' if secauth else 'off'})"))
        mapping["crypto"] = "auto"
    if target == 1:
        for key in ("crypto_cipher", "crypto_hash", "crypto_model"):
            if totem.pop(key, None) is not None:
                notes.append(f"totem.{key}: dropped, Corosync 1.x has only secauth")
    if target < 3:
        for key in ("crypto_model",):
            if totem.pop(key, None) is not None:
                notes.append(f"totem.{key}: dropped, Corosync {target}.x has none")
        for link in mapping.get("links", []):
            for key in [k for k in link if k.startswith("knet_")]:
                notes.append(f"links: {key} dropped, Corosync {target}.x has no knet")
                del link[key]
    if mapping.get("rrp_mode") and target == 3 and source < 3:
        notes.append(f"rrp_mode: {mapping['rrp_mode']} is written as link_mode on Corosync 3 (knet)")
    if mapping.get("pacemaker_plugin") and target >= 2:
        notes.append("pacemaker_plugin: service { name: pacemaker ver: 0 } is written on 1.x only: "
                     "on Corosync 2/3 Pacemaker runs as its own daemon")
    if mapping.get("legacy_1x") and target >= 2:
        notes.append("legacy_1x: the 1.x-only keys (amf, aisexec, threads, ...) stay in the file but are "
                     f"not written on Corosync {target}.x")
    if target >= 2 and source == 1:
        _from_1x(mapping, target, notes)
    if target == 3:
        _to_knet(mapping, notes)


def _free_nodeid(nodes: list[dict[str, Any]], below: int) -> int:
    """The lowest node id from 1 up that no node of the file uses yet."""
    used = {n.get("nodeid") for n in nodes}
    return next(i for i in range(1, below) if i not in used)


def _from_1x(mapping: dict[str, Any], target: int, notes: list[str]) -> None:
    """A 1.x file on 2.x/3.x: node ids (1.x picks them itself) and names for the nodelist."""
    totem = mapping.setdefault("totem", {})
    mapping.pop("nodelist", None)
    for index, node in enumerate(mapping["nodes"]):
        if node.get("nodeid") is None:
            node["nodeid"] = _free_nodeid(mapping["nodes"], 1000)
            notes.append(f"nodes[{index}].nodeid: {node['nodeid']} (the file fixes none; "
                         f"Corosync {target}.x needs one)")
        if "name" not in node:
            notes.append(f"nodes[{index}]: no name in the file, so none in the nodelist either; add the node's "
                         "hostname as name: if Pacemaker should know it by name")
    extra = totem.get("extra", {})
    if "nodeid" in extra:
        notes.append(f"totem.nodeid: {extra.pop('nodeid')!r} dropped: on Corosync {target}.x node ids are in the nodelist")
        if not extra:
            totem.pop("extra")


def _to_knet(mapping: dict[str, Any], notes: list[str]) -> None:
    """A file on Corosync 3 (knet): every node on every link, named where it has several, ids within knet's."""
    counts = [len(n.get("addresses") or [n.get("address")]) for n in mapping["nodes"]]
    if len(set(counts)) > 1:
        keep = min(counts)
        for index, node in enumerate(mapping["nodes"]):
            if len(node.get("addresses") or []) > keep:
                dropped = node["addresses"][keep:]
                node["addresses"] = node["addresses"][:keep]
                if keep == 1:
                    node["address"] = node.pop("addresses")[0]
                notes.append(f"nodes[{index}]: {', '.join(dropped)} dropped: the other nodes have no address on "
                             "that link, and knet needs every node on every link")
    if mapping.pop("nodelist", True) is False:
        notes.append("nodelist: written (knet has no multicast to find the members)")
    if any(len(n.get("addresses") or []) > 1 for n in mapping["nodes"]):
        for index, node in enumerate(mapping["nodes"]):
            if "name" not in node:
                node["name"] = node.get("address") or node["addresses"][0]
                notes.append(f"nodes[{index}].name: {node['name']} (its address; Corosync 3 needs a name for "
                             "every node with several links: put the node's hostname here)")
    if mapping.get("transport") in ("auto", "knet"):
        count = min(len(n.get("addresses") or [n.get("address")]) for n in mapping["nodes"])
        for link in list(mapping.get("links", [])):
            if isinstance(link.get("number"), int) and link["number"] >= count:
                mapping["links"].remove(link)
                notes.append(f"links: ring {link['number']} dropped: the nodes have no address on it (a "
                             f"multicast ring); give each node a ring{link['number']}_addr to make it a knet link")
                continue
            for key in ("mcastaddr", "ttl", "broadcast", "bindnetaddr"):
                if key in link:
                    notes.append(f"links[{link.get('number')}].{key}: {link.pop(key)} dropped: knet is unicast and "
                                 "binds to each node's own address")
    for index, node in enumerate(mapping["nodes"]):
        if node.pop("listed", True) is False:
            notes.append(f"nodes[{index}]: listed in the nodelist (knet has no multicast to find it)")
        if isinstance(node.get("nodeid"), int) and node["nodeid"] > 65535:
            old_id, node["nodeid"] = node["nodeid"], _free_nodeid(mapping["nodes"], 65536)
            notes.append(f"nodes[{index}].nodeid: {old_id} -> {node['nodeid']} (knet allows at most 65535)")
        if node.get("nodeid") is None:
            node["nodeid"] = _free_nodeid(mapping["nodes"], 1000)
            notes.append(f"nodes[{index}].nodeid: {node['nodeid']} (Corosync 3 needs a node id for every node)")


def _target(generation: int | str | None) -> int | None:
    if generation in (None, "auto"):
        return None
    if isinstance(generation, str) and generation in ("1", "2", "3"):
        return int(generation)
    if isinstance(generation, int) and not isinstance(generation, bool) and generation in (1, 2, 3):
        return generation
    raise ClusterFileError(f"generation: {generation!r} is not one of auto, 1, 2, 3")


def migrate(
    text: str | bytes,
    source: str,
    cluster_name: str | None = None,
    generation: int | str | None = None,
    nodes: list[NodeOption] | None = None,
    from_nodes: str | None = None,
) -> tuple[str, Migration]:
    """Cluster-file YAML (header + body) and the Migration behind it; raises ConfigParseError /
    ClusterFileError (the refusal names the construct).

    `nodes` are the members a multicast file does not list: from `--node`, or read from the running
    cluster (`--from-nodes`), then `from_nodes` says where, for the header."""
    entries = parse_entries(text, source)
    try:
        migration = cluster_mapping_from_conf(entries, cluster_name, generation, nodes, from_nodes)
    except ClusterFileError as error:
        raise ClusterFileError(error.problems, f"{source} (cannot migrate)") from None
    cluster = cluster_from_mapping(migration.mapping, f"{source} (migrated)")  # refuses what the model cannot hold
    if migration.generation == migration.source_generation:  # lossless: prove it, and say so if not
        rendered = render(cluster, cluster.primary.name, migration.generation)
        for difference in differences(settings(text, source), settings(rendered)):
            migration.lost.append(f"{difference} (the render writes it so: a key the runbook must set, see "
                                  "docs/cluster-file.md, or something to report)")
    lines = [
        f"# Cluster file migrated by corosync-runbook from {_one_line(source)} (Corosync {migration.source_generation}.x).",
        f"# Generation: {migration.generation}. Keys the file leaves out stay out (Corosync's own defaults).",
        *([f"# Nodes: {_one_line(from_nodes)}."] if from_nodes and nodes else
          ["# Nodes: from --node options (the file does not list them)."] if nodes else []),
        "# Review, then run the runbook with it.",
        "# How it was read:",
        *(f"#   - {_one_line(note)}" for note in migration.notes),
        "# Not carried over (with why):",
        "#   - the file's comments (a cluster file has its own)",
        *(f"#   - {_one_line(item)}" for item in migration.lost),
    ]
    body = yaml.safe_dump(migration.mapping, sort_keys=False, default_flow_style=False, allow_unicode=False)
    return "\n".join(lines) + "\n" + body, migration


def migrate_conf(
    text: str | bytes,
    source: str,
    cluster_name: str | None = None,
    generation: int | str | None = None,
    nodes: list[NodeOption] | None = None,
    from_nodes: str | None = None,
) -> str:
    """Cluster-file YAML from a corosync.conf text; raises ConfigParseError / ClusterFileError."""
    return migrate(text, source, cluster_name, generation, nodes, from_nodes)[0]


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)

