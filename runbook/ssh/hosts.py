"""SSH to the nodes with paramiko: run commands as root (directly or through sudo), read and write files.

Host keys are always verified: an unknown key or a changed key stops with a message that names the
host, shows the fingerprints, and says how to trust it. Only a node named in the cluster file's
`ssh.trust_unknown_hosts` may be accepted on first sight, and only for this process. Who to log in
as, where, and through which jump hosts comes from runbook.ssh.endpoint; each jump host is a Host too.

Files travel over the command channel's stdin/stdout as bytes (binary-safe, no SFTP needed, works
through sudo), and every write is atomic: temp file in the same directory, owner and mode set, fsync,
backup of what it replaces, then rename. File contents never appear in a command line or an error.
"""

from __future__ import annotations

import errno
import os
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from runbook.errors import CommandFailed, CommandTimeout, ConnectionFailed, HostError, HostKeyError
from runbook.ssh.endpoint import Endpoint, resolve_endpoint
from runbook.ssh.host_keys import VerifyHostKey, fingerprint
from runbook.ssh.host_keys import via as jump_prefix
from runbook.ssh.liveness import drain, session_watched, watch_liveness
from runbook.text import clean

if TYPE_CHECKING:
    from runbook.model.types import Cluster

SUDO_PASSWORD_ENV = "RUNBOOK_SUDO_PASSWORD"
MISSING_FILE_STATUS = 44


# The step's deadline for node commands (time.monotonic()), set by the runner before each step; None
# outside `runbook run` (plain papermill, a notebook by hand): then only each command's own timeout.
_budget: dict[str, float | None] = {"deadline": None, "seconds": None}


def set_command_budget(seconds: float | None) -> None:
    """From now on, node commands in this process end within `seconds` (None: no budget)."""
    _budget["seconds"] = seconds
    _budget["deadline"] = None if seconds is None else time.monotonic() + seconds


def command_limit(timeout: float) -> tuple[float, float]:
    """(the timeout to use for one command, the step's budget): its own, or what is left of the step's."""
    deadline, seconds = _budget["deadline"], _budget["seconds"]
    if deadline is None or seconds is None:
        return timeout, 0.0
    return min(timeout, deadline - time.monotonic()), seconds


@dataclass(frozen=True)
class Result:
    """What a remote command gave back. stdout/stderr are bytes: file contents may be binary."""

    host: str
    command: str
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        return self.exit_status == 0




LAB_ONLY_ENV = "RUNBOOK_LAB_ONLY"

# Checks run before every connection, (hostname, node) -> None or raise ConnectionFailed. The SSH layer
# knows no lab: the lab's address guard is added from outside (runbook.lab.guard.install()).
ConnectionGuard = Callable[[str, str], None]
CONNECTION_GUARDS: list[ConnectionGuard] = []


def add_connection_guard(guard: ConnectionGuard) -> None:
    """Run `guard(hostname, node)` before every connection from now on (added once)."""
    if guard not in CONNECTION_GUARDS:
        CONNECTION_GUARDS.append(guard)


def _guard(hostname: str, node: str) -> None:
    """Before the first packet: every installed guard; with RUNBOOK_LAB_ONLY and none installed, refuse (fail closed)."""
    if not CONNECTION_GUARDS and os.environ.get(LAB_ONLY_ENV):
        raise ConnectionFailed(
            node,
            f"{LAB_ONLY_ENV} is set, but this process installed no lab guard (runbook.lab.guard.install()); "
            f"refusing to connect to {hostname}",
        )
    for guard in list(CONNECTION_GUARDS):
        guard(hostname, node)


