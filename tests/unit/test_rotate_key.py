"""`runbook rotate-key` as plans (no hosts): a new key made on the primary even though it has one, a copy
for every other node, and the refusal where Corosync cannot take a key at run time (before 3.1)."""

from __future__ import annotations

import dataclasses

from runbook.conf.render import render
from runbook.conf.running import file_keys
from runbook.engine.facts import AuthkeyFact
from runbook.model.rules import cluster_from_mapping
from runbook.steps import authkey, by_hand, change
from runbook.steps.preflight import rotation_refusal

CLUSTER = cluster_from_mapping({"cluster_name": "c", "nodes": [{"name": "node1", "address": "192.0.2.11", "role": "primary"},
                                                               {"name": "node2", "address": "192.0.2.12"}]})
KEY = AuthkeyFact(256, 0o400, "root", "root", "ab" * 32)


def facts(version: str = "3.1.7", members: int = 2) -> dict[str, object]:
    found = {}
    for name in ("node1", "node2"):
        keys = file_keys(render(CLUSTER, name, 3), 3)
        cmap = "\n".join(f"{k} (str) = {v}" for k, v in keys.items())
        cmap += "".join(f"\nruntime.members.{i}.ip (str) = r(0) ip(192.0.2.{10 + i}) \nruntime.members.{i}.status (str) = joined"
                        for i in range(1, members + 1))
        found[name] = dataclasses.replace(by_hand.assumed_facts(name, 3, installed=True), authkey=KEY, corosync_version=version,
                                          extra={change.SECTION: cmap})
    return found


def test_rotating_makes_a_new_key_on_the_primary_and_copies_it_everywhere() -> None:
    kept = authkey.plan(CLUSTER, facts())  # type: ignore[arg-type]
    assert not kept.nodes["node1"].operations and not kept.nodes["node2"].operations
    plan = authkey.plan(CLUSTER, facts(), rotate=True)  # type: ignore[arg-type]
    [make] = plan.nodes["node1"].operations
    assert make.kind == "keygen" and make.reason == "rotate-key: a new key replaces sha256 abababababab…"
    assert "backup" in plan.nodes["node1"].would and "umask 077" in make.script
    [copy] = plan.nodes["node2"].operations
    assert copy.kind == "copy-key" and copy.copy_from == "node1" and copy.copy_sha256 is None  # the new key's bytes, read at run time
    assert plan.waves == [["node1"], ["node2"]]


def test_before_31_a_rotation_of_a_running_cluster_needs_restart_all() -> None:
    assert rotation_refusal(CLUSTER, facts("3.1.7"), restart_all=False) is None  # a reload does it
    refused = rotation_refusal(CLUSTER, facts("3.0.4"), restart_all=False)  # type: ignore[arg-type]
    assert refused is not None and refused.startswith("rotate-key: Corosync 3.0.4 reads the authkey only at start") and "--restart-all" in refused
    assert "running cluster (2 members) stops" in refused
    assert rotation_refusal(CLUSTER, facts("3.0.4"), restart_all=True) is None  # type: ignore[arg-type]
    assert rotation_refusal(CLUSTER, facts("3.0.4", members=1), restart_all=False) is None  # type: ignore[arg-type]  # nothing to stop
