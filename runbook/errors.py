"""One root error class, so callers (CLI, notebooks) can catch everything the runbook raises.

Errors carry what a user needs to act: the field and value for bad input, the host and command
for remote failures. The CLI prints `str(error)` and never a traceback for these.
"""

from __future__ import annotations

from runbook.text import clean


class RunbookError(Exception):
    """Root of every error the runbook raises on purpose."""

    exit_code = 1


class ClusterFileError(RunbookError):
    """The cluster file (or papermill parameters) is unusable: names the field and value."""

    exit_code = 2

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{where}{self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{where}{len(self.problems)} problems:\n{lines}"
        super().__init__(message)


class UsageError(RunbookError):
    """Bad command-line arguments (a lab name, a step for --only, an output path): nothing was started."""

    exit_code = 2


class SshConfigError(RunbookError):
    """An ssh_config value the runbook cannot use: names the file, the Host it applies to and the key.

    Bad input like a bad cluster file (exit 2), found while working out the logins, before any
    connection is made.
    """

    exit_code = 2

    def __init__(self, path: str | None, host: str | None, key: str | None, message: str) -> None:
        self.path = path
        self.host = host
        self.key = key
        where = [part for part in (path or "ssh_config", f"host {host}" if host else None, key) if part]
        super().__init__(f"{': '.join(where)}: {message}")


class ConfigParseError(RunbookError):
    """An existing corosync.conf cannot be parsed: names the file and line."""

    exit_code = 2

    def __init__(self, message: str, source: str = "corosync.conf", line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class HostError(RunbookError):
    """Something failed on (or on the way to) one node: names the host and what was attempted."""

    def __init__(self, host: str, message: str, command: str | None = None) -> None:
        self.host = host
        self.command = command
        text = f"{host}: {message}"
        if command:
            text += f"\n  command: {command}"
        super().__init__(text)


class ConnectionFailed(HostError):
    """The node cannot be reached or refuses to log us in."""


class HostKeyError(HostError):
    """The node's SSH host key is unknown or changed: never auto-accepted."""


class MembershipUnavailable(HostError):
    """A running cluster's membership cannot be read on a host (Corosync not running there, no tools,
    hosts that disagree): names the host. `runbook migrate --from-nodes` stops with it, nothing written."""


class CommandFailed(HostError):
    """A remote command exited non-zero: carries exit code and the tail of stderr."""

    def __init__(self, host: str, command: str, exit_status: int, stderr: str = "", stdout: str = "") -> None:
        self.exit_status = exit_status
        self.stderr = stderr
        self.stdout = stdout

        tail = "\n".join(clean(stderr).strip().splitlines()[-10:])
        message = f"command exited {exit_status}"
        if tail:
            message += "\n  stderr (tail):\n" + "\n".join(f"    {line}" for line in tail.splitlines())
        super().__init__(host, message, command=command)


class LabError(RunbookError):
    """The local test hosts cannot be made, used or removed."""


class SubnetInUse(LabError):
    """A lab's subnet is already routed on this machine (often by another lab): names the holder."""

    def __init__(self, subnet: str, device: str, lab: str | None = None) -> None:
        self.subnet = subnet
        self.device = device
        self.lab = lab
        hint = f" (lab '{lab}'; `runbook lab down --lab {lab}`)" if lab else ""
        super().__init__(
            f"{subnet} is already routed on this machine via {device}{hint}; refusing to make lab hosts there "
            "(`runbook lab world -- COMMAND` runs COMMAND with labs of its own, beside this one)"
        )


# --- concurrent runs and the controller's own disk (issue 15) -------------------------------------


class RunLocked(RunbookError):
    """Another run holds the cluster's lock (on this controller or on a node): refused at once, exit 75.

    `host` is where the lock is (this controller's name, or the node's); `holder` the other run's
    record (runbook.run.lock.Holder) when it could be read. Not a HostError: nothing failed on a node,
    and an `except HostError` around a node's command must not take a lock refusal for one.
    """

    exit_code = 75  # EX_TEMPFAIL: try again later

    def __init__(self, host: str, message: str, holder: object = None) -> None:
        self.host = host
        self.holder = holder
        super().__init__(f"{host}: {message}")


class ControllerDiskError(RunbookError):
    """The controller cannot write its run record (disk full, read-only, no permission): names the path.

    The controller's own disk, not a node's: not a HostError."""

    def __init__(self, host: str, path: str, reason: str) -> None:
        self.host = host
        self.path = path
        self.reason = reason
        super().__init__(f"{host}: controller cannot write {path}: {reason}")


class CommandTimeout(HostError):
    """A command on a node gave no result within its time (its own, or what --timeout left for the step)."""


class RunRecordError(RunbookError):
    """A run record file (`summary.json`, `<step>.json`) cannot be read or has a version this runbook
    does not know: names the file and what is wrong with it."""

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {message}")


class StepFailed(RunbookError):
    """A step failed on one or more nodes; names each node and why, and carries the report.

    `failures` is by node name only; what concerns the whole cluster is in `problems` (a node may be
    called anything, "cluster" included).
    """

    def __init__(self, step: str, failures: dict[str, str], report: object | None = None, problems: "list[str] | tuple[str, ...]" = ()) -> None:
        self.step = step
        self.failures = failures
        self.problems = list(problems)
        self.node = next(iter(failures), None)
        self.report = report
        lines = [f"{node}: {why}" for node, why in failures.items()]
        if len(lines) == 1 and not self.problems:
            message = f"step {step} failed on {lines[0]}"
        elif len(self.problems) == 1 and not lines:
            message = f"step {step} failed: {self.problems[0]}"
        else:
            nodes = f"{len(lines)} node{'s' if len(lines) != 1 else ''}" if lines else ""
            where = " and ".join(part for part in ("the cluster" if self.problems else "", nodes) if part)
            lines = self.problems + lines
            message = f"step {step} failed on {where}:\n" + "\n".join(f"  - {line}" for line in lines)
        super().__init__(message)
