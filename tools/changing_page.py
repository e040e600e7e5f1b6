#!/usr/bin/env python3
"""Write docs/changing.md from a real lab run: what each kind of change does to the running daemons.

    python tools/changing_page.py            # lab up (3 hosts), the changes, lab down; writes docs/changing.md
    python tools/changing_page.py --print    # the same, the page on stdout instead

Brings up a three-node lab (`changing`, 10.0.124.0/24), sets up a two-node cluster on two of them
with `runbook run`, then makes its changes with `runbook run`, reading every host's Corosync pid
before and after each: a token timeout (reloaded), quorum.last_man_standing (restarted one node at a
time), a new cluster_name without `--restart-all` (refused) and with it (every node restarted
together), a third node added and removed again (the two reloaded), and `runbook rotate-key`. The
page quotes step 06's lines of each run as printed. Needs root, like the lab; takes about 3 minutes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "changing.md"
LAB, SUBNET = "changing", "10.0.124.0/24"
RUNBOOK = [sys.executable, "-m", "runbook"]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUNBOOK, *args], capture_output=True, text=True, cwd=ROOT, check=check, timeout=900)


def pids() -> dict[str, str]:
    return {n: sh("lab", "ssh", "--lab", LAB, n, "pidof", "corosync", check=False).stdout.strip() or "none" for n in ("node1", "node2", "node3")}


def step06(stderr: str) -> str:
    """Step 06's lines of a run (or preflight's refusal), without this machine's paths."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if "06-start-and-verify ..." in line or "00-preflight ... FAILED" in line), None)
    if start is None:
        return stderr
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\[\d+/\d+\]|^runbook (run|plan):", lines[i])), len(lines))
    shown = [line for line in lines[start:end] if not line.strip().startswith(("$ corosync-cfgtool -s", "$ corosync-quorumtool"))]
    return re.sub(r"/tmp/\S+", "FILE", "\n".join(shown))


def change(work: Path, base: dict[str, object], title: str, *flags: str, what: str | None = None, command: str = "run",
           **overrides: object) -> dict[str, object]:
    path = work / f"{len(list(work.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({**base, **overrides}, sort_keys=False))
    before = pids()
    result = sh(command, str(path), "--out", str(work / "runs"), *flags, check=False)
    said = step06(result.stderr)
    if "removed from the cluster file:" in result.stderr:  # preflight's announcement, before step 06's lines
        said = next(line for line in result.stderr.splitlines() if "removed from the cluster file:" in line) + "\n...\n" + said
    described = what or f"The cluster file gains `{yaml.safe_dump(overrides, default_flow_style=True).strip()}`"
    return {"title": title, "flags": " ".join(flags), "exit": result.returncode, "before": before, "after": pids(),
            "said": said, "what": described, "command": command}


def page(cases: list[dict[str, object]]) -> str:
    out = [PAGE_HEAD]
    for case in cases:
        before, after = case["before"], case["after"]
        pid_line = ", ".join(f"{n}: {before[n]} -> {after[n]}" for n in before)  # type: ignore[index]
        out += [f"### {case['title']}", "", f"{case['what']}; "
                f"`runbook {case['command']}{(' ' + str(case['flags'])) if case['flags'] else ''}` exits {case['exit']}. Corosync pids: {pid_line}.", "",
                "```text", str(case["said"]).rstrip(), "```", ""]
    out.append(PAGE_TAIL)
    return "\n".join(out)


PAGE_HEAD = """# Changing a running cluster

<!-- Written by tools/changing_page.py from a real run on three lab hosts (Corosync 3.1.7); run it again to refresh. -->

Edit the cluster file and run `runbook run` again: the steps write only what changed, and step 06
does only what the change takes on the running daemons. It reads each node's running configuration
(`corosync-cmapctl`), compares it with the new file key by key, and sorts each difference into one
of the four kinds Corosync's own project lists for its options, checked against Corosync's source at
2.4.6 and 3.1.7 and on real 3.1.7 daemons (`tests/lab/test_reload_kinds.py`):

| Kind | What step 06 does | Examples |
|---|---|---|
| changeable at run time | `corosync-cfgtool -R` once, after every node has its new file; it reloads every node. No daemon restarts. | `totem.token`, `consensus`, logging, `quorum.two_node`, `expected_votes`, a node added to or removed from the nodelist, a knet link added |
| read only at start, nodes may differ for a while | a rolling restart: one node at a time, and the next only once the restarted node is back, quorate, with the members it had | `quorum.wait_for_all`, `last_man_standing`, `auto_tie_breaker`, `totem.nodeid`, `link_mode`, a key the table does not know |
| read only at start, nodes that differ cannot work together | every node stopped, then started together: the cluster stops meanwhile, so `runbook run` refuses it before anything is written unless given `--restart-all` | `totem.cluster_name`, `transport`, `ip_version`, `netmtu`, crypto before 3.1, a link's port, an existing node's address |
| nothing differs | nothing, even if the file's text changed (comments, order) | |

`runbook plan` shows the same decision per node, with the keys that force it, before anything is
done. A node where Corosync does not run is started last, after the reload (so the running nodes
know it first). Corosync 1.x has no reload, so there every change is a restart, as the chapter did
it.

**Adding a node** is adding it to the file's `nodes`: steps 01 to 05 install and configure it, step 06
reloads the nodes that run (they learn the new nodelist) and then starts it. Going from two nodes to
three, the reload also turns `two_node` off; from three to two, on again. Corosync 3.1.7 takes both
by reload (tested on real daemons, with the quorum read every 200 ms throughout). **Removing a node**
is deleting it from `nodes`: the nodes that stay still list it in their running nodelist, which is
where the runbook finds its address. The removed node's Corosync is stopped first (Pacemaker before
it, where it runs: a clean leave, where a node the others dropped while it ran would be a lost node,
and fenced), disabled at boot, and its `corosync.conf` and `authkey` are moved aside as
`*.runbook-<time>-<run>.removed`, so a reboot does not bring it back; then the nodes that stay reload. A removed node that cannot be
reached (it died) is named and left as it is, and one whose Corosync now runs another cluster is not
touched. Preflight refuses, before anything changes, a change of the nodes that would leave the nodes
running now without quorum, while the removed nodes stop (the old votes still count) or after the
reload (the new file's), with the votes; and the removal of a node the run reaches others through
(ProxyJump). `rotate-key` is refused while the file adds or removes nodes: run `runbook run` first.

**A new authkey** (`runbook rotate-key CLUSTER`): the primary makes one, every node gets it, and the
old one stays on each node as a root-only backup. Corosync 3.1 and later read the key again on
reload and switch every node over while accepting both keys, so one `corosync-cfgtool -R` does it with
the membership kept; the runbook then looks at the membership again after token + consensus, the
time within which a node left on another key would drop out. Before 3.1 the key is read only at
start and nodes with different keys cannot talk: every node restarts together, which needs
`--restart-all`. A reload reaches only the nodes in the reloading node's membership: a node cut off
by a wrong key must be reloaded on its own.

A reload has one trap the runbook avoids: it copies into the map some values it does not apply (a
link's `mcastport`, `quorum.wait_for_all` on 3.1.7). The runbook therefore never takes a value in the
map as proof that it is in force; it decides from the table, and restarts where the table says so.

## What each change did, on lab hosts
"""

