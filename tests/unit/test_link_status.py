"""Each link's state as a node sees it: `corosync-cfgtool -s` and `-n`, parsed (real output of Corosync 3.1.7
on a lab host whose link 0 was cut, and the shapes of 3.0 and 2.x)."""

from runbook.conf.membership import LinkState, links_line, parse_cfgtool_nodes, parse_cfgtool_status
from runbook.steps.members import parse_links

CUT_S = """Local node ID 3, transport knet
LINK ID 0 udp
	addr	= 10.0.151.13
	status:
		nodeid:          1:	disconnected
		nodeid:          2:	disconnected
		nodeid:          3:	localhost
LINK ID 1 udp
	addr	= 10.0.152.13
	status:
		nodeid:          1:	connected
		nodeid:          2:	connected
		nodeid:          3:	localhost
"""
CUT_N = """Local node ID 3, transport knet
nodeid: 1 reachable
   LINK: 0 udp (10.0.151.13->10.0.151.11) enabled mtu: 1397
   LINK: 1 udp (10.0.152.13->10.0.152.11) enabled connected mtu: 1397

nodeid: 2 reachable
   LINK: 0 udp (10.0.151.13->10.0.151.12) enabled mtu: 1397
   LINK: 1 udp (10.0.152.13->10.0.152.12) enabled connected mtu: 1397
"""
RING_2X = """Printing ring status.
Local node ID 1
RING ID 0
\tid\t= 10.0.0.1
\tstatus\t= ring 0 active with no faults
RING ID 1
\tid\t= 10.0.1.1
\tstatus\t= Marking ringid 1 interface 10.0.1.1 FAULTY
"""
LINK_30 = """Local node ID 1
LINK ID 0
\taddr\t= 192.168.1.1
\tstatus:
\t\tnodeid  1:\tlink enabled:1\tlink connected:1
\t\tnodeid  2:\tlink enabled:1\tlink connected:0
"""


def test_a_cut_link_shows_down_on_its_node_and_the_other_up():
    links = parse_cfgtool_status(CUT_S)
    assert [l.number for l in links] == [0, 1] and links[0].address == "10.0.151.13"
    assert links[0].peers == ((1, False), (2, False)) and not links[0].up
    assert links_line(links) == "link 0 DOWN (0/2 peers connected); link 1 up (2/2 peers connected)"


def test_cfgtool_n_says_the_same_per_peer():
    links = parse_cfgtool_nodes(CUT_N)
    assert links == (
        LinkState(0, "10.0.151.13", ((1, False), (2, False))),
        LinkState(1, "10.0.152.13", ((1, True), (2, True))),
    )


def test_a_node_missing_one_peer_on_a_link_is_partly_down():
    link = LinkState(0, "10.0.151.11", ((2, True), (3, False)))
    assert link.up and link.describe() == "link 0 partly down (1/2 peers connected, no link to nodeid 3)"


def test_corosync_30_and_2x_shapes():
    assert parse_cfgtool_status(LINK_30) == (LinkState(0, "192.168.1.1", ((2, False),)),)
    rings = parse_cfgtool_status(RING_2X)
    assert [(r.number, r.address, r.faulty) for r in rings] == [(0, "10.0.0.1", False), (1, "10.0.1.1", True)]
    assert links_line(rings) == "link 0 up; link 1 FAULTY"


def test_step_06_is_complete_only_when_every_link_connects_every_peer():
    cut = parse_links("n3", CUT_S + "@@runbook-cfgtool-n\n" + CUT_N, 3)
    assert not cut.complete(link_count=2, peers=2)
    healthy = CUT_S.replace("disconnected", "connected")
    assert parse_links("n3", healthy + "@@runbook-cfgtool-n\n", 3).complete(link_count=2, peers=2)
    assert not parse_links("n3", healthy, 3).complete(link_count=3, peers=2)  # a link missing altogether
    assert "$ corosync-cfgtool -n" in cut.raw and "LINK: 1 udp" in cut.raw
    assert parse_links("n", "corosync-cfgtool: command not found", 2).complete(1, 1)  # unreadable: shown, not failed
