"""Reading a running cluster's members for `runbook migrate --from-nodes`: pure parsing of captured output.

The 3.x outputs were captured on lab hosts running Corosync 3.1.7; the 2.x and 1.x ones have the
layout of corosync-cmapctl 2.4 (`runtime.totem.pg.mrp.srp.members`) and corosync-objctl 1.4.
"""

from __future__ import annotations

import pytest
import yaml

from runbook.conf.members import SECTION, Member, parse_members, parse_reading
from runbook.conf.parse import differences, settings
from runbook.conf.render import render
from runbook.errors import MembershipUnavailable, UsageError
from runbook.migrate import from_nodes
from runbook.migrate.from_conf import migrate, takes_members
from runbook.migrate.from_nodes import combine, parse_from_nodes, source_line
from runbook.migrate.options import NodeOption
from runbook.model.rules import cluster_from_mapping

CMAP_3X = """runtime.members.1.config_version (u64) = 0
runtime.members.1.ip (str) = r(0) ip(10.0.131.11) r(1) ip(10.0.132.11) 
runtime.members.1.join_count (u32) = 1
runtime.members.1.status (str) = joined
runtime.members.2.config_version (u64) = 0
runtime.members.2.ip (str) = r(0) ip(10.0.131.12) r(1) ip(10.0.132.12) 
runtime.members.2.join_count (u32) = 1
runtime.members.2.status (str) = joined
"""
QUORUMTOOL_3X = """
Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
         2          1 node2
"""
CFGTOOL_3X = """Local node ID 1, transport knet
LINK ID 0 udp
	addr	= 10.0.131.11
	status:
		nodeid:          1:	localhost
		nodeid:          2:	connected
"""
CMAP_2X = """runtime.totem.pg.mrp.srp.members.3232235777.config_version (u64) = 0
runtime.totem.pg.mrp.srp.members.3232235777.ip (str) = r(0) ip(192.168.1.1) 
runtime.totem.pg.mrp.srp.members.3232235777.join_count (u32) = 1
runtime.totem.pg.mrp.srp.members.3232235777.status (str) = joined
runtime.totem.pg.mrp.srp.members.3232235778.config_version (u64) = 0
runtime.totem.pg.mrp.srp.members.3232235778.ip (str) = r(0) ip(192.168.1.2) 
runtime.totem.pg.mrp.srp.members.3232235778.join_count (u32) = 1
runtime.totem.pg.mrp.srp.members.3232235778.status (str) = joined
runtime.totem.pg.mrp.srp.members.3232235779.ip (str) = r(0) ip(192.168.1.3) 
runtime.totem.pg.mrp.srp.members.3232235779.join_count (u32) = 1
runtime.totem.pg.mrp.srp.members.3232235779.status (str) = left
"""
OBJCTL_1X = """runtime.totem.pg.mrp.srp.members.16885952.ip=r(0) ip(192.168.1.1) r(1) ip(10.1.1.1) 
runtime.totem.pg.mrp.srp.members.16885952.join_count=1
runtime.totem.pg.mrp.srp.members.16885952.status=joined
runtime.totem.pg.mrp.srp.members.33663168.ip=r(0) ip(192.168.1.2) r(1) ip(10.1.1.2) 
runtime.totem.pg.mrp.srp.members.33663168.join_count=1
runtime.totem.pg.mrp.srp.members.33663168.status=joined
"""
NOT_RUNNING = "Failed to initialize the cmap API. Error CS_ERR_LIBRARY\n"
MCAST_2X = (
    "totem {\n version: 2\n cluster_name: web\n crypto_cipher: none\n crypto_hash: none\n"
    " interface {\n  ringnumber: 0\n  bindnetaddr: 192.168.1.0\n  mcastaddr: 239.255.1.1\n  mcastport: 5405\n }\n}\n"
    "quorum {\n provider: corosync_votequorum\n expected_votes: 2\n}\n"
)


