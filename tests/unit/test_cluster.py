"""The cluster model: loading, validation messages (field path + value), parameters round trip."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from runbook.errors import ClusterFileError
from runbook.model import load as cluster_module
from runbook.model.effective import resolve
from runbook.model.load import load_cluster
from runbook.model.rules import PARAMETER_KEYS, cluster_from_mapping, to_parameters, with_generation
from runbook.model.types import Cluster, Node

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = ROOT / "clusters" / "chapter.yaml"
LAB3 = ROOT / "clusters" / "lab3.yaml"


def base() -> dict[str, Any]:
    """The smallest valid mapping; each rule test breaks one thing in a copy."""
    return {
        "cluster_name": "chapter",
        "nodes": [
            {"name": "node1", "address": "10.0.66.201"},
            {"name": "node2", "address": "10.0.66.202"},
        ],
    }


def problems_of(data: Any) -> list[str]:
    with pytest.raises(ClusterFileError) as info:
        cluster_from_mapping(data, source="test.yaml")
    assert info.value.exit_code == 2
    assert "test.yaml" in str(info.value)
    return info.value.problems


# --- the shipped cluster files -------------------------------------------------------------------


def test_chapter_file_is_the_chapters_cluster() -> None:
    c = load_cluster(CHAPTER)
    assert c.name == "chapter"
    assert [(n.name, n.address, n.nodeid) for n in c.nodes] == [
        ("node1", "10.0.66.201", 1),
        ("node2", "10.0.66.202", 2),
    ]
    assert c.primary.name == "node1" and c.primary.is_primary and not c.nodes[1].is_primary
    assert c.generation is None and c.transport == "auto" and c.crypto == "auto"
    assert c.rrp_mode == "passive" and c.pacemaker_plugin is True
    assert (c.totem.token, c.totem.token_retransmits_before_loss_const, c.totem.join) == (5000, 20, 1000)
    assert (c.totem.consensus, c.totem.max_messages, c.totem.port) == (7500, 20, 5405)
    assert c.source == str(CHAPTER)


def test_chapter_file_top_level_keys_are_parameter_keys_in_their_order() -> None:
    data = yaml.safe_load(CHAPTER.read_text())
    assert set(data) <= set(PARAMETER_KEYS)
    assert list(data) == [key for key in PARAMETER_KEYS if key in data]


def test_lab3_file_has_three_nodes_and_default_ids() -> None:
    c = load_cluster(LAB3)
    assert [n.address for n in c.nodes] == ["10.0.77.11", "10.0.77.12", "10.0.77.13"]
    assert [n.nodeid for n in c.nodes] == [1, 2, 3]
    assert c.generation is None


def test_defaults_are_corosyncs_own_not_the_chapters() -> None:
    """A key left out is Corosync's default for the generation: the model holds None, nothing is written.
    (It used to be the chapter's values; those now live in clusters/chapter.yaml only.)"""
    c = cluster_from_mapping(base())
    t = c.totem
    assert (t.token, t.token_retransmits_before_loss_const, t.join, t.consensus, t.max_messages, t.port) == (None,) * 6
    assert c.rrp_mode is None and c.pacemaker_plugin is False and c.links == () and c.quorum.device is None
    assert c.logging.to_syslog is None and c.logging.logfile is None
    assert c.primary.name == "node1"
    chapter = load_cluster(CHAPTER)
    assert chapter.totem.token == 5000 and chapter.pacemaker_plugin is True


def test_a_node_without_a_name_is_called_by_its_address() -> None:
    data = base()
    del data["nodes"][1]["name"]
    node = cluster_from_mapping(data).nodes[1]
    assert (node.name, node.named) == ("10.0.66.202", False)


def test_hostnames_fqdns_and_ips_as_names_are_accepted() -> None:
    data = base()
    data["nodes"][0].update(name="192.168.177.11", address="pcmk-1")
    data["nodes"][1].update(name="node2.example.com", address="node2.example.com")
    c = cluster_from_mapping(data)
    assert [(n.name, n.address) for n in c.nodes] == [("192.168.177.11", "pcmk-1"), ("node2.example.com", "node2.example.com")]


def test_links_quorum_device_and_crypto_names() -> None:
    c = load_cluster(ROOT / "clusters" / "three-node-two-links-qdevice.yaml")
    assert [n.addresses for n in c.nodes][0] == ("10.0.80.11", "10.0.81.11") and c.link_count == 2
    assert c.quorum.device is not None and c.quorum.device.net is not None
    assert (c.quorum.device.net.host, c.quorum.device.net.algorithm, c.quorum.device.net.tls) == ("10.0.80.20", "lms", "on")
    data = {**base(), "generation": 3, "totem": {"crypto_cipher": "aes128", "crypto_hash": "sha512", "crypto_model": "openssl"}}
    assert resolve(cluster_from_mapping(data), 3).crypto is True


def test_extra_is_carried_verbatim_and_repeats_become_lists() -> None:
    data = {**base(), "logging": {"extra": {"fileline": "off", "logger_subsys": [{"subsys": "QUORUM"}, {"subsys": "CPG"}]}}}
    c = cluster_from_mapping(data)
    assert c.logging.extra == (("fileline", "off"), ("logger_subsys", (("subsys", "QUORUM"),)), ("logger_subsys", (("subsys", "CPG"),)))
    assert to_parameters(c)["logging"]["extra"] == data["logging"]["extra"]


# --- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CHAPTER, LAB3, ROOT / "clusters" / "three-node-two-links-qdevice.yaml",
                                  ROOT / "clusters" / "hostnames.yaml"])
