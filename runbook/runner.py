"""`runbook run` and `runbook plan`: execute the step notebooks in order for one cluster file.

Each step notebook runs with papermill, with the cluster file's keys as parameters (plus `check` and
`record_dir`). The steps of one run share a kernel whose namespace is cleared before each step
(see SharedKernel), so each executed notebook reads as its own session. The executed notebooks are
the run's record, kept with a `summary.json`, a `run.log` (the progress lines), each step's report
as `<step>.json` (both read and written by runbook.run_record), and, if the kernel wrote anything
to its stderr, `kernel.log`, in

    <out>/<cluster name>/<UTC start, YYYYmmddTHHMMSSZ>[-check]/

Order of business: the cluster file is validated and the steps are chosen before any kernel starts
or any host is touched (bad input exits 2). Then the run takes the cluster's lock on this controller
and on every node (runbook.lock); a run that finds either held is refused at once with exit 75,
before it makes a run directory. `plan` takes no lock (it never holds up a run) but reads both,
read-only, and is refused the same way while a run of any controller holds the cluster or a node:
what it would read is half-changed. The run stops at the first failing step (exit 1) and says which
step, which node and why, and where the executed notebook with the error is. Ctrl-C stops the run, records it as interrupted and exits 130; SIGTERM
does the same and exits 143. After a SIGKILL the kernel kills itself (see watch_parent), and the
next run marks the record the dead run left "running" (mark_dead_runs). A controller disk that
cannot take the record ends the run with one line naming the path (ControllerDiskError).

This module is the run loop and its CLI; the parts live beside it, one concept each:
runbook.step_files (the step notebooks, --only), runbook.run_record (the typed record on disk, run
directories), runbook.run_kernel (the shared kernel, its IPC sockets, watch_parent) and
runbook.run_messages (what the terminal shows). Their names are re-exported here.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import runbook
from runbook import lab_guard, lock
from runbook.errors import ControllerDiskError, RunbookError, RunLocked, RunRecordError, UsageError
from runbook.run_kernel import (  # noqa: F401 - re-exported: runbook.runner is the run's one entry point
    KERNEL_NAME,
    PARENT_POLL,
    RESET_NAMESPACE,
    SET_BUDGET,
    SHARED_KERNEL_ENGINE,
    WATCH_PARENT,
    SharedKernel,
    _register_engine,
    check_kernel,
    command_budget,
    kernel_manager_class,
    sweep_kernel_dirs,
    watch_parent,
)
from runbook.run_messages import clean, failure_message, one_line, outcome_lines, verdict  # noqa: F401
from runbook.run_record import (  # noqa: F401
    CHECK_SUFFIX,
    SUMMARY,
    TIMESTAMP_FORMAT,
    RunSummary,
    StepEntry,
    StepRecord,
    make_run_dir,
    mark_dead_runs,
    read_step_record,
    run_dir_name,
    step_record_path,
    write_summary,
)
from runbook.step_files import NOTEBOOKS_ENV, Step, describe_steps, discover_steps, notebooks_dir, repo_root, select_steps  # noqa: F401

DEFAULT_OUT = "runs"
DEFAULT_TIMEOUT = 600.0
RUN_LOG = "run.log"
KERNEL_LOG = "kernel.log"
RUN_ID_ENV = "RUNBOOK_RUN_ID"


# --- the run's state, and its summary ----------------------------------------------------------------


@dataclass
class StepResult:
    """One step as the run goes: its status, time, error and the record its notebook saved."""

    step: Step
    status: str = "not run"  # ok | failed | interrupted | not run
    seconds: float | None = None
    error: str | None = None
    record: StepRecord | None = None

    def entry(self) -> StepEntry:
        return StepEntry(
            step=self.step.stem,
            notebook=self.step.notebook,
            status=self.status,
            seconds=self.seconds,
            error=self.error,
            changed=self.record.changed_nodes if self.record is not None else [],
        )

    def to_dict(self) -> dict[str, Any]:
        return self.entry().to_dict()


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


def run_summary(state: RunState) -> RunSummary:
    """The run as summary.json records it."""
    return RunSummary(
        cluster=state.cluster_name,
        cluster_file=state.cluster_file,
        started=_iso(state.started),
        finished=_iso(state.finished),
        check=state.check,
        status=state.status,
        steps=[r.entry() for r in state.results],
        runbook_version=runbook.__version__,
        run_id=state.run_id,
        runner=dict(state.runner),
    )


def build_summary(state: RunState) -> dict[str, Any]:
    """The content of summary.json."""
    return run_summary(state).to_dict()


def read_record(run_dir: Path, step: Step) -> StepRecord | None:
    """The step's report as the notebook saved it (`<run dir>/<step>.json`), None if it saved none.

    A record that is there but cannot be read is a RunRecordError naming the file.
    """
    path = step_record_path(run_dir, step.stem)
    if not path.exists():
        return None
    return read_step_record(path)


def _record_of_stopped_step(run_dir: Path, step: Step) -> StepRecord | None:
    """The record of a step that failed or was stopped: an unreadable one must not hide why it stopped."""
    try:
        return read_record(run_dir, step)
    except RunRecordError:
        return None


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
    be moved into this one (see runbook.foreign_cluster). `restart_all`: a change that restarts
    every node together, stopping the running cluster, may be made (see runbook.steps.change).
    """
    from runbook.cluster import load_cluster
    from runbook.hosts import hosts_for

    stream = stream or sys.stderr
    cluster = load_cluster(cluster_file)  # exit 2 on bad input, before anything starts
    lab_guard.install()  # before the logins are worked out: a lab host's ssh_config is its lab's
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
            if lock_nodes:  # another controller's run holds the nodes: seen in their locks, read-only
                with hosts_for(cluster) as probed:
                    held = lock.probe_nodes(probed)
                if held:
                    raise lock.refuse_plan(held)
        else:
            controller_lock.acquire(holder)
            mark_dead_runs(cluster_dir)
        sweep_kernel_dirs()
        if lock_nodes and not check:
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
    parameters = {**cluster.to_parameters(), "check": check, "take_over": take_over, "restart_all": restart_all, "rotate_key": rotate_key, "record_dir": _record_dir_parameter(run_dir)}
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
            write_summary(run_dir, run_summary(state))
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
                result.record = _record_of_stopped_step(run_dir, step)
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
            try:
                result.record = read_record(run_dir, step)
            except RunRecordError as exc:  # the step ran, but what it did cannot be shown or published
                result.status, result.error = "failed", one_line(str(exc))
                progress.end(f"FAILED ({result.seconds:.1f}s)")
                progress.line(f"runbook: error: step {step.stem} ran, but its record cannot be read: {clean(str(exc))}")
                state.status = "failed"
                exit_code = 1
                break
            result.status = "ok"
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
            current.record = _record_of_stopped_step(run_dir, current.step)
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
    parser.add_argument(
        "--take-over", action="store_true",
        help="move nodes that are members of another running cluster (another cluster_name, other members) into "
        "this one; without it preflight refuses them, naming the cluster, and changes nothing",
    )
    parser.add_argument(
        "--restart-all", action="store_true",
        help="allow a change that restarts every node together (cluster_name, transport, a node's address...), which "
        "stops the running cluster until they are back; without it preflight refuses such a change, naming the keys",
    )


