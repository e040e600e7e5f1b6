"""Reading an existing corosync.conf (1.x, 2.x or 3.x) into the cluster file's keys: what each key
means, what it becomes, and what cannot be carried (named, never dropped silently).
"""

from __future__ import annotations

import re
from typing import Any

from runbook.conf.parse import Entry
from runbook.errors import ClusterFileError
from runbook.migrate.entries import as_int, last_value, merged_section, sections_named, yes_no
from runbook.migrate.options import NodeOption
from runbook.model.types import NetDevice, QuorumDevice

_TIMINGS = ("token", "token_retransmits_before_loss_const", "join", "consensus", "max_messages")


_LINK_INTS = ("mcastport", "ttl", "knet_link_priority", "knet_ping_interval", "knet_ping_timeout",
              "knet_ping_precision", "knet_pong_count")


# Keys that exist on Corosync 1.x (openais) only: from a 1.x file they go to legacy_1x.
_ONLY_1X_TOTEM = ("vsftype", "threads")


_ONLY_1X_TOP = ("amf", "aisexec", "compatibility")


KNET_HINTS = ("link_mode", "crypto_model", "knet_compression_model", "knet_compression_level",
               "knet_compression_threshold", "knet_pmtud_interval", "block_unlisted_ips")


def _extra(entries: list[Entry]) -> dict[str, Any]:
    """Entries as an `extra` mapping (a repeated key becomes a list), values verbatim."""
    result: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for key, _ in entries:
        counts[key] = counts.get(key, 0) + 1
    for key, value in entries:
        shown: Any = _extra(value) if isinstance(value, list) else value
        if counts[key] > 1:
            result.setdefault(key, []).append(shown)
        else:
            result[key] = shown
    return result


