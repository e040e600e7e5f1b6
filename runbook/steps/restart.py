"""Why a node's Corosync must restart, and the shell that restarts it: the start stamp and the node's
state, the reasons (daemon, file, cluster), and restart scripts for systemd and sysv init.
"""

from __future__ import annotations

from runbook.conf.render import render
from runbook.engine import operations
from runbook.engine.facts import AUTHKEY_PATH, CONF_PATH, NodeFacts
from runbook.model.types import Cluster
from runbook.steps.members import JOURNAL_TAIL, LOG_TAIL

STAMP = "/var/lib/corosync-runbook/corosync.started"
STOP_WAIT = 30
START_WAIT = 10
# config.reload_status exists from 3.1 on (2.4.6 and 3.0 keep only config.reload_in_progress): an
# old value is removed first, so that only this reload's can be read; where none comes back, the
# exit status of `corosync-cfgtool -R` is what the daemon said. Whether every node took the new
# values, step 06 checks afterwards from the nodes' maps (reload_misses).
# A reload changes what the daemon runs without a new pid: its stamp can no longer say which file it
# loaded (a file put back to the one it started with would look like nothing to do), so the stamp's
# corosync.conf digest becomes RELOADED before the reload, and later runs compare the running map.
RELOADED = "reloaded"


STATE_SCRIPT = f"""
pid=$(pidof corosync 2>/dev/null | cut -d' ' -f1)
echo "pid=$pid"
if [ -n "$pid" ]; then
  hz=$(getconf CLK_TCK); bt=$(awk '/^btime/{{print $2}}' /proc/stat)
  echo "start=$(awk -v hz=$hz -v bt=$bt '{{printf "%.2f", bt + $22/hz}}' /proc/$pid/stat)"
fi
for f in {CONF_PATH} {AUTHKEY_PATH}; do [ -e $f ] && echo "mtime:$f=$(date -r $f +%s.%N)" && echo "sha:$f=$(sha256sum $f | cut -d' ' -f1)"; done
[ -e {STAMP} ] && sed 's/^/stamp:/' {STAMP}
command -v corosync-cmapctl >/dev/null && [ -n "$pid" ] && echo "loaded_cluster_name=$(corosync-cmapctl -g totem.cluster_name 2>/dev/null | sed 's/.*= //')"
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
  echo "active=$(systemctl is-active corosync 2>/dev/null)"; echo "enabled=$(systemctl is-enabled corosync 2>/dev/null)"
fi
true
"""


