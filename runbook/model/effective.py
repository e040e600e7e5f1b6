"""What a cluster file means on one Corosync generation: derived and checked once, then plain values.

A `Cluster` says what the operator wrote ('auto', 'default', unset); the renderer, the steps and
preflight need what is in effect on the generation the nodes run (knet or udpu, encrypted or not,
two_node and ip_version written or not). `resolve` checks the generation's rules once and answers all of them
together, so that nothing downstream asks the model again or re-runs its validation.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook.errors import ClusterFileError
from runbook.model.generation import generation_problems
from runbook.model.types import GENERATIONS, Cluster


@dataclass(frozen=True)
class Effective:
    """The values in effect for `cluster` on `generation` (see resolve)."""

    generation: int
    transport: str  # 'auto' and 'default' made concrete: knet, udpu, udp
    transport_line: str | None  # what totem.transport says in the file (None: left to Corosync's default)
    crypto: bool  # traffic is encrypted/authenticated, so every node needs the authkey
    two_node: bool | None  # quorum.two_node as written (None: not written)
    ip_version: str | None  # totem.ip_version as written (None: Corosync's default)


def resolve(cluster: Cluster, generation: int) -> Effective:
    """The effective values on `generation`, after its rules; ClusterFileError names what breaks them."""
    if isinstance(generation, bool) or generation not in GENERATIONS:
        raise ClusterFileError(f"generation: {generation!r} is not one of 1, 2, 3", cluster.source)
    problems = generation_problems(cluster, generation)
    if problems:
        raise ClusterFileError(problems, cluster.source)
    transport = _transport(cluster, generation)
    return Effective(
        generation=generation,
        transport=transport,
        transport_line=None if cluster.transport == "default" else transport,
        crypto=_crypto(cluster, generation, transport),
        two_node=_two_node(cluster, generation),
        ip_version=_ip_version(cluster, generation),
    )


def _transport(cluster: Cluster, generation: int) -> str:
    """'auto': udpu on 1/2, knet on 3; 'default': Corosync's own (udp multicast before 3, knet on 3)."""
    if cluster.transport == "auto":
        return "knet" if generation >= 3 else "udpu"
    if cluster.transport == "default":
        return "knet" if generation >= 3 else "udp"
    return cluster.transport


def _crypto(cluster: Cluster, generation: int, transport: str) -> bool:
    t = cluster.totem
    if generation >= 2 and (t.crypto_cipher or t.crypto_hash):
        return (t.crypto_cipher or "none") != "none" or (t.crypto_hash or "none") != "none"
    if t.secauth is not None and generation <= 2:
        return t.secauth
    if cluster.crypto in ("on", "off"):
        return cluster.crypto == "on"
    if cluster.crypto == "default":
        return generation <= 2  # secauth defaults to on on 1.x and 2.x; 3.x crypto defaults to none
    if generation == 1:
        return False  # the chapter's `secauth: off`
    if generation == 2:
        return True
    return transport == "knet"


def _two_node(cluster: Cluster, generation: int) -> bool | None:
    """The file's value, else on for exactly 2 nodes with votequorum and no quorum device."""
    q = cluster.quorum
    if q.two_node is not None:
        return q.two_node
    if generation >= 2 and q.provider is None and q.device is None and len(cluster.nodes) == 2:
        return True
    return None


def _ip_version(cluster: Cluster, generation: int) -> str | None:
    """The file's value; on 2.x with an IPv6 node address, ipv6 (Corosync 2 resolves IPv4 unless told)."""
    if cluster.totem.ip_version is None and generation == 2 and any(":" in n.address for n in cluster.nodes):
        return "ipv6"
    return cluster.totem.ip_version
