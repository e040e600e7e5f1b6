"""tools/build_docs.py without a lab: which run records it publishes, and what it changes in them.

The records here are made from the source notebooks (with a fake papermill header), so these tests
need no kernel and no host. The real build, on real lab hosts, is test_site.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from runbook.model.rules import to_parameters

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runbook.model.load import load_cluster  # noqa: E402  # noqa: E402

CHAPTER = to_parameters(load_cluster(str(ROOT / "clusters" / "chapter.yaml")))


def _load_build_docs():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "tools" / "build_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_docs"] = module
    spec.loader.exec_module(module)
    return module


build_docs = _load_build_docs()


def make_record(out: Path, *, status: str = "ok", check: bool = False) -> Path:
    """A run record like `runbook run --out OUT` leaves, from the current notebooks/ (no outputs)."""
    run_dir = out / "chapter" / "20250101T120000Z"
    run_dir.mkdir(parents=True)
    for source in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")):
        notebook = json.loads(source.read_text(encoding="utf-8"))
        notebook["metadata"]["papermill"] = {
            "input_path": str(source),
            "output_path": str(run_dir / source.name),
            "parameters": {**CHAPTER, "record_dir": str(run_dir), "check": check},
        }
        notebook["cells"].insert(
            1,
            {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": f'record_dir = "{run_dir}"\n', "outputs": [], "execution_count": 2},
        )
        (run_dir / source.name).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    (run_dir / "summary.json").write_text(json.dumps({"cluster": "chapter", "status": status, "check": check}))
    return run_dir


def test_publish_makes_machine_paths_neutral_and_folds_the_run_into_the_parameters_cell(tmp_path: Path) -> None:
    run_dir = make_record(tmp_path / "out")
    build_docs.check_record(run_dir)
    target = tmp_path / "generated"
    (target / "stale").mkdir(parents=True)
    written = build_docs.publish(run_dir, target)
    assert sorted(p.name for p in written) == sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in written), "old files stay behind"
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert str(tmp_path) not in text and str(ROOT) not in text
        notebook = json.loads(text)
        papermill = notebook["metadata"]["papermill"]
        assert papermill["input_path"] == f"notebooks/{path.name}"
        assert papermill["output_path"] == f"runs/chapter/20250101T120000Z/{path.name}"
        assert papermill["parameters"]["record_dir"] == "runs/chapter/20250101T120000Z"
        # No injected cell to override the reader: the run's values are the parameters cell's own,
        # which is the source's (the chapter's cluster, check False, record_dir None).
        tags = [c.get("metadata", {}).get("tags", []) for c in notebook["cells"]]
        assert ["injected-parameters"] not in tags and tags.count(["parameters"]) == 1
        source = json.loads((NOTEBOOKS / path.name).read_text(encoding="utf-8"))
        assert build_docs._cell_sources(notebook) == build_docs._cell_sources(source)
        assert [c["cell_type"] for c in notebook["cells"]] == [c["cell_type"] for c in source["cells"]]
        assert "check: bool = False" in "".join(notebook["cells"][1]["source"])
        assert "record_dir: \"str or None\" = None" in "".join(notebook["cells"][1]["source"])


def test_the_published_parameters_cell_holds_the_runs_values(tmp_path: Path) -> None:
    run_dir = make_record(tmp_path / "out")
    path = run_dir / "00-preflight.ipynb"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["metadata"]["papermill"]["parameters"]["nodes"] = [
        {"name": "a", "address": "192.0.2.1", "nodeid": 1, "role": "primary"}, {"name": "b", "address": "192.0.2.2", "nodeid": 2},
    ]
    path.write_text(json.dumps(notebook), encoding="utf-8")
    published = json.loads(build_docs.publish(run_dir, tmp_path / "generated")[0].read_text(encoding="utf-8"))
    cell = "".join(published["cells"][1]["source"])
    assert "192.0.2.1" in cell and "10.0.66.201" not in cell


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: (d / "summary.json").write_text(json.dumps({"status": "failed", "check": False})), "not 'ok'"),
        (lambda d: (d / "summary.json").write_text(json.dumps({"status": "ok", "check": True})), "dry run"),
        (lambda d: (d / "summary.json").unlink(), "not a run record"),
        (lambda d: (d / "04-cfgtool.ipynb").unlink(), "missing: ['04-cfgtool.ipynb']"),
    ],
)
def test_a_record_that_is_no_successful_real_run_is_refused(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    run_dir = make_record(tmp_path / "out")
    change(run_dir)
    with pytest.raises(build_docs.UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_docs.check_record(run_dir)


def test_a_record_from_other_notebook_sources_is_refused(tmp_path: Path) -> None:
    run_dir = make_record(tmp_path / "out")
    path = run_dir / "02-corosync-conf.ipynb"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["cells"][-1]["source"] = "an older text\n"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    with pytest.raises(build_docs.UsageError, match="another version of notebooks/02-corosync-conf.ipynb"):
        build_docs.check_record(run_dir)


def test_a_record_with_an_error_output_is_refused(tmp_path: Path) -> None:
    run_dir = make_record(tmp_path / "out")
    path = run_dir / "00-preflight.ipynb"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["cells"][-2].setdefault("outputs", []).append({"output_type": "error", "ename": "StepFailed", "evalue": "", "traceback": []})
    path.write_text(json.dumps(notebook), encoding="utf-8")
    with pytest.raises(build_docs.UsageError, match="error output"):
        build_docs.check_record(run_dir)


@pytest.mark.parametrize("encode", ["raw", "hex", "HEX", "b64", "b64-offset"])
def test_a_page_holding_the_authkey_is_never_published(tmp_path: Path, encode: str) -> None:
    import base64
    import os

    key = os.urandom(256)
    text = {
        "raw": key,
        "hex": key.hex().encode(),
        "HEX": key.hex().upper().encode(),
        "b64": base64.b64encode(key),
        "b64-offset": base64.b64encode(b"x" + key),
    }[encode]
    (tmp_path / "page.html").write_bytes(b"<p>" + text + b"</p>")
    with pytest.raises(build_docs.BuildError, match="holds the lab cluster's authkey"):
        build_docs.refuse_if_key_in(key, tmp_path)
    (tmp_path / "page.html").write_bytes(b"<p>sha256 " + key.hex()[:12].encode() + b"</p>")  # a short digest-like id is fine
    build_docs.refuse_if_key_in(key, tmp_path)
