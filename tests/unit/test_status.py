"""`runbook status`'s verdict from what the nodes said (the lab test reads real nodes: tests/lab/test_faults.py)."""

from __future__ import annotations

import json

from runbook.errors import ConnectionFailed
from runbook.model.rules import cluster_from_mapping
from runbook.status import Check, NodeStatus, assess, lines, to_json

CLUSTER = cluster_from_mapping({"cluster_name": "c", "nodes": [{"name": "node1", "address": "192.0.2.11"}, {"name": "node2", "address": "192.0.2.12"}]},
                               source="c.yaml")


def test_a_node_that_cannot_be_reached_is_a_drift_named_with_why() -> None:
    found = assess(CLUSTER, {"node1": ConnectionFailed("node1", "no answer from 192.0.2.11:22 within 10s"),
                             "node2": ConnectionFailed("node2", "Connection refused")})
    assert [s.ok for s in found] == [False, False]
    text = lines(CLUSTER, found)
    assert text[0] == "node1: unreachable: no answer from 192.0.2.11:22 within 10s" and text[-1] == "cluster 'c': drift on node1, node2"
    assert to_json(CLUSTER, found)["nodes"]["node2"]["unreachable"] == "Connection refused"  # type: ignore[index]


def test_the_text_and_the_json_say_the_same_with_the_fix_for_each_drift() -> None:
    found = [NodeStatus("node1", {"file": Check(True, "is the rendered file")}),
             NodeStatus("node2", {"file": Check(True, "is the rendered file"), "boot": Check(False, "not enabled at boot", "runbook run c.yaml")})]
    text = lines(CLUSTER, found)
    assert "  DRIFT boot       not enabled at boot  -> runbook run c.yaml" in text and "node1: ok" in text
    data = json.loads(json.dumps(to_json(CLUSTER, found)))
    assert data["ok"] is False and data["nodes"]["node1"]["ok"] is True
    assert data["nodes"]["node2"]["checks"]["boot"] == {"ok": False, "detail": "not enabled at boot", "fix": "runbook run c.yaml"}
    assert lines(CLUSTER, found[:1])[-1] == "cluster 'c': every node agrees with the cluster file"


def test_with_a_quorum_device_each_node_says_whether_it_counts_the_devices_vote() -> None:
    from runbook.conf.membership import parse_quorumtool
    from runbook.status import qdevice_check
    from tests.unit.test_membership import CUT_OFF_NODE, WITH_QDEVICE

    counted = qdevice_check(parse_quorumtool("node1", "Quorate:          Yes\n" + WITH_QDEVICE), "c.yaml")
    assert counted == Check(True, "the quorum device's vote counts: 3 of 3 votes")
    lost = qdevice_check(parse_quorumtool("node2", CUT_OFF_NODE), "c.yaml")
    assert not lost.ok and "A,NV,NMW" in lost.detail and "corosync-qdevice-tool -sv" in lost.fix
    assert not qdevice_check(parse_quorumtool("node2", ""), "c.yaml").ok
