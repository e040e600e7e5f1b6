"""Step 3: one authkey for the whole cluster, made on the primary, copied to every other node root:root 0400.

The key is generated *on the primary* (never on the controller). The executor reads it into the
controller's memory only to stage it on the other nodes (inside their scripts on SSH stdin), and it
is never printed, logged or returned: reports identify a key only by the first 12 hex digits of its
SHA-256, which is enough to compare nodes.
"""

from __future__ import annotations

from runbook.engine import operations
from runbook.engine.backup_script import backup_lines, backup_stamp, run_id
from runbook.engine.facts import AUTHKEY_PATH, AuthkeyFact, NodeFacts
from runbook.engine.plan import NodePlan, StepPlan
from runbook.model.backups import DEFAULT_KEEP
from runbook.model.types import Cluster, Node
from runbook.report.outcome import StepReport
from runbook.ssh.hosts import Hosts
from runbook.steps._common import apply, gather_facts, generation_of

STEP = "03-authkey"
TITLE = "Share the authkey"
KEY_MODE = 0o400
SECTIONS = ("corosync_version", "corosync_candidate", "authkey")
FIX_MODE = f"chown root:root {AUTHKEY_PATH} && chmod 400 {AUTHKEY_PATH}"
# The chapter's command, with what it does not say: 1.x's keygen reads /dev/random and can wait
# minutes for entropy on an idle machine; the runbook itself reads /dev/urandom (keygen_script).
KEYGEN_1X_BY_HAND = (
    f"corosync-keygen   # reads /dev/random: can wait minutes on an idle node; "
    f"or: head -c 128 /dev/urandom > {AUTHKEY_PATH} (what the runbook runs)"
)


def keygen_script(generation: int, keep: int = DEFAULT_KEEP, stamp: str | None = None) -> str:
    """Pure: make a new key in a temp dir next to the real one, then move it into place atomically.

    corosync-keygen reads /dev/urandom on 2.x (-l) and 3.x, so it never waits for keyboard entropy;
    1.x's keygen reads /dev/random and can block for minutes, so there the same 128 bytes come from
    /dev/urandom directly. A key it replaces is backed up first, the same way as every write
    (runbook.ssh.hosts.backup_lines), under umask 077 and with the key's own mode.
    """
    make = (
        'head -c 128 /dev/urandom > "$d/authkey"'
        if generation == 1
        else 'corosync-keygen -l -k "$d/authkey" >/dev/null'
    )
    return "\n".join(
        [
            "set -e",
            "umask 077",
            "mkdir -p /etc/corosync",
            "d=$(mktemp -d /etc/corosync/.authkey-runbook-XXXXXX)",
            "trap 'rm -rf \"$d\"' EXIT",
            make,
            'chown root:root "$d/authkey"',
            'chmod 400 "$d/authkey"',
            'sync -- "$d/authkey" 2>/dev/null || sync',
            *backup_lines(AUTHKEY_PATH, stamp or backup_stamp(), run_id(), keep),  # kept 0400 like the key
            f'mv -f "$d/authkey" {AUTHKEY_PATH}',
            f"echo \"made $(wc -c < {AUTHKEY_PATH}) bytes, sha256 $(sha256sum {AUTHKEY_PATH} | cut -c1-12)…\"",
        ]
    )


def keygen_command(generation: int) -> str:
    """Pure: what key generation amounts to, as shown (the script adds the temp dir, backup and rename)."""
    if generation == 1:
        return f"head -c 128 /dev/urandom > {AUTHKEY_PATH} && {FIX_MODE}"
    return f"corosync-keygen -l -k {AUTHKEY_PATH} && {FIX_MODE}"


def key_id(digest: str) -> str:
    return f"sha256 {digest[:12]}…"


def mode_ok(fact: AuthkeyFact) -> bool:
    return fact.mode == KEY_MODE and fact.owner == "root" and fact.group == "root"


def _fix_mode(fact: AuthkeyFact) -> tuple[operations.Operation, str]:
    was = f"{fact.mode:o} {fact.owner}:{fact.group}"
    op = operations.run("chmod", FIX_MODE, f"the key is {was}, not 400 root:root", by_hand=(f"chown root:root {AUTHKEY_PATH}", f"chmod 400 {AUTHKEY_PATH}"), path=AUTHKEY_PATH)
    return op, f"the key's mode ({was} -> 400 root:root)"


