"""Reading each node's view of the cluster from corosync-quorumtool and corosync-objctl output."""

from runbook.conf.membership import parse_objctl, parse_quorumtool

QUORATE = """Quorum information
------------------
Date:             Wed Nov 25 20:39:41 2026
Quorum provider:  corosync_votequorum
Nodes:            2
Node ID:          1
Ring ID:          1.9
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   2
Highest expected: 2
Total votes:      2
Quorum:           1
Flags:            2Node Quorate WaitForAll

Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
         2          1 node2
"""


def test_quorate_two_node_view():
    view = parse_quorumtool("node1", QUORATE)
    assert view.running and view.quorate is True
    assert view.ring_id == "1.9" and "2Node" in view.flags
    assert [(m.nodeid, m.name, m.local) for m in view.members] == [(1, "node1", True), (2, "node2", False)]
    assert view.complete(2) and not view.complete(3)


def test_lonely_node_is_not_complete():
    text = QUORATE.replace("Quorate:          Yes", "Quorate:          No").replace("         2          1 node2\n", "")
    view = parse_quorumtool("node1", text)
    assert view.quorate is False and len(view.members) == 1
    assert not view.complete(2)
    assert view.describe(2) == "sees 1/2 members, NOT quorate, ring 1.9"


def test_not_running_when_quorumtool_prints_nothing():
    view = parse_quorumtool("node2", "")
    assert not view.running and view.describe(2) == "corosync not running"


def test_hex_nodeids_from_corosync_2():
    text = QUORATE.replace("         2          1 node2", "0x00000002          1 10.0.66.202")
    assert [m.nodeid for m in parse_quorumtool("n", text).members] == [1, 2]


def test_corosync_1_members_from_objctl():
    text = (
        "runtime.totem.pg.mrp.srp.members.3372351498.ip=r(0) ip(10.0.66.201)\n"
        "runtime.totem.pg.mrp.srp.members.3372351498.status=joined\n"
        "runtime.totem.pg.mrp.srp.members.3389128714.ip=r(0) ip(10.0.66.202)\n"
        "runtime.totem.pg.mrp.srp.members.3389128714.status=left\n"
    )
    view = parse_objctl("node1", text)
    assert len(view.members) == 1 and view.quorate is None
    assert not view.complete(2)


# Captured from the lab (tests/lab/test_quorum_device.py's cluster): two nodes and a qnetd host, Corosync 3.1.7,
# corosync-qdevice 3.0.3, algorithm ffsplit.
WITH_QDEVICE = """Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate Qdevice 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         1          1    A,V,NMW node1 (local)
         2          1    A,V,NMW node2
         0          1            Qdevice
"""

CUT_OFF_NODE = """Quorate:          No

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      1
Quorum:           2  
Flags:            Qdevice 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         2          1   A,NV,NMW node2 (local)
         0          0            Qdevice (votes 1)
"""


def test_members_with_a_quorum_device_column_and_the_device_apart():
    view = parse_quorumtool("node1", "Quorate:          Yes\n" + WITH_QDEVICE)
    assert [(m.nodeid, m.name, m.local) for m in view.members] == [(1, "node1", True), (2, "node2", False)]
    assert view.complete(2)
    assert (view.expected_votes, view.total_votes, view.qdevice_votes) == (3, 3, 1)
    assert view.qdevice_flags == "A,V,NMW" and view.qdevice_counts


def test_a_node_cut_off_from_the_other_sees_the_device_without_its_vote():
    view = parse_quorumtool("node2", CUT_OFF_NODE)
    assert [m.name for m in view.members] == ["node2"]
    assert view.quorate is False and view.total_votes == 1
    assert view.qdevice_votes == 0 and view.qdevice_flags == "A,NV,NMW"
    assert not view.qdevice_counts


def test_no_device_means_no_device_vote():
    view = parse_quorumtool("node1", QUORATE)
    assert view.qdevice_votes is None and not view.qdevice_counts and view.total_votes == 2