def test_to_parameters_round_trips_and_is_json(path: Path) -> None:
    c = load_cluster(path)
    params = to_parameters(c)
    assert tuple(params) == PARAMETER_KEYS
    assert json.loads(json.dumps(params)) == params
    assert cluster_from_mapping(params) == c
    assert cluster_from_mapping(json.loads(json.dumps(params))) == c


def test_parameters_hold_no_secret_keys() -> None:
    text = json.dumps(to_parameters(load_cluster(CHAPTER))).lower()
    for word in ("password", "passphrase", "authkey", "private"):
        assert word not in text


def test_secret_keys_are_refused_without_echoing_the_value() -> None:
    data = base()
    data["ssh"] = {"sudo_password": "hunter2"}
    (message,) = problems_of(data)
    assert message.startswith("ssh.sudo_password: secrets never go in the cluster file")
    assert "RUNBOOK_SUDO_PASSWORD" in message
    assert "hunter2" not in message


# --- lookups and generation-dependent resolution -------------------------------------------------


def test_node_lookup_is_case_insensitive_and_unknown_names_list_known() -> None:
    c = cluster_from_mapping(base())
    assert c.node("NODE2").address == "10.0.66.202"
    with pytest.raises(ClusterFileError) as info:
        c.node("node9")
    assert "'node9'" in str(info.value) and "node1, node2" in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("transport", "crypto", "generation", "expected"),
    [
        ("auto", "auto", 1, ("udpu", False)),
        ("auto", "auto", 2, ("udpu", True)),
        ("auto", "auto", 3, ("knet", True)),
        ("udpu", "auto", 3, ("udpu", False)),
        ("udp", "auto", 3, ("udp", False)),
        ("auto", "on", 1, ("udpu", True)),
        ("auto", "off", 3, ("knet", False)),
        ("udpu", "on", 2, ("udpu", True)),
    ],
)
def test_auto_transport_and_crypto_resolve_per_generation(
    transport: str, crypto: str, generation: int, expected: tuple[str, bool]
) -> None:
    c = cluster_from_mapping({**base(), "transport": transport, "crypto": crypto})
    assert (resolve(c, generation).transport, resolve(c, generation).crypto) == expected


def test_with_generation_fixes_and_revalidates() -> None:
    c = cluster_from_mapping({**base(), "transport": "udpu", "crypto": "on"})
    assert with_generation(c, 2).generation == 2
    with pytest.raises(ClusterFileError) as info:
        with_generation(c, 3)
    assert "Corosync 3 cannot encrypt udpu/udp" in str(info.value)
    with pytest.raises(ClusterFileError):
        resolve(c, 3).crypto


@pytest.mark.parametrize("bad", [0, 4, True, "3", None])
def test_transport_for_rejects_unknown_generations(bad: Any) -> None:
    with pytest.raises(ClusterFileError, match="generation"):
        resolve(cluster_from_mapping(base()), bad).transport


@pytest.mark.parametrize(("given", "expected"), [("auto", None), (None, None), (1, 1), ("2", 2), (3, 3), ("3", 3)])
def test_generation_accepts_int_or_string(given: Any, expected: int | None) -> None:
    assert cluster_from_mapping({**base(), "generation": given}).generation == expected


def test_yaml_on_off_booleans_mean_crypto_on_off() -> None:
    data = yaml.safe_load("crypto: on\n")  # YAML 1.1: a bare `on` is a boolean
    assert cluster_from_mapping({**base(), **data}).crypto == "on"
    assert cluster_from_mapping({**base(), "crypto": False}).crypto == "off"