class Reader:
    """Walks one file's entries into a cluster mapping, noting what it does and what it cannot carry."""

    def __init__(self, entries: list[Entry], generation: int) -> None:
        self.entries = entries
        self.generation = generation
        self.notes: list[str] = []
        self.lost: list[str] = []
        self.refusals: list[str] = []

    def single(self, section: str, entries: list[Entry], key: str) -> str | None:
        """The value of a modelled key; earlier values of a repeated key are lost, as in Corosync."""
        values = [v for k, v in entries if k == key and isinstance(v, str)]
        if len(values) > 1:
            self.lost.append(f"{section}.{key}: {', '.join(values[:-1])} (repeated; Corosync uses the last, "
                             f"{values[-1]}, and so does the cluster file)")
        return values[-1] if values else None

    def totem(self, mapping: dict[str, Any]) -> None:
        totem = merged_section(self.entries, "totem")
        own = ("version", "cluster_name", "transport", "secauth", "crypto_cipher", "crypto_hash",
               "crypto_model", "ip_version", "interface", *_TIMINGS)
        version = self.single("totem", totem, "version")
        if version is not None and version != "2":
            self.lost.append(f"totem.version: {version} (the runbook writes version: 2, the only one Corosync reads)")
        name = self.single("totem", totem, "cluster_name")
        if name is not None:
            mapping["cluster_name"] = name
        elif self.generation >= 2:
            mapping["name_in_conf"] = False
        t: dict[str, Any] = {}
        for key in _TIMINGS:
            value = as_int(self.single("totem", totem, key))
            if value is not None:
                t[key] = value
        transport = self.single("totem", totem, "transport")
        mapping["transport"] = transport if transport is not None else "default"
        for key in ("crypto_cipher", "crypto_hash", "crypto_model"):
            value = self.single("totem", totem, key)
            if value is not None:
                t[key] = value
        secauth = self.single("totem", totem, "secauth")
        if secauth is not None:
            t["secauth"] = yes_no(secauth)
        mapping["crypto"] = "default"  # the file's own crypto keys (or none: Corosync's default)
        ip_version = self.single("totem", totem, "ip_version")
        mode_key = "link_mode" if self.generation >= 3 else "rrp_mode"
        mode = self.single("totem", totem, mode_key)
        if mode is not None:
            mapping["rrp_mode"] = mode.strip()
        extra: list[Entry] = []
        legacy: list[Entry] = []
        for key, value in totem:
            if key in own or key == mode_key:
                continue
            if key == "ip_version":
                continue
            (legacy if self.generation == 1 and key in _ONLY_1X_TOTEM else extra).append((key, value))
        if ip_version is not None:
            if self.generation < 3 and ip_version in ("ipv4-6", "ipv6-4"):
                extra.append(("ip_version", ip_version))
            else:
                t["ip_version"] = ip_version
        if extra:
            t["extra"] = _extra(extra)
        mapping["totem"] = t
        if legacy:
            mapping.setdefault("legacy_1x", {})["totem"] = _extra(legacy)

    def links(self, mapping: dict[str, Any]) -> dict[int, list[str]]:
        """interface { } sections -> links; 1.x member lists -> addresses per ring."""
        members: dict[int, list[str]] = {}
        links = []
        for interface in sections_named(merged_section(self.entries, "totem"), "interface"):
            number_text = last_value(interface, "linknumber" if self.generation >= 3 else "ringnumber")
            if number_text is None:
                number_text = last_value(interface, "ringnumber") or last_value(interface, "linknumber")
            number = as_int(number_text) if number_text is not None else 0
            link: dict[str, Any] = {"number": number}
            extra: list[Entry] = []
            for key, value in interface:
                if key in ("ringnumber", "linknumber"):
                    continue
                if key == "member" and isinstance(value, list):
                    address = last_value(value, "memberaddr")
                    if address is not None and isinstance(number, int):
                        members.setdefault(number, []).append(address)
                    rest = [(k, v) for k, v in value if k != "memberaddr"]
                    if rest:
                        self.lost.append(f"totem.interface.member: {', '.join(k for k, _ in rest)} "
                                         "(a member holds only memberaddr in the model)")
                    continue
                if isinstance(value, str) and key in _LINK_INTS and key not in link:
                    link[key] = as_int(self.single("totem.interface", interface, key))
                elif isinstance(value, str) and key in ("mcastaddr", "bindnetaddr", "knet_transport") and key not in link:
                    link[key] = self.single("totem.interface", interface, key)
                elif isinstance(value, str) and key == "broadcast" and key not in link:
                    link[key] = yes_no(self.single("totem.interface", interface, key))
                elif key not in link:
                    extra.append((key, value))
            if extra:
                link["extra"] = _extra(extra)
            links.append(link)
        mapping["links"] = links
        return members

    def nodes(self, mapping: dict[str, Any], members: dict[int, list[str]], given: list[NodeOption],
              given_from: str = "--node") -> None:
        nodelists = sections_named(self.entries, "nodelist")
        listed = [n for section in nodelists for k, n in section if k == "node" and isinstance(n, list)]
        for section in nodelists:
            for key, value in section:
                if key != "node":
                    self.lost.append(f"nodelist.{key} (only node sections belong in a nodelist)")
        nodes: list[dict[str, Any]] = []
        multicast = mapping.get("transport") in ("udp", "default") and self.generation < 3
        if listed:
            if given and not multicast:
                raise ClusterFileError(f"{given_from}: the file lists its nodes (nodelist) and is not multicast; "
                                       f"{given_from} is only for the members a multicast file does not list")
            for index, entries in enumerate(listed):
                nodes.append(self.listed_node(index, entries))
            given = self.unlisted(nodes, given, given_from)
            for option in given:
                nodes.append({**_given_node(option), "listed": False})
            self.named_by_address(given, given_from)
            if given:
                self.notes.append(f"nodes: {len(given)} from {given_from}, not in the file's nodelist (multicast "
                                  "members that join unlisted): listed: false, so the nodelist stays as it is")
            elif len(nodes) == 1:
                self.refusals.append(
                    "nodelist: lists only 1 node" + (" (the others of this multicast cluster join without being "
                                                     "listed)" if multicast else "")
                    + "; the runbook must know every node: "
                    + ("give the others with --node NAME=ADDR, or read them from the running cluster with "
                       "--from-nodes HOST" if multicast else "add the others to the nodelist")
                    + ", then migrate again"
                )
            ids: dict[Any, int] = {}
            for index, node in enumerate(nodes):
                if node.get("nodeid") is not None and node["nodeid"] in ids:
                    self.refusals.append(
                        f"nodelist.node[{index}].nodeid: {node['nodeid']} is also node[{ids[node['nodeid']]}]'s; "
                        "Corosync needs a unique id per node: give each node its own nodeid in the file"
                    )
                ids.setdefault(node.get("nodeid"), index)
        elif members:
            rings = sorted(members)
            counts = {len(members[r]) for r in rings}
            if given:
                raise ClusterFileError(f"{given_from}: the file lists its members (member/memberaddr); {given_from} "
                                       "is only for a multicast file without them")
            if rings != list(range(len(rings))) or len(counts) != 1:
                self.refusals.append("totem.interface.member: the rings list different members; every node needs "
                                     "one memberaddr on every ring: make the member lists match")
                return
            for index in range(counts.pop()):
                nodes.append({"address" if len(rings) == 1 else "addresses":
                              members[0][index] if len(rings) == 1 else [members[r][index] for r in rings],
                              "nodeid": None})
            self.notes.append("nodes: from the member lists (1.x names no node: the runbook calls each by its address)")
        elif given:
            nodes.extend(_given_node(option) for option in given)
            self.named_by_address(given, given_from)
            if self.generation >= 2:
                mapping["nodelist"] = False
            self.notes.append(
                f"nodes: from {given_from} (the file has no node list: multicast finds the members at run time); "
                + ("no nodelist is written, as in the file" if self.generation >= 2 else "1.x writes no member list for udp")
            )
        else:
            raise ClusterFileError(
                "the file lists no nodes (a multicast cluster: Corosync finds its members at run time), and the "
                "runbook must know them to reach them: give each with --node NAME=ADDR (or NAME=ADDR0,ADDR1 for "
                "two rings), or read them from the running cluster with --from-nodes HOST[,HOST...] (over SSH)"
            )
        self.primary(nodes, mapping)
        mapping["nodes"] = nodes

    def named_by_address(self, given: list[NodeOption], given_from: str) -> None:
        """A member read from a running cluster that no host and no nodelist names is called by its address."""
        for option in given:
            if given_from == "--from-nodes" and option.name == option.addresses[0]:
                self.notes.append(f"nodes: node id {option.nodeid} is called by its address {option.name} (no "
                                  "--from-nodes host is that member and Corosync shows no name for it): put its "
                                  "hostname as name")

    def unlisted(self, listed: list[dict[str, Any]], given: list[NodeOption], given_from: str) -> list[NodeOption]:
        """The given nodes that are not already in the nodelist (a running cluster's members include them)."""
        firsts = {(n.get("address") or (n.get("addresses") or [None])[0]) for n in listed}
        ids = {n.get("nodeid") for n in listed if n.get("nodeid") is not None}
        kept = []
        for option in given:
            if option.addresses[0] in firsts or (option.nodeid is not None and option.nodeid in ids):
                self.notes.append(f"nodes: {option.name} ({option.addresses[0]}) from {given_from} is in the "
                                  "file's nodelist already: kept as the file lists it")
            else:
                kept.append(option)
        return kept

    def listed_node(self, index: int, entries: list[Entry]) -> dict[str, Any]:
        path = f"nodelist.node[{index}]"
        node: dict[str, Any] = {}
        name = self.single(path, entries, "name")
        if name is not None:
            node["name"] = name
        rings: dict[int, str] = {}
        extra: list[Entry] = []
        for key, value in entries:
            match = re.fullmatch(r"ring([0-9])_addr", key)
            if match and isinstance(value, str):
                rings[int(match.group(1))] = value
            elif key not in ("name", "nodeid", "quorum_votes"):
                extra.append((key, value))
        if not rings:
            self.refusals.append(
                f"{path} ({name or 'no name'}): no ring0_addr; the runbook needs each node's address on every link: "
                "add ring0_addr (an address or a hostname) to every node"
            )
        elif sorted(rings) != list(range(len(rings))):
            self.refusals.append(f"{path}: ring addresses {', '.join(f'ring{r}_addr' for r in sorted(rings))} skip a "
                                 "number; links are numbered from 0 without gaps in the model: renumber them")
        addresses = [rings[r] for r in sorted(rings)]
        if len(addresses) == 1:
            node["address"] = addresses[0]
        elif addresses:
            node["addresses"] = addresses
        nodeid = self.single(path, entries, "nodeid")
        node["nodeid"] = None if nodeid is None else as_int(nodeid)
        if nodeid is not None and nodeid.strip() == "":
            node["nodeid"] = None
            self.lost.append(f"{path}.nodeid: empty (Corosync reads it as unset, and so does the cluster file)")
        votes = self.single(path, entries, "quorum_votes")
        if votes is not None:
            node["quorum_votes"] = as_int(votes)
        if extra:
            node["extra"] = _extra(extra)
        return node

    def primary(self, nodes: list[dict[str, Any]], mapping: dict[str, Any]) -> None:
        """The node whose address is ring 0's bindnetaddr makes the authkey (it is this file's node)."""
        bind = next((link.get("bindnetaddr") for link in mapping["links"] if link.get("number") == 0), None)
        if bind is None:
            return
        for node in nodes:
            first = node.get("address") or (node.get("addresses") or [None])[0]
            if first == bind:
                node["role"] = "primary"
                if self.generation == 1:  # 1.x writes each node's own address there when the link sets none
                    for link in mapping["links"]:
                        if link.get("number") == 0:
                            del link["bindnetaddr"]
                    self.notes.append(f"links[0].bindnetaddr: {bind} is {node.get('name') or first}'s own address: "
                                      "left unset, so each node's file binds to its own (the 1.x rule)")
                self.notes.append(f"role: primary is {node.get('name') or first}, whose address is this file's "
                                  f"bindnetaddr ({bind})")
                return

    def quorum(self, mapping: dict[str, Any]) -> None:
        quorum = merged_section(self.entries, "quorum")
        q: dict[str, Any] = {}
        provider = self.single("quorum", quorum, "provider")
        if provider is not None:
            q["provider"] = provider
        elif self.generation >= 2:
            q["provider"] = "none"  # the file has no quorum provider: none is written
        for key in ("two_node", "wait_for_all", "last_man_standing", "auto_tie_breaker"):
            value = self.single("quorum", quorum, key)
            if value is not None:
                q[key] = yes_no(value)
        for key in ("last_man_standing_window", "expected_votes"):
            value = self.single("quorum", quorum, key)
            if value is not None:
                q[key] = as_int(value)
        node = self.single("quorum", quorum, "auto_tie_breaker_node")
        if node is not None:
            q["auto_tie_breaker_node"] = node
        devices = sections_named(quorum, "device")
        if devices:
            q["device"] = self.device([pair for d in devices for pair in d])
        own = ("provider", "two_node", "wait_for_all", "last_man_standing", "auto_tie_breaker",
               "last_man_standing_window", "expected_votes", "auto_tie_breaker_node", "device")
        extra = [(k, v) for k, v in quorum if k not in own]
        if extra:
            q["extra"] = _extra(extra)
        mapping["quorum"] = q

    def device(self, entries: list[Entry]) -> dict[str, Any]:
        device: dict[str, Any] = {}
        model = self.single("quorum.device", entries, "model")
        if model is not None:
            device["model"] = model
        for key in ("votes", "timeout", "sync_timeout"):
            value = self.single("quorum.device", entries, key)
            if value is not None:
                device[key] = as_int(value)
        nets = [pair for n in sections_named(entries, "net") for pair in n]
        if nets:
            net: dict[str, Any] = {}
            own = [f for f in NetDevice.__dataclass_fields__ if f != "extra"]
            for key in own:
                value = self.single("quorum.device.net", nets, key)
                if value is not None:
                    net[key] = as_int(value) if key in ("port", "connect_timeout", "force_ip_version") else value
            extra = [(k, v) for k, v in nets if k not in own]
            if extra:
                net["extra"] = _extra(extra)
            device["net"] = net
        heuristics = [pair for h in sections_named(entries, "heuristics") for pair in h]
        if heuristics:
            device["heuristics"] = _extra(heuristics)
        own_device = [f for f in QuorumDevice.__dataclass_fields__ if f not in ("extra",)]
        extra = [(k, v) for k, v in entries if k not in own_device]
        if extra:
            device["extra"] = _extra(extra)
        return device

    def logging(self, mapping: dict[str, Any]) -> None:
        logging = merged_section(self.entries, "logging")
        lg: dict[str, Any] = {}
        for key in ("to_syslog", "to_stderr", "to_logfile"):
            value = self.single("logging", logging, key)
            if value is not None:
                lg[key] = yes_no(value)
        for key, word in (("debug", "trace"), ("timestamp", "hires")):
            value = self.single("logging", logging, key)
            if value is not None:
                lg[key] = word if value.strip().lower() == word else yes_no(value)
        logfile = self.single("logging", logging, "logfile")
        if logfile is not None:
            lg["logfile"] = logfile
        own = ("to_syslog", "to_stderr", "to_logfile", "debug", "timestamp", "logfile")
        extra = [(k, v) for k, v in logging if k not in own]
        if extra:
            lg["extra"] = _extra(extra)
        mapping["logging"] = lg

    def others(self, mapping: dict[str, Any]) -> None:
        """Top-level sections and keys the model does not hold: verbatim (1.x-only ones in legacy_1x)."""
        extra: list[Entry] = []
        legacy: list[Entry] = []
        plugin = False
        for key, value in self.entries:
            if key in ("totem", "nodelist", "quorum", "logging"):
                continue
            if (key == "service" and isinstance(value, list) and self.generation == 1 and not plugin
                    and last_value(value, "name") == "pacemaker" and last_value(value, "ver") == "0" and len(value) == 2):
                plugin = True
                continue
            (legacy if self.generation == 1 and key in _ONLY_1X_TOP else extra).append((key, value))
        mapping["pacemaker_plugin"] = plugin
        if extra:
            mapping["extra"] = _extra(extra)
        if legacy:
            mapping.setdefault("legacy_1x", {}).update(_extra(legacy))


def _given_node(option: NodeOption) -> dict[str, Any]:
    """A --node / --from-nodes member as a cluster-file node (its node id when the running cluster told it)."""
    node: dict[str, Any] = {"name": option.name, "nodeid": option.nodeid}
    if len(option.addresses) == 1:
        node["address"] = option.addresses[0]
    else:
        node["addresses"] = list(option.addresses)
    return node
