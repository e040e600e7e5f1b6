"""The run record's one reader and writer: versions, typed operations, unknown keys kept, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.errors import RunbookError, RunRecordError
from runbook.run.record import RECORD_VERSION, NodeRecord, OperationRecord, RunSummary, StepRecord, read_step_record, read_summary, write_step_record, write_summary

# A step record as today's steps write it (version 1: no version field).
V1_STEP = {
    "step": "02-corosync-conf",
    "title": "Write corosync.conf",
    "check": False,
    "changed": True,
    "outcomes": [
        {"node": "node1", "status": "changed", "summary": "wrote /etc/corosync/corosync.conf"},
        {"node": "node2", "status": "unchanged", "summary": "already in place"},
    ],
    "notes": ["a note"],
    "problems": [],
}

V1_SUMMARY = {
    "cluster": "chapter",
    "cluster_file": "/x/clusters/chapter.yaml",
    "started": "2026-11-26T07:15:02+00:00",
    "finished": "2026-11-26T07:15:40+00:00",
    "check": False,
    "status": "ok",
    "steps": [
        {"step": "00-preflight", "notebook": "00-preflight.ipynb", "status": "ok", "seconds": 1.2, "error": None, "changed": []},
        {"step": "02-corosync-conf", "notebook": "02-corosync-conf.ipynb", "status": "ok", "seconds": 3, "error": None, "changed": ["node1"]},
    ],
    "runbook_version": "0.1.0",
    "run_id": "1a2b3c4d",
    "runner": {"host": "ctl", "pid": 42, "pid_start": "99"},
}


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_a_version_1_step_record_is_read_and_written_back_as_version_2(tmp_path: Path) -> None:
    record = read_step_record(write(tmp_path / "02-corosync-conf.json", V1_STEP))
    assert record.version == 1
    assert record.changed_nodes == ["node1"] and record.failed_nodes == []
    assert record.outcomes[0] == NodeRecord("node1", "changed", "wrote /etc/corosync/corosync.conf")
    write_step_record(tmp_path / "again.json", record)
    data = json.loads((tmp_path / "again.json").read_text())
    assert data == {**V1_STEP, "version": RECORD_VERSION} and RECORD_VERSION == 2


def test_operations_by_hand_files_and_unknown_keys_are_carried(tmp_path: Path) -> None:
    """What the steps will add (operations per node, by_hand, files) is typed; anything else is kept as it was."""
    operation = {"kind": "run", "command": "corosync-keygen", "reason": "no authkey", "status": "ok", "exit_status": 0, "output": "done"}
    data = {
        **V1_STEP,
        "version": 2,
        "outcomes": [{"node": "node1", "status": "changed", "summary": "x", "operations": [operation], "diff": "+a"}],
        "by_hand": ["apt-get install corosync"],
        "files": {"node1": {"/etc/corosync/corosync.conf": "totem {}\n"}},
        "something_new": {"a": [1, 2]},
    }
    record = read_step_record(write(tmp_path / "s.json", data))
    node = record.outcomes[0]
    assert node.operations == [OperationRecord("run", "corosync-keygen", "no authkey", "ok", 0, "done")]
    assert node.extra == {"diff": "+a"}
    assert record.by_hand == ["apt-get install corosync"]
    assert record.files == {"node1": {"/etc/corosync/corosync.conf": "totem {}\n"}}
    assert record.extra == {"something_new": {"a": [1, 2]}}
    assert record.to_dict() == data  # nothing dropped, nothing added
    assert NodeRecord.from_dict({"node": "n", "status": "unchanged"}).operations == []


def test_a_report_mapping_is_written_with_every_key_and_the_version(tmp_path: Path) -> None:
    write_step_record(tmp_path / "r.json", {"step": "x", "outcomes": [], "anything": 1})
    assert json.loads((tmp_path / "r.json").read_text()) == {"version": 2, "step": "x", "outcomes": [], "anything": 1}


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        (json.dumps([1, 2]), "not a step record"),
        (json.dumps({**V1_STEP, "version": 3}), "version 3: this runbook reads record versions 1, 2"),
        (json.dumps({**V1_STEP, "outcomes": "garbage"}), "outcomes: 'garbage' is not a list"),
        (json.dumps({**V1_STEP, "outcomes": [{"node": "n", "status": "ok", "operations": [{"kind": "run", "exit_status": "0"}]}]}),
         "outcomes[0].operations[0].exit_status: '0' is not an integer"),
        (json.dumps({**V1_STEP, "files": {"node1": {"/etc/x": 5}}}), "files.node1: not a mapping of path to text"),
    ],
)
def test_an_unusable_step_record_is_an_error_naming_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "03-authkey.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RunRecordError) as info:
        read_step_record(path)
    assert isinstance(info.value, RunbookError) and info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_a_version_1_summary_is_read_and_written_back_as_version_2(tmp_path: Path) -> None:
    write(tmp_path / "summary.json", V1_SUMMARY)
    summary = read_summary(tmp_path)
    assert summary.version == 1 and summary.status == "ok" and summary.cluster == "chapter"
    assert [s.step for s in summary.steps] == ["00-preflight", "02-corosync-conf"]
    assert summary.steps[1].seconds == 3.0 and summary.steps[1].changed == ["node1"]
    assert summary.step_seconds == pytest.approx(4.2)
    assert read_summary(tmp_path / "summary.json") == summary  # the directory or the file itself
    write_summary(tmp_path, summary)
    assert json.loads((tmp_path / "summary.json").read_text()) == {**V1_SUMMARY, "version": 2}


def test_a_summary_keeps_ended_and_unknown_keys(tmp_path: Path) -> None:
    data = {**V1_SUMMARY, "version": 2, "ended": "marked by the next run", "host_clock": "x"}
    summary = read_summary(write(tmp_path / "summary.json", data))
    assert summary.ended == "marked by the next run" and summary.extra == {"host_clock": "x"}
    assert summary.to_dict() == data


@pytest.mark.parametrize(
    "data, message",
    [
        ({**V1_SUMMARY, "version": "2"}, "version '2'"),
        ({**V1_SUMMARY, "check": "no"}, "check: 'no' is not true or false"),
        ({**V1_SUMMARY, "steps": [{"step": "x", "seconds": "fast"}]}, "steps[0].seconds: 'fast' is not a number"),
    ],
)
def test_an_unusable_summary_is_an_error_naming_the_file(tmp_path: Path, data: dict, message: str) -> None:
    path = write(tmp_path / "summary.json", data)
    with pytest.raises(RunRecordError) as info:
        read_summary(tmp_path)
    assert info.value.path == str(path) and str(info.value).startswith(f"{path}: {message}")


def test_a_new_summary_has_the_version_first(tmp_path: Path) -> None:
    write_summary(tmp_path, RunSummary(cluster="c"))
    assert next(iter(json.loads((tmp_path / "summary.json").read_text()))) == "version"
    assert StepRecord(step="s").to_dict()["version"] == 2