def cmd_run(args: argparse.Namespace) -> int:
    return run(args.cluster, check=bool(getattr(args, "check", False)), only=args.only, out=args.out, timeout=args.timeout,
               take_over=args.take_over, restart_all=args.restart_all)


def cmd_plan(args: argparse.Namespace) -> int:
    return run(args.cluster, check=True, only=args.only, out=args.out, timeout=args.timeout, take_over=args.take_over,
               restart_all=args.restart_all)


ROTATE_STEPS = ("preflight", "authkey", "start-and-verify")


def cmd_rotate_key(args: argparse.Namespace) -> int:
    return run(args.cluster, check=bool(args.check), only=list(ROTATE_STEPS), out=args.out, timeout=args.timeout,
               restart_all=args.restart_all, rotate_key=True)


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
        "Takes no lock, but is refused (exit 75) while a run (from this or another controller) holds the cluster or a node.",
        "runbook plan clusters/chapter.yaml\n"
        "runbook plan clusters/chapter.yaml --only corosync-conf",
        cmd_plan,
    )
    _add_common(p)

    p = add(
        "rotate-key",
        "Replace the cluster's authkey: the primary makes a new one, every node gets it, and Corosync takes it "
        "(one reload on Corosync 3.1+ with the membership kept; before 3.1 every node restarts together, which needs "
        "--restart-all). Runs steps 00, 03 and 06; the old key stays on each node as a root-only backup. The key's "
        "bytes appear in no output or record: reports name a key by the start of its SHA-256.",
        "runbook rotate-key clusters/chapter.yaml --check   # what it would do, per node\n"
        "runbook rotate-key clusters/chapter.yaml\n"
        "runbook rotate-key clusters/old.yaml --restart-all # Corosync 2.x/3.0: the cluster stops while the nodes restart",
        cmd_rotate_key,
    )
    p.add_argument("cluster", help="cluster file (YAML)")
    p.add_argument("--check", action="store_true", help="dry run: show what would change and change nothing")
    p.add_argument("--out", metavar="DIR", help=f"where run records go (default ./{DEFAULT_OUT})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S", help="longest one notebook cell may run, in seconds")
    p.add_argument("--restart-all", action="store_true",
                   help="where Corosync cannot take a key at run time (before 3.1), restart every node together")
