"""The rules of a cluster file that depend on the Corosync generation: checked once it is known.

The file's own rules (rules.py) hold on every generation; these decide whether what it asks for
exists on the generation the nodes run (knet only on 3.x, multicast addresses on 1.x, ...).
"""

from __future__ import annotations

from dataclasses import fields

from runbook.model.types import KNET_MAX_NODEID, MAX_LINKS, Cluster, Link


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
