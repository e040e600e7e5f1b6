"""The lab's connection guard: the SSH layer knows nothing of the lab; the lab plugs its guard in from outside.

Without this, every production connection read the lab's state on disk before its first packet.
That the SSH layer never imports the lab is the layers contract's (test_architecture.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.errors import ConnectionFailed
from runbook.lab import guard as lab_guard
from runbook.ssh import endpoint, hosts
from runbook.ssh.endpoint import Endpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def no_guards(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[hosts.ConnectionGuard]]:
    guards: list[hosts.ConnectionGuard] = []
    monkeypatch.setattr(hosts, "CONNECTION_GUARDS", guards)
    monkeypatch.setattr(endpoint, "SSH_CONFIG_FINDERS", [])
    yield guards


def endpoint_at(hostname: str) -> Endpoint:
    return Endpoint(
        node="node1", hostname=hostname, port=22, user="root", identity_files=(), known_hosts_files=(),
        identities_only=True, proxy_jump=None, connect_timeout=1.0, sudo=False, trust_unknown=False,
    )


def test_lab_only_without_a_guard_refuses_every_connection(no_guards: list[hosts.ConnectionGuard], monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: RUNBOOK_LAB_ONLY set in a process that never installed the lab's guard sends nothing."""
    monkeypatch.setenv("RUNBOOK_LAB_ONLY", "1")
    with pytest.raises(ConnectionFailed) as info:
        hosts.Host(endpoint_at("127.0.0.1")).client
    assert info.value.host == "node1" and "no lab guard" in str(info.value)


def test_installing_the_guard_adds_it_once(no_guards: list[hosts.ConnectionGuard], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path / "labs"))
    monkeypatch.setenv("RUNBOOK_LAB_ONLY", "1")
    assert lab_guard.install() and lab_guard.install()
    installed = lab_guard.installed()
    assert installed is not None and no_guards == [installed.guard]
    assert endpoint.SSH_CONFIG_FINDERS == [installed.ssh_config]


def test_without_lab_only_and_without_labs_no_guard_is_installed(no_guards: list[hosts.ConnectionGuard], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A production controller where no lab was ever made: no lab state is read on any connection."""
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path / "labs"))
    monkeypatch.delenv("RUNBOOK_LAB_ONLY", raising=False)
    assert not lab_guard.install()
    assert no_guards == [] and endpoint.SSH_CONFIG_FINDERS == []


@pytest.mark.parametrize("hostname", ["node1.example.com", "192.0.2.10"])
def test_lab_only_refuses_names_and_addresses_that_are_not_lab_hosts(
    no_guards: list[hosts.ConnectionGuard], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hostname: str
) -> None:
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path / "labs"))
    monkeypatch.setenv("RUNBOOK_LAB_ONLY", "1")
    lab_guard.install()
    with pytest.raises(ConnectionFailed) as info:
        hosts.Host(endpoint_at(hostname)).client
    assert info.value.host == "node1" and "RUNBOOK_LAB_ONLY is set" in str(info.value)


def test_an_address_of_a_lab_that_is_down_is_refused_without_lab_only(
    no_guards: list[hosts.ConnectionGuard], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A lab's address whose bridge is gone would follow the machine's routes: refused, lab-only or not."""
    from runbook.lab import state

    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path / "labs"))
    monkeypatch.delenv("RUNBOOK_LAB_ONLY", raising=False)
    host = state.LabHost(name="node1", address="10.0.93.11", netns="rbgone-n1", veth="rbgone-v1")
    state.LabState(name="gone", bridge="rbgone-br", subnet="10.0.93.0/24", bridge_address="10.0.93.1", hosts=[host]).save()
    assert lab_guard.install()
    with pytest.raises(ConnectionFailed) as info:
        hosts.Host(endpoint_at("10.0.93.11")).client
    assert info.value.host == "node1"
    assert "is lab host node1 of lab 'gone', but the lab's bridge rbgone-br is gone" in str(info.value)
    lab_guard.installed().guard("node1.example.com", "node1")  # type: ignore[union-attr]  # a name, without lab-only: not the lab's business


def test_the_guard_reads_the_lab_states_once_and_again_only_when_one_changes(
    no_guards: list[hosts.ConnectionGuard], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One process, many connections: the states are parsed once; a lab made meanwhile is seen at once."""
    from runbook.lab import state

    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path / "labs"))
    monkeypatch.setenv("RUNBOOK_LAB_ONLY", "1")
    loads: list[str] = []
    real_load = state.LabState.load.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(state.LabState, "load", classmethod(lambda cls, name: loads.append(name) or real_load(cls, name)))
    assert lab_guard.install()
    guard = lab_guard.installed()
    assert guard is not None
    with pytest.raises(ConnectionFailed, match="is not a lab host"):
        guard.guard("10.0.94.11", "node1")
    host = state.LabHost(name="node1", address="10.0.94.11", netns="rbnew-n1", veth="rbnew-v1")
    state.LabState(name="new", bridge="rbnew-br", subnet="10.0.94.0/24", bridge_address="10.0.94.1", hosts=[host]).save()
    for _ in range(5):
        with pytest.raises(ConnectionFailed, match="lab host node1 of lab 'new', but the lab's bridge rbnew-br is gone"):
            guard.guard("10.0.94.11", "node1")
    assert loads == ["new"], "parsed once for five connections"
