"""The step notebooks: generated, thin, output-free, with the chapter's cluster as parameter defaults.

Also the glue they call (runbook.notebook), without a kernel and without any host.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from runbook import notebook
from runbook.errors import ClusterFileError, RunbookError
from runbook.model.load import load_cluster
from runbook.model.rules import PARAMETER_KEYS, to_parameters

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
MAKE = ROOT / "tools" / "make_notebooks.py"
CHAPTER = ROOT / "clusters" / "chapter.yaml"

EXPECTED = {
    "00-preflight": ("Step 0 — Preflight checks", "run_preflight"),
    "01-install": ("Step 1 — Install Corosync", "install_corosync"),
    "02-corosync-conf": ("Step 2 — Write corosync.conf", "write_config"),
    "03-authkey": ("Step 3 — Share the authkey", "distribute_authkey"),
    "04-cfgtool": ("Step 4 — The cfgtool line in rc.local", "cfgtool_line"),
    "05-enable-at-boot": ("Step 5 — Start Corosync at boot", "enable_at_boot"),
    "06-start-and-verify": ("Step 6 — Start Corosync and verify the membership", "start_and_verify"),
    "07-quorum-device": ("Step 7 — Add the quorum device", "setup_quorum_device"),
}
PATHS = [NOTEBOOKS / f"{stem}.ipynb" for stem in EXPECTED]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def parameter_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def defaults_of(cell: nbformat.NotebookNode) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(cell.source, "<parameters>", "exec"), {}, namespace)  # noqa: S102 - our own generated cell
    return {k: v for k, v in namespace.items() if not k.startswith("__")}  # drop __annotations__


def chapter_parameters() -> dict[str, Any]:
    return {**to_parameters(load_cluster(CHAPTER)), "check": False, "take_over": False, "restart_all": False, "rotate_key": False, "record_dir": None}


# --- the notebook files ----------------------------------------------------------------------------


def test_exactly_the_step_notebooks_exist() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(p.name for p in PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_is_valid_v4_python3(path: Path) -> None:
    nb = read(path)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs_and_no_execution_counts(path: Path) -> None:
    nb = read(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {cell.id} has an execution count"
    assert "papermill" not in nb.metadata


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_exactly_one_parameters_cell_with_the_chapters_cluster(path: Path) -> None:
    nb = read(path)
    cells = parameter_cells(nb)
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged parameters"
    defaults = defaults_of(cells[0])
    assert defaults == chapter_parameters()
    assert set(defaults) == set(PARAMETER_KEYS) | {"check", "take_over", "restart_all", "rotate_key", "record_dir"}
    assert defaults["check"] is False


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_parameters_one_per_line_with_help_papermill_can_read(path: Path) -> None:
    import papermill

    inferred = {p["name"]: p for p in papermill.inspect_notebook(str(path)).values()}
    assert list(inferred) == [*PARAMETER_KEYS, "check", "take_over", "restart_all", "rotate_key", "record_dir"]
    for name, parameter in inferred.items():
        assert parameter["help"], f"{path.name}: parameter {name} has no help comment"
    cell = parameter_cells(read(path))[0]
    assignments = [node for node in ast.parse(cell.source).body]
    assert all(node.lineno == node.end_lineno for node in assignments), "each parameter fits on one line"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_shape_title_setup_and_one_step_call(path: Path) -> None:
    nb = read(path)
    title, function = EXPECTED[path.stem]
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert first.source.splitlines()[0] == f"# {title}"
    for word in ("1.x", "3.x"):
        assert word in first.source, f"{path.name}: the intro does not say what differs on {word}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c is parameter_cells(nb)[0] for c in code] == [True, False, False]
    setup, step = code[1].source, code[2].source
    assert setup == f'from runbook import notebook, steps\ncluster, hosts = notebook.setup(globals(), step="{path.stem}")'
    flags = {"run_preflight": "check=check, take_over=take_over, restart_all=restart_all, rotate_key=rotate_key",  # refuses other clusters' nodes, and changes that stop the cluster
             "distribute_authkey": "check=check, rotate=rotate_key",  # runbook rotate-key
             "start_and_verify": "check=check, restart_all=restart_all"}.get(function, "check=check")
    assert step == f"report = notebook.record(steps.{function}(cluster, hosts, {flags}))\nreport"
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{path.stem}-") for i in ids)


def test_step_functions_named_in_the_notebooks_exist() -> None:
    from runbook import steps

    for _title, function in EXPECTED.values():
        assert callable(getattr(steps, function, None)), f"runbook.steps has no {function}"


def test_no_secret_like_parameters() -> None:
    for path in PATHS:
        source = parameter_cells(read(path))[0].source.lower()
        code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
        for word in ("password", "passphrase", "secret", "private_key", "authkey"):
            assert word not in code, f"{path.name}: a parameter mentions {word}"


def test_generator_reproduces_the_committed_notebooks_byte_for_byte(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        subprocess.run([sys.executable, str(MAKE), "--out", str(out)], check=True, capture_output=True)
    for path in PATHS:
        made = (first / path.name).read_bytes()
        assert made == (second / path.name).read_bytes(), f"{path.name}: two runs differ"
        assert made == path.read_bytes(), f"{path.name}: out of date; run tools/make_notebooks.py"


def test_generator_check_mode_passes_on_the_committed_notebooks() -> None:
    result = subprocess.run([sys.executable, str(MAKE), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- runbook.notebook ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_notebook_state() -> Any:
    saved = dict(notebook._state)
    notebook._state.update(hosts=None, record_dir=None, step=None)
    yield
    hosts = notebook._state.get("hosts")
    if hosts is not None:
        hosts.close()
    notebook._state.clear()
    notebook._state.update(saved)


def namespace(**extra: Any) -> dict[str, Any]:
    ns = {**to_parameters(load_cluster(CHAPTER)), "check": False, "record_dir": None, "unrelated": object()}
    ns.update(extra)
    return ns


def test_setup_builds_the_cluster_from_the_parameters_without_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    cluster, hosts = notebook.setup(namespace())
    assert cluster == load_cluster(CHAPTER)
    assert cluster.source == "papermill parameters"
    assert list(hosts) == ["node1", "node2"]
    assert all(host._client is None for host in hosts.values())  # lazily connecting: nothing sent
    shown = capsys.readouterr().out
    assert "chapter" in shown and "node1 (10.0.66.201, primary)" in shown and "check mode: no" in shown


def test_summary_html_is_escaped_and_says_check_mode() -> None:
    cluster = load_cluster(CHAPTER)
    html = notebook.ClusterSummary(cluster, True)._repr_html_()
    assert "<strong>chapter</strong>" in html and "check mode: <strong>yes" in html
    assert "auto (detected on the nodes)" in html


def test_setup_bad_parameter_is_a_cluster_file_error_naming_field_and_value() -> None:
    ns = namespace()
    ns["nodes"] = [{"name": "node1", "address": "10.0.66.999"}, {"name": "node2", "address": "10.0.66.202"}]
    with pytest.raises(ClusterFileError) as info:
        notebook.setup(ns)
    text = str(info.value)
    assert text.startswith("papermill parameters: ")
    assert "nodes[0].address" in text and "10.0.66.999" in text
    assert info.value.exit_code == 2


def test_setup_rejects_a_non_bool_check() -> None:
    with pytest.raises(ClusterFileError, match=r"check: 'yes' is not True or False"):
        notebook.setup(namespace(check="yes"))


def test_setup_uses_only_cluster_keys_present() -> None:
    ns = namespace()
    del ns["totem"], ns["logging"], ns["ssh"]
    cluster, _ = notebook.setup(ns)
    assert cluster.totem.token is None  # left out: Corosync's own default, not written


class FakeReport:
    step = "99-fake"

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "outcomes": [{"node": "node1", "status": "changed", "summary": "did it"}], "notes": []}


def test_record_writes_the_report_json_named_after_the_step(tmp_path: Path) -> None:
    notebook.setup(namespace(record_dir=str(tmp_path)), step="02-corosync-conf")
    report = FakeReport()
    assert notebook.record(report) is report
    data = json.loads((tmp_path / "02-corosync-conf.json").read_text())
    assert data == {"version": 2, **report.to_dict()}  # the run record's version (runbook.run.record)
    assert [p.name for p in tmp_path.iterdir()] == ["02-corosync-conf.json"]  # no temp file left


def test_record_falls_back_to_the_reports_step_name(tmp_path: Path) -> None:
    notebook.setup(namespace(record_dir=str(tmp_path)))
    notebook.record(FakeReport())
    assert (tmp_path / "99-fake.json").is_file()


def test_record_without_record_dir_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    notebook.setup(namespace(), step="02-corosync-conf")
    report = FakeReport()
    assert notebook.record(report) is report
    assert notebook.record_path(report) is None
    assert list(tmp_path.iterdir()) == []


def test_short_traceback_puts_the_message_first() -> None:
    def deep() -> None:
        raise RunbookError("node2: something broke\n  command: corosync -t")

    try:
        deep()
    except RunbookError as exc:
        lines = notebook._short_traceback(exc)
    assert lines[0] == "\x1b[0;31mRunbookError\x1b[0m: node2: something broke\n  command: corosync -t"
    assert 1 < len(lines) <= 4
    assert all(line.startswith("  at ") for line in lines[1:])
