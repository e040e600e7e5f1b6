"""The decisions steps make from facts, as pure functions: preflight, install, boot, restart."""

import base64
from pathlib import Path

from runbook.engine.facts import DEFAULTS_PATH, parse_facts
from runbook.model.load import load_cluster
from runbook.model.rules import with_generation
from runbook.steps.authkey import keygen_script
from runbook.steps.boot import boot_methods
from runbook.steps.install import install_command
from runbook.steps.preflight import check_node
from runbook.steps.restart import restart_reason

CHAPTER = load_cluster(Path(__file__).parents[2] / "clusters" / "chapter.yaml")
CONF = "/etc/corosync/corosync.conf"
KEY = "/etc/corosync/authkey"


def facts(uid="0", os_id="debian", version="3.1.7", addresses="10.0.66.201", init="sysv", tools="update-rc.d", files=""):
    text = (
        f"@@runbook-section uid\n{uid}\n@@runbook-section os_release\nID={os_id}\n"
        f"@@runbook-section corosync_version\n{'Corosync Cluster Engine, version ' + repr(version) if version else ''}\n"
        f"@@runbook-section package_manager\napt-get\n@@runbook-section init\n{init}\n"
        f"@@runbook-section update_rc\n{tools}\n@@runbook-section addresses\n{addresses}\n{files}"
    )
    return parse_facts("node1", text)


def test_ready_node_has_no_problems():
    assert check_node(CHAPTER, CHAPTER.nodes[0], facts()) == []


def test_not_root_without_sudo():
    problems = check_node(CHAPTER, CHAPTER.nodes[0], facts(uid="1000"))
    assert len(problems) == 1 and "uid 1000, not root" in problems[0] and "ssh.sudo" in problems[0]


def test_address_not_on_the_node_names_the_field():
    problems = check_node(CHAPTER, CHAPTER.nodes[0], facts(addresses="10.0.66.202"))
    assert problems == [
        "nodes[0].address 10.0.66.201 is not on any interface of this host (it has: 10.0.66.202); "
        "is the address right, and does ssh reach the right machine?"
    ]


def test_generation_in_the_file_must_match_the_installed_one():
    cluster = with_generation(CHAPTER, 1)
    problems = check_node(cluster, cluster.nodes[0], facts())
    assert problems == ["the cluster file says generation: 1, but Corosync 3.1.7 is installed"]


def test_install_commands_are_unattended():
    assert "DEBIAN_FRONTEND=noninteractive" in install_command("apt-get") and " -y " in install_command("apt-get")
    assert install_command("dnf") == "dnf install -y -q corosync"


def _file(path: str, text: str) -> str:
    return f"@@runbook-section file:{path}\n644 root root\n{base64.b64encode(text.encode()).decode()}\n"


def test_boot_honours_the_start_line_and_enables_with_the_init_system():
    assert boot_methods(facts(files=_file(DEFAULTS_PATH, "START=no\n"))) == ["default-file", "update-rc.d"]
    assert boot_methods(facts(files=_file(DEFAULTS_PATH, "START=no\n"), init="systemd")) == ["default-file", "systemd"]
    assert boot_methods(facts(files=_file(DEFAULTS_PATH, '#OPTIONS=""\n'), init="systemd")) == ["systemd"]
    assert boot_methods(facts(init="sysv")) == ["update-rc.d"]
    assert boot_methods(facts(init="sysv", tools="chkconfig")) == ["chkconfig"]
    assert boot_methods(facts(init="none", tools="", files=_file(DEFAULTS_PATH, "START=no\n"))) == ["default-file"]
    assert boot_methods(facts(init="none", tools="")) == []


def test_keygen_never_waits_for_entropy():
    assert "corosync-keygen -l" in keygen_script(3)
    assert "/dev/urandom" in keygen_script(1) and "corosync-keygen" not in keygen_script(1)
    assert 'mv -f "$d/authkey" /etc/corosync/authkey' in keygen_script(3)  # atomic into place


STATE = {
    "pid": "812",
    "start": "1000.00",
    f"mtime:{CONF}": "900.5",
    f"mtime:{KEY}": "950.0",
    f"sha:{CONF}": "aaa",
    f"sha:{KEY}": "kkk",
}


def test_not_running_means_start():
    assert restart_reason({**STATE, "pid": ""}, "chapter", 3) == "Corosync is not running"


def test_daemon_started_by_the_runbook_with_the_same_files_is_left_alone():
    stamp = {"stamp:pid": "812", f"stamp:sha:{CONF}": "aaa", f"stamp:sha:{KEY}": "kkk"}
    assert restart_reason({**STATE, **stamp}, "chapter", 3) is None
    assert restart_reason({**STATE, **stamp, f"sha:{KEY}": "new"}, "chapter", 3) == "authkey changed since the runbook started Corosync"


def test_daemon_started_elsewhere_is_judged_by_time_and_cluster_name():
    assert restart_reason(STATE, "chapter", 3) is None
    assert restart_reason({**STATE, f"mtime:{CONF}": "1002"}, "chapter", 3) == "corosync.conf is newer than the running daemon"
    assert "in cluster 'debian'" in restart_reason({**STATE, "loaded_cluster_name": "debian"}, "chapter", 3)
    # a stale stamp from an earlier daemon (pid differs) is not trusted
    assert restart_reason({**STATE, "stamp:pid": "77", f"mtime:{KEY}": "1005"}, "chapter", 3) == "authkey is newer than the running daemon"


def test_a_corosync_outside_systemd_is_restarted_under_it():
    stamp = {"stamp:pid": "812", f"stamp:sha:{CONF}": "aaa", f"stamp:sha:{KEY}": "kkk"}
    state = {**STATE, **stamp, "active": "inactive", "enabled": "enabled"}
    assert "not as systemd's corosync.service" in restart_reason(state, "chapter", 3)
    assert restart_reason({**state, "active": "active"}, "chapter", 3) is None
    assert restart_reason({**state, "active": "activating"}, "chapter", 3) is None


def test_systemd_state_is_said_only_where_systemd_runs():
    from runbook.steps.restart import systemd_said

    assert systemd_said({"pid": "1"}) == ""
    assert systemd_said({"active": "active", "enabled": "enabled"}) == "; systemd: active, enabled at boot"
