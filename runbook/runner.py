"""`runbook run` and `runbook plan`: execute the step notebooks in order for one cluster file.

Each step notebook runs with papermill, with the cluster file's keys as parameters (plus `check` and
`record_dir`). The steps of one run share a kernel whose namespace is cleared before each step
(see SharedKernel), so each executed notebook reads as its own session. The executed notebooks are the run's record, kept with a
`summary.json`, a `run.log` (the progress lines), each step's report as `<step>.json`, and, if
the kernel wrote anything to its stderr, `kernel.log`, in

    <out>/<cluster name>/<UTC start, YYYYmmddTHHMMSSZ>[-check]/

Order of business: the cluster file is validated and the steps are chosen before any kernel starts
or any host is touched (bad input exits 2). Then the run takes the cluster's lock on this controller
and on every node (runbook.lock); a run that finds either held is refused at once with exit 75,
before it makes a run directory. `plan` takes no lock (it never holds up a run) but is refused the
same way while a run holds the cluster: what it would read is half-changed. The run stops at the
first failing step (exit 1) and says which step, which node and why, and where the executed
notebook with the error is. Ctrl-C stops the run, records it as interrupted and exits 130; SIGTERM
does the same and exits 143. After a SIGKILL the kernel kills itself (see watch_parent), and the
next run marks the record the dead run left "running" (mark_dead_runs). A controller disk that
cannot take the record ends the run with one line naming the path (ControllerDiskError).

Kernels talk to this process over IPC (Unix sockets in a private temporary directory), not TCP:
ipykernel 7 warns "Kernel is running over TCP without encryption" otherwise, and local sockets are
not reachable from other users or hosts anyway.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import runbook
from runbook import lock
from runbook.errors import ControllerDiskError, RunbookError, RunLocked, UsageError
from runbook.local import write_json_atomic
from runbook.report import clean as clean_text

NOTEBOOKS_ENV = "RUNBOOK_NOTEBOOKS"
KERNEL_NAME = "python3"
DEFAULT_OUT = "runs"
DEFAULT_TIMEOUT = 600.0
SUMMARY = "summary.json"
RUN_LOG = "run.log"
KERNEL_LOG = "kernel.log"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
CHECK_SUFFIX = "-check"
RUN_ID_ENV = "RUNBOOK_RUN_ID"

_STEP_FILE = re.compile(r"^(?P<number>\d+)-(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)\.ipynb$")


# --- steps -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step notebook: `02-corosync-conf.ipynb` is number 2, name `corosync-conf`."""

    number: int
    name: str
    path: Path

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def notebook(self) -> str:
        return self.path.name


def repo_root() -> Path:
    return Path(runbook.__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    """$RUNBOOK_NOTEBOOKS, else notebooks/ next to the runbook package."""
    override = os.environ.get(NOTEBOOKS_ENV)
    return Path(override).expanduser() if override else repo_root() / "notebooks"


def discover_steps(directory: Path) -> list[Step]:
    """The step notebooks (`NN-name.ipynb`) in `directory`, in step order."""
    if not directory.is_dir():
        hint = f" (set by {NOTEBOOKS_ENV})" if os.environ.get(NOTEBOOKS_ENV) else f"; set {NOTEBOOKS_ENV} to the notebooks directory"
        raise UsageError(f"no step notebooks: {directory} is not a directory{hint}")
    steps = []
    for path in directory.iterdir():
        match = _STEP_FILE.match(path.name)
        if match and path.is_file():
            steps.append(Step(int(match["number"]), match["name"], path))
    if not steps:
        raise UsageError(f"no step notebooks (NN-name.ipynb) in {directory}")
    steps.sort(key=lambda s: (s.number, s.name))
    numbers = [s.number for s in steps]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        names = ", ".join(s.notebook for s in steps if s.number in duplicates)
        raise UsageError(f"two step notebooks share a number in {directory}: {names}")
    return steps


def describe_steps(steps: Sequence[Step]) -> str:
    return ", ".join(f"{s.number:02d} {s.name}" for s in steps)


def select_steps(steps: Sequence[Step], only: Iterable[str] | None) -> list[Step]:
    """The steps named by `--only` (number `2`/`02`, name `corosync-conf`, stem `02-corosync-conf`), in step order.

    Each `--only` may also hold several, comma-separated. No `--only` means every step.
    """
    tokens = [t.strip() for item in (only or ()) for t in str(item).split(",")]
    tokens = [t for t in tokens if t]
    if not only:
        return list(steps)
    if not tokens:
        raise UsageError(f"--only needs a step; valid steps: {describe_steps(steps)}")
    chosen: set[Step] = set()
    unknown = []
    for token in tokens:
        found = _match_step(steps, token)
        if found is None:
            unknown.append(token)
        else:
            chosen.add(found)
    if unknown:
        names = ", ".join(repr(t) for t in unknown)
        raise UsageError(f"unknown step {names} for --only; valid steps: {describe_steps(steps)}")
    return [s for s in steps if s in chosen]


def _match_step(steps: Sequence[Step], token: str) -> Step | None:
    text = token.lower().removesuffix(".ipynb")
    if text.isdigit():
        number = int(text)
        return next((s for s in steps if s.number == number), None)
    return next((s for s in steps if text in (s.name.lower(), s.stem.lower())), None)


# --- run directory and record ----------------------------------------------------------------------


def run_dir_name(started: datetime, check: bool) -> str:
    """`20250101T120000Z` (UTC), with `-check` for a dry run."""
    stamp = started.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)
    return stamp + (CHECK_SUFFIX if check else "")


