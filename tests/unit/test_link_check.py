"""The all-pairs link check: what each node probes, how the results become a matrix per link and a
problem per blocked direction, and the probe program itself, run for real on loopback addresses."""

from __future__ import annotations

import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from runbook.engine.udp_probe import ProbeResult, parse_probe, probe_script
from runbook.model.rules import cluster_from_mapping
from runbook.steps import link_check
from runbook.steps.link_check import Plan, judge, link_ports, problems, specs, warnings
from runbook.steps.members import parse_links

THREE = cluster_from_mapping({"cluster_name": "c", "nodes": [
    {"name": "a", "addresses": ["10.0.1.1", "10.0.2.1"]},
    {"name": "b", "addresses": ["10.0.1.2", "10.0.2.2"]},
    {"name": "c", "addresses": ["10.0.1.3", "10.0.2.3"]},
]})


def plan(transport: str = "knet", running: frozenset[str] = frozenset(), cluster=THREE) -> Plan:  # type: ignore[no-untyped-def]
    ports = link_ports(cluster, transport)
    address = {(n.name, i): a for n in cluster.nodes for i, a in enumerate(n.addresses)}
    return Plan(3 if transport == "knet" else 2, transport, ports, address, running, tuple(n.name for n in cluster.nodes))


def everything(p: Plan, but: set[tuple[int, str, str, int, str]] = set()) -> dict[str, ProbeResult]:  # noqa: B006
    """What each node receives when every datagram arrives, except those in `but` (link, from, to, port, kind)."""
    got: dict[str, set[tuple[int, str, int, str]]] = {n: set() for n in p.nodes}
    for link, ports in p.ports.items():
        for port in ports:
            for s in p.nodes:
                for r in p.nodes:
                    for kind in ("small", "big"):
                        if s != r and (link, s, r, port, kind) not in but:
                            got[r].add((link, s, port, kind))
    sizes = tuple((l, r, port, "big", 1472) for l, ports in p.ports.items() for port in ports for r in p.nodes)
    return {n: ProbeResult(n, received=frozenset(got[n]), sizes=sizes) for n in p.nodes}


def test_knet_probes_each_links_own_port_and_udpu_both_of_its_ports() -> None:
    assert link_ports(THREE, "knet") == {0: (5405,), 1: (5406,)}
    assert link_ports(THREE, "udpu") == {0: (5405, 5404), 1: (5405, 5404)}


def test_a_node_that_runs_corosync_binds_nothing_and_is_sent_nothing_but_still_sends() -> None:
    s = specs(plan(running=frozenset({"a"})), "r1")
    assert s["a"].listen == () and s["a"].expect == ()
    assert {(peer, port) for _, peer, _, port, _, _ in s["a"].send} == {("b", 5405), ("c", 5405), ("b", 5406), ("c", 5406)}
    assert all(peer != "a" for _, peer, *_ in s["b"].send)
    assert (0, "10.0.1.2", 5405) in s["b"].listen and (1, "10.0.2.2", 5406) in s["b"].listen


def test_a_one_way_block_fails_naming_both_nodes_the_link_the_port_and_the_direction() -> None:
    p = plan()
    results = everything(p, but={(1, "a", "b", 5406, "small"), (1, "a", "b", 5406, "big")})
    matrices = judge(p, results)
    assert [m.failed for m in matrices] == [[], [("a", "b")]]
    assert matrices[1].cell("b", "a").status == "ok"
    [line] = problems(p, matrices, {"b": "b's firewall is the first suspect"})
    assert line.startswith("link 1: a (10.0.2.1) -> b (10.0.2.2): nothing arrived on UDP 5406; the other way, b -> a, works")
    assert line.endswith("b's firewall is the first suspect")


def test_big_datagrams_lost_warn_on_knet_and_fail_where_totem_does_not_fragment() -> None:
    lost = {(0, "a", "c", port, "big") for port in (5405, 5404)}
    knet = judge(plan(), everything(plan(), but=lost))
    assert knet[0].cell("a", "c").status == "warning" and "1472-byte ones do not (MTU)" in knet[0].cell("a", "c").text
    assert warnings(knet) and not problems(plan(), knet)
    udpu = judge(plan("udpu"), everything(plan("udpu"), but=lost))
    assert udpu[0].cell("a", "c").status == "failed"


