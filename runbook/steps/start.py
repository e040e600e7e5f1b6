"""Step 6: (re)start Corosync where needed, then wait until every node sees every member, quorate.

A restart happens only when Corosync is not running or did not load the current files. The runbook
knows what the daemon loaded from a stamp it writes after each start (the daemon's pid and the
SHA-256 of corosync.conf and authkey); for a daemon it did not start (package scripts, a reboot, an
operator), it compares the files' modification times with the daemon's start time. So a second run
on a healthy cluster restarts nothing and the ring ID stays the same.

Init scripts are not trusted: Debian's prints "failed!" and still exits 0 when Corosync does not
start, so the step checks the process itself, and waits for an old daemon to be gone before starting
a new one (a new corosync started while the old one shuts down exits at once).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runbook import operations
from runbook.cluster import Cluster, Node
from runbook.errors import HostError
from runbook.facts import AUTHKEY_PATH, CONF_PATH, NodeFacts, gather
from runbook.hosts import Host, Hosts
from runbook.membership import LinkState, View, links_line, parse_cfgtool_nodes, parse_cfgtool_status, parse_objctl, parse_quorumtool
from runbook.plan import NodePlan, StepPlan, pending
from runbook.report import NodeOutcome, StepReport, clean
from runbook.change_kind import Kind
from runbook.steps import change, removal
from runbook.steps._common import StepFailed, apply, gather_facts, generation_of, parallel

STEP = "06-start-and-verify"
TITLE = "Start Corosync and verify the membership"
STAMP = "/var/lib/corosync-runbook/corosync.started"
STOP_WAIT = 30
START_WAIT = 10

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


JOURNAL_TAIL = "journalctl -u corosync -n 20 --no-pager 2>&1"

LOG_TAIL = (
    "{ tail -n 15 /var/log/corosync/corosync.log 2>/dev/null; "
    "journalctl -u corosync -n 15 --no-pager 2>/dev/null; "
    "corosync -t 2>&1 | tail -n 5; } | tail -n 20"
)


def log_tail(host: Host, init_system: str | None = None) -> str:
    """The lines that say why Corosync failed: systemd's journal for the unit, else the log file."""
    command = JOURNAL_TAIL if init_system == "systemd" else LOG_TAIL
    try:
        return clean(host.run(command, check=False, timeout=30).text.strip())
    except HostError as exc:
        return f"(cannot read the log: {exc})"


def read_view(host: Host, generation: int) -> View:
    if generation == 1:
        text = host.run("corosync-objctl runtime.totem.pg.mrp.srp 2>/dev/null", check=False, timeout=20).text
        return parse_objctl(host.name, text)
    return parse_quorumtool(host.name, host.run("corosync-quorumtool -s 2>/dev/null", check=False, timeout=20).text)


LINKS_SCRIPT = "corosync-cfgtool -s 2>&1; echo @@runbook-cfgtool-n; corosync-cfgtool -n 2>&1; true"
LINKS_WAIT = 30  # seconds, after membership, for every link to connect (knet brings links up one by one)


@dataclass(frozen=True)
class NodeLinks:
    """What one node says about every link: the parsed states and the commands' own output."""

    node: str
    links: tuple[LinkState, ...]
    raw: str

    def complete(self, link_count: int, peers: int) -> bool:
        """Every link is there and connects this node to every other node (2.x: no ring FAULTY).

        Output the runbook cannot read at all (no link in it) fails nothing: it is shown as it is."""
        if not self.links:
            return True
        if len(self.links) < link_count:
            return False
        return all(
            (len(l.peers) >= peers and all(ok for _, ok in l.peers)) if l.peers else l.faulty is False for l in self.links
        )


def parse_links(node: str, text: str, generation: int) -> NodeLinks:
    """Pure: `-s` gives each link's state on every generation; on 3.x, `-n` fills in links `-s` left bare."""
    status, _, nodes = text.partition("@@runbook-cfgtool-n")
    links = parse_cfgtool_status(status)
    if generation >= 3:
        by_node = {l.number: l for l in parse_cfgtool_nodes(nodes)}
        links = tuple(l if l.peers or l.number not in by_node else by_node[l.number] for l in links) or tuple(by_node.values())
    shown = status.strip() + (f"\n\n$ corosync-cfgtool -n\n{nodes.strip()}" if generation >= 3 else "")
    return NodeLinks(node, links, shown)