def output(hostname: str = "node1", tool: str = "cmapctl", members: str = CMAP_3X, quorumtool: str = QUORUMTOOL_3X,
           cfgtool: str = CFGTOOL_3X, running: str = "4242", version: str = "Corosync Cluster Engine, version '3.1.7'") -> str:
    parts = [("hostname", hostname), ("version", version), ("running", running), (tool, members)]
    if tool == "cmapctl":
        parts.append(("quorumtool", quorumtool))
    parts.append(("cfgtool", cfgtool))
    return "".join(f"{SECTION}{name}\n{text}\n" for name, text in parts)


def test_3x_members_with_their_address_on_every_link():
    assert parse_members(CMAP_3X) == (Member(1, ("10.0.131.11", "10.0.132.11")), Member(2, ("10.0.131.12", "10.0.132.12")))


def test_2x_members_are_under_totem_pg_and_a_member_that_left_is_not_one():
    assert parse_members(CMAP_2X) == (Member(3232235777, ("192.168.1.1",)), Member(3232235778, ("192.168.1.2",)))


def test_1x_objctl_members_with_two_rings():
    assert parse_members(OBJCTL_1X) == (Member(16885952, ("192.168.1.1", "10.1.1.1")), Member(33663168, ("192.168.1.2", "10.1.1.2")))


def test_ipv6_members():
    text = "runtime.members.5.ip (str) = r(0) ip(fd00:66::5) \nruntime.members.5.status (str) = joined\n"
    assert parse_members(text) == (Member(5, ("fd00:66::5",)),)


def test_a_reading_knows_the_host_itself_and_the_names_corosync_shows():
    reading = parse_reading("10.0.131.11", output())
    assert reading.hostname == "node1" and reading.local_nodeid == 1 and reading.tool == "corosync-cmapctl"
    assert dict(reading.names) == {1: "node1", 2: "node2"}
    assert source_line([reading]) == ("from the running cluster's membership, read over SSH on 10.0.131.11 "
                                      "(Corosync 3.1.7; corosync-cmapctl runtime members)")


def test_corosync_not_running_is_named_with_the_host():
    with pytest.raises(MembershipUnavailable) as info:
        parse_reading("web2", output(members=NOT_RUNNING, running="", quorumtool="Cannot initialize CMAP service\n"))
    assert info.value.host == "web2" and "Corosync is not running there" in str(info.value)
    assert "CS_ERR_LIBRARY" in str(info.value) and str(info.value).startswith("web2: ")


def test_a_host_without_corosync_tools_is_named():
    text = f"{SECTION}hostname\nweb3\n{SECTION}version\n\n{SECTION}running\n\n{SECTION}cfgtool\nsh: corosync-cfgtool: not found\n"
    with pytest.raises(MembershipUnavailable, match="web3: neither corosync-cmapctl"):
        parse_reading("web3", text)


def test_names_the_operator_gave_then_hostnames_then_what_corosync_shows():
    one = parse_reading("web1", output(hostname="node1.example.com"))
    assert combine([one]) == [NodeOption("web1", ("10.0.131.11", "10.0.132.11"), 1),
                              NodeOption("node2", ("10.0.131.12", "10.0.132.12"), 2)]
    by_address = parse_reading("10.0.131.11", output(hostname="node1.example.com"))
    assert combine([by_address])[0].name == "node1"  # its own hostname, short
    no_names = parse_reading("10.0.131.11", output(quorumtool=QUORUMTOOL_3X.replace("node2", "10.0.131.12")))
    assert combine([no_names])[1].name == "10.0.131.12"  # named by its address: the migration says so


def test_hosts_that_disagree_are_a_split_and_named():
    whole = parse_reading("web1", output())
    partial = parse_reading("web2", output(hostname="node2", members=CMAP_3X.split("runtime.members.2")[0],
                                           cfgtool="Local node ID 1\n"))
    with pytest.raises(MembershipUnavailable) as info:
        combine([whole, partial])
    assert info.value.host == "web2" and "split or still forming" in str(info.value) and "web1 sees" in str(info.value)


