"""Lab hosts for a cluster file that names its nodes only by hostnames (pure planning, no root).

The lab picks an address for each hostname in its subnet, and every host's /etc/hosts resolves
every name; the runbook finds the lab (its ssh_config) by such a name as it does by an address.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.cli import main
from runbook.errors import LabError
from runbook.lab import boot as lab_boot
from runbook.lab import plan
from runbook.lab import state as lab_state
from runbook.lab import up as lab_up
from runbook.lab.plan import place_named_nodes, plan_lab


def test_hostnames_get_addresses_in_the_labs_subnet_and_names_to_resolve():
    nodes, names = place_named_nodes([("alpha", "alpha"), ("beta", "beta"), ("gamma", "gamma")])
    assert nodes == [("alpha", ["10.0.88.11"]), ("beta", ["10.0.88.12"]), ("gamma", ["10.0.88.13"])]
    assert names == {"alpha": "10.0.88.11", "beta": "10.0.88.12", "gamma": "10.0.88.13"}


def test_each_link_gets_its_own_subnet_and_given_addresses_are_kept():
    nodes, names = place_named_nodes([("a", ["a0", "a1"]), ("b", ["b0", "b1"])], "10.0.140.0/24")
    assert nodes == [("a", ["10.0.140.11", "10.0.141.11"]), ("b", ["10.0.140.12", "10.0.141.12"])]
    assert names["b1"] == "10.0.141.12"
    mixed, names = place_named_nodes([("a", "a"), ("b", "10.0.5.12"), ("c", "c")])
    assert mixed == [("a", ["10.0.5.11"]), ("b", ["10.0.5.12"]), ("c", ["10.0.5.13"])]  # in the file's /24, .12 taken
    assert place_named_nodes([("a", "10.0.5.1"), ("b", "10.0.5.2")]) == ([("a", ["10.0.5.1"]), ("b", ["10.0.5.2"])], {})


@pytest.mark.parametrize(
    "nodes, subnet, says",
    [
        ([("a", "same"), ("b", "SAME")], None, "node b: 'SAME' is also another node's address"),
        ([("a", "a")], "10.0.0.0/16", "the lab uses IPv4 /24 networks"),
        ([("a", "a")], "nonsense", "--subnet: 'nonsense' is not an IPv4 network"),
        ([("a", "fd00::1"), ("b", "b")], None, "node a: fd00::1 is IPv6; the lab makes IPv4 hosts only"),
        ([("a", "a"), ("b", "b_x")], None, "node b: 'b_x' is neither an IPv4 address nor a hostname"),
    ],
)
def test_bad_named_plans_say_why(nodes, subnet, says):
    with pytest.raises(LabError, match=says):
        place_named_nodes(nodes, subnet)


def _named_state(tmp_path: Path) -> lab_state.LabState:
    nodes, names = place_named_nodes([("alpha", "alpha"), ("beta", "beta")])
    state = plan_lab("names", nodes)
    state.names = names
    return state


def test_every_host_resolves_every_name_at_boot(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path))
    state = _named_state(tmp_path)
    script = plan.boot_script(state, state.hosts[0])
    assert "10.0.88.11 alpha" in script and "10.0.88.12 beta" in script
    state.dir.mkdir(parents=True)
    state.identity.with_suffix(".pub").write_text("ssh-ed25519 AAAA lab\n")
    hosts = lab_boot.host_files(state, state.hosts[1])["/etc/hosts"][0]  # booting hosts: the file itself
    assert hosts.splitlines() == ["127.0.0.1 localhost", "10.0.88.12 beta", "10.0.88.11 alpha"]


def test_the_lab_is_found_by_a_hostname_it_placed(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path))
    state = _named_state(tmp_path)
    state.save()
    found = lab_state.lab_for_address("beta")
    assert found is not None and found[0].name == "names" and found[1].address == "10.0.88.12"
    assert lab_state.lab_for_address("Beta") is not None and lab_state.lab_for_address("delta") is None
    assert lab_state.LabState.load("names").names == state.names  # kept in the state file


def test_lab_up_places_a_cluster_files_hostnames(tmp_path, monkeypatch, capsys):
    cluster_file = tmp_path / "names.yaml"
    cluster_file.write_text("cluster_name: names\nnodes:\n  - address: alpha\n  - address: beta\n")
    calls = []

    def fake_up(name, nodes, progress=None, os_name="host", names=None):  # type: ignore[no-untyped-def]
        calls.append((name, nodes, names))
        raise LabError("stop here")

    monkeypatch.setattr(lab_up, "up", fake_up)
    assert main.main(["lab", "up", str(cluster_file), "--lab", "names", "--subnet", "10.0.150.0/24"]) == 1
    assert calls == [("names", [("alpha", ["10.0.150.11"]), ("beta", ["10.0.150.12"])],
                      {"alpha": "10.0.150.11", "beta": "10.0.150.12"})]