def read_links(host: Host, generation: int) -> NodeLinks:
    """This node's view of every link (read only)."""
    script = LINKS_SCRIPT if generation >= 3 else "corosync-cfgtool -s 2>&1; true"
    return parse_links(host.name, host.run(script, check=False, timeout=20, display="corosync-cfgtool -s / -n").text, generation)


def wait_for_links(
    cluster: Cluster, hosts: Hosts, generations: dict[str, int], timeout: float, interval: float = 0.5
) -> dict[str, NodeLinks | Exception]:
    """Poll every node until each link connects it to every other node, or the timeout."""
    deadline = time.monotonic() + timeout
    peers = len(cluster.nodes) - 1
    while True:
        results = parallel(list(cluster.nodes), lambda n: read_links(hosts[n.name], generations[n.name]))
        found = {n.name: r for n, r in zip(cluster.nodes, results)}
        done = all(isinstance(r, NodeLinks) and r.complete(cluster.link_count, peers) for r in found.values())
        if done or time.monotonic() > deadline:
            return found  # type: ignore[return-value]
        time.sleep(interval)


def links_html(links: dict[str, NodeLinks | Exception]) -> str:
    """Each link's state per node: a table of node x link."""
    numbers = sorted({l.number for r in links.values() if isinstance(r, NodeLinks) for l in r.links})
    rows = []
    for name, result in links.items():
        if isinstance(result, NodeLinks):
            by_number = {l.number: l for l in result.links}
            cells = "".join(
                f"<td>{html.escape(clean(by_number[n].describe().removeprefix(f'link {n} ')) if n in by_number else 'not reported')}</td>"
                for n in numbers
            )
        else:
            cells = f'<td colspan="{max(len(numbers), 1)}">cannot read: {html.escape(clean(str(result)))}</td>'
        rows.append(f"<tr><td><code>{html.escape(name)}</code></td>{cells}</tr>")
    head = "".join(f"<th>link {n}</th>" for n in numbers)
    return (
        '<p><strong>Links</strong> (as each node sees them: <code>corosync-cfgtool -s</code>, <code>-n</code> on 3.x)</p>'
        f'<table class="runbook-links"><thead><tr><th>node</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def wait_for_membership(
    cluster: Cluster,
    hosts: Hosts,
    generations: dict[str, int],
    timeout: float,
    progress: Callable[[str], None] = print,
    interval: float = 0.5,
) -> tuple[dict[str, View], float]:
    """Poll every node until all see all members (and are quorate), or the timeout; returns views and seconds."""
    expected = len(cluster.nodes)
    started = time.monotonic()
    last_line, last_print = "", 0.0
    while True:
        results = parallel(list(cluster.nodes), lambda n: read_view(hosts[n.name], generations[n.name]))
        views = {n.name: (r if isinstance(r, View) else View(n.name, False, raw=str(r))) for n, r in zip(cluster.nodes, results)}
        elapsed = time.monotonic() - started
        if all(v.complete(expected) for v in views.values()):
            return views, elapsed
        line = "; ".join(f"{n}: {v.describe(expected)}" for n, v in views.items())
        if elapsed > timeout:
            return views, elapsed
        if line != last_line or elapsed - last_print > 5:
            progress(f"  waiting for membership ({elapsed:.0f}s of {timeout:.0f}s): {line}")
            last_line, last_print = line, elapsed
        time.sleep(interval)


