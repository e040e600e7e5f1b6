"""Migrating an existing corosync.conf into a cluster file: lossless for the file's own generation.

The chapter's 1.x files first; the real files of other people are in test_corpus.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runbook.conf.parse import differences, parse, parse_entries, settings
from runbook.conf.render import render
from runbook.errors import ClusterFileError, ConfigParseError
from runbook.migrate.from_conf import migrate, migrate_conf
from runbook.migrate.options import NodeOption, parse_node_option
from runbook.model.effective import resolve
from runbook.model.load import load_cluster
from runbook.model.rules import PARAMETER_KEYS, cluster_from_mapping
from runbook.model.types import Cluster

ROOT = Path(__file__).resolve().parents[2]
PRIMARY = ROOT / "tests" / "golden" / "chapter-primary.conf"
SECONDARY = ROOT / "tests" / "golden" / "chapter-secondary.conf"
MCAST_2X = (
    "totem {\n version: 2\n cluster_name: web\n crypto_cipher: none\n crypto_hash: none\n"
    " interface {\n  ringnumber: 0\n  bindnetaddr: 192.168.1.0\n  mcastaddr: 239.255.1.1\n  mcastport: 5405\n }\n}\n"
    "quorum {\n provider: corosync_votequorum\n expected_votes: 2\n}\n"
)


def _load(text: str) -> Cluster:
    data = yaml.safe_load(text)
    assert set(data) <= set(PARAMETER_KEYS)
    return cluster_from_mapping(data, "migrated.yaml")


def test_the_chapters_primary_file_gives_back_both_chapter_files() -> None:
    """Lossless: generation 1 read from the file; rendered again, node by node, the book's two files."""
    cluster = _load(migrate_conf(PRIMARY.read_text(), "node1:/etc/corosync/corosync.conf"))
    assert cluster.generation == 1 and cluster.pacemaker_plugin is True and cluster.rrp_mode == "passive"
    assert [(n.address, n.nodeid, n.named) for n in cluster.nodes] == [("10.0.66.201", None, False), ("10.0.66.202", None, False)]
    assert cluster.primary.address == "10.0.66.201"  # its bindnetaddr
    t = cluster.totem
    assert (t.token, t.token_retransmits_before_loss_const, t.join, t.consensus, t.max_messages) == (5000, 20, 1000, 7500, 20)
    for node, golden in zip(cluster.nodes, (PRIMARY, SECONDARY)):
        assert parse_entries(render(cluster, node.name)) == parse_entries(golden.read_text())


def test_the_secondary_file_makes_its_own_node_primary() -> None:
    cluster = _load(migrate_conf(SECONDARY.read_text(), "secondary.conf"))
    assert cluster.primary.address == "10.0.66.202"


def test_header_says_where_from_how_read_and_what_is_not_carried() -> None:
    text = migrate_conf(PRIMARY.read_text(), "node1:/etc/corosync/corosync.conf")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert header.startswith("# Cluster file migrated by corosync-runbook from node1:/etc/corosync/corosync.conf (Corosync 1.x).")
    assert "generation: 1, read from the file" in header
    assert "primary is 10.0.66.201" in header and "bindnetaddr" in header
    assert "cluster_name: the file has none" in header
    assert "# Not carried over (with why):\n#   - the file's comments" in header


def test_converting_to_generation_3_says_every_change() -> None:
    output, migration = migrate(PRIMARY.read_text(), "primary.conf", cluster_name="chapter", generation=3)
    cluster = _load(output)
    assert cluster.generation == 3 and resolve(cluster, 3).transport == "knet" and resolve(cluster, 3).crypto is True
    assert [n.nodeid for n in cluster.nodes] == [1, 2]
    notes = "\n".join(migration.notes)
    for said in ("transport: udpu -> auto", "crypto: auto", "link_mode", "pacemaker_plugin", "legacy_1x", "nodeid: 1"):
        assert said in notes
    conf = parse(render(cluster, cluster.primary.name, 3))
    assert conf["totem"][0]["link_mode"] == ["passive"] and conf["totem"][0]["token"] == ["5000"]


