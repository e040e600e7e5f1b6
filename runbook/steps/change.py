"""What a new corosync.conf takes on nodes whose Corosync runs: step 06's decision, and preflight's.

Step 06 used to restart Corosync on every node whose file changed, all at once: under Pacemaker a
full outage for a token change. Here each running node's configuration map (`corosync-cmapctl`) is
compared with the file it is to run, key by key (runbook.conf/running.py), and runbook.change_kind
decides per node: nothing, one reload, a rolling restart, or every node restarted together.

Preflight makes the same decision from the files step 02 will write, so that a change which stops a
running cluster (cluster_name, transport, a node's address...) is refused before anything is
written, unless the run says `--restart-all`. The decision needs the daemons' maps, so it is made
only on 2.x/3.x (1.x has no reload: every change there is a restart, as before) and only for nodes
whose map could be read; a node whose map cannot be read is restarted, as before.

Pure: inputs are the facts' sections as printed; tests feed them text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runbook.conf.change_kind import Kind, NodeDecision, Plan, decide, parse_version
from runbook.conf.members import parse_members
from runbook.conf.running import Difference, file_keys, parse_cmapctl
from runbook.errors import HostError

SECTION = "running_map"
# Read-only: the whole map (a prefix list would exit 1 when its last prefix matches nothing).
SCRIPT = "if pidof corosync >/dev/null 2>&1 && command -v corosync-cmapctl >/dev/null 2>&1; then LC_ALL=C corosync-cmapctl 2>&1; fi; true"


@dataclass(frozen=True)
class Running:
    """One node's running map, and how many members its membership has now."""

    keys: dict[str, str]
    members: int


def parse_running(node: str, text: str) -> Running | None:
    """Pure: the SCRIPT's output -> the node's map, or None (not running, no cmap, unreadable)."""
    if not text.strip():
        return None
    try:
        keys = parse_cmapctl(text, node)
    except HostError:
        return None
    return Running(keys, len(parse_members(text)))


def newcomers(running: Mapping[str, Running | None], cluster_name: str) -> set[str]:
    """Pure: nodes whose Corosync runs some other cluster (the package's default one, as `apt-get
    install` starts it) while other nodes run this one: they are joining, so each is started on its
    own after the others took the new nodelist, and the running cluster is not restarted for them.
    When no node runs this cluster (a first setup, a rename) there are none: every node decides."""
    ours = {n for n, r in running.items() if r is not None and r.keys.get("totem.cluster_name") == cluster_name}
    if not ours:
        return set()
    return {n for n, r in running.items() if r is not None and n not in ours}


def decision(
    running: Mapping[str, Running | None],
    files: Mapping[str, str],
    generation: int,
    version: str | None,
    cluster_name: str | None = None,
) -> Plan | None:
    """Pure: what each node's new file (`files[node]`, its text) takes, or None where it cannot be decided.

    None on 1.x, and when no node runs Corosync (a first start decides nothing). With
    `cluster_name`, `newcomers` are decided as nodes to start (Kind.START).
    """
    if generation not in (2, 3) or not any(r is not None for r in running.values()):
        return None
    joining = newcomers(running, cluster_name) if cluster_name is not None else set()
    now = {node: (r.keys if r is not None and node not in joining else None) for node, r in running.items()}
    wanted = {node: file_keys(text, generation) for node, text in files.items()}
    return decide(now, wanted, generation, version)


def membership_at_stake(running: Mapping[str, Running | None]) -> int:
    """Pure: the largest membership among the nodes now (2 or more: a cluster that would stop)."""
    return max((r.members for r in running.values() if r is not None), default=0)


def lowest_version(versions: Iterable[str | None]) -> str | None:
    """Pure: one Corosync version for the whole decision, so preflight, step 06 and status agree
    (the lowest installed: a key that 3.1 reloads is restarted while any node runs 3.0)."""
    found = [v for v in versions if v]
    return min(found, key=lambda v: tuple(int(p) for p in re.findall(r"\d+", v)[:3]), default=None)


KEY_RELOAD_FROM = (3, 1)  # v3.1.0 commit 5f71445b: cfg.c reload -> totem_reread_crypto_config re-reads the key file


def key_reload_refusal(generation: int, version: str | None) -> str | None:
    """Pure: why Corosync cannot take a new authkey by reload here (None: it can, 3.1+ with knet)."""
    found = parse_version(version)
    if generation == 3 and found is not None and found >= KEY_RELOAD_FROM:
        return None
    shown = version or "unknown"
    return (f"Corosync {shown} reads the authkey only at start (3.1 is the first to change keys at run time), and nodes "
            "with different keys cannot talk: every node restarts together")


def restart_all_refusal(plan: Plan | None, running: Mapping[str, Running | None], restart_all: bool) -> str | None:
    """Pure: why a run may not go on without `--restart-all` (None: it may).

    Every node restarted together stops the cluster only when the nodes form one now (two or more
    members): a first start, or nodes each alone in the package's own default cluster, lose nothing.
    """
    if plan is None or not plan.stops_cluster or restart_all:
        return None
    members = membership_at_stake(running)
    if members < 2:
        return None
    forcing = "; ".join(f"{d.node}: {forcing_keys(d)}" for d in plan.nodes if d.kind == Kind.RESTART_ALL and d.forcing)
    return (
        f"this change restarts every node together, so the running cluster ({members} members) stops until they are "
        f"back: {forcing}. Nothing was changed. Run again with --restart-all to do it (`runbook plan FILE --restart-all` "
        "shows each node's part), or leave those settings as they are"
    )


def kind_words(d: NodeDecision) -> str:
    """Pure: the node's kind and what forces it, as the plan shows it."""
    keys = forcing_keys(d)
    return d.kind.words + (f" ({keys})" if keys else "")


def forcing_keys(d: NodeDecision) -> str:
    """Pure: the differences that make the node's kind, `key: running -> wanted`, or why when none of its own."""
    if not d.forcing:
        return "; ".join(d.notes) or "no key of its own"
    return ", ".join(str(Difference(c.key, c.running, c.wanted)) for c in d.forcing)


__all__ = ["KEY_RELOAD_FROM", "Running", "SCRIPT", "SECTION", "decision", "forcing_keys", "key_reload_refusal", "lowest_version", "kind_words", "membership_at_stake", "newcomers", "parse_running", "restart_all_refusal"]
