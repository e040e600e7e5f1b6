"""Reload or restart, decided from the change: what a new corosync.conf takes on a running cluster.

Corosync's wiki ("Config file values") sorts its options in four kinds: not changeable at run time
and the same on every node (restart every node), not changeable at run time and local (restart that
node), changeable at run time and the same on every node (copy to all, then `corosync-cfgtool -R`),
changeable at run time and local. The table below (`RULES`) is that sort, checked against Corosync's
source at v2.4.6 and v3.1.7 rather than taken from the wiki, and the keys step 06 relies on are
checked again on real 3.1.7 daemons (tests/lab/test_reload_kinds.py). Each rule names the function
that decides it. The kinds, in rising order of cost:

- `NOTHING`: the running map already has the file's values.
- `RELOAD`: `corosync-cfgtool -R`, once, after every node has its new file. It reloads every node
  (the request goes round the ring: exec/cfg.c message_handler_req_exec_cfg_reload_config).
- `ROLLING_RESTART`: read only at start, and nodes may differ for a while: one node at a time,
  waiting for full membership and quorum before the next.
- `RESTART_ALL`: read only at start and nodes that differ cannot work together (cluster_name,
  transport, ip_version, crypto before 3.1, ports, a node's address): stop every node, then start.
- `START`: Corosync does not run on the node (a new node): it starts with its file.

Corosync 1.x has no `-R` and reads corosync.conf only when it starts: every change there is a
restart (a reload kind becomes a rolling restart; `corosync-objctl -w` could set some totem values at
run time, but it does not read the file, so the runbook does not use it).

A key the table does not know is restarted one node at a time: the safe choice that still keeps
quorum, because the roll stops at the first node that does not rejoin.

Pure: the input is each node's running keys (runbook.conf.running, from cmap; None where Corosync
does not run) and each node's new file's keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from runbook.conf.running import CS_OK, Difference, differences, links, node_entries, reload_status, same_value, without_nodes


class Kind(IntEnum):
    """In rising order of cost; START stands apart (a node with no Corosync running)."""

    NOTHING = 0
    RELOAD = 1
    ROLLING_RESTART = 2
    RESTART_ALL = 3
    START = 4

    @property
    def words(self) -> str:
        return {
            Kind.NOTHING: "nothing",
            Kind.RELOAD: "reload",
            Kind.ROLLING_RESTART: "rolling restart",
            Kind.RESTART_ALL: "restart all nodes together",
            Kind.START: "start",
        }[self]


@dataclass(frozen=True)
class Rule:
    """What a change of the keys matching `pattern` takes, per generation (None: not a key there)."""

    pattern: str
    gen2: Kind | None
    gen3: Kind | None
    why: str
    source: str
    copied: bool = False  # a reload copies the new value into cmap without applying it
    reload_from: tuple[int, int] | None = None  # 3.x: a reload applies it from this version on

    def kind(self, generation: int, version: tuple[int, ...] | None) -> Kind | None:
        kind = self.gen3 if generation == 3 else self.gen2
        if kind is not None and generation == 3 and self.reload_from is not None:
            if version is not None and tuple(version[:2]) >= self.reload_from:
                return Kind.RELOAD
        return kind


R, ROLL, ALL = Kind.RELOAD, Kind.ROLLING_RESTART, Kind.RESTART_ALL

_VOLATILE = "totemconfig.c totem_volatile_config_read, run after a reload (v2.4.6 totem_reload_notify; v3.1.7 cfg.c message_handler_req_exec_cfg_reload_config)"
_RO = "cfg.c remove_ro_entries: a reload drops the new value and logs 'cannot be changed at run-time' (v2.4.6, v3.1.7)"
_IFACE = ("read only at start: v2.4.6 reloads no interface section; v3.1.7 get_interface_params(reload=1) reads "
          "mcastport/ttl only for a new link and bindnetaddr/mcastaddr/broadcast never, while cfg.c copies the key into cmap")
_QUORUM_START = "votequorum.c votequorum_readconfig: read only when not runtime (v2.4.6, v3.1.7); cfg.c copies the key into cmap"

RULES: tuple[Rule, ...] = (
    # totem: timings a reload applies
    Rule(r"totem\.(token|token_coefficient|token_retransmit|hold|token_retransmits_before_loss_const|join|send_join|consensus"
         r"|merge|downcheck|fail_recv_const|seqno_unchanged_const|heartbeat_failures_allowed|max_network_delay|window_size"
         r"|max_messages|miss_count_const|block_unlisted_ips|cancel_token_hold_on_retransmit)",
         R, R, "a totem timing: the reload re-reads it into the running totem config (runtime.config.totem.*)", _VOLATILE),
    Rule(r"totem\.(rrp_token_expired_timeout|rrp_problem_count_timeout|rrp_problem_count_threshold"
         r"|rrp_problem_count_mcast_threshold|rrp_autorecovery_check_timeout)",
         R, None, "a redundant-ring timing of 2.x: re-read on reload", _VOLATILE),
    Rule(r"totem\.(token_warning|knet_pmtud_interval|knet_mtu|knet_compression_threshold|knet_compression_level"
         r"|knet_compression_model)",
         None, R, "re-read on reload; knet takes it in totemknet_refresh_config / totemknet_reconfigure", _VOLATILE),
    Rule(r"totem\.config_version", R, R,
         "cmap.c tracks it; a node that joins with another config_version than the others exits (cmap_sync_activate), "
         "so it is reloaded on every node before any restart", "cmap.c cmap_config_version_track_cb, cmap_sync_activate"),
    # totem: what a reload refuses
    Rule(r"totem\.cluster_name", ALL, ALL,
         "not changeable at run time; Pacemaker and DLM take the cluster's name from it, and udp derives its multicast address "
         "from it (totemconfig.c get_cluster_mcast_addr)", _RO),
    Rule(r"totem\.transport", ALL, ALL, "nodes on different transports cannot talk", _RO),
    Rule(r"totem\.ip_version", ALL, ALL, "decides how every node's address resolves", _RO),
    Rule(r"totem\.version", ALL, ALL, "the protocol version (2 is the only one)", _RO),
    Rule(r"totem\.rrp_mode", ALL, ALL, "the redundant ring protocol of every node", _RO),
    Rule(r"totem\.netmtu", ALL, ALL, "the totem frame size: a node with a larger one sends frames the others cannot take", _RO),
    Rule(r"totem\.vsftype", ALL, None, "the virtual synchrony filter of every node", _RO),
    Rule(r"totem\.threads", ROLL, ROLL, "this node's encryption threads", _RO),
    Rule(r"totem\.(secauth|crypto_cipher|crypto_hash)", ALL, ALL,
         "nodes with different crypto cannot read each other; 3.1 and later reload it (knet holds two crypto configs and "
         "switches every node over: cfg.c message_handler_req_exec_cfg_reconfig_crypto)",
         _RO + "; v3.1.7 only #ifndef HAVE_KNET_CRYPTO_RECONF (libknet >= 1.18)", reload_from=(3, 1)),
    Rule(r"totem\.(keyfile|key|crypto_model)", ALL, ALL,
         "the key or crypto model of every node; 3.1 and later reload it (totem_reread_crypto_config)",
         "v2.4.6: read at start only (totem_config_keyread), copied into cmap; v3.1.7: cfg.c remove_ro_entries #ifndef "
         "HAVE_KNET_CRYPTO_RECONF", copied=True, reload_from=(3, 1)),
    Rule(r"totem\.(nodeid|link_mode)", ROLL, ROLL,
         "this node's own id / how it spreads traffic over its links: read at start only", "totemconfig.c totem_config_read "
         "(not in totemconfig_configure_new_params); cfg.c copies the key into cmap", copied=True),
    Rule(r"totem\.clear_node_high_bit", ALL, ALL, "changes the node ids every node derives", "totemconfig.c totem_config_read; "
         "cfg.c copies the key into cmap", copied=True),
    # totem.interface.N
    Rule(r"totem\.interface\.\d+\.(mcastport|mcastaddr|broadcast)", ALL, ALL,
         "where every node sends and listens: a reload keeps the old port (seen on 3.1.7: cmap shows the new one, the "
         "socket stays), and nodes on different ports cannot talk", _IFACE + "; totemknet.c totemknet_iface_set", copied=True),
    Rule(r"totem\.interface\.\d+\.(bindnetaddr|ttl)", ROLL, ROLL, "this node's own interface / multicast hop limit",
         _IFACE, copied=True),
    Rule(r"totem\.interface\.\d+\.(knet_link_priority|knet_ping_interval|knet_ping_timeout|knet_ping_precision|knet_pong_count)",
         None, R, "a knet link setting: re-read on reload and set on every link",
         "v3.1.7 totemconfig.c get_interface_params(reload=1), calc_knet_ping_timers; totemknet.c totemknet_refresh_config"),
    Rule(r"totem\.interface\.\d+\.knet_transport", None, ALL,
         "a reload that changes it fails as a whole ('To reconfigure an interface it must be deleted and recreated')",
         "v3.1.7 totemconfig.c check_things_have_not_changed"),
    Rule(r"totem\.interface\.\d+\.member(\.memberaddr)?", ROLL, ROLL,
         "a udpu member list (without a nodelist): read at start; the others keep talking while each node restarts",
         "v2.4.6 totemconfig.c get_interface_params (start only); v3.1.7 ignores it when there is a nodelist"),
    # quorum
    Rule(r"quorum\.provider", ALL, ALL, "the quorum provider of every node", _RO),
    Rule(r"quorum\.(two_node|expected_votes)", R, R,
         "votequorum re-reads it on reload and sends the new expected votes to the others",
         "votequorum.c votequorum_refresh_config -> votequorum_readconfig(VOTEQUORUM_READCONFIG_RUNTIME) (v2.4.6, v3.1.7)"),
    Rule(r"quorum\.device\.votes", R, R, "the quorum device's votes, re-read on reload",
         "votequorum.c votequorum_readconfig(runtime) -> votequorum_qdevice_is_configured"),
    Rule(r"quorum\.(wait_for_all|last_man_standing|last_man_standing_window|auto_tie_breaker|auto_tie_breaker_node"
         r"|allow_downscale|expected_votes_tracking)", ROLL, ROLL,
         "this node's quorum policy, read at start only (seen on 3.1.7: wait_for_all in cmap after a reload, not in force)",
         _QUORUM_START, copied=True),
    Rule(r"quorum\.device\..+", ROLL, R,
         "3.x: votequorum re-reads whether a device is configured on reload, and corosync-qdevice follows the map "
         "(seen in the lab: a device added to a running 2-node cluster by reload gives 3 votes, no restart); "
         "2.x: not checked, so the safe choice",
         "votequorum.c votequorum_readconfig(runtime) -> votequorum_qdevice_is_configured (v3.1.7); tests/lab/test_quorum_device.py"),
    # logging, uidgid, nozzle, system
    Rule(r"logging\..+", R, R, "logging is set again from cmap when the reload ends",
         "logconfig.c main_logging_notify -> corosync_main_config_read_logging (v2.4.6, v3.1.7)"),
    Rule(r"uidgid\.config\..+", R, R, "who may connect: looked up in cmap at each connection",
         "cfg.c remove_deleted_entries('uidgid.config.'); ipc_glue.c cs_ipcs_connection_accept (v2.4.6, v3.1.7)"),
    Rule(r"nozzle\..+", None, R, "the nozzle device is set up again after a reload",
         "v3.1.7 cfg.c remove_deleted_entries('nozzle.'); totemknet.c totemknet_reconfigure -> setup_nozzle"),
    Rule(r"system\..+", ROLL, ROLL, "this node's process settings (scheduling, IPC, state dir): read at start only",
         "v3.1.7 cfg.c remove_ro_entries (system.*); v2.4.6 main.c reads them at start, cfg.c copies them", copied=True),
)

_COMPILED = tuple((re.compile(rule.pattern), rule) for rule in RULES)


def _default(key: str, generation: int) -> str | None:
    """The value Corosync uses when the file sets none: setting it explicitly changes nothing."""
    match = re.fullmatch(r"totem\.interface\.(\d+)\.(mcastport|ttl)", key)
    if match:
        if match.group(2) == "ttl":
            return "1"
        return str(5405 + int(match.group(1))) if generation == 3 else "5405"  # DEFAULT_PORT (+ link number on 3.x)
    if key == "totem.transport":
        return {2: "udp", 3: "knet"}.get(generation)
    return None


def rule_for(key: str) -> Rule | None:
    """The table's rule for a flat key, or None when the table does not know it."""
    return next((rule for pattern, rule in _COMPILED if pattern.fullmatch(key)), None)


