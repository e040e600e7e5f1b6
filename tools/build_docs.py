#!/usr/bin/env python3
"""Build the guide: run the step notebooks against lab hosts, publish the executed copies, build the site.

    python tools/build_docs.py                        # lab up, runbook run, docs/generated/, mkdocs -> site/
    python tools/build_docs.py --site /tmp/site       # the site somewhere else
    python tools/build_docs.py --keep-lab             # leave the lab hosts up afterwards (to look around)
    python tools/build_docs.py --from-record runs/chapter/20250101T120000Z
                                                      # no lab: publish an existing run record

What it does, in order:

1. brings up a lab (default name `docs`) with one host per node of clusters/chapter.yaml, at the
   chapter's own addresses. Only one lab per network namespace can hold 10.0.66.0/24: if another lab
   holds it (say, the one `make demo` left up), this stops at once and names it. `make docs` runs
   the build in a lab world of its own (`runbook lab world`), where no such lab can be;
2. runs `python -m runbook run clusters/chapter.yaml --out TMP` with RUNBOOK_LAB_ONLY=1, so the run
   can reach nothing but the lab's hosts;
3. copies the executed notebooks into docs/generated/ (build output, not committed). Two changes are
   made to them: papermill's injected-parameters cell is folded into the `parameters` cell (so that a
   downloaded copy runs with what its reader sets there, see for_readers), and paths of this machine
   (the temporary run directory, the checkout) become the paths a default run shows
   (`runs/chapter/<time>/...`, `notebooks/...`). Outputs are never edited;
4. takes the lab down again, whatever happened (unless --keep-lab);
5. runs `mkdocs build --strict`, which only renders what is in docs/ and connects to nothing.

Progress goes to stderr. Exit 0 on success, 1 when a step fails (the message says which and why), 2 for
bad arguments, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runbook.errors import RunRecordError  # noqa: E402
from runbook.run.record import SUMMARY, RunSummary, read_summary  # noqa: E402  # noqa: E402

CLUSTER_FILE = ROOT / "clusters" / "chapter.yaml"
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs"
GENERATED = DOCS / "generated"
DEFAULT_SITE = ROOT / "site"
DEFAULT_LAB = "docs"
RUN_TIMEOUT = 1800  # the whole `runbook run`; a single cell has its own limit (runbook run --timeout)
PUBLISHED_OS = "debian12"  # `make docs` runs `runbook lab prepare --os host,debian12` first
PUBLISHED_RUNS = "runs"  # how the run directory is shown on the site: like a default `runbook run`

_STEP = re.compile(r"^\d+-[A-Za-z0-9][A-Za-z0-9_-]*\.ipynb$")


class BuildError(Exception):
    """A step of the build failed; the message says which and why."""

    exit_code = 1


class UsageError(BuildError):
    exit_code = 2


def say(message: str) -> None:
    print(f"build_docs: {message}", file=sys.stderr, flush=True)


# --- the lab ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One docs build at a time: a second one waits instead of overwriting docs/generated/ or the first's lab."""
    # One lock whatever the lab's name: every build writes docs/generated/ and needs the chapter's subnet.
    path = Path(tempfile.gettempdir()) / "corosync-runbook-build-docs.lock"
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another docs build is running (lock {path}); waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lab_up(lab_name: str) -> Any:
    """Make the lab for the chapter's cluster; if another lab holds the chapter's subnet, say which, at once.

    Two docs builds never race for the subnet (build_lock), so a holder is someone's own lab, e.g. the
    one `make demo` leaves up: waiting for it would wait forever. `make docs` builds in a lab world of
    its own, where no such lab can be.
    """
    from runbook.errors import SubnetInUse
    from runbook.lab import up
    from runbook.model.load import load_cluster

    cluster = load_cluster(str(CLUSTER_FILE))
    nodes = [(n.name, n.address) for n in cluster.nodes]
    # A lab of this name left by --keep-lab or a crash goes first: the pages show a first run on fresh hosts.
    if up.down(lab_name, progress=lambda m: say(f"  {m}")):
        say(f"removed what was left of lab '{lab_name}' by an earlier build")
    try:
        # Hosts that boot Debian 12 with systemd, as readers' servers do: the pages show systemctl.
        return up.up(lab_name, nodes, progress=lambda m: say(f"  {m}"), os_name=PUBLISHED_OS)
    except SubnetInUse as exc:
        holder = f"lab '{exc.lab}'" if exc.lab else f"device {exc.device}"
        remedy = f"`runbook lab down --lab {exc.lab}`, or " if exc.lab else ""
        raise BuildError(
            f"{holder} holds the chapter's subnet {exc.subnet} on this machine; {remedy}build in a lab world "
            "of its own: `make docs` (or `runbook lab world --world docs -- python tools/build_docs.py`)"
        ) from exc


