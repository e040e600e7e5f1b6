"""Migrating an existing corosync.conf (the chapter's 1.x files first) into a cluster file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runbook.cluster import PARAMETER_KEYS, Cluster, cluster_from_mapping, load_cluster
from runbook.corosync_conf import parse, parse_entries, render
from runbook.errors import ClusterFileError, ConfigParseError
from runbook.migrate import cluster_mapping_from_conf, migrate_conf, not_carried

ROOT = Path(__file__).resolve().parents[2]
PRIMARY = ROOT / "tests" / "golden" / "chapter-primary.conf"
SECONDARY = ROOT / "tests" / "golden" / "chapter-secondary.conf"


def _load(text: str) -> Cluster:
    data = yaml.safe_load(text)
    assert tuple(data) == PARAMETER_KEYS
    return cluster_from_mapping(data, "migrated.yaml")


def test_chapter_primary_to_generation_3() -> None:
    text = migrate_conf(PRIMARY.read_text(), "node1:/etc/corosync/corosync.conf", cluster_name="chapter")
    cluster = _load(text)
    assert cluster.name == "chapter"
    assert [(n.name, n.address, n.nodeid) for n in cluster.nodes] == [
        ("node1", "10.0.66.201", 1),
        ("node2", "10.0.66.202", 2),
    ]
    assert cluster.primary.name == "node1"
    assert cluster.generation == 3
    t = cluster.totem
    assert (t.token, t.token_retransmits_before_loss_const, t.join, t.consensus, t.max_messages, t.port) == (
        5000, 20, 1000, 7500, 20, 5405,
    )
    assert cluster.transport_for(3) == "knet" and cluster.crypto_for(3) is True
    assert cluster.rrp_mode == "passive" and cluster.pacemaker_plugin is False
    conf = parse(render(cluster, "node2", 3))
    assert conf["totem"][0]["link_mode"] == ["passive"]
    assert conf["quorum"][0]["two_node"] == ["1"]


def test_header_says_where_from_and_what_changed() -> None:
    text = migrate_conf(PRIMARY.read_text(), "node1:/etc/corosync/corosync.conf")
    header = [line for line in text.splitlines() if line.startswith("#")]
    joined = "\n".join(header)
    assert header[0].startswith("# Cluster file migrated by corosync-runbook from node1:/etc/corosync/corosync.conf")
    assert "Corosync 1.x" in header[0]
    assert "pacemaker" in joined and "dropped" in joined
    assert "link_mode" in joined
    assert "crypto: turned on" in joined and "knet" in joined
    assert "node1..nodeN" in joined
    assert "primary is node1" in joined and "10.0.66.201" in joined
    assert "cluster_name" in joined  # the chapter's file has none: the default is named
    # the chapter's fixed 1.x settings are rendered by the runbook itself: nothing is lost
    assert "Not carried over" not in joined


def test_secondary_file_makes_its_own_node_primary() -> None:
    cluster = _load(migrate_conf(SECONDARY.read_text(), "secondary.conf"))
    assert cluster.primary.name == "node2"


def test_migrated_file_loads_with_load_cluster(tmp_path: Path) -> None:
    path = tmp_path / "chapter.yaml"
    path.write_text(migrate_conf(PRIMARY.read_text(), "primary.conf", cluster_name="chapter"))
    assert load_cluster(path).nodes == _load(path.read_text()).nodes


def test_migrating_to_generation_1_gives_back_the_chapters_files() -> None:
    cluster = _load(migrate_conf(PRIMARY.read_text(), "primary.conf", generation=1))
    assert cluster.generation == 1 and cluster.crypto == "off" and cluster.pacemaker_plugin is True
    for node, golden in (("node1", PRIMARY), ("node2", SECONDARY)):
        assert parse_entries(render(cluster, node)) == parse_entries(golden.read_text())


def test_migrating_to_generation_2_keeps_udpu_and_crypto_off() -> None:
    cluster = _load(migrate_conf(PRIMARY.read_text(), "primary.conf", generation="2"))
    assert (cluster.generation, cluster.transport, cluster.crypto) == (2, "udpu", "off")
    assert cluster.pacemaker_plugin is False


def test_migrating_to_auto_keeps_choices_open() -> None:
    cluster = _load(migrate_conf(PRIMARY.read_text(), "primary.conf", generation=None))
    assert cluster.generation is None and cluster.transport == "auto" and cluster.crypto == "auto"
    assert cluster.pacemaker_plugin is True  # written on 1.x only


@pytest.mark.parametrize("generation", [2, 3])
def test_modern_files_migrate_back_to_the_same_cluster(generation: int) -> None:
    lab3 = load_cluster(ROOT / "clusters" / "lab3.yaml").with_generation(generation)
    text = render(lab3, "node2", generation)
    migrated = _load(migrate_conf(text, "lab3.conf", generation=generation))
    expected = lab3.to_parameters()
    got = migrated.to_parameters()
    expected["pacemaker_plugin"] = False  # not written on 2/3
    for key in ("transport", "crypto"):  # written resolved
        expected[key] = got[key]
    assert got == expected
    assert render(migrated, "node2", generation).splitlines()[1:] == text.splitlines()[1:]


def test_unmanaged_settings_are_listed() -> None:
    text = PRIMARY.read_text().replace("threads: 0", "threads: 4\nnetmtu: 9000").replace(
        "amf {", "system {\nqb_ipc_type: native\n}\namf {"
    )
    header = migrate_conf(text, "x.conf")
    assert "# Not carried over" in header
    assert "totem.threads: 4" in header and "totem.netmtu: 9000" in header and "system { ... }" in header


def test_not_carried_of_a_modern_file() -> None:
    text = (
        "totem {\n version: 2\n token: 3000\n knet_pmtud_interval: 30\n}\n"
        "nodelist {\n node {\n ring0_addr: 10.0.0.1\n ring1_addr: 10.1.0.1\n name: a\n nodeid: 1\n }\n}\n"
        "quorum {\n provider: corosync_votequorum\n wait_for_all: 0\n}\n"
    )
    assert not_carried(parse_entries(text)) == [
        "totem.knet_pmtud_interval: 30",
        "nodelist.node.ring1_addr: 10.1.0.1",
        "quorum.wait_for_all: 0",
    ]


def test_modern_file_with_fqdn_names_and_missing_ids() -> None:
    text = (
        "totem {\n version: 2\n cluster_name: prod\n transport: knet\n token: 3000\n}\n"
        "nodelist {\n"
        " node {\n ring0_addr: 10.0.0.1\n name: a.example.com\n nodeid: 2\n }\n"
        " node {\n ring0_addr: 10.0.0.2\n name: b.example.com\n }\n"
        "}\n"
    )
    migration = cluster_mapping_from_conf(parse(text))
    cluster = cluster_from_mapping(migration.mapping)
    assert [(n.name, n.nodeid) for n in cluster.nodes] == [("a", 2), ("b", 1)]
    assert cluster.name == "prod" and cluster.totem.token == 3000 and cluster.totem.consensus == 3600
    assert any("consensus" in note for note in migration.notes)


def test_a_one_member_file_is_refused_with_the_field() -> None:
    text = PRIMARY.read_text().replace("member {\nmemberaddr: 10.0.66.202\n}\n", "")
    with pytest.raises(ClusterFileError) as info:
        migrate_conf(text, "one.conf")
    assert "nodes: a cluster needs at least 2 nodes, got 1" in str(info.value)
    assert "one.conf" in str(info.value)


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


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test extra
    given = None  # type: ignore[assignment]

if given is not None:
    lines = st.sampled_from(
        ["totem {", "}", "interface {", "member {", "memberaddr: 10.0.0.1", "memberaddr: 10.0.0.2", "memberaddr: x",
         "nodelist {", "node {", "ring0_addr: 10.0.0.3", "nodeid: 0", "nodeid: 99999999999", "name: n.", "token: 0",
         "transport: knet", "secauth: on", "link_mode: rr", "bindnetaddr: 10.0.0.1", "service {", "name: pacemaker", ""]
    )

    @settings(max_examples=300, deadline=None)
    @given(st.lists(lines, max_size=40).map("\n".join), st.sampled_from([None, 1, 2, 3]))
    def test_migrate_never_crashes(text: str, generation: int | None) -> None:
        try:
            result = migrate_conf(text, "fuzz.conf", generation=generation)
        except (ConfigParseError, ClusterFileError):
            return
        _load(result)