def test_a_node_without_python_leaves_its_cells_unchecked_not_failed() -> None:
    p = plan()
    results = everything(p)
    results["c"] = ProbeResult("c", python=False)
    matrices = judge(p, results)
    assert matrices[0].cell("a", "c").text == "not checked: no Python 3 on c" and matrices[0].cell("c", "b").status == "unknown"
    assert problems(p, matrices) == []


KNET_N = """Local node ID 1, transport knet
nodeid: 2 reachable
   LINK: 0 udp (10.0.1.1->10.0.1.2) enabled connected mtu: 1397
   LINK: 1 udp (10.0.2.1->10.0.2.2) enabled mtu: 1397
"""


def test_a_running_receiver_is_judged_by_knets_own_link_state_never_probed() -> None:
    p = plan(running=frozenset({"a", "b"}))
    view = parse_links("a", "@@runbook-cfgtool-n\n" + KNET_N, 3)
    matrices = judge(p, everything(p), {"a": view}, {"a": 1, "b": 2, "c": 3})
    assert matrices[0].cell("b", "a").text == "knet: connected"
    # a disconnect between two running nodes may be a different key: said, never a stop
    assert matrices[1].cell("b", "a").status == "warning" and "disconnected" in matrices[1].cell("b", "a").text
    assert problems(p, matrices) == [] and any("b -> a" in w for w in warnings(matrices))
    # c is stopped: knet on a calls it disconnected whatever the network does, so it says nothing about c -> a
    assert matrices[0].cell("c", "a").status == "unknown" and "c does not run it" in matrices[0].cell("c", "a").text
    assert "were not probed (knet's own link state instead)" in matrices[0].caption


def test_output_that_is_not_the_programs_is_kept_and_said() -> None:
    assert parse_probe("n", "Traceback (most recent call last):\n  boom").unreadable.endswith("boom")
    assert parse_probe("n", "@@runbook-probe-no-python\n").python is False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_probe_program_finds_each_direction_for_real_on_loopback() -> None:
    """Three 'nodes' on 127.0.0.2-4 run the real program at once; one port held by another socket."""
    port = _free_port()
    cluster = cluster_from_mapping({"cluster_name": "lo", "nodes": [{"name": f"n{i}", "address": f"127.0.0.{i + 1}"} for i in (1, 2, 3)],
                                    "links": [{"number": 0, "mcastport": port}]})
    p = Plan(3, "knet", link_ports(cluster, "knet"), {(n.name, 0): n.address for n in cluster.nodes}, frozenset(), ("n1", "n2", "n3"))
    probing = {name: spec for name, spec in specs(p, "t").items()}
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.4", port))  # n3's port is in use by something that is not Corosync
    try:
        with ThreadPoolExecutor(3) as pool:
            outputs = dict(zip(p.nodes, pool.map(lambda n: subprocess.run(["sh", "-c", probe_script(probing[n])], capture_output=True,
                                                                              text=True, timeout=20).stdout, p.nodes)))
    finally:
        holder.close()
    results = {name: parse_probe(name, text) for name, text in outputs.items()}
    assert results["n3"].held == ((0, "127.0.0.4", port),)
    [matrix] = judge(p, results)
    assert matrix.cell("n1", "n2").status == "ok" and matrix.cell("n2", "n1").status == "ok"
    assert matrix.cell("n1", "n3").status == "failed" and "in use by a program other than a running Corosync" in matrix.cell("n1", "n3").text
    assert matrix.cell("n3", "n1").status == "ok"  # n3 still sends, from a port of its own


@pytest.mark.parametrize("transport", ["knet", "udpu"])
def test_the_matrix_shows_in_the_terminal_with_the_odd_cells_spelled_out(transport: str) -> None:
    p = plan(transport)
    [m0, _] = judge(p, everything(p, but={(0, "c", "a", 5405, "small")}))
    text = m0.text()
    assert "BLOCKED" in text and "c -> a: nothing arrived on UDP 5405" in text
    assert link_check.Matrix.from_dict(m0.to_dict()).text() == text  # type: ignore[union-attr]
