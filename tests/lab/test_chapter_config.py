"""On hosts at the chapter's own addresses, with Corosync installed offline by the install step:
the runbook's 3.x file passes Corosync's own check, and the chapter's 1.x file does not."""

from __future__ import annotations

from runbook import steps
from runbook.conf.render import render
from tests.lab.conftest import REPO

TEST = 't=$(mktemp); cat > "$t"; corosync -t -c "$t" 2>&1; echo "exit=$?"; rm -f "$t"'


def test_install_step_installs_corosync_offline(chapter_lab, chapter_hosts):
    _, cluster = chapter_lab
    report = steps.install_corosync(cluster, chapter_hosts)
    assert [o.status for o in report.outcomes] == ["changed", "changed"]
    for node in cluster.nodes:
        assert chapter_hosts[node.name].run("corosync -v").text.startswith("Corosync Cluster Engine, version '3.")
    again = steps.install_corosync(cluster, chapter_hosts)
    assert [o.status for o in again.outcomes] == ["unchanged", "unchanged"]


def test_generation_3_file_is_accepted_by_corosync_t(chapter_lab, chapter_hosts):
    _, cluster = chapter_lab
    for node in cluster.nodes:
        host = chapter_hosts[node.name]
        host.run("[ -e /etc/corosync/authkey ] || corosync-keygen >/dev/null 2>&1")
        out = host.run(TEST, input=render(cluster, node.name, 3).encode()).text
        assert out.strip().endswith("exit=0"), f"{node.name}: {out}"


def test_the_chapters_own_file_is_rejected_by_corosync_3(chapter_lab, chapter_hosts):
    out = chapter_hosts["node1"].run(TEST, input=(REPO / "tests/golden/chapter-primary.conf").read_bytes()).text
    assert "member section is deprecated" in out
    assert "No valid name found for local host" in out
    assert out.strip().endswith("exit=8")
