"""What a node's Corosync runs, from cmap / objdb, against a corosync.conf in the same key space: pure.

CMAP_317 was captured with `corosync-cmapctl` on a lab host running Corosync 3.1.7, started by
`runbook run` from a 3-node cluster file (the file `rendered()` gives); the 1.x output follows
tools/corosync-objctl.c print_config_tree (v1.4.10): an object's keys, then its child objects.
"""

from __future__ import annotations

import pytest

from runbook.conf.render import render
from runbook.conf.running import (
    Difference,
    RunningConfigUnavailable,
    differences,
    file_keys,
    file_owned,
    links,
    node_entries,
    parse_cmapctl,
    parse_objctl,
    read_command,
    reload_status,
    same_value,
    without_nodes,
)
from runbook.model.rules import cluster_from_mapping

CMAP_317 = """\
internal_configuration.service.0.name (str) = corosync_cmap
internal_configuration.service.0.ver (u32) = 0
nodelist.local_node_pos (u32) = 0
nodelist.node.0.name (str) = node1
nodelist.node.0.nodeid (u32) = 1
nodelist.node.0.ring0_addr (str) = 10.0.97.11
nodelist.node.1.name (str) = node2
nodelist.node.1.nodeid (u32) = 2
nodelist.node.1.ring0_addr (str) = 10.0.97.12
nodelist.node.2.name (str) = node3
nodelist.node.2.nodeid (u32) = 3
nodelist.node.2.ring0_addr (str) = 10.0.97.13
quorum.provider (str) = corosync_votequorum
resources.system.load_15min.current (dbl) = 0.000000
resources.watchdog_timeout (u32) = 6
runtime.blackbox.dump_flight_data (str) = no
runtime.config.totem.consensus (u32) = 4380
runtime.config.totem.interface.0.knet_ping_interval (u32) = 912
runtime.config.totem.token (u32) = 3650
runtime.members.1.config_version (u64) = 0
runtime.members.1.ip (str) = r(0) ip(10.0.97.11) 
runtime.members.1.status (str) = joined
runtime.services.cmap.0.rx (u64) = 4
runtime.votequorum.two_node (u8) = 0
totem.cluster_name (str) = rx
totem.crypto_cipher (str) = aes256
totem.crypto_hash (str) = sha256
totem.interface.0.bindnetaddr (str) = 10.0.97.11
totem.transport (str) = knet
totem.version (u32) = 2
"""


def rendered(generation: int = 3, **overrides: object) -> str:
    data: dict[str, object] = {
        "cluster_name": "rx",
        "nodes": [{"name": f"node{i}", "address": f"10.0.97.1{i}", **({"role": "primary"} if i == 1 else {})} for i in (1, 2, 3)],
    }
    data.update(overrides)
    cluster = cluster_from_mapping(data)
    return render(cluster, cluster.nodes[0].name, generation)


# --- reading ---------------------------------------------------------------------------------------


def test_the_read_command_is_the_generations_tool_and_reads_every_key() -> None:
    assert read_command(3) == read_command(2) == "LC_ALL=C corosync-cmapctl 2>&1"
    assert read_command(1) == "LC_ALL=C corosync-objctl 2>&1"
    with pytest.raises(ValueError):
        read_command(4)


def test_cmapctl_output_becomes_key_value_with_types_dropped_and_values_stripped() -> None:
    keys = parse_cmapctl(CMAP_317)
    assert keys["totem.cluster_name"] == "rx"
    assert keys["nodelist.node.2.ring0_addr"] == "10.0.97.13"
    assert keys["totem.version"] == "2"
    assert keys["runtime.members.1.ip"] == "r(0) ip(10.0.97.11)"
    assert keys["runtime.config.totem.token"] == "3650"
    assert len(keys) == CMAP_317.count("\n")


def test_an_empty_string_value_is_kept_empty() -> None:
    assert parse_cmapctl("logging.logfile (str) = \ntotem.version (u32) = 2\n") == {"logging.logfile": "", "totem.version": "2"}


@pytest.mark.parametrize(
    "output, said",
    [
        ("Failed to initialize the cmap API. Error CS_ERR_LIBRARY\n", "Corosync is not running"),
        ("sh: 1: corosync-cmapctl: not found\n", "is not there"),
        ("", "printed no key"),
    ],
)
def test_no_running_configuration_names_the_host_and_why(output: str, said: str) -> None:
    with pytest.raises(RunningConfigUnavailable) as info:
        parse_cmapctl(output, host="node2")
    assert info.value.host == "node2" and said in str(info.value)


def test_a_key_in_the_map_is_kept_only_as_a_digest() -> None:
    secret = "0123456789abcdef-secret"
    running = parse_cmapctl(f"totem.key (str) = {secret}\ntotem.version (u32) = 2\n")
    wanted = file_keys(f"totem {{\n\tversion: 2\n\tkey: {secret}\n}}\n", 3)
    assert secret not in repr(running) and secret not in repr(wanted)
    assert running["totem.key"] == wanted["totem.key"] and running["totem.key"].startswith("sha256:")
    assert differences(running, file_keys("totem {\n\tversion: 2\n\tkey: other\n}\n", 3), 3)[0].key == "totem.key"


