"""One run at a time per cluster: a lock on the controller and a lock on every node.

Controller: `<out>/<cluster>/.runbook.run.lock`, held with flock(2) for the whole run. The kernel frees
an flock when its holder dies, however it dies (SIGKILL included), so a dead run never leaves a
lock behind; the file itself stays and holds a record of the last holder (host, pid, start time).

Nodes: `/run/runbook-corosync.lock` on every node, held by `flock` in a small shell that the
runner starts over its own SSH connection and that lives only as long as that connection talks to
it. The shell waits for a heartbeat line, sent by the runner every HEARTBEAT seconds; it exits, and
the lock is free, when the connection closes (the runner ended or was killed: sshd closes the
shell's stdin) or when no heartbeat came for NODE_LOCK_EXPIRES seconds (the controller lost power
or the network, and the TCP connection was left half-open). So a second controller is refused
too, and a dead controller's lock frees itself within a minute at most. `/run` is a tmpfs: a
rebooted node has no lock.

A run that finds either lock held is refused at once with exit code EXIT_LOCKED (75, EX_TEMPFAIL:
"try again later"), naming the holder, before any run directory is made or any node changed.
A plan takes neither lock (it must never hold up a run) but looks at both, read-only
(probe_controller, probe_nodes), and is refused the same way while a run from any controller holds them.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runbook.errors import RunbookError, RunLocked
from runbook.ssh.fanout import each

CONTROLLER_LOCK = ".runbook.run.lock"
NODE_LOCK_PATH = "/run/runbook-corosync.lock"
HEARTBEAT = 15.0
NODE_LOCK_EXPIRES = 60
NODE_LOCK_ANSWER = 30.0  # seconds to wait for the node's "locked" or "busy" (after the login)


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: enough to find the process and to tell a live run from a dead one."""

    host: str
    pid: int
    started: str  # UTC, ISO 8601
    pid_start: str | None  # the process's start time in clock ticks since boot (/proc/PID/stat field 22)
    command: str  # run | plan
    cluster: str
    run_id: str = ""

    def describe(self) -> str:
        return f"{self.command} of cluster '{self.cluster}' by pid {self.pid} on {self.host}, started {self.started}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]
        except (ValueError, TypeError, AttributeError):
            return None


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), or None when there is no such process.

    pid and start time together name one process: a pid reused by a later process has another start.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def is_alive(host: str, pid: int, pid_start: str | None) -> bool | None:
    """Whether the process still runs: True/False on this host, None (unknown) for another host."""
    if host != socket.gethostname():
        return None
    current = process_start(pid)
    return current is not None and (pid_start is None or current == pid_start)


def this_holder(command: str, cluster: str, run_id: str = "") -> Holder:
    pid = os.getpid()
    return Holder(
        host=socket.gethostname(),
        pid=pid,
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        pid_start=process_start(pid),
        command=command,
        cluster=cluster,
        run_id=run_id,
    )


# --- the controller's lock ---------------------------------------------------------------------------


def controller_lock_path(cluster_dir: Path) -> Path:
    return cluster_dir / CONTROLLER_LOCK


def _clear_hint_controller(path: Path, holder: Holder | None) -> str:
    pid = holder.pid if holder else "PID"
    return (
        f"  If that run is still going, wait for it. The lock is an flock on {path}: it is freed the moment\n"
        f"  its process ends, so a lock that stays is held by a live process. Check with `ps -p {pid} -o pid,lstart,args`\n"
        f"  (or `fuser -v {path}`); stop that run (Ctrl-C or `kill {pid}`) only if it is yours and stuck.\n"
        f"  Deleting the file does not free the lock."
    )


