"""The runner's logic: step discovery and --only, run directory naming, summary and messages.

Most tests inject a fake executor, so no kernel starts and no host is touched. One test runs two
throwaway notebooks in real kernels (local only) to check the IPC transport and the failure path.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest

import runbook
import runbook.run.lock
from runbook import errors
from runbook.errors import ClusterFileError
from runbook.model.rules import to_parameters
from runbook.run import kernel, messages, runner, step_files
from runbook.run import record as runner_record
from runbook.run import summary as runner_summary
from runbook.run.record import StepRecord

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = ROOT / "clusters" / "chapter.yaml"
STEMS = [
    "00-preflight",
    "01-install",
    "02-corosync-conf",
    "03-authkey",
    "04-cfgtool",
    "05-enable-at-boot",
    "06-start-and-verify",
    "07-quorum-device",
]


def fake_steps(directory: Path, stems: list[str] = STEMS) -> list[step_files.Step]:
    directory.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        (directory / f"{stem}.ipynb").write_text("{}")
    return step_files.discover_steps(directory)


# --- discovery and --only ----------------------------------------------------------------------------


def test_discovers_the_eight_step_notebooks_in_order() -> None:
    steps = step_files.discover_steps(ROOT / "notebooks")
    assert [s.stem for s in steps] == STEMS
    assert [s.number for s in steps] == list(range(8))
    assert steps[2].name == "corosync-conf" and steps[2].notebook == "02-corosync-conf.ipynb"


def test_notebooks_dir_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(step_files.NOTEBOOKS_ENV, raising=False)
    assert step_files.notebooks_dir() == Path(runbook.__file__).resolve().parent.parent / "notebooks"
    monkeypatch.setenv(step_files.NOTEBOOKS_ENV, str(tmp_path))
    assert step_files.notebooks_dir() == tmp_path


def test_discovery_ignores_other_files_and_sorts_by_number(tmp_path: Path) -> None:
    for name in ("10-ten.ipynb", "2-two.ipynb", "README.md", "notes.ipynb", "03-x.txt"):
        (tmp_path / name).write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    assert [s.stem for s in step_files.discover_steps(tmp_path)] == ["2-two", "10-ten"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (None, "is not a directory"),
        ([], "no step notebooks"),
        (["01-a.ipynb", "01-b.ipynb"], "share a number"),
    ],
)
def test_discovery_errors_exit_2(tmp_path: Path, files: list[str] | None, message: str) -> None:
    directory = tmp_path / "nb"
    if files is not None:
        directory.mkdir()
        for name in files:
            (directory / name).write_text("{}")
    with pytest.raises(errors.UsageError, match=message) as info:
        step_files.discover_steps(directory)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        (None, STEMS),
        (["2"], ["02-corosync-conf"]),
        (["02"], ["02-corosync-conf"]),
        (["corosync-conf"], ["02-corosync-conf"]),
        (["02-corosync-conf"], ["02-corosync-conf"]),
        (["02-corosync-conf.ipynb"], ["02-corosync-conf"]),
        (["Authkey"], ["03-authkey"]),
        (["6", "0"], ["00-preflight", "06-start-and-verify"]),  # step order, not argument order
        (["3,authkey", "03"], ["03-authkey"]),  # commas, duplicates
        (["enable-at-boot", "1"], ["01-install", "05-enable-at-boot"]),
    ],
)
def test_select_steps(tmp_path: Path, only: list[str] | None, expected: list[str]) -> None:
    steps = fake_steps(tmp_path)
    assert [s.stem for s in step_files.select_steps(steps, only)] == expected


@pytest.mark.parametrize("only", [["8"], ["conf"], ["corosync"], ["-1"], ["2", "nope"], [","]])
def test_select_unknown_step_lists_valid_ones(tmp_path: Path, only: list[str]) -> None:
    steps = fake_steps(tmp_path)
    with pytest.raises(errors.UsageError) as info:
        step_files.select_steps(steps, only)
    assert info.value.exit_code == 2
    text = str(info.value)
    assert "valid steps: 00 preflight, 01 install, 02 corosync-conf" in text
    assert "06 start-and-verify" in text


# --- run directory -------------------------------------------------------------------------------


def test_run_dir_name_is_utc_with_check_suffix() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert runner_record.run_dir_name(moment, False) == "20240102T030405Z"
    assert runner_record.run_dir_name(moment, True) == "20240102T030405Z-check"
    local = moment.astimezone(timezone(timedelta(hours=2)))
    assert runner_record.run_dir_name(local, False) == "20240102T030405Z"


def test_make_run_dir_never_reuses_a_directory(tmp_path: Path) -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    first = runner_record.make_run_dir(tmp_path, "chapter", moment, False)
    second = runner_record.make_run_dir(tmp_path, "chapter", moment, False)
    check = runner_record.make_run_dir(tmp_path, "chapter", moment, True)
    assert first == tmp_path / "chapter" / "20240102T030405Z"
    assert second == tmp_path / "chapter" / "20240102T030405Z-2"
    assert check == tmp_path / "chapter" / "20240102T030405Z-check"
    assert all(p.is_dir() for p in (first, second, check))


# --- summary and messages ------------------------------------------------------------------------------


def state_for(tmp_path: Path, statuses: list[str], check: bool = False) -> runner_summary.RunState:
    steps = fake_steps(tmp_path / "nb", STEMS[: len(statuses)])
    results = [runner_summary.StepResult(step, status=status) for step, status in zip(steps, statuses)]
    return runner_summary.RunState(
        cluster_name="chapter",
        cluster_file=str(CHAPTER),
        check=check,
        run_dir=tmp_path,
        started=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        finished=datetime(2024, 1, 2, 3, 5, 0, tzinfo=timezone.utc),
        results=results,
    )


def test_summary_contents(tmp_path: Path) -> None:
    state = state_for(tmp_path, ["ok", "failed", "not run"])
    state.status = "failed"
    state.results[0].seconds = 1.234
    state.results[0].record = StepRecord.from_dict({"outcomes": [{"node": "node1", "status": "changed", "summary": "x"}]})
    state.results[1].seconds = 2.0
    state.results[1].error = "StepFailed: step 01-install failed on node2: no apt"
    summary = runner_summary.build_summary(state)
    assert summary == {
        "version": 2,
        "cluster": "chapter",
        "cluster_file": str(CHAPTER),
        "started": "2024-01-02T03:04:05+00:00",
        "finished": "2024-01-02T03:05:00+00:00",
        "check": False,
        "status": "failed",
        "steps": [
            {"step": "00-preflight", "notebook": "00-preflight.ipynb", "status": "ok", "seconds": 1.2, "error": None, "changed": ["node1"]},
            {
                "step": "01-install",
                "notebook": "01-install.ipynb",
                "status": "failed",
                "seconds": 2.0,
                "error": "StepFailed: step 01-install failed on node2: no apt",
                "changed": [],
            },
            {"step": "02-corosync-conf", "notebook": "02-corosync-conf.ipynb", "status": "not run", "seconds": None, "error": None, "changed": []},
        ],
        "runbook_version": runbook.__version__,
        "run_id": "",
        "runner": {},
    }
    json.dumps(summary)  # JSON-able


def test_outcome_lines_are_aligned_and_terminal_safe() -> None:
    record = StepRecord.from_dict({
        "outcomes": [
            {"node": "node1", "status": "changed", "summary": "wrote \x1b[31m/etc/corosync/corosync.conf\x07"},
            {"node": "node10", "status": "unchanged", "summary": "line one\nline two"},
        ],
        "notes": ["Corosync 3: \x1b]0;title\x07skipped"],
    })
    lines = messages.outcome_lines(record)
    assert lines == [
        "      node1   changed       wrote /etc/corosync/corosync.conf",
        "      node10  unchanged     line one line two",
        "      note: Corosync 3: skipped",
    ]
    assert messages.outcome_lines(None) == []


def papermill_error(ename: str, evalue: str) -> Exception:
    from papermill.exceptions import PapermillExecutionError

    return PapermillExecutionError(cell_index=3, exec_count=3, source="x", ename=ename, evalue=evalue, traceback=[])


def test_failure_message_for_a_step_failure_names_step_node_and_cause(tmp_path: Path) -> None:
    step = fake_steps(tmp_path, ["02-corosync-conf"])[0]
    exc = papermill_error("StepFailed", "step 02-corosync-conf failed on node2: corosync -t exited 8\n  stderr: bad")
    message, line = messages.failure_message(step, exc, StepRecord.from_dict({"outcomes": [{"node": "node2", "status": "failed"}]}))
    assert message == "step 02-corosync-conf failed on node2: corosync -t exited 8\n  stderr: bad"
    assert line == "StepFailed: step 02-corosync-conf failed on node2: corosync -t exited 8 stderr: bad"


def test_failure_message_for_another_error_adds_step_and_failed_nodes(tmp_path: Path) -> None:
    step = fake_steps(tmp_path, ["03-authkey"])[0]
    exc = papermill_error("HostKeyError", "node1: unknown SSH host key for 10.0.66.201")
    message, line = messages.failure_message(step, exc, StepRecord.from_dict({"outcomes": [{"node": "node1", "status": "failed"}]}))
    assert message == "step 03-authkey failed on node1: HostKeyError: node1: unknown SSH host key for 10.0.66.201"
    assert line == "HostKeyError: node1: unknown SSH host key for 10.0.66.201"
    message, line = messages.failure_message(step, ValueError("odd"), None)
    assert message == "step 03-authkey failed: ValueError: odd"


def test_failure_message_for_a_cell_timeout(tmp_path: Path) -> None:
    from nbclient.exceptions import CellTimeoutError

    step = fake_steps(tmp_path, ["06-start-and-verify"])[0]
    exc = CellTimeoutError("A cell timed out while it was being executed, after 5 seconds.\nHere is a preview...")
    message, line = messages.failure_message(step, exc, None, timeout=5)
    assert message == "step 06-start-and-verify timed out: a cell of the notebook ran longer than 5 s (--timeout) and was stopped"
    assert line == "CellTimeoutError: a cell of the notebook ran longer than 5 s (--timeout) and was stopped"


def test_verdicts(tmp_path: Path) -> None:
    state = state_for(tmp_path / "a", ["ok", "ok"])
    state.status = "ok"
    assert messages.verdict(state) == "OK: cluster 'chapter': 2 steps done; everything was already in place."
    state.results[1].record = StepRecord.from_dict({"outcomes": [{"node": "node2", "status": "changed"}]})
    assert messages.verdict(state) == "OK: cluster 'chapter': 2 steps done; changed: 01-install (node2)."
    plan = state_for(tmp_path / "b", ["ok"], check=True)
    plan.status = "ok"
    assert "Nothing was changed." in messages.verdict(plan) and messages.verdict(plan).startswith("PLAN:")
    failed = state_for(tmp_path / "c", ["ok", "failed", "not run", "not run"])
    failed.status = "failed"
    assert messages.verdict(failed) == (
        "FAILED: cluster 'chapter': stopped at step 01-install after 1 of 4 steps; 2 later steps did not run."
    )
    stopped = state_for(tmp_path / "d", ["interrupted", "not run"])
    stopped.status = "interrupted"
    assert messages.verdict(stopped).startswith("INTERRUPTED: cluster 'chapter': stopped at step 00-preflight")


# --- the run, with a fake executor -------------------------------------------------------------------


@pytest.fixture
def fake_notebooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "notebooks"
    fake_steps(directory, STEMS[:3])
    monkeypatch.setenv(step_files.NOTEBOOKS_ENV, str(directory))
    return directory


class Executor:
    """Stands in for papermill: writes the output notebook and a record, or fails as told."""

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.fail = fail or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, step: step_files.Step, output: Path, parameters: dict[str, Any], **kwargs: Any) -> None:
        self.calls.append((step.stem, parameters))
        assert kwargs["cwd"] == step_files.repo_root()
        output.write_text("{}")
        status = "would change" if parameters["check"] else "changed"
        failed = step.stem in self.fail
        record = {
            "step": step.stem,
            "outcomes": [
                {"node": "node1", "status": status, "summary": "did it"},
                {"node": "node2", "status": "failed" if failed else "unchanged", "summary": "boom" if failed else "fine"},
            ],
            "notes": [],
        }
        Path(parameters["record_dir"], f"{step.stem}.json").write_text(json.dumps(record))
        if failed:
            raise self.fail[step.stem]


def only_run_dir(out: Path) -> Path:
    dirs = [p for p in (out / "chapter").iterdir() if not p.name.startswith(".")]
    assert len(dirs) == 1
    return dirs[0]


def test_run_ok_writes_record_summary_and_log(fake_notebooks: Path, tmp_path: Path) -> None:
    out, stream, executor = tmp_path / "runs", io.StringIO(), Executor()
    assert runner.run(str(CHAPTER), out=out, stream=stream, executor=executor) == 0
    run_dir = only_run_dir(out)
    assert run_dir.name.endswith("Z")
    assert [c[0] for c in executor.calls] == STEMS[:3]
    parameters = executor.calls[0][1]
    from runbook.model.load import load_cluster

    assert parameters == {**to_parameters(load_cluster(CHAPTER)), "check": False, "take_over": False, "restart_all": False, "rotate_key": False, "record_dir": str(run_dir)}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["check"] is False and summary["cluster"] == "chapter"
    assert summary["cluster_file"] == str(CHAPTER)
    assert [s["status"] for s in summary["steps"]] == ["ok", "ok", "ok"]
    text = stream.getvalue()
    assert "[2/3] 01-install ... ok (" in text
    assert "      node1  changed       did it" in text
    assert text.rstrip().splitlines()[-1] == (
        "OK: cluster 'chapter': 3 steps done; changed: 00-preflight (node1); 01-install (node1); 02-corosync-conf (node1)."
    )
    assert (run_dir / "run.log").read_text() == text
    assert not (run_dir / "kernel.log").exists()


def test_plan_runs_in_check_mode_into_a_check_dir(fake_notebooks: Path, tmp_path: Path) -> None:
    out, executor = tmp_path / "runs", Executor()
    assert runner.run(str(CHAPTER), check=True, only=["1"], out=out, stream=io.StringIO(), executor=executor) == 0
    run_dir = only_run_dir(out)
    assert run_dir.name.endswith("Z-check")
    assert [(stem, p["check"]) for stem, p in executor.calls] == [("01-install", True)]
    assert json.loads((run_dir / "summary.json").read_text())["check"] is True


def test_run_stops_at_the_first_failure(fake_notebooks: Path, tmp_path: Path) -> None:
    out, stream = tmp_path / "runs", io.StringIO()
    error = papermill_error("StepFailed", "step 01-install failed on node2: boom")
    executor = Executor(fail={"01-install": error})
    assert runner.run(str(CHAPTER), out=out, stream=stream, executor=executor) == 1
    assert [c[0] for c in executor.calls] == ["00-preflight", "01-install"]
    run_dir = only_run_dir(out)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert [s["status"] for s in summary["steps"]] == ["ok", "failed", "not run"]
    assert summary["steps"][1]["error"] == "StepFailed: step 01-install failed on node2: boom"
    text = stream.getvalue()
    assert "[2/3] 01-install ... FAILED (" in text
    assert "      node2  failed        boom" in text
    assert "runbook: error: step 01-install failed on node2: boom" in text
    assert f"executed notebook with the error: {run_dir / '01-install.ipynb'}" in text
    assert text.rstrip().splitlines()[-1].startswith("FAILED: cluster 'chapter': stopped at step 01-install")


def test_ctrl_c_records_an_interrupted_run(fake_notebooks: Path, tmp_path: Path) -> None:
    out, stream = tmp_path / "runs", io.StringIO()
    executor = Executor(fail={"01-install": KeyboardInterrupt()})
    assert runner.run(str(CHAPTER), out=out, stream=stream, executor=executor) == 130
    summary = json.loads((only_run_dir(out) / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert [s["status"] for s in summary["steps"]] == ["ok", "interrupted", "not run"]
    assert "runbook: interrupted during step 01-install" in stream.getvalue()


def test_bad_cluster_file_fails_before_anything_starts(fake_notebooks: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster_name: chapter\nnodes: [{name: node1, address: 10.0.66.999}, {name: node2, address: 10.0.66.202}]\n")
    executor = Executor()
    with pytest.raises(ClusterFileError) as info:
        runner.run(str(bad), out=tmp_path / "runs", stream=io.StringIO(), executor=executor)
    assert info.value.exit_code == 2 and "10.0.66.999" in str(info.value)
    assert executor.calls == [] and not (tmp_path / "runs").exists()


def test_unknown_only_fails_before_anything_starts(fake_notebooks: Path, tmp_path: Path) -> None:
    executor = Executor()
    with pytest.raises(errors.UsageError):
        runner.run(str(CHAPTER), only=["9"], out=tmp_path / "runs", stream=io.StringIO(), executor=executor)
    assert executor.calls == [] and not (tmp_path / "runs").exists()


def test_cli_has_run_and_plan(fake_notebooks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runbook.cli.main import main

    assert main(["run", str(CHAPTER), "--only", "nope", "--out", str(tmp_path / "runs")]) == 2
    assert "unknown step 'nope' for --only; valid steps: 00 preflight, 01 install, 02 corosync-conf" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    assert "runbook plan clusters/chapter.yaml" in capsys.readouterr().out


# --- kernels ------------------------------------------------------------------------------------------


def test_kernel_manager_uses_ipc_sockets_in_the_private_dir(tmp_path: Path) -> None:
    km = kernel.kernel_manager_class(tmp_path, None)(kernel_name="python3")
    assert km.transport == "ipc"
    assert km.ip == str(tmp_path / "kernel")
    assert km.connection_file == str(tmp_path / "kernel.json")


def _tiny_notebook(path: Path, body: str) -> None:
    v4 = nbformat.v4
    cells = [
        v4.new_code_cell("check = False\nrecord_dir = None", metadata={"tags": ["parameters"]}),
        v4.new_code_cell(f'from runbook import notebook\ncluster, hosts = notebook.setup(globals(), step="{path.stem}")'),
        v4.new_code_cell(body),
    ]
    nb = v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)


REPORT = """\
class Report:
    step = "ignored"
    def to_dict(self):
        return {"step": "x", "outcomes": [{"node": n.name, "status": "unchanged", "summary": "ok"} for n in cluster.nodes]}
