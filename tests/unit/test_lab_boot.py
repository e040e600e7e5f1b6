"""Booting lab hosts, the pure parts: OS choices, the nspawn command, the supervisor, boot states."""

import json
from pathlib import Path

import pytest

from runbook.errors import LabError
from runbook.lab import boot as lab_boot
from runbook.lab import rootfs as lab_rootfs
from runbook.lab.plan import plan_lab


def test_os_list_for_prepare():
    assert [o.suite for o in lab_rootfs.parse_os_list("debian12, debian13")] == ["bookworm", "trixie"]
    assert [o.name for o in lab_rootfs.parse_os_list("debian13,debian13")] == ["debian13"]
    with pytest.raises(LabError, match="'debian11' is not one of host, debian12, debian13"):
        lab_rootfs.parse_os_list("debian11")
    with pytest.raises(LabError, match="need no preparing"):
        lab_rootfs.parse_os_list("host")


def test_lab_up_without_a_cached_tree_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_ROOTFS_CACHE", str(tmp_path))
    with pytest.raises(LabError, match=r"`runbook lab prepare --os debian13`"):
        lab_rootfs.require_ready(lab_rootfs.boot_os("debian13"))


def test_a_half_made_tree_is_not_ready(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_ROOTFS_CACHE", str(tmp_path))
    os12 = lab_rootfs.boot_os("debian12")
    (tmp_path / "debian12/usr/lib").mkdir(parents=True)
    (tmp_path / "debian12/usr/lib/os-release").write_text("ID=debian\n")
    assert not lab_rootfs.is_ready(os12)  # no marker: debootstrap may have been interrupted
    (tmp_path / "debian12.ready").write_text('{"packages": ["systemd"]}')
    assert not lab_rootfs.is_ready(os12)  # made with an older package list: made again
    (tmp_path / "debian12.ready").write_text(json.dumps({"packages": list(lab_rootfs.BASE_PACKAGES)}))
    assert not lab_rootfs.is_ready(os12)  # made before its apt cache held the quorum device's packages: made again
    (tmp_path / "debian12.ready").write_text(json.dumps({"packages": list(lab_rootfs.BASE_PACKAGES), "downloads": list(lab_rootfs.DOWNLOADS)}))
    assert lab_rootfs.is_ready(os12)


def test_nspawn_boots_systemd_in_the_hosts_network_namespace(monkeypatch):
    monkeypatch.delenv("RUNBOOK_WORLD", raising=False)  # in a world, namespace names carry its name
    state = plan_lab("boot12", [("node1", "10.0.121.11")])
    argv = lab_boot.nspawn_argv(Path("/x/root"), state.hosts[0])
    assert argv[:1] == ["systemd-nspawn"] and "-b" in argv
    assert "--network-namespace-path=/run/netns/rb-boot12-node1" in argv
    assert "--hostname=node1" in argv
    assert {"--register=no", "--keep-unit"} <= set(argv)  # this machine has no systemd of its own


def test_supervisor_boots_again_on_reboot_and_hard_reset_only():
    state = plan_lab("boot12", [("node1", "10.0.121.11")])
    script = lab_boot.supervisor_script(state, state.hosts[0], Path("/cache/debian12"))
    assert "lowerdir=/cache/debian12,upperdir=$D/upper" in script
    assert "[ $rc -eq 133 ] || [ -e $D/hard-reset ]; then continue" in script
    assert "[ -e $D/stop ] && exit 0" in script  # lab down: never boot again


def test_sysv_boot_runs_rc2_scripts_then_rc_local():
    script = lab_boot.sysv_boot_script("/usr/sbin/sshd -D")
    assert script.index("kill -KILL -1") < script.index("/usr/sbin/sshd -D") < script.index("/etc/rc2.d/S") < script.index("/etc/rc.local")


@pytest.mark.parametrize(
    "text, enabled, active",
    [
        ("enabled\n@@\nactive\n", "enabled", "active"),
        ("disabled\n@@\ninactive\n", "disabled", "inactive"),
        ("\n@@\ninactive\n", "not installed", "inactive"),
        ("disabled\n (START=no)\n@@\nactive\n", "disabled (START=no)", "active"),
    ],
)
def test_boot_state_as_lab_status_shows_it(text, enabled, active):
    assert lab_boot.parse_boot_state(text) == lab_boot.BootState(enabled, active)


def test_host_files_give_each_host_its_name_and_the_labs_key(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path))
    state = plan_lab("boot12", [("node1", "10.0.121.11")])
    state.dir.mkdir(parents=True)
    state.identity.with_suffix(".pub").write_text("ssh-ed25519 AAAA lab\n")
    files = lab_boot.host_files(state, state.hosts[0])
    assert files["/etc/hostname"][0] == "node1\n"
    assert "10.0.121.11 node1" in files["/etc/hosts"][0]
    assert files["/root/.ssh/authorized_keys"] == ("ssh-ed25519 AAAA lab\n", 0o600)
    assert "HostKey /etc/ssh/ssh_host_ed25519_key" in files["/etc/ssh/sshd_config.d/runbook-lab.conf"][0]