def test_two_names_for_one_member_are_refused():
    with pytest.raises(UsageError, match="web1 and node1 are the same member"):
        combine([parse_reading("web1", output()), parse_reading("node1", output())])


def test_from_nodes_option():
    assert parse_from_nodes(["a,b", "c"]) == ["a", "b", "c"]
    for bad in ([""], ["a,a"], ["-oProxyCommand=x"], ["a;b"]):
        with pytest.raises(UsageError, match="--from-nodes"):
            parse_from_nodes(bad)


def test_a_multicast_file_migrates_with_the_running_members_and_says_where_they_came_from():
    readings = [parse_reading("a", output(hostname="a", members=CMAP_2X, quorumtool="", cfgtool="Local node ID 3232235777\n"))]
    nodes = combine(readings)
    text, migration = migrate(MCAST_2X, "mcast.conf", nodes=nodes, from_nodes=source_line(readings))
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert "# Nodes: from the running cluster's membership, read over SSH on a (" in "\n".join(header)
    assert any("called by its address 192.168.1.2" in note for note in migration.notes)
    cluster = cluster_from_mapping(yaml.safe_load(text), "m.yaml")
    assert [(n.name, n.address, n.nodeid) for n in cluster.nodes] == [("a", "192.168.1.1", 3232235777),
                                                                      ("192.168.1.2", "192.168.1.2", 3232235778)]
    assert differences(settings(MCAST_2X), settings(render(cluster, "a", 2))) == []  # still lossless


def test_members_already_in_a_partial_nodelist_are_not_added_twice():
    conf = MCAST_2X + "nodelist {\n node {\n  ring0_addr: 192.168.1.1\n  nodeid: 1\n }\n}\n"
    text, migration = migrate(conf, "m.conf", nodes=[NodeOption("a", ("192.168.1.1",), 1), NodeOption("b", ("192.168.1.2",), 2)],
                              from_nodes="from the running cluster")
    cluster = cluster_from_mapping(yaml.safe_load(text), "m.yaml")
    assert [(n.address, n.listed) for n in cluster.nodes] == [("192.168.1.1", True), ("192.168.1.2", False)]


def test_which_files_take_members():
    assert takes_members(MCAST_2X)
    assert not takes_members("totem {\n transport: udpu\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n}\n")
    assert not takes_members("totem {\n transport: knet\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n}\n")
    assert takes_members(MCAST_2X + "nodelist {\n node {\n  ring0_addr: 192.168.1.1\n }\n}\n")  # lists only some


@pytest.mark.parametrize(
    "conf, extra, says",
    [
        ("totem {\n transport: knet\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n node {\n  ring0_addr: 10.0.0.2\n }\n}\n",
         [], "lists its nodes; --from-nodes is for a multicast file"),
        (MCAST_2X, ["--node", "a=192.168.1.1"], "with --node or read them with --from-nodes, not both"),
        (MCAST_2X, ["--ssh-config", "/nonexistent/ssh_config"], "--ssh-config: '/nonexistent/ssh_config' does not exist"),
        ("totem {\n", [], "mcast.conf"),  # a file that cannot be parsed: named, before any login
    ],
)
def test_from_nodes_refuses_bad_input_before_any_login(tmp_path, monkeypatch, capsys, conf, extra, says):
    from runbook.cli import main

    monkeypatch.setattr(from_nodes, "read_members", lambda *a: pytest.fail("a host was logged in to"))
    path = tmp_path / "mcast.conf"
    path.write_text(conf)
    assert main.main(["migrate", str(path), "--from-nodes", "web1", *extra]) == 2
    assert says in capsys.readouterr().err


def test_ssh_options_without_from_nodes_are_a_usage_error(tmp_path, capsys):
    from runbook.cli import main

    path = tmp_path / "mcast.conf"
    path.write_text(MCAST_2X)
    assert main.main(["migrate", str(path), "--sudo"]) == 2
    assert "are for --from-nodes" in capsys.readouterr().err
