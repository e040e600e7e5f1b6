"""Changes a running Corosync takes without a restart: `corosync-cfgtool -R` for a new file (and on
3.1+ a new authkey), checked afterwards in every node's running map.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from runbook.conf.change_kind import Kind
from runbook.conf.membership import View
from runbook.engine.facts import AUTHKEY_PATH, CONF_PATH, NodeFacts
from runbook.model.types import Cluster
from runbook.report.outcome import StepReport
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Hosts
from runbook.steps import change
from runbook.steps.members import wait_for_membership
from runbook.steps.restart import RELOADED, STAMP, authkey_changed, restart_reason, wanted_file

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
    results = each([n.name for n in cluster.nodes], lambda name: hosts[name].run(change.SCRIPT, check=False, timeout=30, display="corosync-cmapctl").text)
    running = {name: (change.parse_running(name, results.ok[name]) if name in results.ok else None) for name in results}
    files = {name: wanted_file(cluster, facts[name], generations[name], {}) for name in facts}
    version = change.lowest_version(f.corosync_version for f in facts.values())
    generation = next(iter(generations.values()))
    return reload_misses(reloaded, running, files, generation, version, cluster.name)


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