report = notebook.record(Report())
"""
FAIL = """\
from runbook.errors import RunbookError
class StepFailed(RunbookError):
    pass
raise StepFailed("step 01-fail failed on node2: it broke")
"""


def test_real_kernels_over_ipc_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two throwaway notebooks in real kernels: no TCP warning anywhere, failure reported, nothing left behind."""
    pytest.importorskip("ipykernel")
    directory = tmp_path / "notebooks"
    directory.mkdir()
    _tiny_notebook(directory / "00-ok.ipynb", REPORT)
    _tiny_notebook(directory / "01-fail.ipynb", FAIL)
    _tiny_notebook(directory / "02-never.ipynb", "raise AssertionError('must not run')")
    monkeypatch.setenv(step_files.NOTEBOOKS_ENV, str(directory))
    private_tmp = tmp_path / "tmp"  # other runs on this machine make kernel dirs in /tmp at the same time
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    out, stream = tmp_path / "runs", io.StringIO()

    assert runner.run(str(CHAPTER), out=out, stream=stream, timeout=120, lock_nodes=False) == 1

    run_dir = only_run_dir(out)
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == [
        "00-ok.ipynb", "00-ok.json", "01-fail.ipynb", "run.log", "summary.json",
    ]  # no kernel.log: the kernels wrote nothing to stderr (no "running over TCP" warning)
    for name in ("00-ok.ipynb", "01-fail.ipynb"):
        assert "without encryption" not in (run_dir / name).read_text()
    executed = nbformat.read(run_dir / "01-fail.ipynb", as_version=4)
    error = executed.cells[-1].outputs[-1]
    assert error.output_type == "error" and error.ename == "StepFailed"
    assert error.traceback[0].endswith("StepFailed\x1b[0m: step 01-fail failed on node2: it broke")
    assert len(error.traceback) <= 4  # message first, a few frames, no wall
    text = stream.getvalue()
    assert "      node1  unchanged     ok" in text
    assert "runbook: error: step 01-fail failed on node2: it broke" in text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["ok", "failed", "not run"]
    assert not list(private_tmp.glob("runbook-kernel-*")), "kernel socket directories left behind"
    assert not list(ROOT.glob("kernel-ipc-*")), "IPC sockets leaked into the working directory"


