"""Step 02 warns when a node's corosync.conf was changed by someone else (by hand, pcs or crmsh), which the run replaces."""

from __future__ import annotations

import base64
from pathlib import Path

from runbook.model.load import load_cluster

ROOT = Path(__file__).resolve().parents[2]


def test_a_file_changed_on_one_node_or_written_by_another_tool_is_warned_about():
    from runbook.conf.render import render
    from runbook.engine.facts import parse_facts as node_facts
    from runbook.steps import config

    chapter = load_cluster(ROOT / "clusters" / "chapter.yaml")

    def facts(node: str, text: str):  # type: ignore[no-untyped-def]
        return node_facts(node, "@@runbook-section corosync_version\nCorosync Cluster Engine, version '3.1.7'\n"
                                "@@runbook-section file:/etc/corosync/corosync.conf\n644 root root\n"
                                + base64.b64encode(text.encode()).decode() + "\n")

    ours = {n.name: render(chapter, n.name, 3) for n in chapter.nodes}
    edited = ours["node1"].replace("\tcluster_name: chapter\n", "\tcluster_name: chapter\n\ttoken: 10000\n")
    notes = config.plan(chapter, {"node1": facts("node1", edited), "node2": facts("node2", ours["node2"])}).notes
    assert len(notes) == 1 and notes[0].startswith("WARNING: node1's /etc/corosync/corosync.conf: it was changed on the node (node2 already has")
    by_pcs = "totem {\n version: 2\n cluster_name: chapter\n transport: knet\n}\n"
    notes = config.plan(chapter, {"node1": facts("node1", by_pcs), "node2": facts("node2", by_pcs)}).notes
    assert len(notes) == 2 and all("the runbook did not write" in n for n in notes)
    debian_default = "totem {\n version: 2\n cluster_name: debian\n}\n"
    assert config.plan(chapter, {"node1": facts("node1", debian_default), "node2": facts("node2", debian_default)}).notes == []
    assert config.plan(chapter, {"node1": facts("node1", ours["node1"]), "node2": facts("node2", ours["node2"])}).notes == []