def make_run_dir(out: Path, cluster_name: str, started: datetime, check: bool) -> Path:
    """Create `<out>/<cluster>/<stamp>[-check]/`; a second run in the same second gets `-2`, `-3`, ..."""
    parent = out / cluster_name
    parent.mkdir(parents=True, exist_ok=True)
    base = run_dir_name(started, check)
    for attempt in range(1, 1000):
        path = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunbookError(f"cannot make a run directory under {parent}: too many runs named {base}")


@dataclass
class StepResult:
    step: Step
    status: str = "not run"  # ok | failed | interrupted | not run
    seconds: float | None = None
    error: str | None = None
    record: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step.stem,
            "notebook": self.step.notebook,
            "status": self.status,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "error": self.error,
            "changed": _changed_nodes(self.record),
        }


@dataclass
class RunState:
    cluster_name: str
    cluster_file: str
    check: bool
    run_dir: Path
    started: datetime
    results: list[StepResult] = field(default_factory=list)
    finished: datetime | None = None
    status: str = "running"  # running | ok | failed | interrupted
    run_id: str = ""
    runner: dict[str, Any] = field(default_factory=dict)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def build_summary(state: RunState) -> dict[str, Any]:
    """The content of summary.json."""
    return {
        "cluster": state.cluster_name,
        "cluster_file": state.cluster_file,
        "started": _iso(state.started),
        "finished": _iso(state.finished),
        "check": state.check,
        "status": state.status,
        "steps": [r.to_dict() for r in state.results],
        "runbook_version": runbook.__version__,
        "run_id": state.run_id,
        "runner": state.runner,
    }