def membership_html(views: dict[str, View], expected: int) -> str:
    rows = []
    for name, view in views.items():
        members = ", ".join(f"{m.name} ({m.nodeid})" for m in view.members) or "none"
        quorate = {True: "Yes", False: "No", None: "n/a"}[view.quorate]
        rows.append(
            f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(view.ring_id or '?')}</td>"
            f"<td>{quorate}</td><td>{len(view.members)}/{expected}</td><td>{html.escape(clean(members))}</td>"
            f"<td>{html.escape(clean(view.flags))}</td></tr>"
        )
    return (
        '<p><strong>Membership</strong> (as each node sees it)</p><table class="runbook-membership">'
        "<thead><tr><th>node</th><th>ring ID</th><th>quorate</th><th>members</th><th>member list</th><th>flags</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def partial_views(cluster: Cluster, hosts: Hosts, unreachable: StepFailed, check: bool) -> StepFailed:
    """Some nodes cannot be reached, so nothing is started; but what the others see is reported.

    A cut link shows here: the unreachable node fails, and the nodes that answer say how many
    members they see and whether they are still quorate (e.g. the survivor of a two_node cluster).
    """
    reachable = [n for n in cluster.nodes if n.name not in unreachable.failures]

    def view_of(node: Node) -> View:
        host = hosts[node.name]
        return read_view(host, cluster.generation or gather(host).generation or 3)

    results = parallel(reachable, view_of)
    views = {n.name: r for n, r in zip(reachable, results) if isinstance(r, View)}
    expected = len(cluster.nodes)
    report = StepReport(step=STEP, title=TITLE, check=check)
    for node in cluster.nodes:
        if node.name in unreachable.failures:
            report.outcomes.append(NodeOutcome(node.name, "failed", unreachable.failures[node.name]))
        elif node.name in views:
            view = views[node.name]
            report.outcomes.append(NodeOutcome(node.name, "unchanged", f"not touched; {view.describe(expected)}", detail=view.raw))
        else:
            report.outcomes.append(NodeOutcome(node.name, "unchanged", "not touched; its view could not be read"))
    names = ", ".join(unreachable.failures)
    report.notes.append(f"{names} cannot be reached: nothing was started or restarted; the membership as the other nodes see it is shown")
    report.extra_html = membership_html(views, expected)
    return StepFailed(STEP, unreachable.failures, report)


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


def plan_node(cluster: Cluster, f: NodeFacts, generation: int, pending: dict[str, str] | None = None, now: float = 0.0) -> NodePlan:
    """Pure: (re)start Corosync when it is not running or did not load the current files (or the
    files this dry run's earlier steps would write: `pending`)."""
    state = with_pending(parse_state(f.extra.get("state", "")), pending or {}, now)
    plan = NodePlan(f.node)
    reason = restart_reason(state, cluster.name, generation)
    said = systemd_said(state)
    if reason is None:
        plan.summary = f"Corosync runs the current corosync.conf and authkey: not restarted{said}"
        return plan
    verb = "start" if not state.get("pid") else "restart"
    how = how_of(f.init_system)
    plan.operations.append(restart_operation(f.init_system, verb, reason))
    plan.would = f"would {verb} Corosync with {how}: {reason}{said}"
    plan.change = f"{verb}ed Corosync with {how} ({reason})"
    return plan


def conf_decides(state: dict[str, str], cluster_name: str, generation: int) -> bool:
    """Pure: a running daemon whose corosync.conf (or cluster) changed: what it takes is decided from
    the change; a stopped daemon, or one outside systemd's unit, is (re)started as before."""
    return daemon_reason(state) is None and bool(file_reason(state, CONF_PATH, "corosync.conf") or cluster_reason(state, cluster_name, generation))


def authkey_changed(state: dict[str, str]) -> bool:
    """Pure: the authkey is not the one the running daemon loaded (as restart_reason judges it)."""
    return file_reason(state, AUTHKEY_PATH, "authkey") is not None


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


# config.reload_status exists from 3.1 on (2.4.6 and 3.0 keep only config.reload_in_progress): an
# old value is removed first, so that only this reload's can be read; where none comes back, the
# exit status of `corosync-cfgtool -R` is what the daemon said. Whether every node took the new
# values, step 06 checks afterwards from the nodes' maps (reload_misses).
# A reload changes what the daemon runs without a new pid: its stamp can no longer say which file it
# loaded (a file put back to the one it started with would look like nothing to do), so the stamp's
# corosync.conf digest becomes RELOADED before the reload, and later runs compare the running map.
RELOADED = "reloaded"
MARK_RELOADED = (f"[ ! -e {STAMP} ] || sed -i 's|^sha:{CONF_PATH}=.*|sha:{CONF_PATH}={RELOADED}|' {STAMP}")
RELOAD_STATUS = "corosync-cmapctl -g config.reload_status 2>/dev/null | sed 's/^.*= //'"
RELOAD_SCRIPT = f"""{MARK_RELOADED}
corosync-cmapctl -d config.reload_status >/dev/null 2>&1 || true
corosync-cfgtool -R || {{ rc=$?; echo "corosync-cfgtool -R failed (exit $rc): Corosync refused the new file as a whole and runs the old one" >&2; exit 4; }}
s=$({RELOAD_STATUS})
if [ -n "$s" ] && [ "$s" != 1 ]; then echo "the reload ended with config.reload_status $s (1 is CS_OK)" >&2; exit 4; fi
echo "corosync-cfgtool -R: exit 0${{s:+, config.reload_status $s (CS_OK)}}"
"""
RELOAD_BUSY = "corosync-cmapctl -g config.reload_in_progress 2>/dev/null | sed 's/^.*= //'"
RELOADED_SCRIPT = f"""{MARK_RELOADED}
i=0; while [ "$({RELOAD_BUSY})" = 1 ]; do i=$((i+1)); [ $i -gt 100 ] && {{ echo "a reload is still in progress here after 10s" >&2; exit 4; }}; sleep 0.1; done
echo "no reload in progress; the new values are checked in the map afterwards"
"""


# After a reload that took a new authkey, the stamp says so: this pid now runs the key on disk and a
# reloaded corosync.conf (a daemon the runbook did not start gets a stamp too: it is known now).
KEY_STAMP = (f"mkdir -p $(dirname {STAMP}) && {{ echo \"pid=$(pidof corosync | cut -d' ' -f1)\"; echo 'sha:{CONF_PATH}={RELOADED}'; "
             f"echo \"sha:{AUTHKEY_PATH}=$(sha256sum {AUTHKEY_PATH} | cut -d' ' -f1)\"; }} > {STAMP}.tmp.$$ && mv -f {STAMP}.tmp.$$ {STAMP}")


def only_reloaded(state: dict[str, str], cluster_name: str, generation: int) -> bool:
    """Pure: the one reason to restart is the stamp's reload mark (the daemon runs, the key is the one it loaded)."""
    if state.get(f"stamp:sha:{CONF_PATH}") != RELOADED or state.get("stamp:pid") != state.get("pid"):
        return False
    return restart_reason({**state, f"stamp:sha:{CONF_PATH}": state.get(f"sha:{CONF_PATH}", "")}, cluster_name, generation) is None


def new_key(state: dict[str, str]) -> str | None:
    """Pure: the digest of the key on disk (a dry run's not-yet-made key: "new"), when the daemon did not load it."""
    if not authkey_changed(state):
        return None
    digest = state.get(f"sha:{AUTHKEY_PATH}", "")
    return "new" if digest.startswith("new:") else digest or None


def key_reloads(states: dict[str, dict[str, str]], running: dict[str, "change.Running | None"], joining: set[str],
                generation: int, version: str | None) -> bool:
    """Pure: every node in the running cluster has the same new authkey, and its Corosync can take it
    by reload: then one reload switches every node at once (knet accepts both keys while it does)."""
    members = [n for n, r in running.items() if r is not None and n not in joining]
    keys = {new_key(states[n]) for n in members}
    return bool(members) and len(keys) == 1 and None not in keys and change.key_reload_refusal(generation, version) is None


def reload_misses(reloaded: set[str], running: dict[str, "change.Running | None"], files: dict[str, str], generation: int,
                  version: str | None, cluster_name: str) -> dict[str, str]:
    """Pure: the reloaded nodes whose map, read after the reload, still differs where the reload
    should have changed it (it did not reach them, or Corosync kept a value), with the keys."""
    after = change.decision(running, files, generation, version, cluster_name)
    if after is None:
        return {name: "its map cannot be read after the reload" for name in reloaded}
    return {d.node: change.forcing_keys(d) for d in after.nodes if d.node in reloaded and d.kind == Kind.RELOAD}


def check_reload(cluster: Cluster, hosts: Hosts, facts: dict[str, NodeFacts], generations: dict[str, int], reloaded: set[str]) -> dict[str, str]:
    """Read every node's map again and name the reloaded nodes where the new values are not in it."""
    results = parallel(list(cluster.nodes), lambda n: hosts[n.name].run(change.SCRIPT, check=False, timeout=30, display="corosync-cmapctl").text)
    running = {n.name: (change.parse_running(n.name, r) if isinstance(r, str) else None) for n, r in zip(cluster.nodes, results)}
    files = {name: _wanted_file(cluster, facts[name], generations[name], {}) for name in facts}
    version = change.lowest_version(f.corosync_version for f in facts.values())
    generation = next(iter(generations.values()))
    return reload_misses(reloaded, running, files, generation, version, cluster.name)


def _wanted_file(cluster: Cluster, f: NodeFacts, generation: int, pending: dict[str, str]) -> str:
    """The file the node's Corosync is to run: on disk in a run, the one step 02 would write in a dry run."""
    from runbook.corosync_conf import render

    on_disk = f.file(CONF_PATH)
    if CONF_PATH in pending or on_disk is None:
        return render(cluster, f.node, generation)
    return on_disk.text


def plan(cluster: Cluster, facts: dict[str, NodeFacts], check: bool = False, now: float | None = None,
         restart_all: bool = False, removed: Mapping[removal.Removed, str | Exception] | None = None) -> StepPlan:
    """Pure: per node, what its files take; nodes in waves: the nodes removed from the cluster file
    stopped, one reload, rolling restarts one node at a time, the restarts that go together, then the
    first starts (see runbook.steps.change). `removed`: each removed node's removal.STATE_SCRIPT
    output, or why it could not be read."""
    at = time.time() if now is None else now
    generations = {n.name: generation_of(cluster, facts[n.name], STEP, check) for n in cluster.nodes}
    waiting = {n.name: pending(n.name) if check else {} for n in cluster.nodes}
    nodes = {name: plan_node(cluster, facts[name], generations[name], waiting[name], at) for name in generations}
    states = {name: with_pending(parse_state(facts[name].extra.get("state", "")), waiting[name], at) for name in generations}
    reasons = {name: restart_reason(states[name], cluster.name, generations[name]) for name in generations}
    running = {name: change.parse_running(name, facts[name].extra.get(change.SECTION, "")) for name in generations}
    for name in generations:  # reloaded since its start, and no map to say what it runs now: not restarted for that
        if running[name] is None and only_reloaded(states[name], cluster.name, generations[name]):
            nodes[name] = NodePlan(name, summary="Corosync was reloaded since the runbook started it and its running map cannot be "
                                                 "read now, so what it runs is not known: not restarted; run again to decide")
            reasons[name] = None
    generation = next(iter(generations.values()))
    version = change.lowest_version(f.corosync_version for f in facts.values())
    joining = change.newcomers(running, cluster.name)
    decided = None
    decides = {name: conf_decides(states[name], cluster.name, generations[name]) for name in generations}
    by_reload = key_reloads(states, running, joining, generation, version)
    key_news = {name: by_reload and new_key(states[name]) is not None for name in generations}
    if any((decides[n] or key_news[n]) and running[n] is not None for n in generations):
        files = {name: _wanted_file(cluster, facts[name], generations[name], waiting[name]) for name in generations}
        decided = change.decision(running, files, generation, version, cluster.name)
    if decided is None:
        return StepPlan(STEP, TITLE, nodes)
    refusal = change.restart_all_refusal(decided, running, restart_all)
    step_plan = StepPlan(STEP, TITLE, nodes, problems=[refusal] if refusal else [])
    stopping = remove_plans(step_plan, removed or {}, at, cluster.name)
    step_plan.notes += [f"{d.node}: {change.kind_words(d)}" for d in decided.nodes if d.kind != Kind.NOTHING]
    reloads, rolling, together, starts = [], [], [], []
    for d in decided.nodes:
        name, f = d.node, facts[d.node]
        node_plan, reason = nodes[name], reasons[name]
        said = systemd_said(states[name])
        if name in joining:  # its Corosync runs the package's own cluster: started on its own, after the reload
            if node_plan.changes:
                starts.append(name)
            continue
        if d.kind in (Kind.ROLLING_RESTART, Kind.RESTART_ALL):
            key_news[name] = False  # restarted: it loads the new key at start
        if running[name] is None or (reason and not decides[name] and not key_news[name]) or (authkey_changed(states[name]) and not key_news[name]):
            # not running, a new key not on every node or not reloadable (nodes with different keys cannot talk: restarted together, as
            # before), systemd's unit not the daemon, or no map to compare: plan_node's (re)start
            if node_plan.changes:
                (starts if not states[name].get("pid") else together).append(name)
                why_not = change.key_reload_refusal(generation, version) if new_key(states[name]) and running[name] is not None else None
                if why_not and node_plan.would:
                    node_plan.would += f" ({why_not})"
                    node_plan.change += f" ({why_not})"
            continue
        if d.kind == Kind.NOTHING and not key_news[name]:
            if reason:
                node_plan.operations.clear()
                node_plan.summary = ("Corosync runs every setting of the current corosync.conf (its running map, compared key "
                                     f"by key; {reason}): not restarted{said}")
            continue
        what, keys = change.kind_words(d), change.forcing_keys(d)
        if key_news[name]:
            digest = new_key(states[name]) or "?"
            key_words = "the new authkey" + ("" if digest == "new" else f" (sha256 {digest[:12]}…)")
            keys = key_words if d.kind == Kind.NOTHING else f"{keys}; {key_words}"
            what = f"reload ({keys})"
        if d.kind == Kind.RELOAD or key_news[name]:
            first = not reloads
            script = RELOAD_SCRIPT if first else RELOADED_SCRIPT
            node_plan.operations = [operations.run(
                "reload", "corosync-cfgtool -R" if first else "corosync-cmapctl -g config.reload_status",
                f"{what}: the reload goes to every node", script=script + KEY_STAMP + "\n" if key_news[name] else script,
                by_hand=("corosync-cfgtool -R",) if first else (), timeout=60, fails_as="the reload failed",
            )]
            pid = states[name].get("pid", "?")
            node_plan.would = f"would reload Corosync ({keys}); not restarted (pid {pid}){said}"
            node_plan.change = f"reloaded Corosync ({keys}); not restarted (pid {pid})"
            reloads.append(name)
            continue
        verb_reason = f"{what}; {reason}" if reason else what
        node_plan.operations = [restart_operation(f.init_system, "restart", verb_reason)]
        how = how_of(f.init_system)
        if d.kind == Kind.ROLLING_RESTART:
            # the membership it had, less nodes the new file removes (the reload before it dropped them)
            members = min(running[name].members, len(cluster.nodes))  # type: ignore[union-attr]
            node_plan.operations.append(operations.run(
                "rejoin", f"corosync-quorumtool -s   # until quorate with {members} members", "the next node restarts only then",
                script=rejoin_script(members), by_hand=(f"corosync-quorumtool -s   # wait for Quorate: Yes and Nodes: {members} before the next node",),
                timeout=ROLL_WAIT + 30, fails_as="the node did not rejoin",
            ))
            rolling.append(name)
            node_plan.would = f"would restart Corosync with {how}, one node at a time ({keys}){said}"
            node_plan.change = f"restarted Corosync with {how}, one node at a time, and it rejoined ({keys})"
        else:
            together.append(name)
            node_plan.would = f"would restart Corosync with {how} together with the other nodes ({keys}){said}"
            node_plan.change = f"restarted Corosync with {how} together with the other nodes ({keys})"
    if decided.stops_cluster:
        step_plan.notes.append(f"this stops the whole cluster: {', '.join(decided.restart_all)} stop, then start together")
    quiet = [name for name in nodes if not nodes[name].changes]
    waves = [stopping, reloads[:1] + quiet, reloads[1:], *([name] for name in rolling), together, starts]
    step_plan.waves = [w for w in waves if w]
    return step_plan


def remove_plans(step_plan: StepPlan, removed: Mapping[removal.Removed, str | Exception], now: float, cluster_name: str) -> list[str]:
    """Pure: a plan per removed node (stop, disable at boot, files kept aside), added to `step_plan`;
    their names, for the wave before the reload. One that cannot be reached, or that runs another
    cluster now, gets a note instead."""
    from runbook.backup_script import run_id

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    names = []
    for r, state in removed.items():
        if isinstance(state, Exception):
            step_plan.notes.append(f"{r} is removed from the cluster file, but cannot be reached ({state}): the others drop it "
                                   "on reload; if its Corosync still runs, stop it there and move its corosync.conf aside")
            continue
        pid, init, files, now_in = removal.parse_state(state)
        command, by_hand = removal.shown(init)
        if now_in is not None and now_in != cluster_name:
            step_plan.notes.append(f"{r} is removed from the cluster file, and its Corosync now runs cluster {now_in!r}: "
                                   "not touched (the others drop it on reload)")
            continue
        node_plan = NodePlan(r.name)
        if pid is None and not files:
            node_plan.summary = "removed from the cluster file: Corosync does not run there and its files are gone already"
        else:
            what = f"stop Corosync (pid {pid}), " if pid else ""
            node_plan.operations.append(operations.run(
                "remove", command,
                f"removed from the cluster file (still in {', '.join(r.known_by)}'s running nodelist)",
                script=removal.remove_script(stamp, run_id(), BY_PID), by_hand=by_hand, timeout=STOP_WAIT + 30,
                fails_as="the removed node could not be stopped"))
            node_plan.would = f"would {what}disable it at boot and keep its files as *{removal.REMOVED_SUFFIX} backups: removed from the cluster file"
            node_plan.change = f"{what.replace('stop', 'stopped')}disabled at boot, its files kept as *{removal.REMOVED_SUFFIX} backups: removed from the cluster file"
            names.append(r.name)
        step_plan.nodes[r.name] = node_plan
        step_plan.notes.append(f"{r.name}: removed from the cluster file; it is stopped first (a clean leave), then the nodes that stay drop it on reload")
    return names


def key_settle(running: Mapping[str, "change.Running | None"]) -> float:
    """Pure: seconds after a key reload within which a node left on another key drops out (its token
    is lost, then consensus): token + consensus as the daemons run them, 3 s and 3.6 s by default."""
    keys = next((r.keys for r in running.values() if r is not None), {})
    token = float(keys.get("runtime.config.totem.token") or 3000)
    consensus = float(keys.get("runtime.config.totem.consensus") or 1.2 * token)
    return (token + consensus) / 1000 + 1


def key_kept(cluster: Cluster, hosts: Hosts, generations: dict[str, int], views: dict[str, View],
             running: Mapping[str, "change.Running | None"], progress: Callable[[str], None],
             report: StepReport) -> tuple[dict[str, View], bool]:
    """After a reload that switched keys: the membership once more after `key_settle`, complete (the
    note says whether the ring is the same).

    The reload itself succeeds on every node whatever key it read; a node that read another key than
    the others is only seen to be cut off once its token is lost, so the check waits that long."""
    settle = key_settle(running)
    progress(f"  the new key is in use; checking the membership again in {settle:.1f}s (token + consensus)")
    time.sleep(settle)
    after, _ = wait_for_membership(cluster, hosts, generations, 0, progress)
    expected = len(cluster.nodes)
    before_rings = {v.ring_id for v in views.values()}
    after_rings = {v.ring_id for v in after.values()}
    kept = all(v.complete(expected) for v in after.values())
    if kept:
        same = "the same" if after_rings == before_rings else "complete"
        report.notes.append(f"every node took the new authkey by reload: after {settle:.1f}s the membership is {same} "
                            f"(ring {', '.join(sorted(r or '?' for r in after_rings))}), so no node is on another key")
    else:
        report.notes.append(f"after the key reload the membership changed (ring {', '.join(sorted(r or '?' for r in before_rings))} "
                            f"-> {', '.join(sorted(r or '?' for r in after_rings))}): a node is on another key; "
                            "compare `sha256sum /etc/corosync/authkey` on every node")
    return after, kept


def start_and_verify(cluster: Cluster, hosts: Hosts, *, check: bool = False, restart_all: bool = False, timeout: float = 90,
                     progress: Callable[[str], None] = print) -> StepReport:
    """Start, reload or restart each node as its change takes (`restart_all`: a change that stops the
    running cluster may be made), then wait for the full membership, quorate, and every link."""
    try:
        facts = gather_facts(STEP, cluster, hosts, SECTIONS, extra={"state": STATE_SCRIPT, change.SECTION: change.SCRIPT})
    except StepFailed as exc:
        raise partial_views(cluster, hosts, exc, check) from None
    generations = {n: generation_of(cluster, f, STEP, check) for n, f in facts.items()}
    running = {name: change.parse_running(name, f.extra.get(change.SECTION, "")) for name, f in facts.items()}
    first = cluster.nodes[0].name
    file_text = _wanted_file(cluster, facts[first], generations[first], pending(first) if check else {})
    staying = removal.login_hostnames(hosts)
    found = removal.removed_nodes(running, cluster, file_text, generations[first], staying) if generations[first] in (2, 3) else []
    gone = {r: removal.host_for(r, cluster) for r in found}
    try:
        states = parallel(list(gone), lambda r: gone[r].run(removal.STATE_SCRIPT, check=True, timeout=30, display="is Corosync running").text)
        removed = {r: (s if isinstance(s, str) else Exception(str(s).removeprefix(f"{r.name}: "))) for r, s in zip(gone, states)}
        the_plan = plan(cluster, facts, check, restart_all=restart_all, removed=removed)
        everyone = Hosts([*hosts.values(), *(h for r, h in gone.items() if r.name in the_plan.nodes)])
        report = apply(the_plan, cluster, everyone, check=check)
    finally:
        for host in gone.values():
            host.close()
    leaving = {r.name for r in gone}
    how_started = {}
    for outcome in report.outcomes:
        if outcome.status == "changed" and any(op.kind == "restart" for op in outcome.operations):
            how_started[outcome.node] = how_of(facts[outcome.node].init_system)
            output = "\n".join(op.output for op in outcome.operations).splitlines()  # the restart's, and a rejoin's
            # what the restart script says of itself: "note: ... stopped corosync by pid ..." (a
            # daemon without its pid file), and systemd's view after the start
            outcome.summary += "".join(f"; {line.removeprefix('note: ')}" for line in output if line.startswith("note: "))
            said = [line for line in output if line.startswith("systemd: ")]
            if said:
                outcome.summary += "; " + said[-1]
    if check:
        report.notes.append("check mode: Corosync was not started and the membership was not awaited")
        return report
    reloaded = {o.node for o in report.outcomes if o.status == "changed" and any(op.kind == "reload" for op in o.operations)}
    missed = check_reload(cluster, hosts, facts, generations, reloaded) if reloaded else {}
    if missed:
        for name in missed:
            report.outcome(name).status = "failed"
        raise StepFailed(STEP, {name: f"the reload did not take: its running map still differs from the file ({keys}); "
                                      "Corosync runs on, with the old values" for name, keys in missed.items()}, report)
    if reloaded:
        report.notes.append(f"the reload is in force: every reloaded node's map has the new values ({', '.join(sorted(reloaded))})")
    views, seconds = wait_for_membership(cluster, hosts, generations, timeout, progress)
    expected = len(cluster.nodes)
    members_complete = all(v.complete(expected) for v in views.values())
    keyed = sorted(name for name, p in the_plan.nodes.items() if any(KEY_STAMP in op.script for op in p.operations))
    if keyed and members_complete and not check:
        views, members_complete = key_kept(cluster, hosts, generations, views, running, progress, report)
    links = wait_for_links(cluster, hosts, generations, LINKS_WAIT if members_complete else 0)
    report.extra_html = membership_html(views, expected) + links_html(links)
    for outcome in report.outcomes:
        if outcome.node in leaving:
            continue
        view, found = views[outcome.node], links[outcome.node]
        line = links_line(found.links) if isinstance(found, NodeLinks) else f"links cannot be read: {found}"
        outcome.summary += f"; {view.describe(expected)}; {line}"
        cfg_text = found.raw if isinstance(found, NodeLinks) else f"(cannot read: {found})"
        outcome.detail = f"$ corosync-cfgtool -s\n{cfg_text}\n\n$ corosync-quorumtool -s\n{view.raw.strip()}"
    link_failures = {
        name: f"not every link connects it to every other node: {links_line(found.links) if isinstance(found, NodeLinks) else found}"
        for name, found in links.items()
        if members_complete and not (isinstance(found, NodeLinks) and found.complete(cluster.link_count, expected - 1))
    }
    if not members_complete or link_failures:
        failures = dict(link_failures)
        for name, view in views.items():
            if not view.complete(expected):
                failures[name] = f"{view.describe(expected)} after {seconds:.0f}s\n  log:\n" + "\n".join(
                    f"    {line}" for line in log_tail(hosts[name], facts[name].init_system).splitlines()
                )
        for name in failures:
            report.outcome(name).status = "failed"
        if link_failures:
            report.notes.append("the membership is complete and quorate, but a link is down: the cluster runs without its redundancy")
        raise StepFailed(STEP, failures, report)
    ring_ids = {v.ring_id for v in views.values()}
    report.notes.append(
        f"all {expected} nodes are members and quorate after {seconds:.1f}s of waiting; ring ID {', '.join(sorted(r or '?' for r in ring_ids))}"
    )
    report.notes.append(f"every node is connected to every other node on each of its {cluster.link_count} link(s)")
    if how_started:
        report.notes.append("started with: " + "; ".join(f"{n}: {h}" for n, h in how_started.items()))
    return report
