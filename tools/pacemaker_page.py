#!/usr/bin/env python3
"""Write docs/after-corosync.md from a real lab run: Pacemaker started on the runbook's cluster.

    python tools/pacemaker_page.py            # lab up (2 booting Debian 12 hosts), the runs, lab down; writes the page
    python tools/pacemaker_page.py --print    # the same, the page on stdout instead

Brings up two booting Debian 12 hosts (`pcmk`, 10.0.126.0/24), makes the cluster with `runbook run`,
installs Debian 12's own `pacemaker` package on both nodes (offline, from the tree's apt cache),
starts it and waits until `crm_mon -1` shows both nodes online. Then it edits one node's
corosync.conf by hand, as pcs or crmsh would, and shows what `runbook plan` says the next run would
do to that edit. Needs root, like the lab; takes about two minutes.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script: the repository's tools/ and runbook/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.lab_page import ROOT, main, sh, step_lines, wait  # noqa: E402
from tools.lab_page import on as on_lab  # noqa: E402

PAGE = ROOT / "docs" / "after-corosync.md"
LAB = "pcmk"
NODES = [("node1", "10.0.126.11"), ("node2", "10.0.126.12")]
INSTALL = ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
           "pacemaker pacemaker-cli-utils >/dev/null && dpkg-query -W -f='${Version}' pacemaker")
FENCING_CFS = "https://clusterlabs.org/pacemaker/doc/2.1/Clusters_from_Scratch/html/fencing.html"
FENCING_RHEL = ("https://docs.redhat.com/en/documentation/red_hat_enterprise_linux/9/html/"
                "configuring_and_managing_high_availability_clusters/assembly_configuring-fencing-configuring-and-managing-high-availability-clusters")


def on(host: str, command: str) -> str:
    return on_lab(LAB, host, command)


def collect(work: Path) -> dict[str, str]:
    cluster = work / "pcmk.yaml"
    data: dict[str, object] = {"cluster_name": "aftercs", "nodes": [
        {"name": n, "address": a, "nodeid": i, **({"role": "primary"} if i == 1 else {})} for i, (n, a) in enumerate(NODES, 1)]}
    cluster.write_text(yaml.safe_dump(data, sort_keys=False))
    sh("lab", "up", str(cluster), "--lab", LAB, "--os", "debian12")
    from runbook.lab import state as lab_state

    state = lab_state.LabState.load(LAB)
    assert state is not None, "the lab is not up"
    data["ssh"] = {"config": str(state.ssh_config)}
    cluster.write_text(yaml.safe_dump(data, sort_keys=False))
    sh("run", str(cluster), "--out", str(work / "runs"))
    seen = {"version": {n: on(n, INSTALL).strip() for n, _ in NODES}["node1"]}
    for node, _ in NODES:
        on(node, "systemctl start pacemaker")
    wait(lambda: "Online: [ node1 node2 ]" in on("node1", "crm_mon -1"), 120)
    mon = on("node1", "crm_mon -1")
    seen["crm_mon"] = re.sub(r"(Last updated|Last change): .*", r"\1: (time of the run)", mon).strip()
    seen["corosync"] = on("node1", "corosync -v | head -n 1").strip()
    seen["enabled"] = on("node1", "systemctl is-enabled pacemaker").strip()
    # As `crm corosync set totem.token 10000` or an edit before `pcs cluster sync` would: one node's file changed by hand.
    on("node1", "sed -i 's/^\\(\\s*\\)cluster_name: aftercs$/&\\n\\1token: 10000/' /etc/corosync/corosync.conf")
    seen["verify"] = on("node1", "crm_verify -L -V 2>&1").strip()
    planned = sh("plan", str(cluster), "--out", str(work / "runs"), check=False)
    seen["plan"] = step_lines(planned.stderr + planned.stdout, "02-corosync-conf")
    record = json.loads(sorted((work / "runs" / "aftercs").glob("*/02-corosync-conf.json"))[-1].read_text())
    seen["warning"] = next((n for n in record["notes"] if n.startswith("WARNING")), "(no warning)")
    edited = on("node1", "cat /etc/corosync/corosync.conf").splitlines(keepends=True)
    wanted = sh("render", str(cluster), "--node", "node1", "--generation", "3").stdout.splitlines(keepends=True)
    diff = difflib.unified_diff(edited, wanted, "node1: /etc/corosync/corosync.conf (edited)", "what the next run writes", n=2)
    seen["diff"] = re.sub(r"/tmp/\S+", "FILE", "".join(line for line in diff if "Generated" not in line)).strip()
    seen["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return seen


def page(s: dict[str, str]) -> str:
    def block(text: str) -> str:
        return f"```text\n{text}\n```"

    return f"""# After Corosync