def mark_dead_runs(cluster_dir: Path) -> list[Path]:
    """Records left "running" by a runner that is gone (SIGKILL, power loss): mark them interrupted.

    A runner is known by host, pid and the pid's start time (a reused pid has another start time).
    Records from another host, or without a runner, are left alone. Called with the cluster's lock
    held, so no live run of this cluster writes them.
    """
    marked = []
    for path in sorted(cluster_dir.glob(f"*/{SUMMARY}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        runner = data.get("runner") if isinstance(data, dict) else None
        if data.get("status") != "running" or not isinstance(runner, dict) or not isinstance(runner.get("pid"), int):
            continue
        if lock.is_alive(str(runner.get("host")), runner["pid"], runner.get("pid_start")) is not False:
            continue
        data["status"] = "interrupted"
        data["ended"] = (
            f"the runner (pid {runner['pid']} on {runner.get('host')}) was gone when the next run started; "
            "marked by that run"
        )
        steps = data.get("steps") if isinstance(data.get("steps"), list) else []
        for step in steps:  # the step that was going: the first not finished whose notebook was begun
            if isinstance(step, dict) and step.get("status") == "not run":
                if (path.parent / str(step.get("notebook"))).exists():
                    step["status"] = "interrupted"
                break
        write_json(path, data)
        marked.append(path.parent)
    return marked


write_json = write_json_atomic


def read_record(run_dir: Path, step: Step) -> dict[str, Any] | None:
    """The step's report as the notebook saved it (`<run dir>/<step>.json`), if it did."""
    try:
        data = json.loads((run_dir / f"{step.stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def clean(text: str) -> str:
    """Terminal-safe text: no escape sequences or control characters (it may come from a node)."""
    return clean_text(str(text))


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(part.strip() for part in clean(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _outcomes(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    outcomes = (record or {}).get("outcomes")
    return [o for o in outcomes if isinstance(o, dict)] if isinstance(outcomes, list) else []


def _changed_nodes(record: dict[str, Any] | None) -> list[str]:
    return [str(o.get("node")) for o in _outcomes(record) if o.get("status") in ("changed", "would change")]


def _failed_nodes(record: dict[str, Any] | None) -> list[str]:
    return [str(o.get("node")) for o in _outcomes(record) if o.get("status") == "failed"]


def outcome_lines(record: dict[str, Any] | None, indent: str = "      ") -> list[str]:
    """Per-node lines (and notes) of a step's record, for the terminal."""
    outcomes = _outcomes(record)
    width = max([4] + [len(clean(str(o.get("node", "")))) for o in outcomes])
    lines = []
    for o in outcomes:
        lines.append(f"{indent}{clean(str(o.get('node', '?'))):<{width}}  {clean(str(o.get('status', '?'))):<12}  {one_line(str(o.get('summary', '')), 200)}")
        lines += [f"{indent}{'':<{width}}  {operation_line(op)}" for op in o.get("operations") or [] if isinstance(op, dict)]
    notes = (record or {}).get("notes")
    if isinstance(notes, list):
        lines += [f"{indent}note: {one_line(str(n), 200)}" for n in notes]
    return lines


def operation_line(op: dict[str, Any]) -> str:
    """`$ command   # reason [would run | exit 0 | FAILED, exit 3 | not run]`: one operation of a node's plan."""
    status = op.get("status")
    ran = {"planned": "would run", "done": f"exit {op.get('exit_status')}", "failed": f"FAILED, exit {op.get('exit_status')}"}.get(str(status), str(status))
    return f"$ {one_line(str(op.get('command', '')), 400)}   # {one_line(str(op.get('reason', '')), 200)} [{ran}]"


def verdict(state: RunState) -> str:
    """The last line of a run."""
    ran = [r for r in state.results if r.status == "ok"]
    total = len(state.results)
    where = f"cluster '{state.cluster_name}'"
    if state.status == "ok":
        changed = [f"{r.step.stem} ({', '.join(_changed_nodes(r.record))})" for r in ran if _changed_nodes(r.record)]
        if state.check:
            if changed:
                return f"PLAN: {where}: would change: {'; '.join(changed)}. Nothing was changed."
            return f"PLAN: {where}: nothing to change in {total} step{'s' if total != 1 else ''}. Nothing was changed."
        if changed:
            return f"OK: {where}: {total} step{'s' if total != 1 else ''} done; changed: {'; '.join(changed)}."
        return f"OK: {where}: {total} step{'s' if total != 1 else ''} done; everything was already in place."
    stopped = next((r for r in state.results if r.status in ("failed", "interrupted")), None)
    rest = sum(1 for r in state.results if r.status == "not run")
    label = "FAILED" if state.status == "failed" else "INTERRUPTED"
    at = f" at step {stopped.step.stem}" if stopped else ""
    tail = f"; {rest} later step{'s' if rest != 1 else ''} did not run" if rest else ""
    return f"{label}: {where}: stopped{at} after {len(ran)} of {total} steps{tail}."


# --- executing one notebook -----------------------------------------------------------------------


def kernel_manager_class(socket_dir: Path, stderr: IO[bytes] | IO[str] | None) -> type:
    """A KernelManager class whose kernels use IPC sockets in `socket_dir` and write stderr to `stderr`.

    Passed to papermill as `kernel_manager_class` (it reaches nbclient's NotebookClient): nbclient
    then owns the kernel manager and shuts the kernel down, closes its channels and removes the
    socket and connection files after the notebook, also on errors and Ctrl-C. (Passing a ready
    `km=` also reaches nbclient, but then nbclient leaves the kernel running and the client's
    channels open, and an `ipc` kernel manager's default socket path is relative to the current
    directory, so two runs from one directory would share sockets.)
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        @default("transport")
        def _runbook_transport(self) -> str:
            return "ipc"

        @default("connection_file")
        def _runbook_connection_file(self) -> str:
            return str(socket_dir / "kernel.json")

        @default("ip")
        def _runbook_ip(self) -> str:
            return str(socket_dir / "kernel")  # sockets: kernel-1 ... kernel-5

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            cmd, kw = await super()._async_pre_start_kernel(**kw)
            if stderr is not None:
                kw.setdefault("stderr", stderr)
            return cmd, kw

    return IpcKernelManager


RESET_NAMESPACE = "get_ipython().reset(new_session=True)"
WATCH_PARENT = "import runbook.runner as _rb; _rb.watch_parent({pid}, {socket_dir!r}); del _rb"
SET_BUDGET = "import runbook.hosts as _rb; _rb.set_command_budget({budget!r}); del _rb"
PARENT_POLL = 0.2


def command_budget(timeout: float | None) -> float | None:
    """How long the node commands of one step may take in all: a little less than the cell's --timeout.

    So a command that hangs on a node (apt-get, corosync-keygen) is stopped by its own timeout first,
    and the error names the node and the command, with the step's per-node lines, instead of the
    cell limit cutting the notebook off with nothing said about where it hung.
    """
    if timeout is None:
        return None
    return max(timeout * 0.5, timeout - min(10.0, max(2.0, timeout * 0.1)))


def watch_parent(runner_pid: int, socket_dir: str) -> None:
    """In the kernel: die at once when the runner is gone (its parent changes), even after SIGKILL.

    The kernel runs in its own session (jupyter_client starts it so), so a SIGKILL of the runner
    does not reach it; left alone it would go on changing nodes. A thread checks every PARENT_POLL
    seconds whether its parent is still the runner (a reparented process has another parent, 1 or
    a subreaper), removes the kernel's socket directory and kills the kernel with SIGKILL: its
    SSH connections close, no further command reaches a node.
    """

    def watch() -> None:
        while os.getppid() == runner_pid:
            time.sleep(PARENT_POLL)
        shutil.rmtree(socket_dir, ignore_errors=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if os.getppid() != runner_pid:
        raise RunbookError(f"the kernel's parent is pid {os.getppid()}, not the runner (pid {runner_pid})")
    threading.Thread(target=watch, name="runbook-watch-runner", daemon=True).start()


class SharedKernel:
    """One kernel for a whole run: each step notebook runs in it after its namespace is reset.

    Starting a kernel costs about a second, and a run has seven steps; keeping one also keeps the
    SSH connections (runbook.notebook reuses them while the cluster is the same). Before each step the
    user namespace is cleared and the execution count restarts at 1, so every executed notebook reads
    as if it had a kernel of its own, and a step can only use what its own cells define. The kernel is
    killed at the end of the run, also after a failure or ^C.
    """

    def __init__(self, cwd: Path, stderr: IO[bytes] | None = None) -> None:
        self.cwd = cwd
        self.stderr = stderr
        self.km: Any = None
        self.kc: Any = None
        self.socket_dir: Path | None = None

    def _start(self) -> None:
        """Start the kernel and one client for the whole run (nbclient's own would wait for the kernel anew)."""
        from jupyter_core.utils import ensure_event_loop, run_sync

        ensure_event_loop().set_exception_handler(_quiet_dead_kernel)

        # The runner's pid in the name: a later run removes the directory of a runner that is gone.
        self.socket_dir = Path(tempfile.mkdtemp(prefix=f"runbook-kernel-{os.getpid()}-"))
        self.km = kernel_manager_class(self.socket_dir, self.stderr)(kernel_name=KERNEL_NAME)
        run_sync(self.km.start_kernel)(cwd=str(self.cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=60)
        self._silent(WATCH_PARENT.format(pid=os.getpid(), socket_dir=str(self.socket_dir)), "watch the runner")

    def _silent(self, code: str, what: str) -> None:
        """Run `code` in the kernel as a silent request: not counted, not in any notebook."""
        from jupyter_core.utils import run_sync

        reply = run_sync(self.kc.execute_interactive)(code, silent=True, store_history=False, timeout=60)
        if reply["content"].get("status") != "ok":
            raise RunbookError(f"could not {what} in the kernel: {reply['content'].get('evalue', '')}")

    def reset(self) -> None:
        """Clear the user namespace and restart the execution count (a silent request: not counted)."""
        self._silent(RESET_NAMESPACE, "reset the kernel between steps")

    def __call__(
        self,
        step: Step,
        output: Path,
        parameters: dict[str, Any],
        *,
        cwd: Path,
        timeout: float | None,
        kernel_log: IO[bytes] | None = None,
    ) -> None:
        """Run one step notebook with papermill; raises papermill's errors (PapermillExecutionError on a failed cell)."""
        import papermill

        if self.km is None:
            self._start()
        else:
            self.reset()
        budget = command_budget(timeout)
        self._silent(SET_BUDGET.format(budget=budget), "set the step's time for node commands")
        papermill.execute_notebook(
            str(step.path),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            engine_name=SHARED_KERNEL_ENGINE,
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=True,
            cwd=str(cwd),
            execution_timeout=timeout,
            km=self.km,
            kc=self.kc,
        )

    def close(self) -> None:
        from jupyter_core.utils import run_sync

        try:
            if self.kc is not None:
                self.kc.stop_channels()
                self.kc = None
            if self.km is not None and run_sync(self.km.is_alive)():
                run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001 - the kernel may already be gone (^C reaches it too)
            pass
        finally:
            if self.km is not None:
                run_sync(self.km.cleanup_resources)()
            if self.socket_dir is not None:
                shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.km = None


SHARED_KERNEL_ENGINE = "runbook-shared-kernel"


def _quiet_dead_kernel(loop: Any, context: dict[str, Any]) -> None:
    """After ^C the kernel is gone and nbclient's pending cell task ends in DeadKernelError; the run
    already reports the interruption, so that task's "exception was never retrieved" is noise."""
    if type(context.get("exception")).__name__ == "DeadKernelError":
        return
    loop.default_exception_handler(context)


SAVE_EVERY = 2.0  # seconds between saves of the executed notebook while a step runs


def _throttle_saves(nb_man: Any) -> Callable[[], None]:
    """Save the executed notebook at most every SAVE_EVERY seconds while it runs, not at every cell
    start and end: papermill's 17 writes per step cost 1.8 s of a 7-step no-change re-run. The first
    save (the parameters, before any cell) and the last (papermill's, after the last cell, on error
    and on ^C too) still happen. Returns the function that puts papermill's own save back."""
    original = nb_man.save
    last = [float("-inf")]

    def save(**kwargs: Any) -> None:
        if kwargs.get("nb"):  # what papermill's own save does first (catch_nb_assignment)
            nb_man.nb = kwargs["nb"]
        now = time.monotonic()
        if now - last[0] >= SAVE_EVERY:
            last[0] = now
            original(**kwargs)

    nb_man.save = save

    def restore() -> None:
        nb_man.save = original

    return restore


def _register_engine() -> None:
    """A papermill engine that runs a notebook in a given, already started kernel through a given,
    already connected client (both owned by SharedKernel, which closes them at the end of the run)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class SharedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(  # type: ignore[override]
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: float | None = None,
            **kwargs: Any,
        ) -> Any:
            client = PapermillNotebookClient(
                nb_man,
                km=kwargs["km"],
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logging.getLogger("papermill"),
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client.kc = kwargs["kc"]
            restore = _throttle_saves(nb_man)
            try:
                return client.execute()
            finally:
                restore()  # papermill's final save (notebook_complete) always writes

    papermill_engines.register(SHARED_KERNEL_ENGINE, SharedKernelEngine)


def check_kernel() -> None:
    """The `python3` Jupyter kernel must exist before any step starts."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        raise RunbookError(
            f"no Jupyter kernel named {KERNEL_NAME!r}; install ipykernel in this environment "
            f"({sys.executable} -m pip install ipykernel)"
        ) from None


# --- the run --------------------------------------------------------------------------------------


class Progress:
    """Progress lines on stderr, and the same lines in run.log.

    A run.log that cannot be written (the controller's disk is full) is given up, and the first
    error kept in `error`: the terminal still gets every line, and the runner reports the disk.
    """

    def __init__(self, stream: IO[str], log_path: Path | None = None) -> None:
        self.stream = stream
        self.error: OSError | None = None
        self.log: IO[str] | None = None
        if log_path:
            try:
                self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                self.error = exc
        self._partial = ""

    def begin(self, text: str) -> None:
        """Start a line that `end` completes (`[2/7] 02-corosync-conf ... ` then `ok (1.8s)`)."""
        self._partial = text
        self.stream.write(text)
        self.stream.flush()

    def end(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._log(self._partial + text)
        self._partial = ""

    def line(self, text: str = "") -> None:
        if self._partial:
            self.end("")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._log(text)

    def _log(self, text: str) -> None:
        if self.log:
            try:
                self.log.write(text + "\n")
                self.log.flush()
            except OSError as exc:
                self.error = self.error or exc
                self._drop_log()

    def _drop_log(self) -> None:
        log, self.log = self.log, None
        try:
            if log is not None:
                log.close()
        except OSError:
            pass

    def close(self) -> None:
        self._drop_log()


class _ToRunLog(logging.Handler):
    """papermill's own warnings (e.g. "Passed unknown parameter") go to run.log, not between progress lines."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.WARNING)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.progress._log(f"  {record.name}: {clean(record.getMessage())}")
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


def _record_dir_parameter(run_dir: Path) -> str:
    """The run dir as the kernels see it (their cwd is the repo root): relative when inside it.

    Executed notebooks record their parameters and may be published; a relative path keeps the
    machine's directory layout out of them.
    """
    try:
        return str(run_dir.relative_to(repo_root()))
    except ValueError:
        return str(run_dir)


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def failure_message(
    step: Step, exc: BaseException, record: dict[str, Any] | None, timeout: float | None = None
) -> tuple[str, str]:
    """(the terminal message, the one-line error for summary.json) for a failed step."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, TimeoutError) and "timed out" in str(exc):  # nbclient's CellTimeoutError
        limit = f" than {timeout:g} s" if timeout else ""
        text = f"a cell of the notebook ran longer{limit} (--timeout) and was stopped"
        return f"step {step.stem} timed out: {text}", f"{type(exc).__name__}: {text}"
    if isinstance(exc, PapermillExecutionError):
        ename, evalue = clean(exc.ename), clean(exc.evalue).strip()
    else:
        ename, evalue = type(exc).__name__, clean(str(exc)).strip()
    if ename == "ModuleNotFoundError" and "runbook" in evalue:
        evalue += (
            f"\n  (the {KERNEL_NAME!r} Jupyter kernel runs a Python without the runbook package; "
            "see `jupyter kernelspec list`, or install runbook into that Python)"
        )
    nodes = _failed_nodes(record)
    first = evalue.splitlines()[0] if evalue else ""
    if step.stem in first:  # StepFailed already says "step X failed on NODE: why"
        message = evalue
    else:
        on = f" on {', '.join(nodes)}" if nodes else ""
        message = f"step {step.stem} failed{on}: {ename}: {evalue}" if evalue else f"step {step.stem} failed{on}: {ename}"
    return message, one_line(f"{ename}: {evalue}" if evalue else ename)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, systemd and CI send): handled like Ctrl-C, exit 143."""


EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM, errno.EFBIG}


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def disk_error(exc: BaseException, under: Path, writing: Path | None = None) -> ControllerDiskError | None:
    """The controller's own write failure in `exc` (or its causes) for a path under `under`, if any.

    An error without a file name (a failed write() rather than open()) is taken as one of `writing`
    (what the runner was writing), else of `under`.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ControllerDiskError):
            return current
        if isinstance(current, OSError) and current.errno in _DISK_ERRNOS:
            path = current.filename or ""
            if not path or str(path).startswith(str(under)):
                return ControllerDiskError(socket.gethostname(), str(path or writing or under), os.strerror(current.errno))
        current = current.__cause__ or current.__context__
    return None


def sweep_kernel_dirs(directory: Path | None = None) -> list[Path]:
    """Remove `runbook-kernel-<pid>-*` socket directories whose runner is gone (SIGKILL leaves them)."""
    removed = []
    for path in Path(directory or tempfile.gettempdir()).glob("runbook-kernel-*"):
        parts = path.name.split("-")
        if len(parts) < 4 or not parts[2].isdigit() or not path.is_dir():
            continue
        if lock.process_start(int(parts[2])) is None:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _is_preflight(step: Step) -> bool:
    return step.name == "preflight"


def run(
    cluster_file: str,
    *,
    check: bool = False,
    only: Sequence[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    stream: IO[str] | None = None,
    executor: Callable[..., None] | None = None,
    lock_nodes: bool | None = None,
) -> int:
    """Run the step notebooks for `cluster_file`; returns the exit code.

    0 ok, 1 failed, 130 interrupted (^C), 143 terminated (SIGTERM); RunLocked (75) is raised when
    another run holds the cluster. `lock_nodes` (default: yes, unless a test passes `executor`)
    takes the lock on every node too.
    """
    from runbook.cluster import load_cluster
    from runbook.hosts import hosts_for

    stream = stream or sys.stderr
    cluster = load_cluster(cluster_file)  # exit 2 on bad input, before anything starts
    hosts_for(cluster)  # the logins too (ssh_config: ports, ProxyJump): exit 2 here, not in a notebook; connects nowhere
    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout: {timeout!r} is not a positive number of seconds")
    steps = select_steps(discover_steps(notebooks_dir()), only)
    check_kernel()
    if lock_nodes is None:
        lock_nodes = executor is None

    out_dir = Path(out if out is not None else DEFAULT_OUT).resolve()
    cluster_dir = out_dir / cluster.name
    run_id = secrets.token_hex(4)
    holder = lock.this_holder("plan" if check else "run", cluster.name, run_id)
    controller_lock = lock.ControllerLock(cluster_dir)
    node_locks: lock.NodeLocks | None = None
    try:
        if check:
            # A plan changes nothing and takes no lock, so it never holds up a run; but while a run
            # changes the nodes, what a plan reads is already out of date: refused the same way.
            other = lock.probe_controller(cluster_dir)
            if other is not None:
                raise RunLocked(
                    socket.gethostname(),
                    f"a {other.describe()} is changing the nodes now; a plan would read them half-changed. "
                    "Run the plan when it has ended.",
                    holder=other,
                )
        else:
            controller_lock.acquire(holder)
            mark_dead_runs(cluster_dir)
        sweep_kernel_dirs()
        if lock_nodes and not check:
            from runbook.hosts import hosts_for

            node_locks = lock.NodeLocks(hosts_for(cluster))
            node_locks.acquire(holder)
            if node_locks.unreachable and not _is_preflight(steps[0]):
                lines = "; ".join(f"{n}: {why}" for n, why in node_locks.unreachable.items())
                raise RunbookError(f"cannot take the run lock on every node ({lines}); nothing was changed")
        started = datetime.now(timezone.utc)
        run_dir = make_run_dir(out_dir, cluster.name, started, check)
    except BaseException as exc:
        if node_locks is not None:
            node_locks.release()
            node_locks.hosts.close()
        controller_lock.release()
        if isinstance(exc, OSError) and (found := disk_error(exc, out_dir, cluster_dir)) is not None:
            raise found from None
        raise
    os.environ[RUN_ID_ENV] = run_id  # the kernel inherits it: backups on the nodes carry the run's id
    state = RunState(
        cluster_name=cluster.name,
        cluster_file=os.path.abspath(cluster_file),
        check=check,
        run_dir=run_dir,
        started=started,
        results=[StepResult(step) for step in steps],
        run_id=run_id,
        runner={"host": holder.host, "pid": holder.pid, "pid_start": holder.pid_start},
    )
    parameters = {**cluster.to_parameters(), "check": check, "record_dir": _record_dir_parameter(run_dir)}
    progress = Progress(stream, run_dir / RUN_LOG)
    mode = " (check: nothing will be changed)" if check else ""
    progress.line(
        f"runbook {'plan' if check else 'run'}: cluster '{cluster.name}' ({len(cluster.nodes)} nodes) "
        f"from {cluster_file}{mode}; {len(steps)} step{'s' if len(steps) != 1 else ''}"
    )
    record_error: list[ControllerDiskError] = []
    disk_reported = False  # a step already ended on the controller's disk: said once, not twice

    def save_summary() -> None:
        try:
            write_json(run_dir / SUMMARY, build_summary(state))
        except OSError as exc:
            found = disk_error(exc, out_dir)
            if found is None:
                raise
            if not record_error:
                record_error.append(found)

    exit_code = 0
    papermill_log = logging.getLogger("papermill")
    handler, propagate = _ToRunLog(progress), papermill_log.propagate
    current: StepResult | None = None
    t0 = time.monotonic()
    kernel_log: IO[bytes] | None = None
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        save_summary()
        kernel_log = open(run_dir / KERNEL_LOG, "ab")  # noqa: SIM115
        papermill_log.addHandler(handler)
        papermill_log.propagate = False
        if executor is None:
            _register_engine()
            executor = SharedKernel(repo_root(), kernel_log)
        for index, result in enumerate(state.results, start=1):
            current = result
            step = result.step
            output = run_dir / step.notebook
            if node_locks is not None and not _is_preflight(step):
                problem = _check_node_locks(node_locks, holder)
                if problem:
                    progress.line(f"runbook: error: {problem}\n  (stopped before step {step.stem}, which changed nothing)")
                    state.status = "failed"
                    exit_code = RunLocked.exit_code
                    break
            progress.begin(f"[{index}/{len(steps)}] {step.stem} ... ")
            t0 = time.monotonic()
            try:
                executor(step, output, parameters, cwd=repo_root(), timeout=timeout, kernel_log=kernel_log)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the step ends the run, reported
                result.seconds = time.monotonic() - t0
                result.status = "failed"
                result.record = read_record(run_dir, step)
                found = disk_error(exc, out_dir, output)
                if found is not None:
                    message, result.error = str(found), one_line(str(found))
                    disk_reported = True
                else:
                    message, result.error = failure_message(step, exc, result.record, timeout)
                progress.end(f"FAILED ({result.seconds:.1f}s)")
                for line in outcome_lines(result.record):
                    progress.line(line)
                progress.line(f"runbook: error: {message}")
                if found is None:
                    progress.line(f"  executed notebook with the error: {_display_path(output)}")
                state.status = "failed"
                exit_code = 1
                break
            result.seconds = time.monotonic() - t0
            result.status = "ok"
            result.record = read_record(run_dir, step)
            progress.end(f"ok ({result.seconds:.1f}s)")
            for line in outcome_lines(result.record):
                progress.line(line)
            save_summary()
            if record_error:
                break
        else:
            state.status = "ok"
    except KeyboardInterrupt as exc:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the run is ending: a second SIGTERM must not cut the cleanup
        terminated = isinstance(exc, Terminated)
        if current is not None and current.status == "not run":
            current.status = "interrupted"
            current.seconds = time.monotonic() - t0
            current.record = read_record(run_dir, current.step)
            progress.end(f"{'terminated' if terminated else 'interrupted'} ({current.seconds:.1f}s)")
        state.status = "interrupted"
        exit_code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        where = f" during step {current.step.stem}" if current else ""
        progress.line(f"runbook: {'terminated (SIGTERM)' if terminated else 'interrupted'}{where}")
        if current is not None and (run_dir / current.step.notebook).exists():
            progress.line(f"  executed notebook so far: {_display_path(run_dir / current.step.notebook)}")
    except OSError as exc:
        found = disk_error(exc, out_dir)
        if found is None:
            raise
        record_error.append(found)
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
        if node_locks is not None:
            node_locks.release()
            node_locks.hosts.close()
        papermill_log.removeHandler(handler)
        papermill_log.propagate = propagate
        if kernel_log is not None:
            kernel_log.close()
            try:
                if (run_dir / KERNEL_LOG).stat().st_size == 0:
                    (run_dir / KERNEL_LOG).unlink()  # the kernels said nothing outside the notebooks
            except OSError:
                pass
        state.finished = datetime.now(timezone.utc)
        if state.status == "running":  # an unexpected error in the runner itself, or its disk
            state.status = "failed"
        save_summary()
        if progress.error is not None and not record_error:
            record_error.append(disk_error(progress.error, out_dir) or ControllerDiskError(socket.gethostname(), str(run_dir / RUN_LOG), str(progress.error)))
        if record_error:
            exit_code = exit_code or 1
            if not disk_reported:
                progress.line(f"runbook: error: {record_error[0]}; the run's record is incomplete")
        progress.line(f"record: {_display_path(run_dir)}/ ({SUMMARY}, {RUN_LOG}, executed notebooks)")
        progress.line(verdict(state))
        progress.close()
        controller_lock.release()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    return exit_code


def _check_node_locks(node_locks: lock.NodeLocks, holder: lock.Holder) -> str | None:
    """Before a step that may change nodes: take the lock on nodes that had none (or lost theirs).

    A node that cannot be reached is left to the step: every step reads every node before it
    changes any, so it stops there with nothing changed, and says why in its own words. A node
    whose lock another run took meanwhile stops the run (the message, None when all is well).
    """
    lost = node_locks.lost()
    for name in lost:
        node_locks.channels.pop(name).close()
        node_locks.unreachable[name] = "the run's lock on the node was lost (connection closed)"
    if node_locks.unreachable:
        try:
            node_locks.acquire(holder, list(node_locks.unreachable))
        except RunLocked as exc:
            return str(exc)
    return None


# --- CLI -------------------------------------------------------------------------------------------


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cluster", help="cluster file (YAML)")
    parser.add_argument(
        "--only", action="append", metavar="STEP",
        help="run only this step: number (2, 02), name (corosync-conf) or file stem (02-corosync-conf); repeatable",
    )
    parser.add_argument("--out", metavar="DIR", help=f"where run records go (default ./{DEFAULT_OUT})")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
        help=f"longest one notebook cell may run, in seconds (default {DEFAULT_TIMEOUT:g})",
    )


def cmd_run(args: argparse.Namespace) -> int:
    return run(args.cluster, check=bool(getattr(args, "check", False)), only=args.only, out=args.out, timeout=args.timeout)


def cmd_plan(args: argparse.Namespace) -> int:
    return run(args.cluster, check=True, only=args.only, out=args.out, timeout=args.timeout)


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `run` and `plan` to the runbook CLI (`add(name, help, examples, func)`)."""
    p = add(
        "run",
        "Run the step notebooks in order for a cluster file; the executed notebooks are the record. "
        "One run per cluster at a time (a lock here and on every node). Exit 0 done, 1 failed, 2 bad input, "
        "75 another run holds the cluster, 130 ^C, 143 SIGTERM.",
        "runbook run clusters/chapter.yaml                       # every step, records in ./runs/chapter/<time>/\n"
        "runbook run clusters/chapter.yaml --check               # dry run: what would change, per node\n"
        "runbook run clusters/chapter.yaml --only 2 --only authkey\n"
        "runbook run clusters/lab3.yaml --out /var/tmp/runs --timeout 300",
        cmd_run,
    )
    _add_common(p)
    p.add_argument("--check", action="store_true", help="dry run: show what would change and change nothing")

    p = add(
        "plan",
        "Dry run of every step (same as `run --check`): what would change on each node, nothing changed. "
        "Takes no lock, but is refused (exit 75) while a run of the cluster holds it.",
        "runbook plan clusters/chapter.yaml\n"
        "runbook plan clusters/chapter.yaml --only corosync-conf",
        cmd_plan,
    )
    _add_common(p)