def test_first_node_is_primary_unless_another_says_so() -> None:
    data = base()
    data["nodes"][1]["role"] = "primary"
    c = cluster_from_mapping(data)
    assert c.primary.name == "node2"
    assert [n.role for n in c.nodes] == [None, "primary"]


def test_addresses_are_canonical_and_ipv6_works() -> None:
    data = base()
    data["nodes"][0]["address"] = "2001:DB8:0::1"
    data["nodes"][1]["address"] = "2001:db8::2"
    assert [n.address for n in cluster_from_mapping(data).nodes] == ["2001:db8::1", "2001:db8::2"]


def test_all_problems_are_reported_at_once() -> None:
    data = base()
    data["nodes"][1]["address"] = "10.0.66.300"
    data["totem"] = {"token": "fast", "tokn": 1}
    data["transport"] = "tcp"
    problems = problems_of(data)
    assert len(problems) == 4


# --- one test per validation rule ----------------------------------------------------------------

Patch = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Patch:
    """A patch that sets a dotted path (`nodes.1.address`) in the base mapping."""

    def patch(data: dict[str, Any]) -> None:
        parts = path.split(".")
        target: Any = data
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
        last = parts[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return patch


def _delete(key: str) -> Patch:
    return lambda data: data.pop(key)


RULES: list[tuple[str, Patch, str]] = [
    # cluster_name
    ("name missing", _delete("cluster_name"), "cluster_name: missing"),
    ("name bad chars", _set("cluster_name", "my cluster"), "cluster_name: 'my cluster' is not a cluster name"),
    ("name too long", _set("cluster_name", "x" * 65), f"cluster_name: '{'x' * 65}' is not a cluster name"),
    ("name not str", _set("cluster_name", 7), "cluster_name: 7 is not a cluster name"),
    # nodes
    ("nodes missing", _delete("nodes"), "nodes: missing"),
    ("nodes one", _set("nodes", [{"name": "a", "address": "10.0.0.1"}]), "nodes: a cluster needs at least 2 nodes, got 1"),
    ("nodes empty", _set("nodes", []), "nodes: a cluster needs at least 2 nodes, got 0"),
    ("nodes not list", _set("nodes", "node1,node2"), "nodes: 'node1,node2' is not a list of nodes"),
    ("nodes too many", _set("nodes", [{"name": f"n{i}", "address": f"10.0.{i // 250}.{i % 250 + 1}"} for i in range(65)]),
     "nodes: 65 nodes is more than"),
    ("node not mapping", _set("nodes.1", "node2"), "nodes[1]: 'node2' is not a mapping"),
    ("node unknown key", _set("nodes.1.adress", "x"), "nodes[1].adress: unknown key; did you mean 'address'?"),
    ("node name bad", _set("nodes.1.name", "node_2"), "nodes[1].name: 'node_2' is not a hostname"),
    ("node name dots", _set("nodes.1.name", "node2..example"), "nodes[1].name: 'node2..example' is not a hostname"),
    ("node name unicode", _set("nodes.1.name", "nöde2"), "nodes[1].name: 'nöde2' is not a hostname"),
    ("node name kelvin", _set("nodes.1.name", "\u212aelvin"), "nodes[1].name: '\u212aelvin' is not a hostname"),
    ("node name dup", _set("nodes.1.name", "NODE1"), "nodes[1].name: 'NODE1' is also nodes[0].name"),
    ("address missing", _set("nodes.1.address", None), "nodes[1].address: missing"),
    ("address bad", _set("nodes.1.address", "10.0.66.300"), "nodes[1].address: '10.0.66.300' is not an IPv4 or IPv6 address"),
    ("address bad hostname", _set("nodes.1.address", "node 2"), "nodes[1].address: 'node 2' is not an IPv4 or IPv6 address or a hostname"),
    ("address bad ipv6", _set("nodes.1.address", "2001:db8::zz"), "nodes[1].address: '2001:db8::zz' is not an IPv4"),
    ("addresses with address", _set("nodes.1.addresses", ["10.0.66.202"]), "nodes[1].addresses: is given with address too"),
    ("addresses not list", lambda d: d["nodes"][1].update(address=None, addresses="10.0.66.202"),
     "nodes[1].addresses: '10.0.66.202' is not a list of 1 to 8 addresses"),
    ("addresses count", lambda d: d.update(generation=3) or d["nodes"][1].update(address=None, addresses=["10.0.66.202", "10.0.67.202"]),
     "nodes[0].addresses: 1 address(es) but another node has 2"),
    ("address dup on link 1", lambda d: [n.update(address=None, addresses=[a, "10.0.67.1"]) for n, a in zip(d["nodes"], ["10.0.66.201", "10.0.66.202"])],
     "nodes[1].addresses[1]: '10.0.67.1' is also nodes[0]'s address on link 1"),
    ("quorum_votes", _set("nodes.1.quorum_votes", -1), "nodes[1].quorum_votes: -1 is out of range"),
    ("listed udpu", _set("nodes.1.listed", False), "nodes[1].listed: false is for a multicast (udp) cluster"),
    ("node extra owned", _set("nodes.1.extra", {"ring1_addr": "10.0.67.2"}), "nodes[1].extra.ring1_addr: is held by the model"),
    ("address int", _set("nodes.1.address", 167772161), "nodes[1].address: 167772161 is not an IPv4 or IPv6 address"),
    ("address loopback", _set("nodes.1.address", "127.0.0.1"), "nodes[1].address: '127.0.0.1' is a loopback address"),
    ("address loopback6", _set("nodes.1.address", "::1"), "nodes[1].address: '::1' is a loopback address"),
    ("address unspecified", _set("nodes.1.address", "0.0.0.0"), "nodes[1].address: '0.0.0.0' is the unspecified address"),
    ("address multicast", _set("nodes.1.address", "239.255.1.1"), "nodes[1].address: '239.255.1.1' is a multicast address"),
    ("address zone", _set("nodes.1.address", "fe80::1%eth0"), "nodes[1].address: 'fe80::1%eth0' has a zone index"),
    ("address dup", _set("nodes.1.address", "10.0.66.201"), "nodes[1].address: '10.0.66.201' is also nodes[0].address"),
    ("address family", _set("nodes.1.address", "2001:db8::2"), "nodes[1].address: '2001:db8::2' is IPv6 but nodes[0].address is IPv4"),
    ("nodeid zero", _set("nodes.1.nodeid", 0), "nodes[1].nodeid: 0 is reserved; use 1..4294967295"),
    ("nodeid negative", _set("nodes.1.nodeid", -3), "nodes[1].nodeid: -3 is out of range; use 1..4294967295"),
    ("nodeid huge", _set("nodes.1.nodeid", 2**32), "nodes[1].nodeid: 4294967296 is out of range"),
    ("nodeid bool", _set("nodes.1.nodeid", True), "nodes[1].nodeid: true is not an integer"),
    ("nodeid str", _set("nodes.1.nodeid", "2"), "nodes[1].nodeid: '2' is not an integer"),
    ("nodeid dup", _set("nodes.1.nodeid", 1), "nodes[1].nodeid: 1 is also nodes[0].nodeid"),
    ("nodeid default dup", _set("nodes.0.nodeid", 2), "nodes[1].nodeid: 2 is also nodes[0].nodeid (the default"),
    ("role bad", _set("nodes.1.role", "master"), "nodes[1].role: 'master' is not 'primary' or null"),
    ("two primaries", lambda d: [n.update(role="primary") for n in d["nodes"]],
     "nodes[1].role: 'primary' is also nodes[0].role; exactly one node"),
    # top level
    ("unknown top key", _set("clustername", "x"), "clustername: unknown key; did you mean 'cluster_name'?"),
    ("unknown top key no match", _set("zzz", 1), "zzz: unknown key; known keys: cluster_name"),
    ("non-str key", lambda d: d.__setitem__(5, "x"), "5: unknown key"),
    ("generation bad", _set("generation", 4), "generation: 4 is not one of auto, 1, 2, 3"),
    ("generation bool", _set("generation", True), "generation: true is not one of auto, 1, 2, 3"),
    ("generation float", _set("generation", 3.0), "generation: 3.0 is not one of auto, 1, 2, 3"),
    ("generation str", _set("generation", "3.x"), "generation: '3.x' is not one of auto, 1, 2, 3"),
    ("transport bad", _set("transport", "tcp"), "transport: 'tcp' is not one of auto, default, udpu, udp, knet"),
    ("crypto bad", _set("crypto", "aes"), "crypto: 'aes' is not one of auto, default, on, off"),
    ("rrp bad", _set("rrp_mode", "round-robin"), "rrp_mode: 'round-robin' is not one of none, passive, active, rr"),
    ("rr on 2", lambda d: d.update(generation=2, rrp_mode="rr"), "rrp_mode: 'rr' is a knet link_mode (Corosync 3)"),
    ("crypto_model on 2", lambda d: d.update(generation=2, totem={"crypto_model": "nss"}), "totem.crypto_model: Corosync 2.x has no crypto_model"),
    ("cipher on 1", lambda d: d.update(generation=1, totem={"crypto_cipher": "aes256"}), "totem.crypto_cipher/crypto_hash: Corosync 1.x has only secauth"),
    ("cipher bad", _set("totem.crypto_cipher", "aes512"), "totem.crypto_cipher: 'aes512' is not one of none, aes256"),
    ("hash bad", _set("totem.crypto_hash", "sha3"), "totem.crypto_hash: 'sha3' is not one of none, md5"),
    ("crypto contradiction", lambda d: d.update(crypto="off", totem={"crypto_cipher": "aes256"}), "crypto: 'off' contradicts totem.crypto_cipher"),
    ("ip_version bad", _set("totem.ip_version", "ipv5"), "totem.ip_version: 'ipv5' is not one of ipv4, ipv6, ipv4-6, ipv6-4"),
    ("ip_version 4-6 on 2", lambda d: d.update(generation=2, totem={"ip_version": "ipv4-6"}), "totem.ip_version: 'ipv4-6' is Corosync 3 only"),
    ("three links on 2", lambda d: [d.update(generation=2)] + [n.update(address=None, addresses=[a, a.replace("66", "67"), a.replace("66", "68")]) for n, a in zip(d["nodes"], ["10.0.66.201", "10.0.66.202"])],
     "nodes: 3 addresses per node, but Corosync 2.x has at most 2 rings"),
    ("unnamed with two links on 3", lambda d: [d.update(generation=3)] + [n.update(name=None, address=None, addresses=[a, a.replace("66", "67")]) for n, a in zip(d["nodes"], ["10.0.66.201", "10.0.66.202"])],
     "nodes[0].name: missing, but Corosync 3 needs a name for every node of a multi-link cluster"),
    ("nodeid null on 3", lambda d: d.update(generation=3) or d["nodes"][1].update(nodeid=None), "nodes[1].nodeid: null, but Corosync 3 needs a node id"),
    # links
    ("links not list", _set("links", {"mcastport": 5405}), "links: {'mcastport': 5405} is not a list"),
    ("link unknown", _set("links", [{"mcastprt": 1}]), "links[0].mcastprt: unknown key; did you mean 'mcastport'?"),
    ("link port", _set("links", [{"mcastport": 0}]), "links[0].mcastport: 0 is out of range; use 1..65535"),
    ("link number dup", _set("links", [{"number": 0}, {"number": 0}]), "links[1].number: 0 is also links[0].number"),
    ("link number high", _set("links", [{"number": 8}]), "links[0].number: 8 is not a link number (0..7)"),
    ("link mcastaddr", _set("links", [{"mcastaddr": "239.255.1.300"}]), "links[0].mcastaddr: '239.255.1.300' is not an IPv4 or IPv6 address"),
    ("link knet transport", _set("links", [{"knet_transport": "tcp"}]), "links[0].knet_transport: 'tcp' is not one of udp, sctp, loopback"),
    ("link knet on 2", lambda d: d.update(generation=2, links=[{"knet_link_priority": 1}]), "links[0].knet_link_priority: knet options need Corosync 3"),
    ("link without addresses", lambda d: d.update(generation=3, links=[{"number": 1}]), "links[0].number: 1 has no node addresses"),
    ("port twice", lambda d: d.update(totem={"port": 5405}, links=[{"number": 0, "mcastport": 5405}]), "totem.port: is also links[0].mcastport"),
    # quorum
    ("quorum unknown", _set("quorum.two_nodes", True), "quorum.two_nodes: unknown key; did you mean 'two_node'?"),
    ("quorum bool", _set("quorum.wait_for_all", 1), "quorum.wait_for_all: 1 is not true or false"),
    ("quorum provider", _set("quorum.provider", "ykd"), "quorum.provider: 'ykd' is not one of corosync_votequorum, none"),
    ("quorum window", _set("quorum.last_man_standing_window", 0), "quorum.last_man_standing_window: 0 is out of range"),
    ("quorum atb node", _set("quorum.auto_tie_breaker_node", "first"), "quorum.auto_tie_breaker_node: 'first' is not lowest, highest"),
    ("device no net", _set("quorum.device", {"model": "net"}), "quorum.device.net: missing"),
    ("device no host", _set("quorum.device", {"net": {"algorithm": "lms"}}), "quorum.device.net.host: missing"),
    ("device algorithm", _set("quorum.device", {"net": {"host": "qnetd", "algorithm": "majority"}}), "quorum.device.net.algorithm: 'majority' is not one of"),
    ("device tls", _set("quorum.device", {"net": {"host": "qnetd", "tls": "maybe"}}), "quorum.device.net.tls: 'maybe' is not one of on, off, required"),
    ("device model", _set("quorum.device", {"model": "disk", "net": {"host": "qnetd"}}), "quorum.device.model: 'disk' is not one of net"),
    ("device and two_node", lambda d: d.update(quorum={"two_node": True, "device": {"net": {"host": "qnetd"}}}),
     "quorum.two_node: true with a quorum device"),
    # extra
    ("extra not mapping", _set("extra", ["amf"]), "extra: ['amf'] is not a mapping"),
    ("extra owned", _set("totem.extra", {"token": "5000"}), "totem.extra.token: is held by the model, not by extra: set totem.token instead"),
    ("extra bool", _set("logging.extra", {"fileline": False}), "logging.extra.fileline: false is a YAML boolean; write Corosync's exact word in quotes"),
    ("extra null", _set("quorum.extra", {"votes": None}), "quorum.extra.votes: is null"),
    ("extra brace", _set("extra", {"amf": {"mode": "x}"}}), "extra.amf.mode: 'x}' is not a value"),
    ("extra key", _set("extra", {"a b": "c"}), "extra.a b: 'a b' is not a Corosync key"),
    ("extra top owned", _set("extra", {"totem": {"token": "1"}}), "extra.totem: is held by the model"),
    ("nodelist false udpu", _set("nodelist", False), "nodelist: false needs transport udp"),
    ("plugin bad", _set("pacemaker_plugin", "yes please"), "pacemaker_plugin: 'yes please' is not true or false"),
    # generation-dependent
    ("knet on 2", lambda d: d.update(generation=2, transport="knet"), "transport: 'knet' needs Corosync 3, not 2.x"),
    ("udp on 1", lambda d: d.update(generation=1, transport="udp"), "transport: 'udp' (multicast) on Corosync 1.x"),
    ("crypto udpu on 3", lambda d: d.update(generation=3, transport="udpu", crypto="on"),
     "crypto: 'on' with transport 'udpu': Corosync 3 cannot encrypt udpu/udp; use transport: knet"),
    ("crypto udp on 3", lambda d: d.update(generation="3", transport="udp", crypto=True),
     "crypto: 'on' with transport 'udp': Corosync 3 cannot encrypt udpu/udp"),
    ("knet nodeid", lambda d: (d.update(generation=3), d["nodes"][1].update(nodeid=70000)),
     "nodes[1].nodeid: 70000 is above 65535, the highest node id knet allows"),
    # totem
    ("totem not mapping", _set("totem", [1, 2]), "totem: [1, 2] is not a mapping"),
    ("totem unknown", _set("totem.tokn", 1), "totem.tokn: unknown key; did you mean 'token'?"),
    ("token str", _set("totem.token", "fast"), "totem.token: 'fast' is not an integer"),
    ("token bool", _set("totem.token", True), "totem.token: true is not an integer"),
    ("token float", _set("totem.token", 5000.5), "totem.token: 5000.5 is not an integer"),
    ("token zero", _set("totem.token", 0), "totem.token: 0 must be a positive number of milliseconds"),
    ("join negative", _set("totem.join", -1), "totem.join: -1 must be a positive number of milliseconds"),
    ("token huge", _set("totem.token", 10**100), "totem.token: 10000000000"),
    ("token gigantic", _set("totem.token", 10**5000), "totem.token: <int too large to show> must be a positive"),
    ("max_messages zero", _set("totem.max_messages", 0), "totem.max_messages: 0 must be a positive count"),
    ("retransmits zero", _set("totem.token_retransmits_before_loss_const", 0),
     "totem.token_retransmits_before_loss_const: 0 must be a positive count"),
    ("consensus low", lambda d: d.update(totem={"token": 5000, "consensus": 5000}),
     "totem.consensus: 5000 is below 1.2 x totem.token (6000)"),
    ("token too short", lambda d: d.update(totem={"token": 300, "consensus": 360, "token_retransmits_before_loss_const": 20}),
     "totem.token: 300 is too short for totem.token_retransmits_before_loss_const 20"),
    ("token too short default retransmits", _set("totem.token", 100),
     "totem.token: 100 is too short for Corosync's default of 4 token retransmits"),
    ("token below minimum", _set("totem.token", 12), "totem.token: 12 is below Corosync's minimum of 30 ms"),
    ("port zero", _set("totem.port", 0), "totem.port: 0 is not a UDP port (1..65535)"),
    ("port high", _set("totem.port", 65536), "totem.port: 65536 is not a UDP port (1..65535)"),
    # logging
    ("logging unknown", _set("logging.to_file", True), "logging.to_file: unknown key; did you mean 'to_logfile'?"),
    ("logging bool", _set("logging.debug", "on"), "logging.debug: 'on' is not true or false (or 'trace')"),
    ("logging bool syslog", _set("logging.to_syslog", "yes"), "logging.to_syslog: 'yes' is not true or false"),
    ("logfile relative", _set("logging.logfile", "corosync.log"), "logging.logfile: 'corosync.log' is not an absolute path"),
    ("logfile newline", _set("logging.logfile", "/var/log/x\n}"), "logging.logfile: '/var/log/x\\n}' is not an absolute path"),
    # ssh
    ("ssh unknown", _set("ssh.usr", "root"), "ssh.usr: unknown key; did you mean 'user'?"),
    ("ssh user", _set("ssh.user", "root; rm -rf /"), "ssh.user: 'root; rm -rf /' is not a user name"),
    ("ssh port", _set("ssh.port", 0), "ssh.port: 0 is not a TCP port (1..65535)"),
    ("ssh identity", _set("ssh.identity_file", ""), "ssh.identity_file: '' is not a file path"),
    ("ssh sudo", _set("ssh.sudo", "yes"), "ssh.sudo: 'yes' is not true or false"),
    ("ssh timeout", _set("ssh.connect_timeout", 0), "ssh.connect_timeout: 0 is not a number of seconds"),
    ("ssh timeout bool", _set("ssh.connect_timeout", True), "ssh.connect_timeout: true is not a number of seconds"),
    ("ssh trust str", _set("ssh.trust_unknown_hosts", "node1"), "ssh.trust_unknown_hosts: 'node1' is not a list of node names"),
    ("ssh trust unknown", _set("ssh.trust_unknown_hosts", ["node9"]),
     "ssh.trust_unknown_hosts[0]: 'node9' is not a node of this cluster; known: node1, node2"),
]


@pytest.mark.parametrize(("patch", "expected"), [(p, e) for _, p, e in RULES], ids=[r[0] for r in RULES])
def test_validation_rule_names_field_and_value(patch: Patch, expected: str) -> None:
    data = copy.deepcopy(base())
    patch(data)
    problems = problems_of(data)
    assert any(message.startswith(expected) for message in problems), problems


@pytest.mark.parametrize(
    "data", [None, [], ["cluster_name"], "cluster_name: x", 42, 3.5, b"bytes", {"nodes": None, "cluster_name": None}]
)
def test_not_a_mapping_or_empty_is_a_cluster_file_error(data: Any) -> None:
    problems_of(data)


# --- loading files -------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _load_error(path: Path) -> ClusterFileError:
    with pytest.raises(ClusterFileError) as info:
        load_cluster(path)
    assert info.value.exit_code == 2
    assert str(path) in str(info.value)
    return info.value


def test_load_missing_file(tmp_path: Path) -> None:
    assert "no such file" in str(_load_error(tmp_path / "nope.yaml"))


def test_load_directory(tmp_path: Path) -> None:
    assert "is a directory" in str(_load_error(tmp_path))


def test_load_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, CHAPTER.read_text())
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: make `open` in the module fail as a 0000 file would for a user

        def denied(*args: Any, **kwargs: Any) -> Any:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(cluster_module, "open", denied, raising=False)
    assert "permission denied" in str(_load_error(path))


