"""Telling a silent node from a slow one: keepalives on every session, and a command's output drained
while it runs, so that a node that stops answering ends its command with NodeSilent instead of a hang.
"""

from __future__ import annotations

import select
import socket
import time

import paramiko

# A node that stops answering (its link down, powered off) must be named within seconds, not after a
# command's own limit of minutes. paramiko's keepalive only *sends* (a message every KEEPALIVE s that
# asks for no reply); nothing noticed that no answer came. The kernel does: with TCP_USER_TIMEOUT, data
# the node has not acknowledged for SILENT_LIMIT s ends the connection (ETIMEDOUT), and the keepalive
# guarantees there is such data at least every KEEPALIVE s. TCP keepalive probes cover a connection
# the SSH layer leaves idle. So a node gone quiet is named within KEEPALIVE + SILENT_LIMIT s (25 s),
# while a node that answers (however slow its command) is never cut off.
KEEPALIVE = 5


SILENT_LIMIT = 20


def watch_liveness(transport: paramiko.Transport) -> None:
    """Make a connection whose node stops answering fail within KEEPALIVE + SILENT_LIMIT seconds."""
    transport.set_keepalive(KEEPALIVE)
    sock = transport.sock
    if not isinstance(sock, socket.socket):  # through a jump host: the jump's own connection is watched
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, SILENT_LIMIT * 1000)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, max(1, SILENT_LIMIT // KEEPALIVE))
    except OSError:  # not a TCP socket after all (a test's socketpair): nothing to tune
        pass


class NodeSilent(EOFError):
    """The connection ended before the command did (the node stopped answering, or sshd went away)."""


def _raise_lost(channel: paramiko.Channel) -> None:
    """The command's channel closed without an exit status: say why the connection ended."""
    transport = channel.get_transport()
    why = transport.get_exception() if transport is not None else None
    detail = f" ({why})" if why and str(why) else ""
    raise NodeSilent(
        f"the connection ended before the command did{detail}: the node stopped answering (nothing acknowledged "
        f"for {SILENT_LIMIT} s), or its sshd went away; is the node up and its network reachable from here?"
    )


def drain(channel: paramiko.Channel, timeout: float) -> tuple[bytes, bytes]:
    """Read stdout and stderr together so neither pipe can fill and stall the remote command.

    A connection that ends first (see watch_liveness) raises NodeSilent at once, with the reason the
    transport saw, instead of waiting out the command's limit."""
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    while True:
        while channel.recv_ready():
            out += channel.recv(65536)
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(65536)
        if channel.exit_status_ready() and (channel.eof_received or channel.closed):
            if not (channel.recv_ready() or channel.recv_stderr_ready()):
                if channel.exit_status == -1:  # paramiko's mark of a channel closed with no exit status
                    _raise_lost(channel)
                return bytes(out), bytes(err)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        select.select([channel], [], [], min(remaining, 0.1))


# A node command must not outlive its SSH session: without a pty, sshd leaves a command running when
# the connection drops (the runner SIGKILLed, its kernel gone), and it would go on changing the node.
# This POSIX-sh prefix runs in the shell that then runs the command itself, so the command keeps its
# stdin (byte for byte), stdout, stderr and exit status. It starts one background watchdog with
# /dev/null for its own fds (so sshd never waits for it) that checks once a second, with shell builtins
# reading /proc, whether the sshd process ($1, or $PPID when the login shell runs this directly) is
# still the same process (start time) and not a zombie. When it is gone, the watchdog sends TERM to
# the command's process group, then KILL 2 s later; when the command has ended (the watchdog's parent
# changed), it exits. Daemons the command started (setsid: corosync) are in other sessions and stay.
# Anything it cannot read or check safely (no /proc, the group is sshd's own) means no watchdog: the
# command then runs as it did before.
SESSION_WATCH = r"""__rb_stat() { __rb_s=; read -r __rb_l 2>/dev/null </proc/$1/stat || return 1; set -- ${__rb_l##*') '}; [ "$1" != Z ] && [ -n "${20}" ] && __rb_s="$2 $3 ${20}"; }
__rb_w=${1:-$PPID}; set --
if __rb_stat "$__rb_w"; then __rb_wt=${__rb_s##* }; __rb_wg=${__rb_s#* }; __rb_wg=${__rb_wg%% *}
if __rb_stat $$; then __rb_pg=${__rb_s#* }; __rb_pg=${__rb_pg%% *}
if [ "$__rb_pg" -gt 1 ] 2>/dev/null && [ "$__rb_pg" != "$__rb_wg" ]; then
( while sleep 1; do __rb_stat self && [ "${__rb_s%% *}" = $$ ] || exit 0; __rb_stat "$__rb_w" && [ "${__rb_s##* }" = "$__rb_wt" ] || break; done
  trap '' TERM; kill -TERM -$__rb_pg; sleep 2; kill -KILL -$__rb_pg ) </dev/null >/dev/null 2>&1 &
fi; fi; fi; unset __rb_w __rb_wt __rb_wg __rb_pg __rb_s __rb_l; unset -f __rb_stat
"""


def session_watched(command: str) -> str:
    """Pure: `command` behind the watchdog that ends it when its SSH session ends (see SESSION_WATCH)."""
    return SESSION_WATCH + command