<!-- Written by tools/pacemaker_page.py from a real run on two booting Debian 12 lab hosts; run it again to refresh. -->

Corosync, as the runbook leaves it, only knows who is in the cluster and whether that part has
quorum. Running services on the cluster (an IP address that moves, a file system, a database) is
the job of a resource manager on top of it, nearly always Pacemaker. The chapter's 1.x loaded it as a
Corosync plugin (`service {{ name: pacemaker ver: 0 }}`); since Corosync 2 Pacemaker is a daemon of
its own that talks to Corosync, and the runbook writes no plugin line there.

## Fencing first

Before any resource goes on a cluster, it needs fencing (STONITH): a way for the surviving nodes to
switch a lost node off (a power switch, the hypervisor, a management board) before they take over
its services. Without it, a node that only lost the link keeps running its services while the other
starts them too, and with `two_node` (what the runbook writes for two nodes without a quorum device)
both halves keep quorum when the link breaks (the picture on [What Corosync is](concepts.md)).
Pacemaker refuses to start resources until fencing is configured or explicitly turned off (as
`crm_verify` says below); turning it off is for tests only. Set it up with the
[fencing chapter of Clusters from Scratch]({FENCING_CFS}) or the
[fencing chapter of the RHEL HA guide]({FENCING_RHEL}), and add a [quorum device](quorum-device.md)
to a two-node cluster.

## Pacemaker on the runbook's cluster

Lab hosts on {s['date']}: two booting Debian 12 hosts, {s['corosync']}, the cluster made by
`runbook run`; then Debian 12's own package on both nodes (`pacemaker` {s['version']}, with
`pacemaker-cli-utils` for `crm_mon`):

```sh
apt-get install pacemaker pacemaker-cli-utils   # on every node
systemctl start pacemaker                       # on every node (the package enables it at boot: {s['enabled']})
crm_mon -1                                      # on any node
```

`crm_mon -1` on node1, once both nodes were online:

{block(s['crm_mon'])}

Pacemaker found the nodes by their names in the runbook's nodelist (`name: node1`), and the cluster
by its `cluster_name`. Nothing runs on it yet, and nothing may: `crm_verify -L -V` on node1 says why.

{block(s['verify'])}

## Who owns corosync.conf now

pcs (`pcs cluster setup`, `pcs quorum device add`, `pcs cluster sync`) and crmsh (`crm cluster init`,
`crm corosync set`) write `corosync.conf` on every node themselves. The runbook writes it from the
cluster file. Both at once is a tug of war: the next `runbook run` puts the cluster file's version
back on every node, replacing their edits (each replaced file kept as
`corosync.conf.runbook-<time>-<run>.bak`), and step 06 then applies the difference to the running
daemons. `runbook plan` shows it before anything happens. Here node1's file got `token: 10000` by
hand, as `crm corosync set totem.token 10000` would have written it. The plan for step 02 says what
the next run would do, and warns: the file changed on node1 alone, so someone changed it there.

{block(s['plan'])}

The warning whole, as the run's record has it:

> {s['warning']}

and the change it would make on node1:

```diff
{s['diff']}
```

Choose one owner:

- **The cluster file** (the runbook's way): make every change there and run `runbook run`; never
  edit `corosync.conf` on a node, nor let pcs or crmsh do it. `runbook status` names a node whose
  file no longer is the rendered one.
- **pcs or crmsh**: take the current file into a cluster file once (`runbook migrate
  /etc/corosync/corosync.conf`) if you want to keep the runbook's checks (`runbook status`), and
  stop running `runbook run` on that cluster, since it would undo their changes.
"""


if __name__ == "__main__":
    raise SystemExit(main(__doc__ or "", PAGE, LAB, collect, page))
