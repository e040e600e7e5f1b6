"""`runbook run` and `runbook plan`: execute the step notebooks in order for one cluster file.

Each step notebook runs with papermill, with the cluster file's keys as parameters (plus `check` and
`record_dir`). The steps of one run share a kernel whose namespace is cleared before each step
(see SharedKernel), so each executed notebook reads as its own session. The executed notebooks are
the run's record, kept with a `summary.json`, a `run.log` (the progress lines), each step's report
as `<step>.json` (both read and written by runbook.run/record.py), and, if the kernel wrote anything
to its stderr, `kernel.log`, in

    <out>/<cluster name>/<UTC start, YYYYmmddTHHMMSSZ>[-check]/

Order of business: the cluster file is validated and the steps are chosen before any kernel starts
or any host is touched (bad input exits 2). Then the run takes the cluster's lock on this controller
and on every node (runbook.run.lock); a run that finds either held is refused at once with exit 75,
before it makes a run directory. `plan` takes no lock (it never holds up a run) but reads both,
read-only, and is refused the same way while a run of any controller holds the cluster or a node:
what it would read is half-changed. The run stops at the first failing step (exit 1) and says which
step, which node and why, and where the executed notebook with the error is. Ctrl-C stops the run, records it as interrupted and exits 130; SIGTERM
does the same and exits 143. After a SIGKILL the kernel kills itself (see watch_parent), and the
next run marks the record the dead run left "running" (mark_dead_runs). A controller disk that
cannot take the record ends the run with one line naming the path (ControllerDiskError).

This module is the run loop and its CLI; the parts live beside it, one concept each:
runbook.run/step_files.py (the step notebooks, --only), runbook.run/record.py (the typed record on disk, run
directories), runbook.run/kernel.py (the shared kernel, its IPC sockets, watch_parent) and
runbook.run/messages.py (what the terminal shows).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from runbook.errors import ControllerDiskError, RunbookError, RunLocked, RunRecordError, UsageError
from runbook.local import RUN_ID_ENV
from runbook.model.load import load_cluster
from runbook.model.rules import to_parameters
from runbook.model.types import Cluster
from runbook.run import lock
from runbook.run.kernel import SharedKernel, check_kernel, register_engine, sweep_kernel_dirs
from runbook.run.messages import clean, failure_message, one_line, outcome_lines, verdict
from runbook.run.progress import Progress, ToRunLog
from runbook.run.record import SUMMARY, make_run_dir, mark_dead_runs, write_summary
from runbook.run.step_files import Step, discover_steps, notebooks_dir, repo_root, select_steps
from runbook.run.summary import RunState, StepResult, read_record, record_of_stopped_step, run_summary
from runbook.ssh.hosts import Hosts, hosts_for

DEFAULT_OUT = "runs"
DEFAULT_TIMEOUT = 600.0
RUN_LOG = "run.log"
KERNEL_LOG = "kernel.log"


# --- the run's state, and its summary ----------------------------------------------------------------


# --- the run --------------------------------------------------------------------------------------


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
    take_over: bool = False,
    restart_all: bool = False,
    rotate_key: bool = False,
) -> int:
    """Run the step notebooks for `cluster_file`; returns the exit code.

    0 ok, 1 failed, 130 interrupted (^C), 143 terminated (SIGTERM); RunLocked (75) is raised when
    another run holds the cluster. `lock_nodes` (default: yes, unless a test passes `executor`)
    takes the lock on every node too. `take_over`: preflight lets nodes of another running cluster
    be moved into this one (see runbook.steps.foreign_cluster). `restart_all`: a change that restarts
    every node together, stopping the running cluster, may be made (see runbook.steps.change).
    The lab guard, where one is wanted, is the caller's to install first (the CLI does).
    """
    cluster, steps, hosts = prepare(cluster_file, only, timeout)
    if lock_nodes is None:
        lock_nodes = executor is None
    out_dir = Path(out if out is not None else DEFAULT_OUT).resolve()
    run_id = secrets.token_hex(4)
    holder = lock.this_holder("plan" if check else "run", cluster.name, run_id)
    held = hold(cluster, hosts, steps, check=check, lock_nodes=lock_nodes, out_dir=out_dir, holder=holder)
    os.environ[RUN_ID_ENV] = run_id  # the kernel inherits it: backups on the nodes carry the run's id
    state = RunState(
        cluster_name=cluster.name,
        cluster_file=os.path.abspath(cluster_file),
        check=check,
        run_dir=held.run_dir,
        started=held.started,
        results=[StepResult(step) for step in steps],
        run_id=run_id,
        runner={"host": holder.host, "pid": holder.pid, "pid_start": holder.pid_start},
    )
    flags = {"check": check, "take_over": take_over, "restart_all": restart_all, "rotate_key": rotate_key}
    parameters = {**to_parameters(cluster), **flags, "record_dir": _record_dir_parameter(held.run_dir)}
    session = _Session(state, held, out_dir, Progress(stream or sys.stderr, held.run_dir / RUN_LOG))
    mode = " (check: nothing will be changed)" if check else ""
    session.progress.line(
        f"runbook {'plan' if check else 'run'}: cluster '{cluster.name}' ({len(cluster.nodes)} nodes) "
        f"from {cluster_file}{mode}; {len(steps)} step{'s' if len(steps) != 1 else ''}"
    )
    return session.execute(parameters, executor, timeout)


def prepare(cluster_file: str, only: Sequence[str] | None, timeout: float | None) -> tuple[Cluster, list[Step], Hosts]:
    """The cluster, its logins and the steps, checked before any kernel starts or host is touched (exit 2).

    The logins (ssh_config: ports, ProxyJump) are worked out once, here: exit 2 here, not in a
    notebook; nothing is connected to until the locks are taken."""
    cluster = load_cluster(cluster_file)
    hosts = hosts_for(cluster)
    if timeout is not None and not timeout > 0:
        raise UsageError(f"--timeout: {timeout!r} is not a positive number of seconds")
    steps = select_steps(discover_steps(notebooks_dir()), only)
    check_kernel()
    return cluster, steps, hosts


@dataclass
class Held:
    """What a run holds while it runs: the controller's lock, the nodes' locks (a run), its directory."""

    holder: lock.Holder
    controller_lock: lock.ControllerLock
    node_locks: lock.NodeLocks | None
    started: datetime
    run_dir: Path

    def release_nodes(self) -> None:
        """The nodes' locks and their connections (the controller's lock is let go last, by release)."""
        if self.node_locks is not None:
            self.node_locks.release()
            self.node_locks.hosts.close()

    def release(self) -> None:
        self.release_nodes()
        self.controller_lock.release()


def hold(cluster: Cluster, hosts: Hosts, steps: Sequence[Step], *, check: bool, lock_nodes: bool, out_dir: Path, holder: lock.Holder) -> Held:
    """Take the run's locks (a plan only reads them) and make its directory; on any failure, hold nothing."""
    cluster_dir = out_dir / cluster.name
    controller_lock = lock.ControllerLock(cluster_dir)
    node_locks: lock.NodeLocks | None = None
    try:
        if check:
            _refuse_plan_while_held(hosts, cluster_dir, lock_nodes)
        else:
            controller_lock.acquire(holder)
            mark_dead_runs(cluster_dir)
        sweep_kernel_dirs()
        if lock_nodes and not check:
            node_locks = lock.NodeLocks(hosts)
            node_locks.acquire(holder)
            if node_locks.unreachable and not _is_preflight(steps[0]):
                lines = "; ".join(f"{n}: {why}" for n, why in node_locks.unreachable.items())
                raise RunbookError(f"cannot take the run lock on every node ({lines}); nothing was changed")
        started = datetime.now(timezone.utc)
        return Held(holder, controller_lock, node_locks, started, make_run_dir(out_dir, cluster.name, started, check))
    except BaseException as exc:
        Held(holder, controller_lock, node_locks, datetime.now(timezone.utc), cluster_dir).release()
        if isinstance(exc, OSError) and (found := disk_error(exc, out_dir, cluster_dir)) is not None:
            raise found from None
        raise