class ControllerLock:
    """flock on `<out>/<cluster>/.runbook.run.lock`, with the holder's record in the file."""

    def __init__(self, cluster_dir: Path) -> None:
        self.path = controller_lock_path(cluster_dir)
        self._fd: int | None = None

    def acquire(self, holder: Holder) -> None:
        """Take the lock or raise RunLocked at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read_holder(fd)
            os.close(fd)
            raise RunLocked(
                socket.gethostname(),
                f"cluster '{holder.cluster}' is locked by {_who(other)}; refused, nothing was changed.\n"
                + _clear_hint_controller(self.path, other),
                holder=other,
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (holder.to_json() + "\n").encode(), 0)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)  # closing frees the flock
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _who(other: Holder | None) -> str:
    """The other run, as a refusal names it."""
    return f"a {other.describe()}" if other else "another run (its record in the lock file could not be read)"


def _read_holder(fd: int) -> Holder | None:
    """The holder's record; it is written just after the lock is taken, so a reader in between waits
    for it (up to 1 s) instead of reporting a run with no record."""
    for _ in range(10):
        try:
            holder = Holder.from_json(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
        except OSError:
            return None
        if holder is not None:
            return holder
        time.sleep(0.1)
    return None


def probe_controller(cluster_dir: Path) -> Holder | None:
    """The holder of the cluster's lock when a run holds it now, else None (takes nothing)."""
    path = controller_lock_path(cluster_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or Holder("?", 0, "?", None, "run", "?")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# --- the nodes' locks ----------------------------------------------------------------------------------


def node_lock_script(holder: Holder, path: str = NODE_LOCK_PATH) -> str:
    """The shell that takes the node's lock and holds it while heartbeats arrive on its stdin.

    It answers one line: `locked`, `busy` (then the holder's record), or `noflock`. `timeout` ends a
    wait for a heartbeat that never comes; EOF on stdin (the connection closed) ends it at once.
    The lock is taken by `flock FILE COMMAND`, whose process lives as long as the lock is held: so
    the kernel's lock table (/proc/locks) names a live process, which a plan's read-only look at the
    lock needs (in a container's PID namespace a lock whose taker has exited is not listed at all).
    """
    record = shlex.quote(holder.to_json())
    f = shlex.quote(path)
    hold = shlex.quote(
        "\n".join(
            [
                'printf \'%s\\n\' "$1" > "$2"',
                "echo locked",
                f"while timeout {NODE_LOCK_EXPIRES} sh -c 'IFS= read -r line'; do :; done",
                "exit 0",
            ]
        )
    )
    return "\n".join(
        [
            "command -v flock >/dev/null 2>&1 || { echo noflock; exit 0; }",
            f"[ -e {f} ] || : >> {f} || exit 1",
            f"flock -n {f} sh -c {hold} sh {record} {f}",
            "rc=$?",
            "[ $rc -eq 0 ] && exit 0",
            "[ $rc -eq 1 ] || { echo \"flock failed ($rc)\"; exit 1; }",
            # The holder writes its record just after taking the lock: wait for it (up to 1 s) rather
            # than answer with an empty file, which read as "no record of it".
            f"i=0; while [ ! -s {f} ] && [ $i -lt 10 ]; do sleep 0.1; i=$((i+1)); done",
            f"echo busy; cat {f}",
        ]
    )


def node_lock_probe_script(path: str = NODE_LOCK_PATH) -> str:
    """The shell that says whether a run holds the node's lock, without taking it, not even for a moment.

    Taking the lock to test it (flock -n, then unlock) would refuse a run that starts in that very
    moment. Instead the kernel's table of held locks (/proc/locks: `FLOCK ... WRITE pid MAJ:MIN:INODE`)
    is searched for the lock file's device and inode. Answers `free`, `busy` (then the holder's record
    the file holds), or `unknown` (no /proc/locks: then nothing is said).
    """
    f = shlex.quote(path)
    return "\n".join(
        [
            f"[ -e {f} ] || {{ echo free; exit 0; }}",
            "[ -r /proc/locks ] || { echo unknown; exit 0; }",
            # st_dev as stat gives it, split into major and minor the way glibc's major()/minor() do
            f"set -- $(stat -L -c '%d %i' -- {f} 2>/dev/null) || {{ echo unknown; exit 0; }}",
            '[ $# -eq 2 ] || { echo unknown; exit 0; }',
            'key=$(printf \'%02x:%02x:%s\' $(( ($1 >> 8) & 4095 | ($1 >> 32) & ~4095 )) $(( $1 & 255 | ($1 >> 12) & ~255 )) "$2")',
            'if awk -v k="$key" \'$2 == "FLOCK" && $4 == "WRITE" && $6 == k { found = 1 } END { exit !found }\' /proc/locks; then',
            f"  echo busy; cat -- {f}",
            "else echo free; fi",
        ]
    )


def probe_node(host: Any) -> Holder | None:
    """The holder of the node's run lock when a run holds it now, else None (takes nothing)."""
    result = host.run(node_lock_probe_script(), check=False, timeout=NODE_LOCK_ANSWER, display=f"read-only check of {NODE_LOCK_PATH}")
    answer, _, record = result.text.partition("\n")
    if result.exit_status != 0 or answer.strip() != "busy":
        return None
    return Holder.from_json(record.strip()) or Holder("?", 0, "?", None, "run", "?")


def probe_nodes(hosts: Any) -> dict[str, Holder]:
    """The nodes whose run lock is held now, with its holder (in parallel; takes nothing).

    A node that cannot be reached is left out: preflight says why in its own words.
    """

    names = list(hosts)
    results = each(names, lambda name: probe_node(hosts[name]))
    return {name: result for name, result in results.ok.items() if isinstance(result, Holder)}


def refuse_plan(held: dict[str, Holder]) -> RunLocked:
    """The refusal of a plan while runs (from any controller) hold nodes' locks: names each holder."""
    lines = [
        f"{name}: held by a {holder.describe()}; a plan would read the nodes half-changed, so it was refused "
        "(nothing was changed). Run the plan when that run has ended."
        for name, holder in held.items()
    ]
    first = next(iter(held))
    return RunLocked(first, "\n".join(lines).removeprefix(f"{first}: "), holder=held[first])


class NodeLocks:
    """The run's lock on every reachable node, held over the runner's own SSH connections."""

    def __init__(self, hosts: Any) -> None:
        self.hosts = hosts  # runbook.ssh.hosts.Hosts
        self.channels: dict[str, Any] = {}
        self.unreachable: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, holder: Holder, names: Sequence[str] | None = None) -> None:
        """Lock every node: the first by name alone, then the others in parallel. A node held by
        another run: RunLocked (all locks are let go).

        Why the order: two runs of one cluster started together (different --out folders, so no
        controller lock between them) used to lock all nodes in parallel; each got some, and both
        refused. Now both try the same first node first, exactly one gets it, and the other holds
        nothing when it refuses. Runs of different files sharing only some nodes can still meet on a
        later node: then the one that holds its first node lets go, waits a moment and tries once more.

        A node that cannot be reached is noted in `unreachable`, not raised: preflight reports it
        with its own words, and the runner tries again after preflight.
        """

        wanted = sorted(n for n in (names or list(self.hosts)) if n not in self.channels)
        self._connect(wanted)  # logins in parallel; locks in order
        wanted = [n for n in wanted if n not in self.unreachable]
        for attempt in (1, 2):
            try:
                self._lock_group(wanted[:1], holder)
                self._lock_group(wanted[1:], holder)
                break
            except RunLocked as refused:
                first_was_ours = bool(wanted) and refused.host != wanted[0]
                if attempt == 2 or not first_was_ours:
                    raise
                time.sleep(random.uniform(0.5, 1.5))
        if self._thread is None and self.channels:
            # Each beat gets an event of its own: a refused first attempt's release() has set the old one.
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._heartbeat, args=(self._stop,), name="runbook-node-locks", daemon=True)
            self._thread.start()

    def _connect(self, names: list[str]) -> None:
        """Log in to every node at once (host key, login, sudo check), noting the unreachable."""
        results = each(names, lambda name: self.hosts[name].run("true", timeout=NODE_LOCK_ANSWER))
        for name in names:
            if name in results.failed:
                self.unreachable[name] = results.why(name)
            else:
                self.unreachable.pop(name, None)

    def _lock_group(self, names: list[str], holder: Holder) -> None:
        if not names:
            return
        results = each(names, lambda name: self._lock_one(name, holder))
        busy = []
        for name in names:
            error = results.failed.get(name)
            if isinstance(error, RunLocked):
                busy.append(error)
            elif error is not None:
                self.unreachable[name] = results.why(name)
            else:
                self.channels[name] = results.ok[name]
                self.unreachable.pop(name, None)
        if busy:
            self.release()
            if len(busy) == 1:
                raise busy[0]
            text = "\n".join(str(b) for b in busy).removeprefix(f"{busy[0].host}: ")
            raise RunLocked(busy[0].host, text, holder=busy[0].holder)

    def _lock_one(self, name: str, holder: Holder) -> Any:
        host = self.hosts[name]  # logged in by _connect (host key, login, sudo check)
        wrapped, prefix = host._wrap(node_lock_script(holder))
        transport = host.client.get_transport()
        channel = transport.open_session(timeout=host.endpoint.connect_timeout)
        channel.settimeout(NODE_LOCK_ANSWER)
        channel.exec_command(wrapped)
        if prefix:
            channel.sendall(prefix)
        answer = _read_until_eof_or(channel, b"locked\n")
        first = answer.split(b"\n", 1)[0].strip()
        if first == b"locked":
            channel.settimeout(None)
            return channel
        channel.close()
        if first == b"busy":
            record = answer.split(b"\n", 1)[1].decode("utf-8", "replace").strip()
            other = Holder.from_json(record)
            raise RunLocked(
                name,
                f"held by {_who(other)}; refused, nothing was changed.\n"
                f"  The lock ({NODE_LOCK_PATH} on {name}) is held by a shell that lives only as long as that run's\n"
                f"  SSH connection, and at most {NODE_LOCK_EXPIRES} s after its controller stops answering. If it stays,\n"
                f"  see who holds it on the node (`fuser -v {NODE_LOCK_PATH}`), make sure the run named above is really\n"
                f"  gone (on its controller: `ps -p PID`), and only then kill that shell. Deleting the file does not free it.",
                holder=other,
            )
        if first == b"noflock":
            raise RunbookError(f"{name}: `flock` (util-linux) is not installed, so the run cannot lock the node")
        raise RunbookError(f"{name}: could not take the run lock {NODE_LOCK_PATH}: {answer[-300:].decode('utf-8', 'replace')!r}")

    def lost(self) -> list[str]:
        """Nodes whose lock shell has ended (connection lost, lock expired)."""
        return [name for name, ch in self.channels.items() if ch.exit_status_ready() or ch.closed]

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT):
            for channel in list(self.channels.values()):
                try:
                    channel.sendall(b"\n")
                except Exception:  # noqa: BLE001 - a lost lock shows in lost(), checked between steps
                    pass

    def release(self) -> None:
        """Let go of every node's lock: EOF on the shell's stdin ends it."""
        self._stop.set()
        self._thread = None
        for channel in self.channels.values():
            try:
                channel.shutdown_write()
                channel.close()
            except Exception:  # noqa: BLE001 - the connection may be gone already, which frees the lock too
                pass
        self.channels.clear()


def _read_until_eof_or(channel: Any, marker: bytes) -> bytes:
    """Read the lock shell's answer: up to `marker`, or everything until it exits."""
    data = b""
    deadline = time.monotonic() + NODE_LOCK_ANSWER
    while time.monotonic() < deadline:
        if data.startswith(marker):
            return data
        if channel.recv_ready():
            data += channel.recv(65536)
            continue
        if channel.exit_status_ready() and not channel.recv_ready():
            return data
        time.sleep(0.02)
    return data
