"""The cluster model's types: what a Corosync cluster is, per generation, as the runbook holds it.

Loading and validation live in `model/rules.py` (and `model/load.py` for files); this module only says what a
validated cluster looks like. Field names are Corosync's own where Corosync has one, so the cluster
file reads like corosync.conf. A field left at None means "Corosync's own default for the generation"
(see `COROSYNC_DEFAULTS`): the render writes nothing for it. Keys the model does not know are carried
verbatim in an `extra` of their section, so nothing a real file holds is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from runbook.errors import ClusterFileError
from runbook.model.backups import Backups

GENERATIONS: tuple[int, ...] = (1, 2, 3)
# auto: the runbook's choice (udpu on 1/2, knet on 3), written; default: Corosync's own (udp on 1/2,
# knet on 3), not written.
TRANSPORTS: tuple[str, ...] = ("auto", "default", "udpu", "udp", "knet")
# auto: off on 1, on on 2, on on 3 with knet (written); default: write no crypto key at all.
FIREWALL_MODES: tuple[str, ...] = ("check", "manage")  # not Corosync: what the runbook does about each node's firewall
CRYPTO_MODES: tuple[str, ...] = ("auto", "default", "on", "off")
RRP_MODES: tuple[str, ...] = ("none", "passive", "active", "rr")  # rr: knet's round robin, 3.x only
CIPHERS: tuple[str, ...] = ("none", "aes256", "aes192", "aes128", "3des")
HASHES: tuple[str, ...] = ("none", "md5", "sha1", "sha256", "sha384", "sha512")
CRYPTO_MODELS: tuple[str, ...] = ("nss", "openssl")
IP_VERSIONS: tuple[str, ...] = ("ipv4", "ipv6", "ipv4-6", "ipv6-4")
KNET_TRANSPORTS: tuple[str, ...] = ("udp", "sctp", "loopback")
MAX_LINKS = {1: 2, 2: 2, 3: 8}  # rings on 1.x/2.x (RRP), knet links on 3.x
MAX_NODEID = 2**32 - 1  # corosync node ids are unsigned 32-bit; 0 is reserved
KNET_MAX_NODEID = 65535  # knet host ids are 16-bit
MAX_NODES = 64  # a sanity cap of this runbook, far above real Corosync clusters

# Corosync's own defaults per generation (man corosync.conf / votequorum of 1.4, 2.4 and 3.1), for the
# keys the model holds. None: no default (not set unless written). "1.2 x token" is computed.
COROSYNC_DEFAULTS: dict[str, dict[int, Any]] = {
    "totem.token": {1: 1000, 2: 1000, 3: 3000},
    "totem.token_retransmits_before_loss_const": {1: 4, 2: 4, 3: 4},
    "totem.join": {1: 50, 2: 50, 3: 50},
    "totem.consensus": {1: "1.2 x token", 2: "1.2 x token", 3: "1.2 x token"},
    "totem.max_messages": {1: 17, 2: 17, 3: 17},
    "totem.transport": {1: "udp", 2: "udp", 3: "knet"},
    "totem.secauth": {1: "on", 2: "on", 3: None},
    "totem.crypto_cipher": {1: None, 2: "none (aes256 when secauth is on)", 3: "none"},
    "totem.crypto_hash": {1: None, 2: "none (sha1 when secauth is on)", 3: "none"},
    "totem.crypto_model": {1: None, 2: None, 3: "nss"},
    "totem.ip_version": {1: "ipv4", 2: "ipv4", 3: "ipv6-4"},
    "totem.rrp_mode": {1: "none", 2: "none", 3: None},
    "totem.link_mode": {1: None, 2: None, 3: "passive"},
    "interface.mcastport": {1: 5405, 2: 5405, 3: "5405 + link number"},  # 3.1.7 exec/totemconfig.c: knet link N
    "quorum.provider": {1: None, 2: None, 3: None},
    "quorum.two_node": {1: 0, 2: 0, 3: 0},
    "quorum.wait_for_all": {1: 0, 2: "0 (1 with two_node)", 3: "0 (1 with two_node)"},
    "quorum.last_man_standing": {1: 0, 2: 0, 3: 0},
    "quorum.last_man_standing_window": {1: 10000, 2: 10000, 3: 10000},
    "quorum.auto_tie_breaker": {1: 0, 2: 0, 3: 0},
    "quorum.auto_tie_breaker_node": {1: "lowest", 2: "lowest", 3: "lowest"},
    "nodelist.node.quorum_votes": {1: 1, 2: 1, 3: 1},
    "logging.to_syslog": {1: "yes", 2: "yes", 3: "yes"},
    "logging.to_stderr": {1: "yes", 2: "yes", 3: "yes"},  # man: "The default is syslog and stderr"
    "logging.to_logfile": {1: "no", 2: "no", 3: "no"},
    "logging.debug": {1: "off", 2: "off", 3: "off"},
    "logging.timestamp": {1: "off", 2: "off", 3: "off"},
}

# Field metadata: a runbook-only key that papermill parameters carry only when it is set.
OMIT_UNSET = "omit_unset"

# A verbatim value: text, or a section (ordered pairs, a key may repeat as Corosync allows).
ExtraValue = Union[str, "Extra"]
Extra = tuple[tuple[str, ExtraValue], ...]


def extra_to_yaml(extra: Extra) -> dict[str, Any]:
    """The YAML/JSON shape of an `extra`: a mapping; a repeated key becomes a list of its values."""
    counts: dict[str, int] = {}
    for key, _ in extra:
        counts[key] = counts.get(key, 0) + 1
    result: dict[str, Any] = {}
    for key, value in extra:
        shown = extra_to_yaml(value) if isinstance(value, tuple) else value
        if counts[key] > 1:
            result.setdefault(key, []).append(shown)
        else:
            result[key] = shown
    return result


def extra_get(extra: Extra, key: str) -> ExtraValue | None:
    """The last value of `key` in an extra (Corosync: the last one wins), or None."""
    found = [v for k, v in extra if k == key]
    return found[-1] if found else None


@dataclass(frozen=True)
class Node:
    """One cluster member: its addresses (one per link), its Corosync node id, its votes.

    `name` is how the runbook calls the node; `named` says whether corosync.conf carries it as
    nodelist `name:` (a file may name no node: then the runbook calls it by its first address).
    `nodeid` None: the file fixes none (Corosync 2.x derives it from the IPv4 address).
    """

    name: str
    address: str
    nodeid: int | None
    role: str | None = None
    addresses: tuple[str, ...] = ()
    named: bool = True
    quorum_votes: int | None = None
    extra: Extra = ()
    listed: bool = True  # in the nodelist; false: a multicast member that joins without being listed

    def __post_init__(self) -> None:
        if not self.addresses:
            object.__setattr__(self, "addresses", (self.address,))

    @property
    def is_primary(self) -> bool:
        """The primary makes the authkey (chapter: `corosync-keygen` on the primary node)."""
        return self.role == "primary"


@dataclass(frozen=True)
class Link:
    """Options of one link (knet, 3.x) or ring (1.x/2.x): one `interface { }` section of totem."""

    number: int = 0
    mcastport: int | None = None
    mcastaddr: str | None = None
    bindnetaddr: str | None = None  # None on 1.x: each node's own address on this ring (the chapter's way)
    broadcast: bool | None = None
    ttl: int | None = None
    knet_link_priority: int | None = None
    knet_transport: str | None = None
    knet_ping_interval: int | None = None
    knet_ping_timeout: int | None = None
    knet_ping_precision: int | None = None
    knet_pong_count: int | None = None
    extra: Extra = ()


@dataclass(frozen=True)
class Totem:
    """totem { } keys the model holds; None = Corosync's default for the generation (not written)."""

    token: int | None = None
    token_retransmits_before_loss_const: int | None = None
    join: int | None = None
    consensus: int | None = None
    max_messages: int | None = None
    port: int | None = None  # the runbook's older name for link 0's mcastport; kept for old cluster files
    crypto_cipher: str | None = None
    crypto_hash: str | None = None
    crypto_model: str | None = None
    secauth: bool | None = None
    ip_version: str | None = None
    extra: Extra = ()


