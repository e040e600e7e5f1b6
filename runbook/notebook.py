"""The thin glue a step notebook calls: two lines of set-up, then one step, recorded.

    from runbook import notebook, steps
    cluster, hosts = notebook.setup(globals(), step="02-corosync-conf")
    report = notebook.record(steps.write_config(cluster, hosts, check=check))
    report

`setup` builds the Cluster from the notebook's parameters (the cluster-file keys papermill injected,
or the defaults of the `parameters` cell), opens lazily connecting hosts (nothing is sent until a
step uses one) and shows one line saying what the notebook is about to act on.

A RunbookError raised in a cell (bad parameters, a node that fails) shows as its message and where it
was raised, not as a wall of traceback; the cell still fails, so papermill and `runbook run` stop there.

Nothing secret passes through here: the parameters are the cluster-file keys, `check` and
`record_dir`; a sudo password only ever comes from the environment (see runbook.ssh.hosts).
"""

from __future__ import annotations

import atexit
import html
import os
import traceback
from pathlib import Path
from typing import Any, Mapping

from runbook.errors import ClusterFileError, RunbookError
from runbook.lab import guard as lab_guard
from runbook.model.rules import PARAMETER_KEYS, cluster_from_mapping
from runbook.model.types import Cluster
from runbook.run.record import step_record_path, write_step_record
from runbook.ssh.hosts import Hosts, hosts_for

PARAMETERS_SOURCE = "papermill parameters"

# One kernel = one set of hosts: re-running the set-up cell, or the next step of `runbook run` (which
# shares one kernel between steps), keeps them while the cluster is the same and replaces them otherwise.
_state: dict[str, Any] = {"hosts": None, "cluster": None, "record_dir": None, "step": None, "atexit": False}


def setup(namespace: Mapping[str, Any], step: str | None = None) -> tuple[Cluster, Hosts]:
    """The notebook's Cluster and Hosts, from its globals (pass `globals()`).

    Only the cluster-file keys present in `namespace` are used, plus `check` (a bool) and
    `record_dir` (None, or where `record` writes the step's JSON). `step` names the record file
    (`<record_dir>/<step>.json`); the generated notebooks pass their own file stem.
    """
    _install_short_errors()
    params = {key: namespace[key] for key in PARAMETER_KEYS if key in namespace}
    check = namespace.get("check", False)
    record_dir = namespace.get("record_dir")
    problems = []
    if not isinstance(check, bool):
        problems.append(f"check: {check!r} is not True or False")
    for flag in ("take_over", "restart_all", "rotate_key"):
        if not isinstance(namespace.get(flag, False), bool):
            problems.append(f"{flag}: {namespace[flag]!r} is not True or False")
    if record_dir is not None and not isinstance(record_dir, (str, os.PathLike)):
        problems.append(f"record_dir: {record_dir!r} is not a directory path (or None)")
    try:
        cluster = cluster_from_mapping(params, source=PARAMETERS_SOURCE)
    except ClusterFileError as exc:
        if not problems:
            raise
        problems.extend(exc.problems)
    if problems:
        raise ClusterFileError(problems, PARAMETERS_SOURCE)

    previous = _state["hosts"]
    if previous is not None and _state.get("cluster") == cluster:
        hosts = previous  # the same nodes: keep the open SSH connections (runbook run shares a kernel)
    else:
        if previous is not None:
            previous.close()
        lab_guard.install()  # the lab's address guard, where this machine has labs or RUNBOOK_LAB_ONLY is set
        hosts = hosts_for(cluster)
    _state.update(hosts=hosts, cluster=cluster, record_dir=os.fspath(record_dir) if record_dir is not None else None, step=step)
    if not _state["atexit"]:
        atexit.register(_close_hosts)
        _state["atexit"] = True
    _display(ClusterSummary(cluster, check))
    return cluster, hosts


def record(report: Any) -> Any:
    """Save `report.to_dict()` as `<record_dir>/<step>.json` when the run asked for a record; return the report.

    Without `record_dir` (an interactive session, plain papermill) this only returns the report, so
    the cell's last expression shows its table.
    """
    _write_record(report)
    return report


