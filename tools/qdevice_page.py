#!/usr/bin/env python3
"""Write docs/quorum-device.md from a real lab run: the votes before and after a quorum device, and a split.

    python tools/qdevice_page.py            # lab up (2 nodes + a qnetd host), the runs, lab down; writes the page
    python tools/qdevice_page.py --print    # the same, the page on stdout instead

Brings up a lab (`qdpage`, 10.0.125.0/24) from a cluster file with a quorum device, so `runbook lab up`
makes the qnetd host beside the two nodes. Sets up the two-node cluster without the device, then adds
it with `runbook run` (reading every node's Corosync pid before and after), then cuts the two nodes
off from each other with nftables on one of them while both still reach the qnetd host, and shows
what each node says; the same cut is made once before the device, to show the split `two_node`
allows. Needs root, like the lab; takes about a minute.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script: the repository's tools/ and runbook/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.lab_page import ROOT, main, sh, step_lines, wait  # noqa: E402
from tools.lab_page import on as on_lab  # noqa: E402

PAGE = ROOT / "docs" / "quorum-device.md"
LAB = "qdpage"
NODES = [("node1", "10.0.125.11"), ("node2", "10.0.125.12")]
QNETD = ("qnetd", "10.0.125.20")
CUT = ("nft add table inet cut; nft add chain inet cut in '{ type filter hook input priority -10; }'; "
       "nft add chain inet cut out '{ type filter hook output priority -10; }'; "
       "nft add rule inet cut in ip saddr 10.0.125.11 drop; nft add rule inet cut out ip daddr 10.0.125.11 drop")


def votes(host: str) -> str:
    """corosync-quorumtool -s, from its vote section on (the date and ring lines change from run to run)."""
    text = on(host, "corosync-quorumtool -s")
    keep = [line.rstrip() for line in text.splitlines() if not line.startswith(("Date:", "Ring ID:", "Node ID:"))]
    return "\n".join(keep).strip()


def cluster_data(ssh_config: str | None, device: bool) -> dict[str, object]:
    data: dict[str, object] = {
        "cluster_name": "tiebreak",
        "nodes": [{"name": n, "address": a, "nodeid": i, **({"role": "primary"} if i == 1 else {})} for i, (n, a) in enumerate(NODES, 1)],
    }
    if device:
        data["quorum"] = {"device": {"model": "net", "net": {"host": QNETD[1], "name": QNETD[0], "algorithm": "ffsplit", "tie_breaker": "lowest"}}}
    if ssh_config:
        data["ssh"] = {"config": ssh_config}
    return data


def on(host: str, command: str) -> str:
    return on_lab(LAB, host, command)


def collect(work: Path) -> dict[str, str]:
    plain, withd = work / "plain.yaml", work / "device.yaml"
    withd.write_text(yaml.safe_dump(cluster_data(None, True), sort_keys=False))
    sh("lab", "up", str(withd), "--lab", LAB)
    from runbook.lab import state as lab_state

    state = lab_state.LabState.load(LAB)
    assert state is not None, "the lab is not up"
    plain.write_text(yaml.safe_dump(cluster_data(str(state.ssh_config), False), sort_keys=False))
    withd.write_text(yaml.safe_dump(cluster_data(str(state.ssh_config), True), sort_keys=False))
    sh("run", str(plain), "--out", str(work / "runs"))
    seen = {"before": votes("node1")}
    on("node2", CUT)  # the split without a device: two_node lets each half go on alone
    try:
        wait(lambda: all("Nodes:            1" in on(n, "corosync-quorumtool -s") for n, _ in NODES), 60)
        seen.update(split1=votes("node1"), split2=votes("node2"))
    finally:
        on("node2", "nft delete table inet cut")
    wait(lambda: all("Nodes:            2" in on(n, "corosync-quorumtool -s") for n, _ in NODES), 60)
    pids = {n: on(n, "pidof corosync").strip() for n, _ in NODES}
    added = sh("run", str(withd), "--out", str(work / "runs"), check=False)
    if added.returncode != 0:
        raise SystemExit(f"runbook run with the device failed:\n{added.stderr[-3000:]}")
    after = {n: on(n, "pidof corosync").strip() for n, _ in NODES}
    wait(lambda: "Qdevice" in votes("node2"), 30)
    seen.update(after_votes=votes("node1"), step06=step_lines(added.stderr, "06-start-and-verify"),
                step07=step_lines(added.stderr, "07-quorum-device"),
                pids=", ".join(f"{n}: {pids[n]} -> {after[n]}" for n, _ in NODES))
    on("node2", CUT)
    try:
        wait(lambda: "NV" in on("node2", "corosync-quorumtool -s") and "Quorate:          Yes" in on("node1", "corosync-quorumtool -s"), 60)
        seen.update(cut1=votes("node1"), cut2=votes("node2"))
    finally:
        on("node2", "nft delete table inet cut")
    wait(lambda: all("Total votes:      3" in on(n, "corosync-quorumtool -s") for n, _ in NODES), 60)
    seen["healed"] = votes("node2")
    seen["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    seen["version"] = on("node1", "corosync -v | head -n 1").strip()
    seen["qdevice"] = on("node1", "dpkg-query -W -f='${Version}' corosync-qdevice").strip()
    return seen


def page(s: dict[str, str]) -> str:
    def block(text: str) -> str:
        return f"```text\n{text}\n```"

    return f"""# A quorum device