def test_load_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "cluster_name: x\nnodes:\n  - name: a\n   address: [\n")
    assert "invalid YAML at line" in str(_load_error(path))


def test_load_list_at_top(tmp_path: Path) -> None:
    assert "must be a mapping" in str(_load_error(_write(tmp_path, "- node1\n- node2\n")))


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "---\n"])
def test_load_empty_file(tmp_path: Path, text: str) -> None:
    assert "is empty" in str(_load_error(_write(tmp_path, text)))


def test_load_alias_bomb(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    error = _load_error(_write(tmp_path, "\n".join(lines) + "\n"))
    assert "aliases" in str(error) and "line 2" in str(error)


def test_load_rejects_any_alias(tmp_path: Path) -> None:
    text = CHAPTER.read_text().replace("totem:\n", "totem: &t\n") + "ssh_copy: *t\n"
    assert "aliases" in str(_load_error(_write(tmp_path, text)))


def test_load_rejects_duplicate_keys(tmp_path: Path) -> None:
    text = CHAPTER.read_text().replace("  token: 5000", "  token: 5000\n  token: 3000")
    assert "duplicate key 'token'" in str(_load_error(_write(tmp_path, text)))


def test_load_not_utf8(tmp_path: Path) -> None:
    assert "not UTF-8" in str(_load_error(_write(tmp_path, b"cluster_name: \xff\xfe\n")))


def test_load_too_large(tmp_path: Path) -> None:
    assert "larger than" in str(_load_error(_write(tmp_path, "#" * (2 * 1024 * 1024))))


def test_load_deep_nesting_and_huge_int(tmp_path: Path) -> None:
    _load_error(_write(tmp_path, "[" * 20000 + "]" * 20000))
    _load_error(_write(tmp_path, "cluster_name: x\nnodes: " + "9" * 6000 + "\n"))


def test_load_validation_errors_carry_the_path(tmp_path: Path) -> None:
    text = CHAPTER.read_text().replace("10.0.66.202", "10.0.66.300")
    error = _load_error(_write(tmp_path, text))
    assert error.problems == ["nodes[1].address: '10.0.66.300' is not an IPv4 or IPv6 address or a hostname"]


def test_model_types() -> None:
    c = load_cluster(CHAPTER)
    assert isinstance(c, Cluster) and all(isinstance(n, Node) for n in c.nodes)
    assert isinstance(c.nodes, tuple) and isinstance(c.ssh.trust_unknown_hosts, tuple)
    with pytest.raises(AttributeError):
        c.name = "other"  # type: ignore[misc]


# --- hostile input never raises anything but ClusterFileError ------------------------------------

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test extra
    given = None  # type: ignore[assignment]

if given is not None:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
        st.sampled_from(["auto", "on", "off", "knet", "udpu", "1", "3", "10.0.0.1", "::1", "node1", "primary"]),
    )
    KEYS = list(PARAMETER_KEYS) + ["name", "address", "nodeid", "role", "token", "port"]
    junk = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), inner, max_size=5),
        ),
        max_leaves=20,
    )

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(junk, st.dictionaries(st.sampled_from(PARAMETER_KEYS), junk)))
    def test_hostile_mappings_give_cluster_or_cluster_file_error(data: Any) -> None:
        try:
            cluster_from_mapping(data)
        except ClusterFileError as error:
            assert error.problems and all(isinstance(p, str) for p in error.problems)

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=300))
    def test_hostile_files_give_cluster_or_cluster_file_error(tmp_path_factory: Any, text: str) -> None:
        path = tmp_path_factory.mktemp("h") / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_cluster(path)
        except ClusterFileError:
            pass