def test_a_multicast_file_needs_its_nodes_and_says_how() -> None:
    with pytest.raises(ClusterFileError) as info:
        migrate(MCAST_2X, "mcast.conf")
    assert "--node NAME=ADDR" in str(info.value) and "--from-nodes" in str(info.value)
    assert info.value.exit_code == 2
    output, migration = migrate(MCAST_2X, "mcast.conf", nodes=[parse_node_option("a=192.168.1.1"),
                                                               parse_node_option("b=192.168.1.2")])
    cluster = _load(output)
    assert [n.name for n in cluster.nodes] == ["a", "b"] and cluster.nodelist is False
    assert differences(settings(MCAST_2X), settings(render(cluster, "a", 2))) == []


def test_node_option_format() -> None:
    assert parse_node_option("n1=10.0.0.1,10.1.0.1") == NodeOption("n1", ("10.0.0.1", "10.1.0.1"))
    for bad in ("n1", "=10.0.0.1", "n1="):
        with pytest.raises(ClusterFileError, match="NAME=ADDR"):
            parse_node_option(bad)


def test_a_modern_file_keeps_ids_names_links_quorum_crypto_and_no_defaults_are_invented() -> None:
    text = (
        "totem {\n version: 2\n cluster_name: prod\n transport: knet\n crypto_cipher: aes128\n crypto_hash: sha1\n"
        " link_mode: active\n knet_pmtud_interval: 30\n interface {\n  linknumber: 1\n  knet_link_priority: 10\n }\n}\n"
        "nodelist {\n"
        " node {\n  ring0_addr: 10.0.0.1\n  ring1_addr: node-a.example.com\n  name: 192.168.177.11\n  nodeid: 2\n }\n"
        " node {\n  ring0_addr: 10.0.0.2\n  ring1_addr: node-b.example.com\n  name: b.example.com\n  nodeid: 7\n }\n"
        "}\n"
        "quorum {\n provider: corosync_votequorum\n wait_for_all: 1\n device {\n  model: net\n  net {\n   host: qnetd\n"
        "   algorithm: ffsplit\n  }\n }\n}\n"
    )
    output, migration = migrate(text, "modern.conf")
    cluster = _load(output)
    assert [(n.name, n.nodeid, n.addresses) for n in cluster.nodes] == [
        ("192.168.177.11", 2, ("10.0.0.1", "node-a.example.com")), ("b.example.com", 7, ("10.0.0.2", "node-b.example.com"))]
    assert (cluster.totem.crypto_cipher, cluster.totem.crypto_hash, cluster.rrp_mode) == ("aes128", "sha1", "active")
    assert cluster.totem.token is None and cluster.totem.consensus is None  # not in the file: Corosync's default
    assert cluster.quorum.wait_for_all is True and cluster.quorum.two_node is None
    assert cluster.quorum.device is not None and cluster.quorum.device.net.host == "qnetd"
    assert cluster.link(1) is not None and cluster.link(1).knet_link_priority == 10
    rendered = render(cluster, "b.example.com", 3)
    # the one addition: corosync-qdevice refuses ffsplit without votes: 1 (seen in the lab; both real-world
    # ffsplit files in the corpus, crmsh's and Proxmox's, carry it)
    assert differences(settings(text), settings(rendered)) == ["quorum.device[0].votes: (absent) -> 1"]
    assert "two_node" not in rendered


def test_what_cannot_be_carried_is_listed_with_why() -> None:
    text = PRIMARY.read_text().replace("version: 2", "version: 1").replace("token: 5000", "token: 4000\ntoken: 5000")
    output, migration = migrate(text, "x.conf")
    assert any(item.startswith("totem.version: 1 (the runbook writes version: 2") for item in migration.lost)
    assert any(item.startswith("totem.token: 4000 (repeated; Corosync uses the last, 5000") for item in migration.lost)
    assert "#   - totem.version: 1" in output


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("nodelist {\n node {\n  name: a\n  nodeid: 1\n }\n node {\n  name: b\n  nodeid: 2\n }\n}\n", "no ring0_addr"),
        ("nodelist {\n node {\n  ring0_addr: 10.0.0.1\n  nodeid: 1\n }\n node {\n  ring0_addr: 10.0.0.2\n  nodeid: 1\n }\n}\n",
         "nodelist.node[1].nodeid: 1 is also node[0]'s"),
        ("totem {\n transport: udpu\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n}\n", "nodelist: lists only 1 node"),
        ("nodelist {\n node {\n  ring0_addr: 10.0.0.1\n  ring2_addr: 10.2.0.1\n }\n node {\n  ring0_addr: 10.0.0.2\n }\n}\n",
         "skip a number"),
    ],
    ids=["no-address", "duplicate-ids", "one-node", "ring-gap"],
)
def test_what_the_model_cannot_hold_is_refused_by_name(text: str, named: str) -> None:
    with pytest.raises(ClusterFileError) as info:
        migrate(text, "odd.conf")
    assert named in str(info.value) and "odd.conf" in str(info.value)
    assert info.value.exit_code == 2


