"""Every step's plan is a pure function of facts: each branch, without hosts.

Facts are built the way a node prints them (runbook.facts.parse_facts) or assumed (runbook.by_hand),
and each test asserts what the operator would see: which operations, in which order, and why.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runbook.conf.render import render
from runbook.engine.facts import CONF_PATH, DEFAULTS_PATH, RC_LOCAL_PATH, AuthkeyFact, FileFact, NodeFacts
from runbook.errors import StepFailed
from runbook.model.load import load_cluster
from runbook.model.rules import with_generation
from runbook.steps import authkey, boot, by_hand, cfgtool, config, install, start

ROOT = Path(__file__).parents[2]
CHAPTER = load_cluster(ROOT / "clusters" / "chapter.yaml")


def node(name: str = "node1", generation: int = 3, installed: bool = True, **changes: object) -> NodeFacts:
    return dataclasses.replace(by_hand.assumed_facts(name, generation, installed=installed), **changes)


def both(generation: int = 3, installed: bool = True, **changes: object) -> dict[str, NodeFacts]:
    return {n: node(n, generation, installed, **changes) for n in ("node1", "node2")}


def kinds(plan, name: str = "node1") -> list[str]:
    return [op.kind for op in plan.nodes[name].operations]


def key(sha: str = "a" * 64, mode: int = 0o400, owner: str = "root") -> AuthkeyFact:
    return AuthkeyFact(128, mode, owner, "root", sha)


# --- 01 install -----------------------------------------------------------------------------------


def test_install_only_where_corosync_is_missing_with_the_nodes_package_manager():
    fresh = install.plan(CHAPTER, both(installed=False))
    assert kinds(fresh) == ["install"] and fresh.nodes["node1"].operations[0].reason == "Corosync is not installed"
    assert "apt-get install" in fresh.nodes["node1"].operations[0].command
    dnf = install.plan(CHAPTER, both(installed=False, package_manager="dnf"))
    assert dnf.nodes["node2"].operations[0].command == "dnf install -y -q corosync"
    done = install.plan(CHAPTER, both())
    assert kinds(done) == [] and done.nodes["node1"].summary == "Corosync 3.1.7 is already installed"
    nothing = install.plan(CHAPTER, both(installed=False, package_manager=None))
    assert "no apt-get, dnf or yum" in (nothing.nodes["node1"].failed or "")


def test_install_reads_the_version_it_installed():
    assert install.installed_version("Setting up corosync ...\nCorosync Cluster Engine, version '3.1.7'\n") == "3.1.7"


# --- 02 corosync.conf -----------------------------------------------------------------------------


def conf(text: str) -> dict[str, FileFact]:
    return {CONF_PATH: FileFact(CONF_PATH, text.encode(), 0o644, "root", "root")}


@pytest.mark.parametrize("generation", [1, 2, 3])
def test_conf_is_written_where_missing_and_shown_whole_for_every_generation(generation):
    cluster = with_generation(CHAPTER, generation)
    plan = config.plan(cluster, both(generation))
    op = plan.nodes["node1"].operations[0]
    assert op.kind == "write" and op.path == CONF_PATH and op.reason == "no file yet" and (op.mode, op.owner) == (0o644, "root")
    assert plan.nodes["node1"].files[CONF_PATH] == render(cluster, "node1", generation) == op.text
    assert (op.validate is not None) == (generation == 3)  # corosync -t exists on 3.x only
    assert op.command.endswith("install -m 0644 -o root -g root /dev/stdin /etc/corosync/corosync.conf")


def test_conf_that_matches_is_left_alone_and_a_hand_edit_is_replaced_with_its_diff():
    wanted = render(CHAPTER, "node1", 3)
    same = config.plan(CHAPTER, {n: node(n, files=conf(render(CHAPTER, n, 3))) for n in ("node1", "node2")})
    assert kinds(same, "node1") == kinds(same, "node2") == []
    assert same.nodes["node1"].files[CONF_PATH] == wanted  # the page still shows the whole file
    edited = wanted.replace("token: 3000", "token: 9000") if "token: 3000" in wanted else wanted + "# x\nquorum {\n}\n"
    facts = {"node1": node(files=conf(edited)), "node2": node("node2", files=conf(render(CHAPTER, "node2", 3)))}
    plan = config.plan(CHAPTER, facts)
    assert kinds(plan, "node1") == ["write"] and kinds(plan, "node2") == []
    assert plan.nodes["node1"].operations[0].reason == "its settings differ from the cluster file's"
    assert plan.nodes["node1"].diff.startswith("--- /etc/corosync/corosync.conf (current)")


def test_conf_generation_unknown_before_install_is_refused_outside_check_mode():
    with pytest.raises(StepFailed, match="run step 01-install first"):
        config.plan(CHAPTER, both(installed=False), check=False)
    assert kinds(config.plan(CHAPTER, both(installed=False), check=True)) == ["write"]  # the candidate stands in


# --- 03 authkey -----------------------------------------------------------------------------------


def test_fresh_cluster_makes_the_key_on_the_primary_then_copies_it():
    plan = authkey.plan(CHAPTER, both())
    assert plan.waves == [["node1"], ["node2"]]
    assert kinds(plan, "node1") == ["keygen"] and kinds(plan, "node2") == ["copy-key"]
    copy = plan.nodes["node2"].operations[0]
    assert copy.copy_from == "node1" and copy.command.startswith("install -m 0400 -o root -g root /dev/stdin /etc/corosync/authkey")
    assert copy.data is None  # the bytes are read at run time, never planned


def test_authkey_branches_same_different_wrong_mode():
    good = {"node1": node(authkey=key()), "node2": node("node2", authkey=key())}
    assert kinds(authkey.plan(CHAPTER, good), "node1") == kinds(authkey.plan(CHAPTER, good), "node2") == []
    different = {"node1": node(authkey=key()), "node2": node("node2", authkey=key("b" * 64))}
    plan = authkey.plan(CHAPTER, different)
    assert kinds(plan, "node1") == [] and kinds(plan, "node2") == ["copy-key"]
    assert plan.nodes["node2"].operations[0].reason == "holds a different authkey"
    loose = {"node1": node(authkey=key(mode=0o644)), "node2": node("node2", authkey=key(owner="corosync"))}
    plan = authkey.plan(CHAPTER, loose)
    assert kinds(plan, "node1") == kinds(plan, "node2") == ["chmod"]
    assert plan.nodes["node1"].operations[0].reason == "the key is 644 root:root, not 400 root:root"


def test_keygen_on_1x_never_waits_for_entropy():
    plan = authkey.plan(with_generation(CHAPTER, 1), both(1))
    assert "/dev/urandom" in plan.nodes["node1"].operations[0].script
    shown = plan.nodes["node1"].operations[0].by_hand[0]
    assert shown.startswith("corosync-keygen   # reads /dev/random") and "head -c 128 /dev/urandom" in shown


# --- 04 rc.local ----------------------------------------------------------------------------------


def test_cfgtool_line_on_1x_and_2x_only():
    assert kinds(cfgtool.plan(CHAPTER, both(3))) == [] and cfgtool.plan(CHAPTER, both(3)).nodes["node1"].quiet == "skipped"
    one = with_generation(CHAPTER, 1)
    plan = cfgtool.plan(one, both(1))
    op = plan.nodes["node1"].operations[0]
    assert op.kind == "write" and op.path == RC_LOCAL_PATH and "/usr/sbin/corosync-cfgtool -r\nexit 0\n" in (op.text or "")
    done = {n: node(n, 1, files={RC_LOCAL_PATH: FileFact(RC_LOCAL_PATH, op.data or b"", 0o755, "root", "root")}) for n in ("node1", "node2")}
    assert kinds(cfgtool.plan(one, done)) == []
    not_executable = {n: node(n, 1, files={RC_LOCAL_PATH: FileFact(RC_LOCAL_PATH, op.data or b"", 0o644, "root", "root")}) for n in ("node1", "node2")}
    assert cfgtool.plan(one, not_executable).nodes["node1"].operations[0].reason == "rc.local is not executable"


# --- 05 boot --------------------------------------------------------------------------------------


def defaults(text: str) -> dict[str, FileFact]:
    return {DEFAULTS_PATH: FileFact(DEFAULTS_PATH, text.encode(), 0o644, "root", "root")}


def test_boot_sysv_with_start_no_sets_start_yes_and_update_rc():
    plan = boot.plan(CHAPTER, both(1))
    assert kinds(plan) == ["write", "enable"]
    assert plan.nodes["node1"].operations[1].command.startswith("update-rc.d corosync defaults")
    assert "START=yes" in (plan.nodes["node1"].operations[0].text or "")


def test_boot_systemd_enabled_is_left_alone_disabled_is_enabled():
    assert kinds(boot.plan(CHAPTER, both(3))) == []
    plan = boot.plan(CHAPTER, both(3, boot_enabled={"systemd": "disabled"}))
    assert kinds(plan) == ["enable"] and plan.nodes["node1"].operations[0].command == "systemctl enable corosync"
    assert plan.nodes["node1"].operations[0].reason == "not enabled at boot (systemctl is-enabled: disabled)"
    chk = boot.plan(CHAPTER, both(3, init_system="sysv", boot_tools=("chkconfig",), boot_enabled={"chkconfig": "off"}, files={}))
    assert chk.nodes["node1"].operations[0].command == "chkconfig --add corosync && chkconfig corosync on"
    none = boot.plan(CHAPTER, both(3, init_system="none", boot_tools=(), files={}))
    assert "no way to enable Corosync at boot" in (none.nodes["node1"].failed or "")


# --- 06 start -------------------------------------------------------------------------------------


def state(text: str) -> dict[str, str]:
    return {"state": text}


def test_start_not_running_starts_and_current_daemon_is_left_alone():
    plan = start.plan(CHAPTER, both(3, extra=state("pid=")))
    assert kinds(plan) == ["restart"] and plan.nodes["node1"].operations[0].command == "systemctl start corosync"
    sha = "pid=812\nstart=1000\nsha:/etc/corosync/corosync.conf=a\nsha:/etc/corosync/authkey=k\nstamp:pid=812\nstamp:sha:/etc/corosync/corosync.conf=a\nstamp:sha:/etc/corosync/authkey=k\nactive=active"
    assert kinds(start.plan(CHAPTER, both(3, extra=state(sha)))) == []
    old = sha.replace("sha:/etc/corosync/corosync.conf=a\nstamp", "sha:/etc/corosync/corosync.conf=NEW\nstamp", 1)
    plan = start.plan(CHAPTER, both(3, extra=state(old)))
    assert plan.nodes["node1"].operations[0].command == "systemctl restart corosync"
    assert plan.nodes["node1"].operations[0].reason == "corosync.conf changed since the runbook started Corosync"


def test_start_on_sysv_uses_the_init_script():
    plan = start.plan(with_generation(CHAPTER, 1), both(1))
    assert plan.nodes["node1"].operations[0].command == "/etc/init.d/corosync start"


# --- plan and by hand -----------------------------------------------------------------------------


def test_by_hand_for_the_chapter_on_1x_reads_as_the_chapters_commands():
    text = by_hand.render_text(CHAPTER, 1)
    order = [
        "apt-get install corosync",
        "# write the file shown below to /etc/corosync/corosync.conf",
        "corosync-keygen   # reads /dev/random",
        "scp node1:/etc/corosync/authkey /etc/corosync/authkey",
        "chown root:root /etc/corosync/authkey\nchmod 400 /etc/corosync/authkey",
        "/usr/sbin/corosync-cfgtool -r\\nexit 0",
        "START=yes",
    ]
    at = 0
    for line in order:  # each in turn, after the one before
        at = text.index(line, at) + len(line)
    markdown = by_hand.render_markdown(CHAPTER, 1)
    assert "member {" in markdown and "memberaddr: 10.0.66.202" in markdown  # the 1.x file the chapter writes


def test_by_hand_never_contains_key_bytes_or_scripts():
    for generation in (1, 2, 3):
        text = by_hand.render_markdown(CHAPTER, generation)
        assert "@@RUNBOOK" not in text and "base64" not in text and "mktemp" not in text


def test_a_dry_run_plans_the_restart_that_the_file_an_earlier_step_would_write_causes():
    from runbook.engine import plan as plans
    from runbook.engine.executor import execute

    running = "pid=812\nstart=1000\nsha:/etc/corosync/corosync.conf=a\nsha:/etc/corosync/authkey=k\nstamp:pid=812\nstamp:sha:/etc/corosync/corosync.conf=a\nstamp:sha:/etc/corosync/authkey=k\nactive=active"
    facts = both(3, extra=state(running), files=conf("old: file\n"))
    plans.forget_pending()
    assert kinds(start.plan(CHAPTER, facts, check=True)) == []  # nothing pending: nothing to restart
    execute(config.plan(CHAPTER, facts, check=True), {}, check=True)  # the dry run of step 02 (no hosts needed)
    restart = start.plan(CHAPTER, facts, check=True).nodes["node1"].operations
    assert [op.command for op in restart] == ["systemctl restart corosync"]
    assert restart[0].reason == "corosync.conf changed since the runbook started Corosync"
    assert kinds(start.plan(CHAPTER, facts, check=False)) == []  # a real run reads the real files instead
    plans.forget_pending()


def test_the_by_hand_page_is_what_the_plans_say():
    page = (ROOT / "docs" / "by-hand.md").read_text(encoding="utf-8")
    assert page == by_hand.page(CHAPTER), "refresh it: python -m runbook.steps.by_hand docs/by-hand.md"