def parse_state(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def restart_reason(state: dict[str, str], cluster_name: str, generation: int) -> str | None:
    """Pure: why Corosync must be (re)started on this node, or None when it runs the current files."""
    return (daemon_reason(state) or file_reason(state, CONF_PATH, "corosync.conf") or file_reason(state, AUTHKEY_PATH, "authkey")
            or cluster_reason(state, cluster_name, generation))


def daemon_reason(state: dict[str, str]) -> str | None:
    """Pure: no daemon to compare with: none runs, or not as systemd's unit."""
    if not state.get("pid", ""):
        return "Corosync is not running"
    if state.get("active") not in (None, "active", "activating", "reloading"):
        return f"a Corosync runs, but not as systemd's corosync.service (systemctl is-active: {state.get('active') or '?'})"
    return None


def file_reason(state: dict[str, str], path: str, label: str) -> str | None:
    """Pure: the file is not the one the running daemon loaded: by the runbook's stamp when the
    runbook started it, else by time (a daemon the runbook did not start)."""
    if state.get("stamp:pid") == state.get("pid"):
        loaded = state.get(f"stamp:sha:{path}")
        if loaded == RELOADED:
            return f"{label} was reloaded after the runbook started Corosync: its running map says what runs"
        return f"{label} changed since the runbook started Corosync" if state.get(f"sha:{path}") != loaded else None
    newer = float(state.get(f"mtime:{path}", "0") or 0) > float(state.get("start", "0") or 0) + 1
    return f"{label} is newer than the running daemon" if newer else None


def cluster_reason(state: dict[str, str], cluster_name: str, generation: int) -> str | None:
    """Pure: a daemon the runbook did not start says it is in another cluster."""
    loaded = state.get("loaded_cluster_name")
    if state.get("stamp:pid") == state.get("pid") or generation < 2 or loaded is None or loaded == cluster_name:
        return None
    return f"the running daemon is in cluster {loaded!r}, not {cluster_name!r} (started with another config)"


def systemd_said(state: dict[str, str]) -> str:
    """Pure: '; systemd: active, enabled' for a node where systemd is PID 1, else ''."""
    if "active" not in state:
        return ""
    return f"; systemd: {state.get('active') or '?'}, {state.get('enabled') or '?'} at boot"


def control_commands(init_system: str) -> tuple[str, str, str]:
    """Pure: (stop, start, how) for this node's init system."""
    if init_system == "systemd":
        return "systemctl stop corosync", "systemctl start corosync", "systemctl"
    if init_system in ("sysv", "upstart"):
        return (
            "/etc/init.d/corosync stop >/dev/null 2>&1 || true",
            "/etc/init.d/corosync start >/dev/null 2>&1 || true",
            "the sysv init script /etc/init.d/corosync",
        )
    return "kill $(pidof corosync) 2>/dev/null || true", "corosync", "the corosync daemon directly (no init system)"


PID_FILE = "/var/run/corosync.pid"  # where Debian's and Ubuntu's init scripts keep the daemon's pid


# Shell functions the restart scripts share. `rb_corosync` lists the live corosync processes (no
# zombies) in the node's own view: its PID namespace, so a container host never counts (or kills) its containers' corosync
# (lab hosts have a PID namespace each, too). `rb_stop_by_pid WHY` stops those still running after
# the init system's own stop, or when it cannot work (no pid file, a pid file naming another
# process): SIGTERM, SIGKILL after STOP_WAIT s, and says so on stdout in a `note:` line.
BY_PID = f"""
rb_corosync() {{
  rb_ns=$(readlink /proc/self/ns/pid 2>/dev/null || true)
  for rb_p in $(pidof corosync 2>/dev/null || true); do
    read -r rb_st 2>/dev/null </proc/$rb_p/stat || continue
    case $rb_st in *") Z "*) continue;; esac  # exited, not yet reaped by its parent
    [ "$(readlink /proc/$rb_p/ns/pid 2>/dev/null || true)" = "$rb_ns" ] && printf '%s ' "$rb_p"
  done; true
}}
rb_stop_by_pid() {{
  rb_pids=$(rb_corosync); [ -n "$rb_pids" ] || return 0
  kill -TERM $rb_pids 2>/dev/null || true; rb_how=SIGTERM
  i=0; while [ -n "$(rb_corosync)" ] && [ $i -lt {STOP_WAIT * 10} ]; do i=$((i+1)); sleep 0.1; done
  if [ -n "$(rb_corosync)" ]; then
    kill -KILL $(rb_corosync) 2>/dev/null || true; rb_how="SIGTERM, then SIGKILL after {STOP_WAIT}s"
    i=0; while [ -n "$(rb_corosync)" ]; do i=$((i+1)); [ $i -gt 50 ] && {{ echo "old corosync (pid $(rb_corosync)) survived SIGKILL" >&2; exit 3; }}; sleep 0.1; done
  fi
  echo "note: $1: stopped corosync by pid ${{rb_pids% }} ($rb_how)"
}}"""


def restart_script(init_system: str) -> str:
    """(Re)start with the init script (or the daemon itself), never trusting the pid file alone.

    The init script stops only the pid its pid file names: a corosync without one (gone after two
    restarts at once, or removed) used to survive the stop and fail the step after STOP_WAIT s, on
    every later run too. Now the init script is used when its pid file names a running corosync;
    whatever corosync is left is stopped by pid (see BY_PID), and the output says so.
    """
    stop, start, _ = control_commands(init_system)
    if init_system in ("sysv", "upstart"):
        stop_lines = f"""
  rb_pf=$(cat {PID_FILE} 2>/dev/null || true); rb_pf=${{rb_pf%% *}}
  if [ -n "$rb_pf" ] && case " $rb_pids" in *" $rb_pf "*) true;; *) false;; esac; then
    {stop}
    i=0; while case " $(rb_corosync)" in *" $rb_pf "*) true;; *) false;; esac; do i=$((i+1)); [ $i -gt {STOP_WAIT * 10} ] && {{ echo "old corosync did not exit within {STOP_WAIT}s" >&2; exit 3; }}; sleep 0.1; done
    rb_why="it ran beside the one the init script stopped (pid $rb_pf)"
  elif [ -z "$rb_pf" ]; then rb_why="no pid file {PID_FILE}, so the init script could not stop it"
  else rb_why="the pid file {PID_FILE} names $rb_pf, which is no corosync here"
  fi"""
    else:
        stop_lines = '\n  rb_why="no init system"'
    return f"""
set -e{BY_PID}
rb_pids=$(rb_corosync)
if [ -n "$rb_pids" ]; then{stop_lines}
  rb_stop_by_pid "$rb_why"
fi
{start}
i=0; until [ -n "$(rb_corosync)" ]; do i=$((i+1)); [ $i -gt {START_WAIT * 10} ] && {{ echo "corosync did not start" >&2; exit 4; }}; sleep 0.1; done
sleep 1
pid=$(rb_corosync); pid=${{pid%% *}}
[ -n "$pid" ] || {{ echo "corosync started, then exited" >&2; exit 4; }}
mkdir -p $(dirname {STAMP})
{{ echo "pid=$pid"; for f in {CONF_PATH} {AUTHKEY_PATH}; do [ -e $f ] && echo "sha:$f=$(sha256sum $f | cut -d' ' -f1)"; done; }} > {STAMP}.tmp.$$
mv -f {STAMP}.tmp.$$ {STAMP}
"""


def systemd_restart_script() -> str:
    """(Re)start under systemd: stop, wait until no corosync is left, start; systemctl waits for readiness.

    A corosync started outside systemd (by hand, or left beside systemd's) is stopped too, by pid
    (see BY_PID): systemd's would exit at once beside it. systemd itself needs no pid file. The
    stamp records systemd's MainPID, so the next run knows what the daemon loaded.
    """
    return f"""
set -e{BY_PID}
if systemctl is-active --quiet corosync; then
  systemctl stop corosync
fi
rb_stop_by_pid "it ran outside systemd's corosync.service"
systemctl reset-failed corosync 2>/dev/null || true
# One retry: a start right after a stop can fail while the old control group is still being
# removed (status 219/CGROUP, seen in containers); a real fault fails twice and is reported.
if ! systemctl start corosync; then
  sleep 2; systemctl reset-failed corosync 2>/dev/null || true
  systemctl start corosync || {{ echo "systemctl start corosync failed twice: corosync is $(systemctl is-active corosync)" >&2; exit 4; }}
fi
sleep 1
state=$(systemctl is-active corosync || true)
[ "$state" = active ] || {{ echo "corosync is $state after systemctl start" >&2; exit 4; }}
pid=$(systemctl show -p MainPID --value corosync)
mkdir -p $(dirname {STAMP})
{{ echo "pid=$pid"; for f in {CONF_PATH} {AUTHKEY_PATH}; do [ -e $f ] && echo "sha:$f=$(sha256sum $f | cut -d' ' -f1)"; done; }} > {STAMP}.tmp.$$
mv -f {STAMP}.tmp.$$ {STAMP}
"""


SECTIONS = ("corosync_version", "corosync_candidate", "init", f"file:{CONF_PATH}")


SYSTEMD_SAYS = 'echo "systemd: $(systemctl is-active corosync 2>/dev/null), $(systemctl is-enabled corosync 2>/dev/null) at boot"'


DETACHED_END = "@@RUNBOOK-RESTART@@"


def detached(script: str) -> str:
    """Pure: run `script` in a session of its own and wait for it, so that once begun it finishes.

    Why: every node command dies with its SSH session (hosts.SESSION_WATCH ends its process group),
    which is right for a half-done apt-get but not for a restart: a controller killed between the
    restart's stop and its start left Corosync stopped on every node. Here the restart runs under
    setsid, outside the watched group, with its output and exit status in files under /run; this
    shell only waits and passes them on, so a living controller sees exactly what it saw before,
    and a dead one leaves a restart that completes by itself.
    """
    assert DETACHED_END not in script
    return "\n".join(
        [
            "rb_d=$(mktemp -d /run/runbook-restart-XXXXXX)",
            f"cat > \"$rb_d/script\" <<'{DETACHED_END}'",
            script.strip("\n"),
            DETACHED_END,
            # the detached part: run, leave the status for the waiter; if no waiter takes it within
            # 20 s (its controller died), remove the folder itself
            "setsid sh -c 'sh \"$1/script\" >\"$1/out\" 2>&1; echo $? >\"$1/rc.tmp\"; mv \"$1/rc.tmp\" \"$1/rc\"; "
            "i=0; while [ -d \"$1\" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; rm -rf \"$1\"' sh \"$rb_d\" </dev/null >/dev/null 2>&1 &",
            'while [ ! -e "$rb_d/rc" ]; do sleep 0.1; done',
            'cat "$rb_d/out"; rb_rc=$(cat "$rb_d/rc"); rm -rf "$rb_d"',
            'exit "$rb_rc"',
        ]
    )


def restart_operation(init_system: str, verb: str, reason: str) -> operations.Operation:
    """Pure: the (re)start as one operation: shown as the init system's own command, run carefully
    (wait for the old daemon to be gone, check the new one is there, record what it loaded)."""
    systemd = init_system == "systemd"
    if systemd:
        shown = f"systemctl {verb} corosync"
        script = systemd_restart_script() + "\n" + SYSTEMD_SAYS
        diagnose, label = JOURNAL_TAIL, f"$ {JOURNAL_TAIL.removesuffix(' 2>&1')}"
    else:
        shown = f"/etc/init.d/corosync {verb}" if init_system in ("sysv", "upstart") else f"{'kill $(pidof corosync); ' if verb == 'restart' else ''}corosync"
        script = restart_script(init_system)
        diagnose, label = LOG_TAIL, "log"
    return operations.run(
        "restart", shown, reason, script=detached(script), by_hand=(shown,), timeout=STOP_WAIT + START_WAIT + 100,
        diagnose=diagnose, diagnose_label=label, fails_as=f"Corosync did not {verb}",
    )


def how_of(init_system: str) -> str:
    return "systemctl (corosync.service)" if init_system == "systemd" else control_commands(init_system)[2]


def with_pending(state: dict[str, str], pending: dict[str, str], now: float) -> dict[str, str]:
    """Pure: the state as it will be once the files an earlier step of this dry run would write are
    written (their digest changes, their mtime is now), so `plan` restarts where `run` will."""
    state = dict(state)
    for path in (CONF_PATH, AUTHKEY_PATH):
        if path in pending:
            state[f"sha:{path}"] = pending[path]
            state[f"mtime:{path}"] = f"{now:.2f}"
    return state


ROLL_WAIT = 60  # seconds a restarted node of a rolling restart has to rejoin, quorate, before the next one


def rejoin_script(members: int) -> str:
    """Pure: wait on the node until it is quorate with at least `members` nodes (the membership before its restart)."""
    return f"""i=0
while :; do
  out=$(corosync-quorumtool -s 2>/dev/null || true)
  n=$(printf '%s\n' "$out" | awk -F: '/^Nodes:/{{gsub(/[ \t]/,"",$2); print $2}}')
  q=$(printf '%s\n' "$out" | awk -F: '/^Quorate:/{{gsub(/[ \t]/,"",$2); print $2}}')
  [ "$q" = Yes ] && [ "${{n:-0}}" -ge {members} ] && break
  i=$((i+1)); [ $i -gt {ROLL_WAIT * 10} ] && {{ echo "did not rejoin within {ROLL_WAIT}s: ${{n:-0}} of {members} members, quorate: ${{q:-?}}; the nodes after it were not restarted" >&2; exit 6; }}
  sleep 0.1
done
echo "rejoined: $n members, quorate"
"""


def authkey_changed(state: dict[str, str]) -> bool:
    """Pure: the authkey is not the one the running daemon loaded (as restart_reason judges it)."""
    return file_reason(state, AUTHKEY_PATH, "authkey") is not None


def wanted_file(cluster: Cluster, f: NodeFacts, generation: int, pending: dict[str, str]) -> str:
    """The file the node's Corosync is to run: on disk in a run, the one step 02 would write in a dry run."""

    on_disk = f.file(CONF_PATH)
    if CONF_PATH in pending or on_disk is None:
        return render(cluster, f.node, generation)
    return on_disk.text