def test_bad_values_in_the_file_are_named() -> None:
    text = PRIMARY.read_text().replace("token: 5000", "token: 5s")
    with pytest.raises(ClusterFileError, match=r"totem.token: '5s' is not an integer"):
        migrate_conf(text, "bad.conf")


def test_garbage_is_a_parse_error() -> None:
    with pytest.raises(ConfigParseError):
        migrate_conf(b"\x00\x01\x02", "junk.conf")


def test_bad_target_generation() -> None:
    with pytest.raises(ClusterFileError, match="generation"):
        migrate_conf(PRIMARY.read_text(), "x.conf", generation=4)


def test_migrated_file_loads_with_load_cluster(tmp_path: Path) -> None:
    path = tmp_path / "chapter.yaml"
    path.write_text(migrate_conf(PRIMARY.read_text(), "primary.conf", cluster_name="chapter"))
    assert load_cluster(path).nodes == _load(path.read_text()).nodes


def _runbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runbook", *args], capture_output=True, text=True, cwd=ROOT, check=False)


def test_cli_migrate_with_nodes_and_not_carried_on_stderr(tmp_path: Path) -> None:
    conf = tmp_path / "mcast.conf"
    conf.write_text(MCAST_2X)
    missing = _runbook("migrate", str(conf))
    assert missing.returncode == 2 and "--node NAME=ADDR" in missing.stderr and "Traceback" not in missing.stderr
    out = tmp_path / "web.yaml"
    done = _runbook("migrate", str(conf), "--node", "a=192.168.1.1", "--node", "b=192.168.1.2", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "not carried: the file's comments" in done.stderr and f"wrote {out}" in done.stderr
    assert [n.name for n in load_cluster(out).nodes] == ["a", "b"]
    again = _runbook("migrate", str(conf), "--node", "a=192.168.1.1", "--node", "b=192.168.1.2", "-o", str(out))
    assert again.returncode != 0 and "Traceback" not in again.stderr  # never overwrites


try:
    from hypothesis import given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test extra
    given = None  # type: ignore[assignment]

if given is not None:
    lines = st.sampled_from(
        ["totem {", "}", "interface {", "member {", "memberaddr: 10.0.0.1", "memberaddr: 10.0.0.2", "memberaddr: x",
         "nodelist {", "node {", "ring0_addr: 10.0.0.3", "ring1_addr: 10.0.1.3", "nodeid: 0", "nodeid: 99999999999",
         "name: n.", "token: 0", "transport: knet", "secauth: on", "link_mode: rr", "bindnetaddr: 10.0.0.1",
         "service {", "name: pacemaker", "quorum {", "device {", "net {", "host: q", "two_node: 1", "ringnumber: 1",
         "linknumber: 9", "mcastaddr: 239.1.1.1", "logger_subsys {", "subsys: X", ""]
    )

    @hypothesis_settings(max_examples=300, deadline=None)
    @given(st.lists(lines, max_size=40).map("\n".join), st.sampled_from([None, 1, 2, 3]))
    def test_migrate_never_crashes(text: str, generation: int | None) -> None:
        nodes = [NodeOption("a", ("10.0.0.1",)), NodeOption("b", ("10.0.0.2",))]
        for given_nodes in (None, nodes):
            try:
                result = migrate_conf(text, "fuzz.conf", generation=generation, nodes=given_nodes)
            except (ConfigParseError, ClusterFileError):
                continue
            cluster = _load(result)
            render(cluster, cluster.primary.name, cluster.generation)