def kind_of(key: str, generation: int, version: tuple[int, ...] | None = None) -> tuple[Kind, str]:
    """What a change of `key` takes on `generation`, and why (in words a plan can show)."""
    rule = rule_for(key)
    kind = rule.kind(generation if generation != 1 else 2, version) if rule else None
    if kind is None:
        kind, why = ROLL, "not in the table of what a reload applies: the safe choice, one node at a time"
    else:
        why = rule.why
        if rule.reload_from and generation == 3 and kind is not R:
            shown = "unknown" if version is None else ".".join(map(str, version))
            why += f" (this node's Corosync: {shown})"
    if generation == 1 and kind is R:
        kind, why = ROLL, why + "; Corosync 1.x has no corosync-cfgtool -R and reads its file only at start"
    return kind, why


@dataclass(frozen=True)
class Change:
    """One setting that differs, what it takes, and why."""

    key: str
    running: str | None
    wanted: str | None
    kind: Kind
    why: str

    def __str__(self) -> str:
        return f"{Difference(self.key, self.running, self.wanted)} ({self.kind.words}: {self.why})"


@dataclass(frozen=True)
class NodeDecision:
    """What one node's new file takes: the kind, the changes (those of that kind force it) and notes."""

    node: str
    kind: Kind
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()  # keys a past reload may have copied into cmap without applying

    @property
    def forcing(self) -> tuple[Change, ...]:
        """The changes that make it this kind (for a restart forced by another node: none of its own)."""
        return tuple(c for c in self.changes if c.kind == self.kind)