def plan(cluster: Cluster, facts: dict[str, NodeFacts], check: bool = False, keep: int = DEFAULT_KEEP,
         rotate: bool = False) -> StepPlan:
    """Pure: the primary's key is the cluster's (made if missing, its mode fixed); every other node
    gets exactly its bytes. A new key on the primary means every other node gets a copy.

    `rotate` (`runbook rotate-key`): the primary makes a new key even though it has one; the old one
    stays on every node as a root-only backup (0400, like every key backup), and step 06 then has
    Corosync take the new key (a reload on 3.1+, else the restart it needs)."""
    primary = cluster.primary
    pfacts = facts[primary.name]
    generation = generation_of(cluster, pfacts, STEP, check)
    key = pfacts.authkey
    nodes: dict[str, NodePlan] = {}

    p = NodePlan(primary.name)
    if key is None or rotate:
        p.operations.append(
            operations.run(
                "keygen",
                keygen_command(generation),
                "the primary has no authkey" if key is None else f"rotate-key: a new key replaces {key_id(key.sha256)}",
                script=keygen_script(generation, keep),
                by_hand=(KEYGEN_1X_BY_HAND if generation == 1 else "corosync-keygen -l" if generation == 2 else "corosync-keygen", f"chown root:root {AUTHKEY_PATH}", f"chmod 400 {AUTHKEY_PATH}"),
                path=AUTHKEY_PATH,
            )
        )
        p.would = "would generate a new authkey (corosync-keygen)" + (", the old one kept as a root-only backup" if key else "")
        p.change = "generated a new authkey (root:root 0400)" + (", the old one kept as a root-only backup" if key else "")
    elif not mode_ok(key):
        op, what = _fix_mode(key)
        p.operations.append(op)
        p.would, p.change = f"would fix {what}", f"fixed {what}"
    else:
        p.summary = f"holds the cluster's authkey ({key_id(key.sha256)}, 0400 root:root)"

    digest = key.sha256 if key and not rotate else None
    for node in cluster.nodes:
        if node.name == primary.name:
            nodes[node.name] = p
            continue
        nodes[node.name] = _plan_secondary(node, facts[node.name], primary.name, digest)
    secondaries = [n.name for n in cluster.nodes if n.name != primary.name]
    notes = [f"The primary ({primary.name}) makes the key; the key's bytes never appear in any output or record."]
    return StepPlan(STEP, TITLE, nodes, waves=[[primary.name], secondaries] if secondaries else [[primary.name]], notes=notes)


def _plan_secondary(node: Node, f: NodeFacts, primary: str, digest: str | None) -> NodePlan:
    plan = NodePlan(node.name)
    have = f.authkey
    if have is not None and digest is not None and have.sha256 == digest:
        if mode_ok(have):
            plan.summary = f"holds the same authkey as {primary} ({key_id(digest)}, 0400 root:root)"
            return plan
        op, what = _fix_mode(have)
        plan.operations.append(op)
        plan.would, plan.change = f"would fix {what}", f"fixed {what}"
        return plan
    why = "has no authkey" if have is None else "holds a different authkey" if digest else "gets the primary's new authkey"
    hand = (
        f"scp {primary}:{AUTHKEY_PATH} {AUTHKEY_PATH}   # or any way that keeps the key off other machines",
        f"chown root:root {AUTHKEY_PATH}",
        f"chmod 400 {AUTHKEY_PATH}",
    )
    plan.operations.append(operations.copy_key(AUTHKEY_PATH, primary, why, by_hand=hand, sha256=digest))
    plan.would = f"{why}: would copy the key from {primary}"
    plan.change = f"{why}: copied the key from {primary} (root:root 0400)"
    return plan


def distribute_authkey(cluster: Cluster, hosts: Hosts, *, check: bool = False, rotate: bool = False) -> StepReport:
    facts = gather_facts(STEP, cluster, hosts, SECTIONS)
    return apply(plan(cluster, facts, check, cluster.backups.keep, rotate=rotate), cluster, hosts, check=check)
