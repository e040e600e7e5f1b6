"""Step 07's decisions (runbook.steps.qdevice_plan), from facts alone: what runs where, in which order."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest

from runbook.errors import ClusterFileError
from runbook.model.load import cluster_from_mapping, load_cluster
from runbook.model.rules import to_parameters
from runbook.steps.qdevice_plan import P12, QFacts, parse_facts, plan_phases, plan_removal

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = load_cluster(ROOT / "clusters" / "chapter-qdevice.yaml")
FRESH = {"pm": "apt-get", "init": "systemd"}
CA, CERT = "0123456789abcdef", "fedcba9876543210"


def host(name: str, **values: str) -> QFacts:
    return QFacts(name, {**FRESH, **values})


def converged_node(name: str) -> QFacts:
    return host(name, qdevice="yes", node_db="yes", node_ca=CA, node_cert=CERT, node_subject="CN=chapter",
                qdevice_running="yes", qdevice_enabled="enabled")


QNETD_DONE = host("qnetd", qnetd="yes", qnetd_ca=CA, qnetd_running="yes", qnetd_enabled="enabled")


def steps(phases) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(name, op.command.split("   #")[0]) for phase in phases for name, p in phase.nodes.items() for op in p.operations]


def test_fresh_hosts_get_every_part_in_the_order_the_tools_need():
    phases = plan_phases(CLUSTER, {"node1": host("node1"), "node2": host("node2")}, host("qnetd"))
    order = steps(phases)
    where = {cmd: (i, name) for i, (name, cmd) in enumerate(order)}

    def at(fragment: str) -> tuple[int, str]:
        return next(v for k, v in where.items() if fragment in k)

    assert at("apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold corosync-qnetd")[1] == "qnetd"
    assert at("-r -n chapter")[1] == "node1"  # the primary asks
    assert at("corosync-qnetd-certutil -s")[1] == "qnetd"  # qnetd signs
    assert at("-M -c")[1] == "node1"  # the primary imports and exports
    assert at("-m -c")[1] == "node2"  # the other node imports
    assert at("-r -n chapter")[0] < at("corosync-qnetd-certutil -s")[0] < at("-M -c")[0] < at("-m -c")[0]
    starts = [i for i, (name, cmd) in enumerate(order) if "start corosync-qdevice" in cmd]
    assert len(starts) == 2 and min(starts) > at("-m -c")[0]  # started only once every node has its certificate


def test_the_private_key_file_travels_as_a_secret_0600_copy_and_is_removed_after_import():
    phases = plan_phases(CLUSTER, {"node1": host("node1"), "node2": host("node2")}, host("qnetd"))
    copies = [op for phase in phases for p in phase.nodes.values() for op in p.operations if op.kind == "copy-key" and op.path == P12]
    assert len(copies) == 1 and copies[0].mode == 0o600 and copies[0].copy_from == "node1"
    assert "secret bytes" in copies[0].command and copies[0].data is None
    removed = [(name, op) for phase in phases for name, p in phase.nodes.items() for op in p.operations if f"rm -f {P12}" in op.script]
    assert {name for name, _ in removed} == {"node1", "node2"}


def test_a_converged_device_plans_nothing():
    assert plan_phases(CLUSTER, {"node1": converged_node("node1"), "node2": converged_node("node2")}, QNETD_DONE) == []


def test_a_node_trusting_another_ca_is_made_again_and_only_it_imports():
    other = dataclasses.replace(converged_node("node2"), values={**converged_node("node2").values, "node_ca": "9999999999999999"})
    order = steps(plan_phases(CLUSTER, {"node1": converged_node("node1"), "node2": other}, QNETD_DONE))
    assert not any("-r -n" in cmd or "qnetd-certutil -s" in cmd for _, cmd in order)  # no new certificate
    assert ("node2", "corosync-qdevice-net-certutil -i -c /etc/corosync/qdevice/net/qnetd-cacert.crt") in order
    assert ("node1", "pk12util -d /etc/corosync/qdevice/net/nssdb -o /etc/corosync/qdevice/net/nssdb/qdevice-net-node.p12 -W '' -n 'Cluster Cert'") in order
    assert [n for n, cmd in order if "restart corosync-qdevice" in cmd] == ["node2"]


def test_a_renamed_cluster_gets_a_new_certificate_on_every_node():
    renamed = {n: dataclasses.replace(converged_node(n), values={**converged_node(n).values, "node_subject": "CN=old"}) for n in ("node1", "node2")}
    order = steps(plan_phases(CLUSTER, renamed, QNETD_DONE))
    assert ("node1", "corosync-qdevice-net-certutil -r -n chapter") in order
    assert sorted(n for n, cmd in order if "restart corosync-qdevice" in cmd) == ["node1", "node2"]


def test_tls_off_makes_no_certificates():
    params = to_parameters(CLUSTER)
    params["quorum"]["device"]["net"]["tls"] = "off"
    cluster = cluster_from_mapping(params)
    order = steps(plan_phases(cluster, {"node1": host("node1"), "node2": host("node2")}, host("qnetd")))
    assert not any("certutil" in cmd or "pk12util" in cmd for _, cmd in order)
    assert sum("start corosync-qdevice" in cmd for _, cmd in order) == 2


def test_no_device_any_more_stops_a_running_qdevice_and_nothing_else():
    chapter = load_cluster(ROOT / "clusters" / "chapter.yaml")
    plan = plan_removal(chapter, {"node1": converged_node("node1"), "node2": host("node2")})
    assert [op.command for op in plan.nodes["node1"].operations] == ["systemctl disable --now corosync-qdevice"]
    assert not plan.nodes["node2"].operations


def test_facts_are_read_from_key_value_lines():
    f = parse_facts("node1", "qdevice=yes\npm=apt-get\ninit=sysv\nnode_ca=abc\ngarbage\nqdevice_enabled=enabled\n")
    assert f.has("qdevice") and f.pm == "apt-get" and f.init == "sysv" and f.node_ca == "abc" and f.enabled("qdevice")


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.update(votes=2), "quorum.device.votes"),
    (lambda d: d["net"].update(name="bad name"), "quorum.device.net.name"),
    (lambda d: d["net"].update(host="10.0.66.202"), "quorum.device.net.host: 10.0.66.202 is node node2"),
])
def test_bad_device_settings_name_the_field(change, field):  # type: ignore[no-untyped-def]
    params = to_parameters(CLUSTER)
    change(params["quorum"]["device"])
    with pytest.raises(ClusterFileError) as exc:
        cluster_from_mapping(params)
    assert field in str(exc.value)


def test_a_file_that_drops_the_device_stops_qdevice_before_the_file_changes():
    from runbook.engine.facts import parse_facts as node_facts
    from runbook.steps import config

    chapter = load_cluster(ROOT / "clusters" / "chapter.yaml")
    text = ("@@runbook-section corosync_version\nCorosync Cluster Engine, version '3.1.7'\n"
            "@@runbook-section init\npid1=systemd run_systemd=1 upstart=0 initd=1\n"
            "@@runbook-section file:/etc/corosync/corosync.conf\n644 root root\n" + base64.b64encode(b"totem {\n}\n").decode() + "\n"
            "@@runbook-section qdevice_pids\n{pids}\n")
    running = config.plan_node(chapter, chapter.nodes[0], node_facts("node1", text.replace("{pids}", "812")), check=False)
    assert [(op.kind, op.command) for op in running.operations][0] == ("remove", "systemctl disable --now corosync-qdevice")
    assert running.operations[1].kind == "write"
    stopped = config.plan_node(chapter, chapter.nodes[0], node_facts("node1", text.replace("{pids}", "")), check=False)
    assert [op.kind for op in stopped.operations] == ["write"]
    keeps = config.plan_node(CLUSTER, CLUSTER.nodes[0], node_facts("node1", text.replace("{pids}", "812")), check=False)
    assert [op.kind for op in keeps.operations] == ["write"]  # the new file still has a device: qdevice follows it