@dataclass(frozen=True)
class Logging:
    """logging { } keys the model holds; None = Corosync's default (not written)."""

    to_syslog: bool | None = None
    to_stderr: bool | None = None
    to_logfile: bool | None = None
    logfile: str | None = None
    debug: bool | str | None = None  # true/false, or 'trace' (2.x/3.x)
    timestamp: bool | str | None = None  # true/false, or 'hires' (3.x)
    extra: Extra = ()


@dataclass(frozen=True)
class NetDevice:
    """quorum.device.net { }: where corosync-qnetd runs and how it decides.

    `name` is the runbook's own (never written): how it reaches the qnetd host over SSH to install
    corosync-qnetd and sign the cluster's certificate, as `nodes[].name` is for a node (None: `host`).
    """

    host: str
    name: str | None = None
    port: int | None = None
    algorithm: str | None = None  # ffsplit | lms
    tls: str | None = None  # on | off | required
    tie_breaker: str | None = None  # lowest | highest | a node id
    connect_timeout: int | None = None
    force_ip_version: int | None = None
    extra: Extra = ()


@dataclass(frozen=True)
class QuorumDevice:
    """quorum.device { }: a quorum device (model net: corosync-qdevice talking to corosync-qnetd)."""

    model: str | None = None  # net, the only model; written when the file sets it
    votes: int | None = None
    timeout: int | None = None
    sync_timeout: int | None = None
    net: NetDevice | None = None
    heuristics: Extra = ()  # carried verbatim (mode, interval, exec_NAME: command ...)
    extra: Extra = ()


