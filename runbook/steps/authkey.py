"""Step 3: one authkey for the whole cluster, made on the primary, copied to every other node root:root 0400.

The key is generated *on the primary* (never on the controller), read into the controller's memory
only to be written to the other nodes over SSH stdin, and never printed, logged or returned: reports
identify a key only by the first 12 hex digits of its SHA-256, which is enough to compare nodes.
"""

from __future__ import annotations

import hashlib

from runbook.cluster import Cluster, Node
from runbook.facts import AUTHKEY_PATH, AuthkeyFact, NodeFacts
from runbook.hosts import DEFAULT_KEEP, Host, Hosts, backup_lines, backup_stamp, run_id
from runbook.report import NodeOutcome, StepReport
from runbook.steps._common import StepFailed, gather_facts, generation_of, run_per_node

STEP = "03-authkey"
TITLE = "Share the authkey"
KEY_MODE = 0o400


def keygen_script(generation: int, keep: int = DEFAULT_KEEP, stamp: str | None = None) -> str:
    """Pure: make a new key in a temp dir next to the real one, then move it into place atomically.

    corosync-keygen reads /dev/urandom on 2.x (-l) and 3.x, so it never waits for keyboard entropy;
    1.x's keygen reads /dev/random and can block for minutes, so there the same 128 bytes come from
    /dev/urandom directly. A key it replaces is backed up first, the same way as every write
    (runbook.hosts.backup_lines), under umask 077 and with the key's own mode.
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
        ]
    )


def key_id(digest: str) -> str:
    return f"sha256 {digest[:12]}…"


def mode_ok(fact: AuthkeyFact) -> bool:
    return fact.mode == KEY_MODE and fact.owner == "root" and fact.group == "root"


def _fix_mode(host: Host) -> None:
    host.run(f"chown root:root {AUTHKEY_PATH} && chmod 400 {AUTHKEY_PATH}")


def distribute_authkey(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    facts = gather_facts(STEP, cluster, hosts)
    primary = cluster.primary
    pfacts = facts[primary.name]
    generation = generation_of(cluster, pfacts, STEP, check)
    outcomes: dict[str, NodeOutcome] = {}

    # 1. The primary's key is the cluster's key: make it if missing, fix its mode if wrong.
    key = pfacts.authkey
    if key is None:
        if check:
            outcomes[primary.name] = NodeOutcome(primary.name, "would change", "would generate a new authkey (corosync-keygen)")
        else:
            hosts[primary.name].run(keygen_script(generation, cluster.backups.keep), display="corosync-keygen into /etc/corosync/authkey (atomic)")
            outcomes[primary.name] = NodeOutcome(primary.name, "changed", "generated a new authkey (root:root 0400)")
    elif not mode_ok(key):
        was = f"{key.mode:o} {key.owner}:{key.group}"
        if check:
            outcomes[primary.name] = NodeOutcome(primary.name, "would change", f"would fix the key's mode ({was} -> 400 root:root)")
        else:
            _fix_mode(hosts[primary.name])
            outcomes[primary.name] = NodeOutcome(primary.name, "changed", f"fixed the key's mode ({was} -> 400 root:root)")
    else:
        outcomes[primary.name] = NodeOutcome(primary.name, "unchanged", f"holds the cluster's authkey ({key_id(key.sha256)}, 0400 root:root)")

    # 2. Every other node gets exactly the primary's bytes. Read once, kept in memory only.
    key_bytes: bytes | None = None
    digest = key.sha256 if key else None
    if not check:
        key_bytes = hosts[primary.name].read_file(AUTHKEY_PATH)
        if not key_bytes:
            raise StepFailed(STEP, {primary.name: f"{AUTHKEY_PATH} is missing or empty after generating it"})
        digest = hashlib.sha256(key_bytes).hexdigest()
        if primary.name in outcomes and outcomes[primary.name].status == "changed" and key is None:
            outcomes[primary.name].summary += f" ({key_id(digest)}, {len(key_bytes)} bytes)"

    def act(node: Node, host: Host, f: NodeFacts) -> NodeOutcome:
        if node.name == primary.name:
            return outcomes[node.name]
        have = f.authkey
        if have is not None and digest is not None and have.sha256 == digest:
            if mode_ok(have):
                return NodeOutcome(node.name, "unchanged", f"holds the same authkey as {primary.name} ({key_id(digest)}, 0400 root:root)")
            was = f"{have.mode:o} {have.owner}:{have.group}"
            if check:
                return NodeOutcome(node.name, "would change", f"would fix the key's mode ({was} -> 400 root:root)")
            _fix_mode(host)
            return NodeOutcome(node.name, "changed", f"fixed the key's mode ({was} -> 400 root:root)")
        why = "has no authkey" if have is None else "holds a different authkey"
        if check:
            return NodeOutcome(node.name, "would change", f"{why}: would copy the key from {primary.name}")
        assert key_bytes is not None
        result = host.write_file(AUTHKEY_PATH, key_bytes, mode=KEY_MODE, owner="root", group="root", keep=cluster.backups.keep)
        kept = f"; its old key kept as {result.backup}" if result.backup else ""
        return NodeOutcome(node.name, "changed", f"{why}: copied the key from {primary.name} (root:root 0400){kept}")

    try:
        return run_per_node(
            STEP,
            TITLE,
            cluster,
            hosts,
            facts,
            act,
            check=check,
            notes=[f"The primary ({primary.name}) makes the key; the key's bytes never appear in any output or record."],
        )
    finally:
        key_bytes = None