def lab_down(lab_name: str) -> None:
    from runbook.lab import up

    say(f"taking lab '{lab_name}' down")
    up.down(lab_name, progress=lambda m: say(f"  {m}"))


# --- the run ---------------------------------------------------------------------------------------


def run_notebooks(out: Path) -> Path:
    """`runbook run` of every step for the chapter's cluster; returns the run directory."""
    env = dict(os.environ, RUNBOOK_LAB_ONLY="1")
    env.pop("RUNBOOK_NOTEBOOKS", None)  # always the notebooks of this checkout
    cmd = [sys.executable, "-m", "runbook", "run", str(CLUSTER_FILE.relative_to(ROOT)), "--out", str(out)]
    say("running: python " + " ".join(cmd[1:]) + "   (RUNBOOK_LAB_ONLY=1)")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr,
        # A shell's background job inherits SIGINT ignored; the run must hear the ^C that `stop` sends.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        returncode = proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        stop(proc)
        raise BuildError(f"runbook run did not finish within {RUN_TIMEOUT}s; its record so far: {out}") from exc
    except BaseException:  # ^C or SIGTERM: the run stops too, before its lab goes away
        stop(proc)
        raise
    if returncode != 0:
        raise BuildError(f"runbook run failed (exit {returncode}); the record with the failing notebook is kept in {out}")
    runs = sorted(p.parent for p in out.glob(f"*/*/{SUMMARY}"))
    if len(runs) != 1:
        raise BuildError(f"expected one run record under {out}, found {len(runs)}")
    return runs[0]


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a child run the way ^C would (it records itself as interrupted and stops its kernel), then for sure."""
    for sig, grace in ((signal.SIGINT, 15), (signal.SIGTERM, 5), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue


# --- publishing the executed notebooks ---------------------------------------------------------------


def step_notebooks(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if _STEP.match(p.name) and p.is_file())


def _cell_sources(notebook: dict[str, Any]) -> list[str]:
    """The cells as written in notebooks/: what papermill injected (the run's parameters) left out."""
    return [
        "".join(c.get("source", ""))
        for c in notebook.get("cells", [])
        if "injected-parameters" not in (c.get("metadata", {}).get("tags") or [])
    ]


def check_record(run_dir: Path) -> RunSummary:
    """A run record fit to publish: finished ok, not a dry run, every step of notebooks/, from these sources."""
    try:
        summary = read_summary(run_dir)
    except RunRecordError as exc:
        raise UsageError(f"{run_dir} is not a run record (no readable summary.json: {exc})") from exc
    if summary.status != "ok":
        raise UsageError(f"{run_dir}: the run's status is {summary.status!r}, not 'ok'; publish only a finished run")
    if summary.check:
        raise UsageError(f"{run_dir}: a dry run (check mode); the guide shows a real run")
    wanted = [p.name for p in step_notebooks(NOTEBOOKS)]
    have = [p.name for p in step_notebooks(run_dir)]
    if have != wanted:
        missing = sorted(set(wanted) - set(have))
        extra = sorted(set(have) - set(wanted))
        raise UsageError(f"{run_dir}: its notebooks are not the steps in notebooks/ (missing: {missing or 'none'}; not in notebooks/: {extra or 'none'})")
    for name in wanted:
        executed = json.loads((run_dir / name).read_text(encoding="utf-8"))
        source = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
        if _cell_sources(executed) != _cell_sources(source):
            raise UsageError(f"{run_dir}/{name} was made from another version of notebooks/{name}; run a fresh build (without --from-record)")
        errors = [o for c in executed.get("cells", []) for o in c.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            raise UsageError(f"{run_dir}/{name} has an error output ({errors[0].get('ename')}); publish only a run without errors")
    return summary


def machine_paths(run_dir: Path) -> list[tuple[str, str]]:
    """(this machine's path, what the site shows instead), longest first."""
    run_dir = run_dir.resolve()
    out = run_dir.parent.parent  # <out>/<cluster>/<time>/
    pairs = []
    if out != ROOT / PUBLISHED_RUNS:
        pairs.append((str(out) + "/", PUBLISHED_RUNS + "/"))
    pairs.append((str(ROOT) + "/", ""))
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def _replace_paths(value: Any, pairs: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
            value = value.replace(old.rstrip("/"), new.rstrip("/") or ".")
        return value
    if isinstance(value, list):
        return [_replace_paths(v, pairs) for v in value]
    if isinstance(value, dict):
        return {k: _replace_paths(v, pairs) for k, v in value.items()}
    return value


def _is_tagged(cell: dict[str, Any], tag: str) -> bool:
    return tag in (cell.get("metadata", {}).get("tags") or [])


def for_readers(notebook: dict[str, Any]) -> dict[str, Any]:
    """The executed notebook as a reader downloads it: the run's values in its own `parameters` cell.

    Papermill records a run's values in an `injected-parameters` cell after the `parameters` cell, and
    that cell wins: a reader who set `check = True` in the first code cell of a downloaded copy still
    ran with the run's `check=False`. So the injected cell goes, and the `parameters` cell is written
    again with the run's cluster values (as tools/make_notebooks.py writes it), `check = False` and
    `record_dir = None`: what the reader edits there is what runs. Papermill, given -p or -f, still
    injects its own cell after it, as it does for the sources in notebooks/. Outputs are kept.
    """
    from runbook.model.rules import PARAMETER_KEYS
    from tools.make_notebooks import parameters_source

    ran = (notebook.get("metadata", {}).get("papermill", {}) or {}).get("parameters", {}) or {}
    missing = [key for key in PARAMETER_KEYS if key not in ran]
    if missing:
        raise BuildError(f"the executed notebook records no value for {', '.join(missing)}; cannot write its parameters cell")
    cells = [c for c in notebook.get("cells", []) if not _is_tagged(c, "injected-parameters")]
    source = parameters_source({key: ran[key] for key in PARAMETER_KEYS})
    found = 0
    for cell in cells:
        if _is_tagged(cell, "parameters"):
            cell["source"] = source
            found += 1
    if found != 1:
        raise BuildError(f"the executed notebook has {found} cells tagged 'parameters', not one")
    return dict(notebook, cells=cells)


def publish(run_dir: Path, target: Path = GENERATED) -> list[Path]:
    """Copy the run's executed notebooks into `target`, made for readers (see for_readers), machine paths neutral."""
    pairs = machine_paths(run_dir)
    leaks = sorted({old.rstrip("/") for old, _ in pairs})
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if old.is_file() or old.is_symlink():
            old.unlink()
        else:
            shutil.rmtree(old)
    written = []
    for source in step_notebooks(run_dir):
        notebook = _replace_paths(for_readers(json.loads(source.read_text(encoding="utf-8"))), pairs)
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        left = [leak for leak in leaks if leak in text]
        if left:
            raise BuildError(f"{source.name}: still names a path of this machine ({', '.join(left)}) after clean-up; not publishing it")
        path = target / source.name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    say(f"published {len(written)} executed notebooks into {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}/")
    return written


# --- the site --------------------------------------------------------------------------------------


def build_site(site: Path) -> None:
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)]
    say("building the site: mkdocs build --strict --site-dir " + str(site))
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # mkdocs-material's notice about its own future, not about this site
    result = subprocess.run(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    shown = [line for line in lines if not line.startswith("INFO")]
    for line in shown:
        print(f"  {line}", file=sys.stderr)
    if result.returncode != 0:
        raise BuildError(f"mkdocs build --strict failed (exit {result.returncode}); see its messages above")
    say(f"site built: {site}")


# --- main ------------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def build(args: argparse.Namespace) -> None:
    with build_lock():
        if args.from_record:
            build_from_record(Path(args.from_record), Path(args.site).resolve())
        else:
            build_from_lab(args.lab, args.keep_lab, Path(args.site).resolve())


def build_from_record(record: Path, site: Path) -> None:
    run_dir = record.resolve()
    if not run_dir.is_dir():
        raise UsageError(f"--from-record: {record} is not a directory")
    summary = check_record(run_dir)
    say(f"publishing the run record {run_dir} (cluster '{summary.cluster}', started {summary.started}); no lab, no connection")
    publish(run_dir)
    build_site(site)


def refuse_if_key_in(key: bytes, where: Path) -> None:
    """Never publish a page holding the cluster's authkey: scan every file before and after the build."""
    from runbook.report.leaks import find_secret  # raw, hex, base64 at every offset: the tests' own checker

    for path in sorted(p for p in where.rglob("*") if p.is_file()):
        found = find_secret(key, path.read_bytes())
        if found:
            raise BuildError(f"{path} holds the lab cluster's authkey ({found}); refusing to publish")


def read_authkey() -> bytes:
    """The docs lab's authkey, read into memory only, to prove the pages do not contain it."""
    from runbook.lab import guard as lab_guard
    from runbook.model.load import load_cluster
    from runbook.ssh.hosts import hosts_for

    os.environ.setdefault("RUNBOOK_LAB_ONLY", "1")  # only ever the docs lab's own hosts
    lab_guard.install()
    cluster = load_cluster(CLUSTER_FILE)
    with hosts_for(cluster) as hosts:
        key = hosts[cluster.primary.name].read_file("/etc/corosync/authkey")
    if not key:
        raise BuildError("the docs run left no authkey on the primary; the run did not complete")
    return key


def build_from_lab(lab_name: str, keep_lab: bool, site: Path) -> None:
    from runbook.lab import netns

    netns.require_lab_support()
    tmp = Path(tempfile.mkdtemp(prefix="runbook-docs-run-"))
    keep_tmp = False
    try:
        try:
            say(f"bringing up lab '{lab_name}' for {CLUSTER_FILE.relative_to(ROOT)}")
            lab_up(lab_name)
            run_dir = run_notebooks(tmp)
            check_record(run_dir)
            key = read_authkey()
            refuse_if_key_in(key, run_dir)
            publish(run_dir)
            refuse_if_key_in(key, ROOT / "docs" / "generated")
        except BuildError:
            keep_tmp = any(tmp.iterdir())
            raise
        finally:
            if keep_lab:
                say(f"leaving lab '{lab_name}' up (--keep-lab); `runbook lab down --lab {lab_name}` removes it")
            else:
                lab_down(lab_name)
    finally:
        if keep_tmp:
            say(f"the run record is kept for a look: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    build_site(site)
    refuse_if_key_in(key, site)
    say("checked: the cluster's authkey (raw, hex, base64) is in no published file")
    del key


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_docs.py",
        description=(
            "Build the guide: run every step notebook against lab hosts at the chapter's addresses, copy the "
            "executed notebooks into docs/generated/ and build the site with mkdocs --strict. Needs root (the lab)."
        ),
        epilog=(
            "examples:\n"
            "  python tools/build_docs.py                                     # what `make docs` runs\n"
            "  python tools/build_docs.py --site /tmp/site --keep-lab\n"
            "  python tools/build_docs.py --from-record runs/chapter/20250101T120000Z   # no lab, no network\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--site", default=str(DEFAULT_SITE), metavar="DIR", help="where the site goes (default: site/)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab hosts up after the run")
    parser.add_argument(
        "--from-record", metavar="RUNDIR",
        help="skip the lab and the run: publish this run record (runs/<cluster>/<time>/ of a finished `runbook run`)",
    )
    parser.add_argument("--lab", default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB}; tests use their own)")
    args = parser.parse_args(argv)
    if args.from_record and args.keep_lab:
        parser.error("--keep-lab makes no sense with --from-record (no lab is made)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # a killed build still takes its lab down
    started = time.monotonic()
    from runbook.errors import RunbookError

    try:
        build(args)
    except BuildError as exc:
        say(f"error: {exc}")
        return exc.exit_code
    except RunbookError as exc:
        say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    say(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