PAGE_TAIL = """## Checking afterwards

`runbook status CLUSTER` answers, per node and without changing anything, whether the file on disk
is the rendered one, whether the running Corosync runs it (its map against the file, key by key:
after a reload that was cut short it names the keys and what a run would do), whether every node
holds the primary's key (by digest), the membership and quorum, each link, and whether Corosync
starts at boot. It exits 0 when everything agrees and 1 naming each drift and what to run; `--json`
gives the same for monitoring.

## What to do when

- A change refused with `--restart-all` named: decide whether the outage is acceptable (under
  Pacemaker it stops every resource), then run with `--restart-all`, or keep the old value.
- A rolling restart stopped with `did not rejoin within 60s`: the nodes after it were not
  restarted, and the cluster keeps running on them. Read the node's log (`journalctl -u corosync`),
  fix the file, and run again.
- `corosync-cfgtool -R failed`: Corosync refused the new file as a whole and runs the old one on
  every node (3.x checks it completely first). The message and the node's log say which key.
- A change of the nodes refused for quorum: the message gives the new file's votes, what quorum
  needs and which nodes run now. Start the nodes that are down, or add and remove fewer at a time.
- After `rotate-key`, "the membership changed ... a node is on another key": compare
  `sha256sum /etc/corosync/authkey` on every node, put the primary's key where it differs, and run
  `corosync-cfgtool -R` on that node itself (a reload reaches only the nodes in its membership).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print", action="store_true", help="print the page instead of writing docs/changing.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runbook-changing-") as tmp:
        work = Path(tmp)
        cluster_file = work / "lab.yaml"
        sh("lab", "up", "--nodes", "3", "--lab", LAB, "--subnet", SUBNET)
        try:
            from runbook.lab import state as lab_state

            state = lab_state.LabState.load(LAB)
            assert state is not None, "the lab is not up"
            base = yaml.safe_load(state.cluster_file.read_text())
            base["cluster_name"] = "daytwo"
            three = list(base["nodes"])
            base["nodes"] = three[:2]
            cluster_file.write_text(yaml.safe_dump(base, sort_keys=False))
            sh("run", str(cluster_file), "--out", str(work / "runs"))
            cases = [
                change(work, base, "A token timeout: one reload", totem={"token": 3000}),
                change(work, base, "A key read only at start: one node at a time", totem={"token": 3000}, quorum={"last_man_standing": True}),
                change(work, base, "A new cluster name, without --restart-all: refused", totem={"token": 3000},
                       quorum={"last_man_standing": True}, cluster_name="daytwo2"),
                change(work, base, "The same with --restart-all: every node together", "--restart-all", totem={"token": 3000},
                       quorum={"last_man_standing": True}, cluster_name="daytwo2"),
            ]
            settled = {"totem": {"token": 3000}, "quorum": {"last_man_standing": True}, "cluster_name": "daytwo2"}
            cases += [
                change(work, base, "A third node added: the two reload, the new one starts", what="node3 is added to the file's `nodes`",
                       **settled, nodes=three),
                change(work, base, "The third node removed again: it is stopped, the two reload",
                       what="node3 is deleted from the file's `nodes`", **settled),
                change(work, base, "A new authkey: one reload", what="Nothing in the file changes", command="rotate-key", **settled),
            ]
        finally:
            sh("lab", "down", "--lab", LAB, check=False)
    text = page(cases)
    if args.print:
        print(text)
    else:
        PAGE.write_text(text)
        print(f"wrote {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