def test_steps_share_a_kernel_but_not_a_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """runbook run keeps one kernel (and its SSH connections) for speed; each step still starts clean."""
    pytest.importorskip("ipykernel")
    directory = tmp_path / "notebooks"
    directory.mkdir()
    _tiny_notebook(directory / "00-define.ipynb", "leftover = 'from step 00'\nimport os\nkernel_pid = os.getpid()\n" + REPORT)
    _tiny_notebook(
        directory / "01-look.ipynb",
        "assert 'leftover' not in globals(), 'a name from the previous step leaked'\n" + REPORT,
    )
    monkeypatch.setenv(step_files.NOTEBOOKS_ENV, str(directory))
    out = tmp_path / "runs"
    assert runner.run(str(CHAPTER), out=out, stream=io.StringIO(), timeout=120, lock_nodes=False) == 0
    run_dir = only_run_dir(out)
    for name in ("00-define.ipynb", "01-look.ipynb"):
        executed = nbformat.read(run_dir / name, as_version=4)
        counts = [c.execution_count for c in executed.cells if c.cell_type == "code"]
        assert counts == list(range(1, len(counts) + 1)), f"{name}: {counts}"


# --- one run at a time, signals, dead runs, the controller's disk ---------------------------------------


def test_a_second_run_is_refused_at_once_naming_the_holder(fake_notebooks: Path, tmp_path: Path) -> None:
    from runbook.errors import RunLocked
    from runbook.run import lock

    out = tmp_path / "runs"
    held = lock.ControllerLock(out / "chapter")
    held.acquire(lock.Holder("ctl-a", 4242, "2026-11-26T07:15:02+00:00", "99", "run", "chapter"))
    try:
        executor = Executor()
        with pytest.raises(RunLocked) as info:
            runner.run(str(CHAPTER), out=out, stream=io.StringIO(), executor=executor)
        text = str(info.value)
        assert info.value.exit_code == 75
        assert "run of cluster 'chapter' by pid 4242 on ctl-a, started 2026-11-26T07:15:02+00:00" in text
        assert "ps -p 4242" in text and "nothing was changed" in text
        assert executor.calls == [] and [p.name for p in (out / "chapter").iterdir()] == [".runbook.run.lock"]
        with pytest.raises(RunLocked, match="a plan would read them half-changed"):
            runner.run(str(CHAPTER), check=True, out=out, stream=io.StringIO(), executor=executor)
    finally:
        held.release()
    assert runner.run(str(CHAPTER), out=out, stream=io.StringIO(), executor=Executor()) == 0