# --- the file in the same key space -----------------------------------------------------------------


def test_the_runbooks_file_matches_what_corosync_3_1_7_loaded_from_it() -> None:
    """The capture's daemon was started from exactly this file: nothing differs, key by key."""
    running, wanted = parse_cmapctl(CMAP_317), file_keys(rendered(), 3)
    assert differences(running, wanted, 3) == []
    assert set(wanted) < set(running)


def test_a_changed_value_an_added_key_and_a_removed_key_are_each_a_difference() -> None:
    running = parse_cmapctl(CMAP_317 + "totem.token (u32) = 3000\n")
    wanted = file_keys(rendered(totem={"token": 5000}, logging={"to_syslog": True}), 3)
    wanted_no_token = file_keys(rendered(logging={"to_syslog": True}), 3)
    assert differences(running, wanted, 3) == [
        Difference("logging.to_syslog", None, "yes"),
        Difference("totem.token", "3000", "5000"),
    ]
    assert Difference("totem.token", "3000", None) in differences(running, wanted_no_token, 3)


def test_keys_corosync_adds_itself_are_not_removals() -> None:
    """runtime.*, resources.*, internal_configuration.*, and the keys Corosync derives from the nodelist."""
    running = parse_cmapctl(CMAP_317 + "quorum.cancel_wait_for_all (u8) = 0\n")
    assert differences(running, file_keys(rendered(), 3), 3) == []
    for key in ("runtime.config.totem.token", "resources.watchdog_timeout", "nodelist.local_node_pos",
                "totem.interface.0.bindnetaddr", "nodelist.node.0.nodeid", "config.reload_status"):
        assert not file_owned(key, 3), key
    assert file_owned("totem.token", 3) and file_owned("system.sched_rr", 3) and file_owned("logging.debug", 3)


def test_a_derived_key_the_file_sets_is_compared() -> None:
    running = parse_cmapctl(CMAP_317)
    text = rendered().replace("\ttransport: knet\n", "\ttransport: knet\n\tinterface {\n\t\tlinknumber: 0\n\t\tbindnetaddr: 10.0.97.0\n\t}\n")
    assert differences(running, file_keys(text, 3), 3) == [Difference("totem.interface.0.bindnetaddr", "10.0.97.11", "10.0.97.0")]


def test_numbers_compare_as_numbers_and_words_as_words() -> None:
    assert same_value("0100", "100") and same_value("5405", "5405")
    assert not same_value("yes", "on") and not same_value("1", None) and not same_value(None, "1")
    assert same_value(None, None)


def test_interface_keys_are_numbered_by_linknumber_on_3_and_ringnumber_on_2() -> None:
    text = "totem {\n\tinterface {\n\t\tmcastport: 5420\n\t\tlinknumber: 1\n\t\tknet_link_priority: 3\n\t\tfrob: x\n\t}\n}\n"
    assert file_keys(text, 3) == {
        "totem.interface.1.mcastport": "5420", "totem.interface.1.knet_link_priority": "3", "totem.interface.frob": "x",
    }
    two = text.replace("linknumber", "ringnumber")
    assert file_keys(two, 2) == {
        "totem.interface.1.mcastport": "5420", "totem.interface.knet_link_priority": "3", "totem.interface.frob": "x",
    }
    # 3.x reads no ringnumber (exec/coroparse.c v3.1.7): such an interface is link 0, its ringnumber a key of its own
    assert file_keys(two, 3)["totem.interface.0.mcastport"] == "5420"
    assert file_keys(two, 3)["totem.interface.ringnumber"] == "1"


def test_nodes_are_numbered_by_their_place_and_logger_subsys_by_its_subsys() -> None:
    text = (
        "nodelist {\n\tnode {\n\t\tring0_addr: a\n\t}\n\tnode {\n\t\tring0_addr: b\n\t\tnodeid: 7\n\t}\n}\n"
        "logging {\n\tdebug: off\n\tlogger_subsys {\n\t\tsubsys: QUORUM\n\t\tdebug: on\n\t}\n}\n"
    )
    assert file_keys(text, 3) == {
        "nodelist.node.0.ring0_addr": "a", "nodelist.node.1.ring0_addr": "b", "nodelist.node.1.nodeid": "7",
        "logging.debug": "off", "logging.logger_subsys.QUORUM.subsys": "QUORUM", "logging.logger_subsys.QUORUM.debug": "on",
    }


def test_repeated_sections_merge_and_a_repeated_key_keeps_its_last_value() -> None:
    text = "totem {\n\ttoken: 1000\n\ttoken: 2000\n}\ntotem {\n\tjoin: 60\n}\nquorum {\n\tdevice {\n\t\tnet {\n\t\t\thost: q\n\t\t}\n\t}\n}\nlogging {\n}\n"
    assert file_keys(text, 3) == {"totem.token": "2000", "totem.join": "60", "quorum.device.net.host": "q"}