# --- the reference page cannot drift from the model ------------------------------------------------


def test_every_model_key_has_a_row_in_the_reference() -> None:
    from runbook.model.reference import KEYS, model_paths

    documented = {key.path for key in KEYS}
    assert model_paths() - documented == set(), "model keys without a row in runbook/model/reference.py"
    assert documented - model_paths() == set(), "rows for keys the model does not have"


def test_the_cluster_file_page_holds_the_generated_reference() -> None:
    from runbook.model.reference import reference_markdown

    page = (ROOT / "docs" / "cluster-file.md").read_text()
    assert reference_markdown() in page, "refresh it: python -m runbook.model.reference docs/cluster-file.md"


def test_the_page_lists_what_the_runbook_writes_unasked() -> None:
    from runbook.conf.render import MUST_SET

    page = (ROOT / "docs" / "cluster-file.md").read_text()
    for key, generations, why in MUST_SET:
        assert f"| `{key}` | {generations} | {why} |" in page


# --- quorum.fencing: the cluster says it fences, which satisfies the two-node warning --------------


def _two_nodes(**quorum: object) -> Cluster:
    data: dict[str, object] = {"cluster_name": "c", "nodes": [{"name": "a", "address": "10.0.1.1"},
                                                              {"name": "b", "address": "10.0.1.2"}]}
    if quorum:
        data["quorum"] = quorum
    return cluster_from_mapping(data)


def test_two_nodes_without_a_device_or_fencing_are_warned_about_and_told_how_to_say_it() -> None:
    from runbook.model.rules import quorum_warnings

    warnings = quorum_warnings(_two_nodes())
    assert len(warnings) == 1 and "quorum.fencing: true" in warnings[0] and "quorum.device" in warnings[0]
    assert quorum_warnings(_two_nodes(fencing=False)) == warnings


def test_quorum_fencing_true_satisfies_the_two_node_warning() -> None:
    from runbook.model.rules import quorum_warnings

    cluster = _two_nodes(fencing=True)
    assert cluster.quorum.fencing is True and quorum_warnings(cluster) == []
    assert cluster_from_mapping(to_parameters(cluster)) == cluster  # kept through papermill parameters


def test_quorum_fencing_is_never_written_to_corosync_conf() -> None:
    from runbook.conf.render import render

    for generation in (1, 2, 3):
        assert render(_two_nodes(fencing=True), "a", generation) == render(_two_nodes(), "a", generation)


def test_quorum_fencing_must_be_a_boolean() -> None:
    with pytest.raises(ClusterFileError, match="quorum.fencing"):
        _two_nodes(fencing="stonith")