def test_a_plan_holds_no_lock(fake_notebooks: Path, tmp_path: Path) -> None:
    from runbook.run import lock

    out = tmp_path / "runs"
    seen: list[object] = []

    class Looks(Executor):
        def __call__(self, step: step_files.Step, output: Path, parameters: dict[str, Any], **kwargs: Any) -> None:
            seen.append(lock.probe_controller(out / "chapter"))
            super().__call__(step, output, parameters, **kwargs)

    assert runner.run(str(CHAPTER), check=True, out=out, stream=io.StringIO(), executor=Looks()) == 0
    assert seen == [None, None, None]
    seen.clear()
    assert runner.run(str(CHAPTER), out=out, stream=io.StringIO(), executor=Looks()) == 0
    assert all(h is not None and h.pid == os.getpid() and h.command == "run" for h in seen)


def test_sigterm_is_handled_like_ctrl_c_with_exit_143(fake_notebooks: Path, tmp_path: Path) -> None:
    class Killed(Executor):
        def __call__(self, step: step_files.Step, output: Path, parameters: dict[str, Any], **kwargs: Any) -> None:
            super().__call__(step, output, parameters, **kwargs)
            if step.stem == "01-install":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises before this ends
                raise AssertionError("SIGTERM was not handled")

    out, stream = tmp_path / "runs", io.StringIO()
    assert runner.run(str(CHAPTER), out=out, stream=stream, executor=Killed()) == 143
    summary = json.loads((only_run_dir(out) / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert [s["status"] for s in summary["steps"]] == ["ok", "interrupted", "not run"]
    assert "runbook: terminated (SIGTERM) during step 01-install" in stream.getvalue()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_record_left_running_by_a_dead_runner_is_marked(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    cluster_dir = tmp_path / "chapter"
    records = {}
    for name, pid, start in (("dead", dead.pid, "1"), ("alive", os.getpid(), runbook.run.lock.process_start(os.getpid())),
                             ("reused", os.getpid(), "1"), ("other-host", dead.pid, "1")):
        (cluster_dir / name).mkdir(parents=True)
        host = "elsewhere.example" if name == "other-host" else socket.gethostname()
        data = {"status": "running", "runner": {"host": host, "pid": pid, "pid_start": start},
                "steps": [{"step": "00-a", "notebook": "00-a.ipynb", "status": "ok"},
                          {"step": "01-b", "notebook": "01-b.ipynb", "status": "not run"},
                          {"step": "02-c", "notebook": "02-c.ipynb", "status": "not run"}]}
        (cluster_dir / name / "01-b.ipynb").write_text("{}")
        (cluster_dir / name / "summary.json").write_text(json.dumps(data))
        records[name] = cluster_dir / name / "summary.json"
    marked = runner_record.mark_dead_runs(cluster_dir)
    assert sorted(p.name for p in marked) == ["dead", "reused"]
    for name in ("dead", "reused"):
        data = json.loads(records[name].read_text())
        assert data["status"] == "interrupted" and "was gone when the next run started" in data["ended"]
        assert [s["status"] for s in data["steps"]] == ["ok", "interrupted", "not run"]
    for name in ("alive", "other-host"):
        assert json.loads(records[name].read_text())["status"] == "running"


def test_kernel_dirs_of_dead_runners_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = tmp_path / f"runbook-kernel-{dead.pid}-abc123"
    mine = tmp_path / f"runbook-kernel-{os.getpid()}-def456"
    old = tmp_path / "runbook-kernel-xyz"
    for path in (gone, mine, old):
        path.mkdir()
    assert kernel.sweep_kernel_dirs(tmp_path) == [gone]
    assert not gone.exists() and mine.exists() and old.exists()


def test_disk_errors_name_the_controller_and_the_path(tmp_path: Path) -> None:
    import errno

    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "x" / "summary.json"))
    found = runner.disk_error(error, tmp_path / "runs")
    assert found is not None and found.exit_code == 1
    assert str(found) == f"{socket.gethostname()}: controller cannot write {tmp_path}/runs/x/summary.json: No space left on device"
    wrapped = RuntimeError("papermill failed")
    wrapped.__cause__ = error
    assert runner.disk_error(wrapped, tmp_path / "runs") is not None
    assert runner.disk_error(OSError(errno.ENOSPC, "full", "/elsewhere"), tmp_path / "runs") is None
    assert runner.disk_error(ValueError("x"), tmp_path) is None


def test_a_full_disk_under_out_ends_the_run_with_one_line(fake_notebooks: Path, tmp_path: Path) -> None:
    import errno

    out, stream = tmp_path / "runs", io.StringIO()

    class Full(Executor):
        def __call__(self, step: step_files.Step, output: Path, parameters: dict[str, Any], **kwargs: Any) -> None:
            super().__call__(step, output, parameters, **kwargs)
            if step.stem == "01-install":
                raise OSError(errno.ENOSPC, "No space left on device", str(output))

    assert runner.run(str(CHAPTER), out=out, stream=stream, executor=Full()) == 1
    text = stream.getvalue()
    assert f"runbook: error: {socket.gethostname()}: controller cannot write {only_run_dir(out)}/01-install.ipynb: No space left on device" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(("timeout", "budget"), [(600, 590), (60, 54), (20, 18), (4, 2), (None, None)])
def test_node_commands_end_before_the_cell_timeout(timeout: float | None, budget: float | None) -> None:
    assert kernel.command_budget(timeout) == budget