def test_interface_members_compare_as_a_set() -> None:
    """coroparse stores members at the head of a list: member.0 is the file's last one."""
    text = "totem {\n\tinterface {\n\t\tringnumber: 0\n\t\tmember {\n\t\t\tmemberaddr: a\n\t\t}\n\t\tmember {\n\t\t\tmemberaddr: b\n\t\t}\n\t}\n}\n"
    keys = file_keys(text, 2)
    assert keys == {"totem.interface.0.member.0": "b", "totem.interface.0.member.1": "a"}
    running = {"totem.interface.0.member.0": "a", "totem.interface.0.member.1": "b"}
    assert differences(running, keys, 2) == []
    assert differences({"totem.interface.0.member.0": "a"}, keys, 2) == [Difference("totem.interface.0.member", "a", "a b")]


def test_the_nodelist_by_node_and_its_links() -> None:
    keys = file_keys(rendered(), 3)
    nodes = node_entries(keys)
    assert [n["name"] for n in nodes] == ["node1", "node2", "node3"] and nodes[2]["ring0_addr"] == "10.0.97.13"
    assert links(keys) == {0}
    assert not any(k.startswith("nodelist.node.") for k in without_nodes(keys)) and "totem.cluster_name" in without_nodes(keys)
    two = file_keys(rendered(nodes=[{"name": "a", "addresses": ["10.0.1.1", "10.0.2.1"]}, {"name": "b", "addresses": ["10.0.1.2", "10.0.2.2"]}],
                             transport="knet", links=[{"number": 0}, {"number": 1}]), 3)
    assert links(two) == {0, 1}


def test_reload_status_says_whether_and_how_the_daemon_was_reloaded() -> None:
    assert reload_status(parse_cmapctl(CMAP_317)) is None
    assert reload_status({"config.reload_status": "1"}) == 1
    assert reload_status({"config.reload_status": "7"}) == 7


# --- Corosync 1.x ----------------------------------------------------------------------------------

CHAPTER_1X = """\
totem {
\tversion: 2
\ttoken: 5000
\tinterface {
\t\tmember {
\t\t\tmemberaddr: 10.0.66.201
\t\t}
\t\tmember {
\t\t\tmemberaddr: 10.0.66.202
\t\t}
\t\tringnumber: 0
\t\tbindnetaddr: 10.0.66.201
\t\tmcastport: 5405
\t}
\tinterface {
\t\tringnumber: 1
\t\tbindnetaddr: 10.0.67.201
\t\tmcastport: 5407
\t}
\ttransport: udpu
}
service {
\tver: 0
\tname: pacemaker
}
logging {
\tto_syslog: yes
}
"""
# What corosync-objctl prints for it: each object's keys in the file's order, then its child objects.
OBJCTL_1X = """\
totem.version=2
totem.token=5000
totem.transport=udpu
totem.interface.ringnumber=0
totem.interface.bindnetaddr=10.0.66.201
totem.interface.mcastport=5405
totem.interface.member.memberaddr=10.0.66.201
totem.interface.member.memberaddr=10.0.66.202
totem.interface.ringnumber=1
totem.interface.bindnetaddr=10.0.67.201
totem.interface.mcastport=5407
service.ver=0
service.name=pacemaker
logging.to_syslog=yes
runtime.totem.pg.mrp.srp.members.3376480266.ip=r(0) ip(10.0.66.201)
runtime.totem.pg.mrp.srp.members.3376480266.status=joined
runtime.totem.pg.mrp.srp.members.3393257482.ip=r(0) ip(10.0.66.202)
"""


def test_objctl_output_rebuilds_each_interface_and_member() -> None:
    keys = parse_objctl(OBJCTL_1X)
    assert keys["totem.interface.0.bindnetaddr"] == "10.0.66.201"
    assert keys["totem.interface.1.mcastport"] == "5407"
    assert sorted(v for k, v in keys.items() if ".member." in k) == ["10.0.66.201", "10.0.66.202"]
    assert keys["runtime.totem.pg.mrp.srp.members.3376480266.status"] == "joined"


def test_objctl_output_of_the_chapters_file_matches_the_file() -> None:
    assert differences(parse_objctl(OBJCTL_1X), file_keys(CHAPTER_1X, 1), 1) == []


def test_objctl_sees_addresses_swapped_between_rings() -> None:
    swapped = (OBJCTL_1X.replace("bindnetaddr=10.0.66.201", "bindnetaddr=TMP")
               .replace("bindnetaddr=10.0.67.201", "bindnetaddr=10.0.66.201").replace("bindnetaddr=TMP", "bindnetaddr=10.0.67.201"))
    found = {d.key for d in differences(parse_objctl(swapped), file_keys(CHAPTER_1X, 1), 1)}
    assert found == {"totem.interface.0.bindnetaddr", "totem.interface.1.bindnetaddr"}


def test_objctl_that_cannot_reach_corosync_names_the_host() -> None:
    with pytest.raises(RunningConfigUnavailable) as info:
        parse_objctl("Failed to initialize the objdb API. Error 6\n", host="node1")
    assert info.value.host == "node1" and "not running" in str(info.value)