def record_path(report: Any = None) -> Path | None:
    """Where `record` writes for this notebook (None when no record is kept).

    The file is named after the `step` given to `setup`, else after the report's own `step`.
    """
    record_dir = _state["record_dir"]
    step = _state["step"] or getattr(report, "step", None)
    if record_dir is None or not isinstance(step, str) or not step:
        return None
    return step_record_path(Path(record_dir), step)


class ClusterSummary:
    """The one line `setup` shows: cluster, nodes, generation, check mode."""

    def __init__(self, cluster: Cluster, check: bool) -> None:
        self.cluster = cluster
        self.check = check

    def _parts(self) -> tuple[str, list[str], str, str]:
        cluster = self.cluster
        nodes = [f"{n.name} ({n.address}{', primary' if n.is_primary else ''})" for n in cluster.nodes]
        generation = "auto (detected on the nodes)" if cluster.generation is None else f"{cluster.generation}.x"
        check = "yes: nothing will be changed" if self.check else "no"
        return cluster.name, nodes, generation, check

    def __repr__(self) -> str:
        name, nodes, generation, check = self._parts()
        return f"Cluster {name}: {', '.join(nodes)} · Corosync generation {generation} · check mode: {check}"

    def _repr_html_(self) -> str:
        esc = html.escape
        name, nodes, generation, check = self._parts()
        node_list = ", ".join(f"<code>{esc(n)}</code>" for n in nodes)
        return (
            f'<p class="runbook-cluster">Cluster <strong>{esc(name)}</strong>: {node_list}'
            f" · Corosync generation <strong>{esc(generation)}</strong>"
            f" · check mode: <strong>{esc(check)}</strong></p>"
        )


# --- internals -------------------------------------------------------------------------------------


def _close_hosts() -> None:
    hosts = _state["hosts"]
    if hosts is not None:
        _state["hosts"] = None
        hosts.close()


def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # not in a kernel: plain text is enough
        print(repr(obj))
        return
    display(obj)


def _write_record(report: Any) -> Path | None:
    path = record_path(report)
    if path is None:
        return None
    to_dict = getattr(report, "to_dict", None)
    data = to_dict() if callable(to_dict) else {"report": str(report)}
    write_step_record(path, data)
    return path


def _short_traceback(exc: BaseException, frames: int = 3) -> list[str]:
    """The error message first, then where it was raised (a few frames, one line each)."""
    red, reset = "\x1b[0;31m", "\x1b[0m"
    lines = [f"{red}{type(exc).__name__}{reset}: {exc}"]
    stack = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    shown = []
    for frame in stack:
        filename = frame.filename
        if f"{os.sep}IPython{os.sep}" in filename or f"{os.sep}ipykernel{os.sep}" in filename:
            continue  # the kernel's own machinery, not the cell or the runbook
        marker = f"{os.sep}runbook{os.sep}"
        if marker in filename:
            where = "runbook" + os.sep + filename.rsplit(marker, 1)[1] + f":{frame.lineno} in {frame.name}"
        elif os.path.basename(os.path.dirname(filename)).startswith("ipykernel_"):
            where = f"this cell, line {frame.lineno}"
        else:
            where = f"{filename}:{frame.lineno} in {frame.name}"
        shown.append(f"  at {where}")
    return lines + shown[-frames:]


def _runbook_error_handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    """IPython custom exception handler for RunbookError: show the failing report, record it, be brief."""
    report = getattr(value, "report", None)
    if report is not None:
        try:
            _display(report)
            _write_record(report)
        except Exception:  # noqa: BLE001 - showing the error matters more than showing the table
            pass
    short = _short_traceback(value)
    try:
        value._render_traceback_ = lambda: short  # type: ignore[attr-defined]
    except AttributeError:
        pass
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    return None


def _install_short_errors() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.set_custom_exc((RunbookError,), _runbook_error_handler)
