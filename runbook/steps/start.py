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

import time
from collections.abc import Callable, Mapping

from runbook.conf.change_kind import Kind
from runbook.conf.membership import View, links_line
from runbook.engine import operations
from runbook.engine.backup_script import run_id
from runbook.engine.facts import CONF_PATH, NodeFacts, gather
from runbook.engine.plan import NodePlan, StepPlan, pending
from runbook.errors import StepFailed
from runbook.model.types import Cluster, Node
from runbook.report.outcome import NodeOutcome, StepReport
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Hosts
from runbook.steps import change, removal
from runbook.steps._common import apply, gather_facts, generation_of
from runbook.steps.members import LINKS_WAIT, NodeLinks, links_html, log_tail, membership_html, read_view, wait_for_links, wait_for_membership
from runbook.steps.reload import KEY_STAMP, RELOAD_SCRIPT, RELOADED_SCRIPT, check_reload, key_kept, key_reloads, new_key, only_reloaded
from runbook.steps.restart import (
    BY_PID,
    ROLL_WAIT,
    SECTIONS,
    STATE_SCRIPT,
    STOP_WAIT,
    authkey_changed,
    cluster_reason,
    daemon_reason,
    file_reason,
    how_of,
    parse_state,
    rejoin_script,
    restart_operation,
    restart_reason,
    systemd_said,
    wanted_file,
    with_pending,
)

STEP = "06-start-and-verify"
TITLE = "Start Corosync and verify the membership"


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
        files = {name: wanted_file(cluster, facts[name], generations[name], waiting[name]) for name in generations}
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
            _reload(node_plan, what, keys, first=not reloads, key=key_news[name], pid=states[name].get("pid", "?"), said=said)
            reloads.append(name)
            continue
        members = min(running[name].members, len(cluster.nodes)) if d.kind == Kind.ROLLING_RESTART else None  # type: ignore[union-attr]
        _restart(node_plan, f.init_system, f"{what}; {reason}" if reason else what, keys, said, members)
        (rolling if members is not None else together).append(name)
    if decided.stops_cluster:
        step_plan.notes.append(f"this stops the whole cluster: {', '.join(decided.restart_all)} stop, then start together")
    quiet = [name for name in nodes if not nodes[name].changes]
    waves = [stopping, reloads[:1] + quiet, reloads[1:], *([name] for name in rolling), together, starts]
    step_plan.waves = [w for w in waves if w]
    return step_plan


def _reload(node_plan: NodePlan, what: str, keys: str, *, first: bool, key: bool, pid: str, said: str) -> None:
    """The node takes its change by reload: the first reloading node runs `corosync-cfgtool -R` (it
    reaches every member), the others check that theirs took it."""
    script = RELOAD_SCRIPT if first else RELOADED_SCRIPT
    node_plan.operations = [operations.run(
        "reload", "corosync-cfgtool -R" if first else "corosync-cmapctl -g config.reload_status",
        f"{what}: the reload goes to every node", script=script + KEY_STAMP + "\n" if key else script,
        by_hand=("corosync-cfgtool -R",) if first else (), timeout=60, fails_as="the reload failed",
    )]
    node_plan.would = f"would reload Corosync ({keys}); not restarted (pid {pid}){said}"
    node_plan.change = f"reloaded Corosync ({keys}); not restarted (pid {pid})"


def _restart(node_plan: NodePlan, init_system: str, why: str, keys: str, said: str, members: int | None) -> None:
    """The node restarts: one at a time when `members` says how many it must see again before the
    next one goes (the membership it had, less nodes the new file removes), else with the others."""
    node_plan.operations = [restart_operation(init_system, "restart", why)]
    how = how_of(init_system)
    if members is None:
        node_plan.would = f"would restart Corosync with {how} together with the other nodes ({keys}){said}"
        node_plan.change = f"restarted Corosync with {how} together with the other nodes ({keys})"
        return
    node_plan.operations.append(operations.run(
        "rejoin", f"corosync-quorumtool -s   # until quorate with {members} members", "the next node restarts only then",
        script=rejoin_script(members), by_hand=(f"corosync-quorumtool -s   # wait for Quorate: Yes and Nodes: {members} before the next node",),
        timeout=ROLL_WAIT + 30, fails_as="the node did not rejoin",
    ))
    node_plan.would = f"would restart Corosync with {how}, one node at a time ({keys}){said}"
    node_plan.change = f"restarted Corosync with {how}, one node at a time, and it rejoined ({keys})"


