"""A lab's state file: one written by another version is named with its key, not a TypeError before every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.cli.main import main
from runbook.errors import LabError
from runbook.lab.state import LabHost, LabState

ROOT = Path(__file__).resolve().parents[2]


def state_file(root: Path, data: object) -> Path:
    path = root / "x" / "state.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def lab(**extra: object) -> dict[str, object]:
    host = {"name": "n1", "address": "10.0.93.11", "netns": "rbx-n1", "veth": "rbx-v1"}
    return {"name": "x", "bridge": "rbx-br", "subnet": "10.0.93.0/24", "bridge_address": "10.0.93.1", "hosts": [host], **extra}


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (lab(colour="blue"), "unknown key colour"),
        ({**lab(), "hosts": [{"name": "n1", "address": "10.0.93.11", "netns": "rbx-n1", "veth": "rbx-v1", "mtu": 9000}]}, "unknown key hosts[0].mtu"),
        ({k: v for k, v in lab().items() if k != "subnet"}, "missing key subnet"),
        ([1, 2], "not a lab state"),
    ],
)
def test_a_state_file_from_another_version_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: object, says: str) -> None:
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path))
    path = state_file(tmp_path, data)
    with pytest.raises(LabError) as info:
        LabState.load("x")
    assert str(info.value).startswith(f"{path}: {says}") and "runbook lab down --lab x" in str(info.value)


def test_every_command_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The lab guard reads every lab's state before a command logs in anywhere: a stale file must not be a traceback."""
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path))
    state_file(tmp_path, lab(colour="blue"))
    assert main(["facts", str(ROOT / "clusters" / "chapter.yaml")]) == 1
    err = capsys.readouterr().err
    assert "unknown key colour" in err and "Traceback" not in err


def test_a_saved_state_loads_back_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_LAB_ROOT", str(tmp_path))
    state = LabState(name="x", bridge="rbx-br", subnet="10.0.93.0/24", bridge_address="10.0.93.1",
                     hosts=[LabHost(name="n1", address="10.0.93.11", netns="rbx-n1", veth="rbx-v1")], names={"alpha": "10.0.93.11"})
    state.save()
    assert LabState.load("x") == state
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["state.json"], "no temp file left beside it"