@dataclass(frozen=True)
class Quorum:
    """quorum { } (votequorum). two_node None: the runbook's choice (1 for 2 nodes without a device)."""

    provider: str | None = None  # None: corosync_votequorum on 2.x/3.x (the runbook's), none on 1.x; "none": not written
    two_node: bool | None = None
    wait_for_all: bool | None = None
    last_man_standing: bool | None = None
    last_man_standing_window: int | None = None
    auto_tie_breaker: bool | None = None
    auto_tie_breaker_node: str | None = None
    expected_votes: int | None = None
    device: QuorumDevice | None = None
    extra: Extra = ()
    # The runbook's own, never written to corosync.conf: true says the cluster fences a lost node
    # (Pacemaker STONITH), which is what makes two_node without a quorum device safe in a split.
    # Left out of papermill parameters while unset (OMIT_UNSET), so notebooks need no new parameter.
    fencing: bool | None = field(default=None, metadata={OMIT_UNSET: True})


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
    rrp_mode: str | None = None
    pacemaker_plugin: bool = False
    totem: Totem = Totem()
    logging: Logging = Logging()
    ssh: SshSettings = SshSettings()
    links: tuple[Link, ...] = ()
    quorum: Quorum = Quorum()
    extra: Extra = ()  # other top-level sections, written on every generation
    legacy_1x: Extra = ()  # sections/keys written on Corosync 1.x only (the chapter's openais-era lines)
    name_in_conf: bool = True  # write totem.cluster_name on 2.x/3.x
    backups: Backups = Backups()  # how many runbook backups of a replaced file each node keeps
    nodelist: bool = True  # write nodelist { } on 2.x/3.x (false only for multicast without one)
    firewall: str = "check"  # check: preflight names the rule to add; manage: step 05 adds it (steps/firewall_rules)
    source: str | None = field(default=None, compare=False)

    @property
    def primary(self) -> Node:
        """The node that generates the authkey."""
        for node in self.nodes:
            if node.is_primary:
                return node
        return self.nodes[0]

    @property
    def link_count(self) -> int:
        """How many links (rings) the nodes have addresses on."""
        return max(len(n.addresses) for n in self.nodes)

    def link(self, number: int) -> Link | None:
        """The options of link `number`, if the cluster file gives any."""
        for link in self.links:
            if link.number == number:
                return link
        return None

    def node(self, name: str) -> Node:
        """The node called `name` (case-insensitive, as hostnames are)."""
        wanted = name.lower() if isinstance(name, str) else name
        for node in self.nodes:
            if node.name.lower() == wanted:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise ClusterFileError(f"node {name!r} is not in this cluster; known nodes: {known}", self.source)