class Host:
    """One node over SSH. The connection opens on first use, is reused, and closes with `close()`."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.name = endpoint.node
        self._client: paramiko.SSHClient | None = None
        self._jump: Host | None = None
        self._lock = threading.Lock()
        self._sudo_ok = False

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> paramiko.SSHClient:
        ep = self.endpoint
        via = jump_prefix(ep)
        _guard(ep.hostname, ep.node)
        client = paramiko.SSHClient()
        for path in ep.known_hosts_files:
            if Path(path).is_file():
                try:
                    client.get_host_keys().load(path)
                except (OSError, paramiko.SSHException) as exc:
                    raise HostKeyError(ep.node, f"{via}cannot read known_hosts file {path}: {exc}") from exc
        policy = VerifyHostKey(ep)
        client.set_missing_host_key_policy(policy)
        sock = self._proxy_socket() if ep.jump is not None else None
        try:
            client.connect(
                ep.hostname,
                port=ep.port,
                username=ep.user,
                key_filename=list(ep.identity_files) or None,
                look_for_keys=not ep.identities_only,
                allow_agent=not ep.identities_only,
                timeout=ep.connect_timeout,
                banner_timeout=ep.connect_timeout,
                auth_timeout=ep.connect_timeout,
                sock=sock,
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(
                ep.node,
                f"{via}the SSH host key of {ep.hostname} has CHANGED since it was recorded: this may be a different machine\n"
                f"  or someone intercepting the connection. No login was attempted.\n"
                f"  expected: {exc.expected_key.get_name()} {fingerprint(exc.expected_key)}\n"
                f"  received: {exc.key.get_name()} {fingerprint(exc.key)}\n"
                f"  If the {'jump host' if ep.hop else 'node'} was really reinstalled, check the new fingerprint on its console, then\n"
                f"  `ssh-keygen -R {ep.known_hosts_name}` and add the new key (ssh-keyscan) to known_hosts.",
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            hint = f"check User and IdentityFile for {ep.hop} in ssh_config" if ep.hop else "check ssh.user and the key (identity_file or agent)"
            raise ConnectionFailed(ep.node, f"{via}login as {ep.user}@{ep.hostname}:{ep.port} refused: {exc}; {hint}") from None
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            client.close()
            reasons = sorted({os.strerror(e.errno) if e.errno else str(e) for e in exc.errors.values()}) or ["failed"]
            hint = " (is sshd running on the node, on that port?)" if all(e.errno == errno.ECONNREFUSED for e in exc.errors.values()) else ""
            raise ConnectionFailed(ep.node, f"{via}cannot connect to {ep.hostname}:{ep.port}: {'; '.join(reasons)}{hint}") from None
        except (socket.timeout, TimeoutError) as exc:
            client.close()
            raise ConnectionFailed(ep.node, f"{via}no answer from {ep.hostname}:{ep.port} within {ep.connect_timeout:g}s (is it up and sshd running?)") from exc
        except (OSError, paramiko.SSHException, EOFError) as exc:
            client.close()
            raise ConnectionFailed(ep.node, f"{via}cannot connect to {ep.hostname}:{ep.port}: {exc or type(exc).__name__}") from exc
        if policy.accepted:
            print(f"warning: {ep.node}: accepted unknown host key {policy.accepted} (ssh.trust_unknown_hosts)")
        transport = client.get_transport()
        if transport is not None:
            watch_liveness(transport)
        return client

    def _proxy_socket(self) -> paramiko.Channel:
        """ProxyJump: a channel to this endpoint through the last jump host, itself a Host (its own
        login, host key check and jump hosts), so `ProxyJump a,b` goes through a, then b."""
        ep = self.endpoint
        assert ep.jump is not None
        if self._jump is None:
            self._jump = Host(ep.jump)
        transport = self._jump.client.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip", (ep.hostname, ep.port), ("127.0.0.1", 0), timeout=ep.connect_timeout
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectionFailed(ep.node, f"{jump_prefix(ep.jump)}cannot reach {ep.hostname}:{ep.port}: {exc or type(exc).__name__}") from exc

    @property
    def client(self) -> paramiko.SSHClient:
        with self._lock:
            if self._client is None or not (self._client.get_transport() and self._client.get_transport().is_active()):  # type: ignore[union-attr]
                self._client = self._connect()
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._jump is not None:
                self._jump.close()
                self._jump = None

    # -- commands ----------------------------------------------------------------------------

    def _wrap(self, command: str) -> tuple[str, bytes]:
        """Run as root: directly when we log in as root, else through sudo (password only from env).

        Either way the command runs under `session_watched`, so it dies with its SSH session: the
        login shell's parent (`$PPID`) is the sshd process of this connection, passed on through sudo.
        """
        if self.endpoint.user == "root" or not self.endpoint.sudo:
            return session_watched(command), b""
        watched = shlex.quote(session_watched(command))
        password = os.environ.get(SUDO_PASSWORD_ENV)
        if password is None:
            return f'sudo -n -- sh -c {watched} sh "$PPID"', b""
        # -k: always ask, so the password line is always consumed and never reaches the command.
        return f'sudo -S -k -p \'\' -- sh -c {watched} sh "$PPID"', (password + "\n").encode()

    @property
    def uses_sudo(self) -> bool:
        return self.endpoint.user != "root" and self.endpoint.sudo

    def _check_sudo(self) -> None:
        """With ssh.sudo, make sure once that sudo really gives root, and say how to fix it when not.

        Without this, a user without sudo rights got "command exited 1 ... sudo: a password is
        required" for the facts script, which says neither what is wrong nor what to do.
        """
        wrapped, prefix = self._wrap("id -u")
        status, stdout, stderr = self._exec(wrapped, prefix, 60, "sudo check (id -u)")
        if status == 0 and stdout.strip() == b"0":
            self._sudo_ok = True
            return
        lines = [line.strip() for line in clean(stderr.decode("utf-8", "replace")).splitlines()]
        lines = [line for line in lines if line and "unable to resolve host" not in line]
        user = self.endpoint.user
        if status == 127 or any("sudo: not found" in line or "sudo: command not found" in line for line in lines):
            why = "sudo is not installed on the node"
        else:
            why = "; ".join(lines[-3:]) or f"sudo exited {status}"
        given = f"tried with the password from {SUDO_PASSWORD_ENV}" if os.environ.get(SUDO_PASSWORD_ENV) is not None else f"{SUDO_PASSWORD_ENV} is not set"
        raise HostError(
            self.name,
            f"login user {user!r} cannot run commands as root through sudo ({why}; {given}).\n"
            f"  Give {user} sudo rights on the node (e.g. `{user} ALL=(ALL) NOPASSWD: ALL` in /etc/sudoers.d/runbook),\n"
            f"  or put {user}'s password in the environment variable {SUDO_PASSWORD_ENV}, or log in as root (ssh.user: root).",
        )

    def _exec(self, wrapped: str, data: bytes, timeout: float, shown: str) -> tuple[int, bytes, bytes]:
        try:
            transport = self.client.get_transport()
            assert transport is not None
            channel = transport.open_session(timeout=self.endpoint.connect_timeout)
            channel.settimeout(timeout)
            channel.exec_command(wrapped)
            if data:
                channel.sendall(data)
            channel.shutdown_write()
            stdout, stderr = drain(channel, timeout)
            status = channel.recv_exit_status()
            channel.close()
        except HostError:
            raise
        except (socket.timeout, TimeoutError) as exc:
            raise CommandTimeout(self.name, f"no result within {timeout:g}s", command=shown) from exc
        except (OSError, paramiko.SSHException, EOFError) as exc:
            self.close()
            raise ConnectionFailed(self.name, f"connection lost: {exc or type(exc).__name__}", command=shown) from exc
        return status, stdout, stderr

    def run(
        self,
        command: str | Sequence[str],
        *,
        check: bool = True,
        input: bytes | None = None,
        timeout: float = 300,
        display: str | None = None,
    ) -> Result:
        """Run a shell command as root. `display` replaces the command in errors when it is long or private."""
        text = command if isinstance(command, str) else shlex.join(command)
        shown = display or text
        if self.uses_sudo and not self._sudo_ok:
            self._check_sudo()
        wrapped, prefix = self._wrap(text)
        limit, budget = command_limit(timeout)
        if limit <= 0:
            raise CommandTimeout(self.name, f"not started: the step's time for node commands ({budget:g}s, from --timeout) had run out", command=shown)
        try:
            status, stdout, stderr = self._exec(wrapped, prefix + (input or b""), limit, shown)
        except CommandTimeout as exc:
            if limit < timeout:  # the step's budget, not the command's own limit, stopped it
                raise CommandTimeout(self.name, f"no result within {limit:.0f}s (the step's time for node commands, {budget:g}s, from --timeout)", command=shown) from exc
            raise
        result = Result(self.name, shown, status, stdout, stderr)
        if check and status != 0:
            raise CommandFailed(self.name, shown, status, stderr.decode("utf-8", "replace"), result.text)
        return result

    # -- files -------------------------------------------------------------------------------

    def read_file(self, path: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        q = shlex.quote(path)
        result = self.run(f"if [ -e {q} ]; then cat -- {q}; else exit {MISSING_FILE_STATUS}; fi", check=False)
        if result.exit_status == MISSING_FILE_STATUS:
            return None
        if result.exit_status != 0:
            raise CommandFailed(self.name, f"cat {path}", result.exit_status, result.stderr.decode("utf-8", "replace"))
        return result.stdout





class Hosts(Mapping[str, Host]):
    """All nodes of a cluster by name, in cluster order; closes every connection on exit."""

    def __init__(self, hosts: Sequence[Host]) -> None:
        self._hosts = {h.name: h for h in hosts}

    def __getitem__(self, name: str) -> Host:
        return self._hosts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._hosts)

    def __len__(self) -> int:
        return len(self._hosts)

    def close(self) -> None:
        for host in self._hosts.values():
            host.close()

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hosts_for(cluster: Cluster) -> Hosts:
    """A lazily connecting Host per node; nothing is sent until a host is used."""
    return Hosts([Host(resolve_endpoint(node, cluster.ssh)) for node in cluster.nodes])