def remove_plans(step_plan: StepPlan, removed: Mapping[removal.Removed, str | Exception], now: float, cluster_name: str) -> list[str]:
    """Pure: a plan per removed node (stop, disable at boot, files kept aside), added to `step_plan`;
    their names, for the wave before the reload. One that cannot be reached, or that runs another
    cluster now, gets a note instead."""

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
    file_text = wanted_file(cluster, facts[first], generations[first], pending(first) if check else {})
    staying = removal.login_hostnames(hosts)
    found = removal.removed_nodes(running, cluster, file_text, generations[first], staying) if generations[first] in (2, 3) else []
    gone = {r: removal.host_for(r, cluster) for r in found}
    try:
        states = each(list(gone), lambda r: gone[r].run(removal.STATE_SCRIPT, check=True, timeout=30, display="is Corosync running").text)
        removed = {r: states.ok[r] if r in states.ok else Exception(states.why(r)) for r in states}
        the_plan = plan(cluster, facts, check, restart_all=restart_all, removed=removed)
        everyone = Hosts([*hosts.values(), *(h for r, h in gone.items() if r.name in the_plan.nodes)])
        report = apply(the_plan, cluster, everyone, check=check)
    finally:
        for host in gone.values():
            host.close()
    leaving = {r.name for r in gone}
    how_started = _restarts_said(report, facts)
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
    _verdict(report, cluster, hosts, facts, views, links, seconds, leaving)
    if how_started:
        report.notes.append("started with: " + "; ".join(f"{n}: {h}" for n, h in how_started.items()))
    return report


def _restarts_said(report: StepReport, facts: dict[str, NodeFacts]) -> dict[str, str]:
    """How each restarted node was started; what its restart script said of itself goes in its summary:
    "note: ... stopped corosync by pid ..." (a daemon without its pid file), and systemd's view after."""
    how_started = {}
    for outcome in report.outcomes:
        if outcome.status == "changed" and any(op.kind == "restart" for op in outcome.operations):
            how_started[outcome.node] = how_of(facts[outcome.node].init_system)
            output = "\n".join(op.output for op in outcome.operations).splitlines()  # the restart's, and a rejoin's
            outcome.summary += "".join(f"; {line.removeprefix('note: ')}" for line in output if line.startswith("note: "))
            said = [line for line in output if line.startswith("systemd: ")]
            if said:
                outcome.summary += "; " + said[-1]
    return how_started


# Most memberships that never complete are the network's doing: say where to look first.
INCOMPLETE_HINT = ("look first at the firewalls between the nodes (UDP to each link's port, both ways) and at the link "
                   "check's matrix on step 00 (`runbook plan CLUSTER --only 0` runs it again)")


def _verdict(report: StepReport, cluster: Cluster, hosts: Hosts, facts: dict[str, NodeFacts], views: dict[str, View],
             links: dict[str, NodeLinks | Exception], seconds: float, leaving: set[str]) -> None:
    """Every node's view and links in its outcome; StepFailed naming each node short of the full
    membership, quorum or a link (with its log's tail)."""
    expected = len(cluster.nodes)
    members_complete = all(v.complete(expected) for v in views.values())
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
                failures[name] = f"{view.describe(expected)} after {seconds:.0f}s; {INCOMPLETE_HINT}\n  log:\n" + "\n".join(
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


def partial_views(cluster: Cluster, hosts: Hosts, unreachable: StepFailed, check: bool) -> StepFailed:
    """Some nodes cannot be reached, so nothing is started; but what the others see is reported.

    A cut link shows here: the unreachable node fails, and the nodes that answer say how many
    members they see and whether they are still quorate (e.g. the survivor of a two_node cluster).
    """
    reachable = [n for n in cluster.nodes if n.name not in unreachable.failures]

    def view_of(node: Node) -> View:
        host = hosts[node.name]
        return read_view(host, cluster.generation or gather(host).generation or 3)

    results = each(reachable, view_of)
    views = {n.name: view for n, view in results.ok.items()}
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