def _refuse_plan_while_held(hosts: Hosts, cluster_dir: Path, lock_nodes: bool) -> None:
    """A plan changes nothing and takes no lock, so it never holds up a run; but while a run changes
    the nodes, what a plan reads is already out of date: refused the same way."""
    other = lock.probe_controller(cluster_dir)
    if other is not None:
        raise RunLocked(
            socket.gethostname(),
            f"a {other.describe()} is changing the nodes now; a plan would read them half-changed. "
            "Run the plan when it has ended.",
            holder=other,
        )
    if lock_nodes:  # another controller's run holds the nodes: seen in their locks, read-only
        with hosts:
            held = lock.probe_nodes(hosts)
        if held:
            raise lock.refuse_plan(held)


class _Session:
    """One run from its first step to its record: the step loop, ^C and SIGTERM, the controller's disk."""

    def __init__(self, state: RunState, held: Held, out_dir: Path, progress: Progress) -> None:
        self.state, self.held, self.out_dir, self.progress = state, held, out_dir, progress
        self.run_dir = state.run_dir
        self.record_error: list[ControllerDiskError] = []
        self.disk_reported = False  # a step already ended on the controller's disk: said once, not twice
        self.current: StepResult | None = None
        self.t0 = time.monotonic()
        self.exit_code = 0

    def save_summary(self) -> None:
        try:
            write_summary(self.run_dir, run_summary(self.state))
        except OSError as exc:
            found = disk_error(exc, self.out_dir)
            if found is None:
                raise
            if not self.record_error:
                self.record_error.append(found)

    def execute(self, parameters: dict[str, Any], executor: Callable[..., None] | None, timeout: float | None) -> int:
        papermill_log = logging.getLogger("papermill")
        handler, propagate = ToRunLog(self.progress), papermill_log.propagate
        kernel_log: IO[bytes] | None = None
        previous_sigterm = None
        if threading.current_thread() is threading.main_thread():
            previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            self.save_summary()
            kernel_log = open(self.run_dir / KERNEL_LOG, "ab")  # noqa: SIM115
            papermill_log.addHandler(handler)
            papermill_log.propagate = False
            if executor is None:
                register_engine()
                executor = SharedKernel(repo_root(), kernel_log)
            self.run_steps(executor, parameters, timeout, kernel_log)
        except KeyboardInterrupt as exc:
            self.interrupted(exc)
        except OSError as exc:
            found = disk_error(exc, self.out_dir)
            if found is None:
                raise
            self.record_error.append(found)
        finally:
            close = getattr(executor, "close", None)
            if close is not None:
                close()
            papermill_log.removeHandler(handler)
            papermill_log.propagate = propagate
            self.finish(kernel_log)
            if previous_sigterm is not None:
                signal.signal(signal.SIGTERM, previous_sigterm)
        return self.exit_code

    def run_steps(self, executor: Callable[..., None], parameters: dict[str, Any], timeout: float | None, kernel_log: IO[bytes]) -> None:
        steps = len(self.state.results)
        for index, result in enumerate(self.state.results, start=1):
            self.current = result
            step = result.step
            node_locks = self.held.node_locks
            if node_locks is not None and not _is_preflight(step):
                problem = _check_node_locks(node_locks, self.held.holder)
                if problem:
                    self.progress.line(f"runbook: error: {problem}\n  (stopped before step {step.stem}, which changed nothing)")
                    self.state.status, self.exit_code = "failed", RunLocked.exit_code
                    return
            self.progress.begin(f"[{index}/{steps}] {step.stem} ... ")
            self.t0 = time.monotonic()
            try:
                executor(step, self.run_dir / step.notebook, parameters, cwd=repo_root(), timeout=timeout, kernel_log=kernel_log)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the step ends the run, reported
                self.step_failed(result, exc, timeout)
                return
            result.seconds = time.monotonic() - self.t0
            if not self.step_done(result):
                return
            self.save_summary()
            if self.record_error:
                return
        self.state.status = "ok"

    def step_failed(self, result: StepResult, exc: Exception, timeout: float | None) -> None:
        step, output = result.step, self.run_dir / result.step.notebook
        result.seconds = time.monotonic() - self.t0
        result.status = "failed"
        result.record = record_of_stopped_step(self.run_dir, step)
        found = disk_error(exc, self.out_dir, output)
        if found is not None:
            message, result.error = str(found), one_line(str(found))
            self.disk_reported = True
        else:
            message, result.error = failure_message(step, exc, result.record, timeout)
        self.progress.end(f"FAILED ({result.seconds:.1f}s)")
        for line in outcome_lines(result.record):
            self.progress.line(line)
        self.progress.line(f"runbook: error: {message}")
        if found is None:
            self.progress.line(f"  executed notebook with the error: {_display_path(output)}")
        self.state.status, self.exit_code = "failed", 1

    def step_done(self, result: StepResult) -> bool:
        """The step ran: its record read back and shown. False when the record cannot be read."""
        try:
            result.record = read_record(self.run_dir, result.step)
        except RunRecordError as exc:  # the step ran, but what it did cannot be shown or published
            result.status, result.error = "failed", one_line(str(exc))
            self.progress.end(f"FAILED ({result.seconds:.1f}s)")
            self.progress.line(f"runbook: error: step {result.step.stem} ran, but its record cannot be read: {clean(str(exc))}")
            self.state.status, self.exit_code = "failed", 1
            return False
        result.status = "ok"
        self.progress.end(f"ok ({result.seconds:.1f}s)")
        for line in outcome_lines(result.record):
            self.progress.line(line)
        return True

    def interrupted(self, exc: KeyboardInterrupt) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the run is ending: a second SIGTERM must not cut the cleanup
        terminated = isinstance(exc, Terminated)
        current = self.current
        if current is not None and current.status == "not run":
            current.status = "interrupted"
            current.seconds = time.monotonic() - self.t0
            current.record = record_of_stopped_step(self.run_dir, current.step)
            self.progress.end(f"{'terminated' if terminated else 'interrupted'} ({current.seconds:.1f}s)")
        self.state.status = "interrupted"
        self.exit_code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        where = f" during step {current.step.stem}" if current else ""
        self.progress.line(f"runbook: {'terminated (SIGTERM)' if terminated else 'interrupted'}{where}")
        if current is not None and (self.run_dir / current.step.notebook).exists():
            self.progress.line(f"  executed notebook so far: {_display_path(self.run_dir / current.step.notebook)}")

    def finish(self, kernel_log: IO[bytes] | None) -> None:
        """The locks released and the record closed, whatever ended the run."""
        self.held.release_nodes()
        if kernel_log is not None:
            kernel_log.close()
            try:
                if (self.run_dir / KERNEL_LOG).stat().st_size == 0:
                    (self.run_dir / KERNEL_LOG).unlink()  # the kernels said nothing outside the notebooks
            except OSError:
                pass
        self.state.finished = datetime.now(timezone.utc)
        if self.state.status == "running":  # an unexpected error in the runner itself, or its disk
            self.state.status = "failed"
        self.save_summary()
        if self.progress.error is not None and not self.record_error:
            error = self.progress.error
            self.record_error.append(disk_error(error, self.out_dir) or ControllerDiskError(socket.gethostname(), str(self.run_dir / RUN_LOG), str(error)))
        if self.record_error:
            self.exit_code = self.exit_code or 1
            if not self.disk_reported:
                self.progress.line(f"runbook: error: {self.record_error[0]}; the run's record is incomplete")
        self.progress.line(f"record: {_display_path(self.run_dir)}/ ({SUMMARY}, {RUN_LOG}, executed notebooks)")
        self.progress.line(verdict(self.state))
        self.progress.close()
        self.held.controller_lock.release()


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