@dataclass(frozen=True)
class Plan:
    """What to do, in order: files on every node, then one reload, then restarts, then starts.

    The reload goes first so that nodes which stay running take a new nodelist and config_version
    before any node restarts (a node that comes back with another config_version than the running
    ones exits). A reload also copies restart-only keys into cmap without applying them: if the
    restarts after it are cut short, cmap on the nodes not yet restarted shows them as if applied
    (`NodeDecision.unverified` lists them on the next read).
    """

    generation: int
    nodes: tuple[NodeDecision, ...]
    reload: bool = False
    rolling: tuple[str, ...] = ()
    restart_all: tuple[str, ...] = ()
    start: tuple[str, ...] = ()

    @property
    def stops_cluster(self) -> bool:
        """True when every running node is stopped at once: the plan must say so and run must be told."""
        return bool(self.restart_all)

    def node(self, name: str) -> NodeDecision:
        return next(d for d in self.nodes if d.node == name)

    def lines(self) -> list[str]:
        """The plan in words: per node the kind and the keys that force it."""
        out = []
        for decision in self.nodes:
            keys = ", ".join(str(Difference(c.key, c.running, c.wanted)) for c in decision.forcing)
            out.append(f"{decision.node}: {decision.kind.words}" + (f" ({keys})" if keys else ""))
            out += [f"  {note}" for note in decision.notes]
        if self.stops_cluster:
            out.append(f"this stops the whole cluster: {', '.join(self.restart_all)} stop, then start together")
        if self.reload:
            out.append("corosync-cfgtool -R once, after every node has its new file (it reloads every node)")
        return out


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """`Corosync 3.1.7` / `3.1.7` -> (3, 1, 7); None when there is no version in it."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def decide(
    running: Mapping[str, Mapping[str, str] | None],
    wanted: Mapping[str, Mapping[str, str]],
    generation: int,
    version: tuple[int, ...] | str | None = None,
) -> Plan:
    """Per node of the new file: what its new keys take, given what each node runs.

    `running[node]` is None where Corosync does not run. A change that needs every node restarted
    together on any node restarts every running node together; a reload is one for the whole cluster.
    A node in `running` but not in `wanted` (removed from the cluster file) is not decided here: the
    nodes that stay see its removal in their nodelist.
    """
    if generation not in (1, 2, 3):
        raise ValueError(f"generation {generation!r}: expected 1, 2 or 3")
    version = parse_version(version) if isinstance(version, str) else version
    decisions = []
    for node, keys in wanted.items():
        current = running.get(node)
        if current is None:
            decisions.append(NodeDecision(node, Kind.START, notes=("Corosync does not run there: it starts with the new file",)))
            continue
        decisions.append(_node(node, current, keys, generation, version))
    restart_all = tuple(d.node for d in decisions if d.kind == ALL)
    if restart_all:
        forced_by = "; ".join(f"{d.node}: {', '.join(c.key for c in d.forcing)}" for d in decisions if d.kind == ALL)
        decisions = [
            d if d.kind in (ALL, Kind.START) else NodeDecision(
                d.node, ALL, d.changes, d.notes + (f"restarted with the others, forced by {forced_by}",), d.unverified)
            for d in decisions
        ]
        restart_all = tuple(d.node for d in decisions if d.kind == ALL)
    return Plan(
        generation=generation,
        nodes=tuple(decisions),
        reload=not restart_all and any(c.kind == R for d in decisions for c in d.changes),
        rolling=tuple(d.node for d in decisions if d.kind == ROLL),
        restart_all=restart_all,
        start=tuple(d.node for d in decisions if d.kind == Kind.START),
    )


def _node(node: str, running: Mapping[str, str], wanted: Mapping[str, str], generation: int,
          version: tuple[int, ...] | None) -> NodeDecision:
    changes = _flat_changes(running, wanted, generation, version)
    if generation != 1:
        changes += _node_changes(running, wanted, generation)
    notes: list[str] = []
    kind = max((c.kind for c in changes), default=Kind.NOTHING)
    status = reload_status(running)
    if status is not None and status != CS_OK:
        notes.append(f"its last reload failed (config.reload_status {status}): cmap no longer says what runs, so it restarts")
        kind = max(kind, ROLL)
    unverified: tuple[str, ...] = ()
    if status is not None:
        unverified = tuple(sorted(k for k in running if (r := rule_for(k)) is not None and r.copied and k in wanted))
    return NodeDecision(node, kind, tuple(changes), tuple(notes), unverified)


def _flat_changes(running: Mapping[str, str], wanted: Mapping[str, str], generation: int,
                  version: tuple[int, ...] | None) -> list[Change]:
    added, removed = _link_changes(running, wanted)
    changes = []
    for diff in differences(without_nodes(running), without_nodes(wanted), generation):
        default = _default(diff.key, generation)
        if default is not None and same_value(diff.running or default, diff.wanted or default):
            continue
        link = re.match(r"totem\.interface\.(\d+)\.", diff.key)
        if link and int(link.group(1)) in added | removed:
            kind, why = _link_kind(int(link.group(1)) in added, generation)
        else:
            kind, why = kind_of(diff.key, generation, version)
        changes.append(Change(diff.key, diff.running, diff.wanted, kind, why))
    return changes


def _link_changes(running: Mapping[str, str], wanted: Mapping[str, str]) -> tuple[set[int], set[int]]:
    have, want = links(running), links(wanted)
    return want - have, have - want


def _link_kind(added: bool, generation: int) -> tuple[Kind, str]:
    what = "a link added" if added else "a link removed"
    if generation == 3:
        return R, (f"{what}: knet adds and removes links on reload (v3.1.7 totemconfig.c put_nodelist_members_to_config, "
                   "totemconfig_commit_new_params -> compute_and_set_totempg_interfaces)")
    return ALL, f"{what}: 2.x fixes its ring count at start (v2.4.6 put_nodelist_members_to_config loops over interface_count)"


def _label(entry: Mapping[str, str]) -> str:
    return " ".join(f"{k}={entry[k]}" for k in sorted(entry))


def match_nodes(wanted_nodes: Sequence[dict[str, str]], running_nodes: Sequence[dict[str, str]]) -> list[tuple[int | None, int | None]]:
    """Pairs of (wanted index, running index) for the same node: by name, else ring0_addr, else nodeid.

    By name first, as the operator knows nodes: a node that keeps its name under another nodeid is
    that node with a changed id (the cluster file's default nodeid is its position, so removing a
    node from the middle renumbers the ones after it), not another node at a changed address.
    """
    pairs: list[tuple[int | None, int | None]] = []
    free = list(range(len(running_nodes)))
    for i, w in enumerate(wanted_nodes):
        found = next((j for key in ("name", "ring0_addr", "nodeid") if key in w
                      for j in free if same_value(running_nodes[j].get(key), w[key])), None)
        if found is not None:
            free.remove(found)
        pairs.append((i, found))
    return pairs + [(None, j) for j in free]


_NODELIST = "v2.4.6 totemconfig.c put_nodelist_members_to_config(reload) -> compute_interfaces_diff; v3.1.7 totemconfig_commit_new_params -> compute_and_set_totempg_interfaces"


def _node_changes(running: Mapping[str, str], wanted: Mapping[str, str], generation: int) -> list[Change]:
    """The nodelist compared node by node (Corosync renumbers nodes when one is removed)."""
    have, want = node_entries(running), node_entries(wanted)
    changes = []
    for i, j in match_nodes(want, have):
        if i is None:
            assert j is not None
            changes.append(Change(f"nodelist.node.{j}", _label(have[j]), None, R,
                                  f"a node removed from the nodelist: the others drop it on reload ({_NODELIST})"))
            continue
        if j is None:
            changes.append(Change(f"nodelist.node.{i}", None, _label(want[i]), R,
                                  f"a node added to the nodelist: the others add it on reload ({_NODELIST}); votequorum counts its votes"))
            continue
        w, r = want[i], have[j]
        for key in sorted(set(w) | set(r)):
            a, b = r.get(key), w.get(key)
            if same_value(a, b) or (key == "nodeid" and b is None):  # a nodeid Corosync generated (udp/udpu)
                continue
            ring = re.fullmatch(r"ring(\d+)_addr", key)
            if ring and a is not None and b is not None:
                kind, why = ALL, ("an existing node's address changes: 3.x refuses the whole reload (v3.1.7 totemconfig.c "
                                  "check_things_have_not_changed); 2.x binds its own address at start")
            elif ring:
                kind, why = _link_kind(a is None, generation)
            elif key == "nodeid":
                kind, why = ALL, "a node's id changes: every node knows it by its id (knet host id, votequorum)"
            elif key in ("name", "quorum_votes"):
                kind, why = R, ("re-read on reload: names find the local node (totemconfig.c find_local_node), "
                                "votes go to votequorum (votequorum_read_nodelist_configuration)")
            else:
                kind, why = kind_of(f"nodelist.node.{i}.{key}", generation)
            changes.append(Change(f"nodelist.node.{i}.{key}", a, b, kind, why))
    return changes


__all__ = ["Change", "Kind", "NodeDecision", "Plan", "RULES", "Rule", "decide", "kind_of", "parse_version", "rule_for"]
