"""The run's one Jupyter kernel: started once, shared by every step, and dead with the runner.

Each step notebook runs with papermill in the same kernel, whose namespace is reset before each step
(SharedKernel), so each executed notebook reads as its own session and SSH connections are kept.
Kernels talk to the runner over IPC (Unix sockets in a private temporary directory), not TCP:
ipykernel 7 warns "Kernel is running over TCP without encryption" otherwise, and local sockets are
not reachable from other users or hosts anyway. After a SIGKILL of the runner the kernel kills
itself (watch_parent), and a later run removes the socket directory it left (sweep_kernel_dirs).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from runbook.errors import RunbookError
from runbook.run import lock
from runbook.run.step_files import Step

KERNEL_NAME = "python3"


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
WATCH_PARENT = "import runbook.run.kernel as _rb; _rb.watch_parent({pid}, {socket_dir!r}); del _rb"
SET_BUDGET = "import runbook.ssh.hosts as _rb; _rb.set_command_budget({budget!r}); del _rb"
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


def register_engine() -> None:
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