<!-- Written by tools/qdevice_page.py from a real run on three lab hosts; run it again to refresh. -->

A two-node cluster cannot tell "the other node died" from "the link between us died". The chapter's
cluster, like every two-node cluster the runbook makes without a device, runs with `two_node: 1`:
either node keeps quorum alone, so after a split both may go on, which is safe only when fencing
decides who survives. A quorum device is a third vote on a host outside the cluster:
`corosync-qnetd` there, `corosync-qdevice` on every node. When the two nodes lose each other, the
one that still reaches the qnetd host (and that its algorithm picks) keeps quorum, and the other
loses it and stops its services.

Name the device in the cluster file (`clusters/chapter-qdevice.yaml` is the chapter's cluster with
one) and run the runbook again. Step 07 installs and starts `corosync-qnetd`, makes and hands out the
certificates in the order the tools need, starts `corosync-qdevice` on every node and waits until
every node counts the device's vote; step 02 leaves `two_node` out, as Corosync requires, and step
06 applies that to running nodes by reload.

```yaml
quorum:
  device:
    model: net
    net:
      host: 10.0.66.203    # where corosync-qnetd runs: not a cluster node
      name: qnetd          # how the runbook reaches it over SSH (the runbook's own key, not written)
      algorithm: ffsplit   # fifty-fifty split, for an even number of nodes (lms: last man standing)
      tie_breaker: lowest  # on an even split, the half with the lowest node id keeps quorum
```

With `ffsplit` the runbook also writes `votes: 1`: corosync-qdevice refuses ffsplit without it.
`tls: on` is Corosync's default and the runbook's; the file that carries the cluster's private key
(PKCS#12, no password) is copied from the primary to the other nodes only inside the runbook's own
staging script, kept 0600, and deleted once imported. `runbook lab up` on such a file makes the
qnetd host too. The qnetd host listens on TCP 5403: open it to the nodes if it has a firewall.
Preflight tries it from every node before anything changes: a refused connection is fine before the
first run (nothing listens yet), silence fails the run, naming the node, the qnetd host and the port.

## What a real run showed

Lab hosts on {s['date']}, {s['version']}, corosync-qdevice {s['qdevice']}; the cluster is
`tiebreak`, nodes `node1` (node id 1) and `node2`, qnetd at {QNETD[1]}.

**Before**: two nodes, `two_node`, node1's view:

{block(s['before'])}

**The split without a device.** nftables on node2 drops everything from and to node1. With
`two_node`, each half keeps quorum with its one vote: both nodes go on, and if both run the same
resources, they run twice (split brain). Only fencing, which lets one node switch the other off
before taking over, makes this safe. node1's view:

{block(s['split1'])}

and node2's, at the same time:

{block(s['split2'])}

**The device added** to the running cluster with `runbook run`. Step 06 reloads, so Corosync keeps
running (pids {s['pids']}):

{block(s['step06'])}

and step 07 sets the device up:

{block(s['step07'])}

**After**: three votes, and each node's own flags `A,V,NMW` (the device is Alive and Voting for it,
Not Master Wins):

{block(s['after_votes'])}

## A split, with the qnetd host still reachable

nftables on node2 drops everything from and to node1; both still reach the qnetd host. With
`ffsplit` and `tie_breaker: lowest`, the device gives its vote to node1's half. node1 keeps quorum
with 2 of 3 votes:

{block(s['cut1'])}

node2 sees the device alive but not voting for it (`A,NV`), and is not quorate, so Pacemaker there
would stop its resources:

{block(s['cut2'])}

With the rule deleted, the two find each other again and both count 3 votes (node2's view):

{block(s['healed'])}

## When it does not count

- Step 07 fails with "the quorum device's vote does not count": run `corosync-qdevice-tool -sv` on
  the node it names. "Connect failed" or a state that never reaches "Connected" is the network or a
  firewall between the node and TCP 5403 on the qnetd host; a certificate error names the database.
- "50:50 split algorithm works only if quorum.device.votes configuration key is set to 1" in the
  node's log is a hand-written file without `votes: 1`; the runbook writes it.
- A node whose certificate database trusts another qnetd's CA is made again by the next run (the old
  database kept as `nssdb.runbook-<time>.bak`), and imports the cluster's certificate from the primary.
- Taking `quorum.device` out of the cluster file and running again stops and disables
  `corosync-qdevice` on the nodes first (step 02, before the file without the device goes in, as pcs
  does it: a qdevice still running at the reload exits without unregistering, and votequorum then
  lists a dead `Qdevice (votes 0)` until Corosync restarts), then puts `two_node` back by reload. The
  qnetd host is left as it is, since it may serve other clusters.
"""


if __name__ == "__main__":
    raise SystemExit(main(__doc__ or "", PAGE, LAB, collect, page))
