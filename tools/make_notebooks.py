#!/usr/bin/env python3
"""(Re)write the step notebooks in notebooks/ from the source held in this file.

The notebooks are generated, not hand-edited, so that they stay thin, reviewable and identical from
one run of this script to the next: nbformat v4.5, kernel `python3`, no outputs, no execution counts,
fixed cell ids. The `parameters` cell is the chapter's cluster (clusters/chapter.yaml, read through
runbook.model so it is exactly what `to_parameters(load_cluster(...))` gives) plus `check` and
`record_dir`; edit the cluster file or this script, never the notebooks.

    python tools/make_notebooks.py            # write notebooks/*.ipynb
    python tools/make_notebooks.py --check    # exit 1 if notebooks/ is not what this script writes
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from runbook.model.rules import to_parameters

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from runbook.model.load import load_cluster  # noqa: E402  # noqa: E402
from runbook.model.rules import PARAMETER_KEYS  # noqa: E402

CLUSTER_FILE = ROOT / "clusters" / "chapter.yaml"
NOTEBOOKS = ROOT / "notebooks"

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}

# One short help text per parameter. papermill shows them (`papermill NOTEBOOK --help-notebook`):
# its parser reads `name = value  # help` on one line, so no "=" may appear in these texts.
PARAMETER_HELP = {
    "cluster_name": "totem cluster_name on 2.x/3.x (1.x has none): letters, digits, _ and -",
    "nodes": "every node: name, its address (or addresses: one per link), nodeid; the primary makes the authkey",
    "generation": "Corosync generation: 'auto' (detect on the nodes) or 1, 2, 3",
    "transport": "'auto': udpu on 1.x/2.x, knet on 3.x; 'default': Corosync's own; or 'udpu', 'udp', 'knet'",
    "crypto": "'auto': off on 1.x, on on 2.x, on on 3.x with knet; 'default': none written; or 'on', 'off'",
    "rrp_mode": "redundant ring mode: None (not written), 'none', 'passive', 'active', 'rr' (link_mode on 3.x)",
    "pacemaker_plugin": "1.x only: load Pacemaker as a Corosync plugin (service { name: pacemaker })",
    "totem": "totem timings (ms) and crypto by Corosync's names; None: Corosync's own default",
    "logging": "the chapter's logging: syslog and stderr, no log file, no debug",
    "ssh": "how to reach the nodes (host keys are always checked); never a password",
    "links": "one entry per link (interface section): number, mcastport, knet options ...",
    "quorum": "votequorum: two_node, wait_for_all, last_man_standing, expected_votes, device ...",
    "extra": "other top-level corosync.conf sections, written verbatim on every generation",
    "legacy_1x": "sections and keys written on Corosync 1.x only (the chapter's amf, aisexec ...)",
    "name_in_conf": "write totem cluster_name on 2.x/3.x",
    "nodelist": "write the nodelist on 2.x/3.x (False only for multicast without one)",
    "backups": "keep: newest runbook backups kept per replaced file (the original is kept besides)",
    "firewall": "check: preflight names a blocking firewall and the rule to add; manage: step 05 adds it",
}
# The annotation papermill shows as each parameter's type.
PARAMETER_TYPE = {
    "cluster_name": "str",
    "nodes": "list",
    "generation": "\"str or int\"",  # quoted: papermill reads no `|` in an annotation
    "transport": "str",
    "crypto": "str",
    "rrp_mode": "str",
    "pacemaker_plugin": "bool",
    "totem": "dict",
    "logging": "dict",
    "ssh": "dict",
    "links": "list",
    "quorum": "dict",
    "extra": "dict",
    "legacy_1x": "dict",
    "name_in_conf": "bool",
    "nodelist": "bool",
    "backups": "dict",
    "firewall": "str",
}
EXTRA_PARAMETERS = (
    ("check", "bool", False, "True: dry run, show what would change and change nothing"),
    ("take_over", "bool", False, "True (`--take-over`): move nodes that are members of another running cluster into this one"),
    ("restart_all", "bool", False, "True (`--restart-all`): a change that restarts every node together, stopping the running cluster, may be made"),
    ("rotate_key", "bool", False, "True (`runbook rotate-key`): the primary makes a new authkey and every node takes it"),
    ("record_dir", "\"str or None\"", None, "set by `runbook run`: the run directory where this step's report is saved as JSON"),
)


@dataclass(frozen=True)
class StepNotebook:
    stem: str
    title: str
    call: str
    intro: str
    look: str

    @property
    def number(self) -> int:
        return int(self.stem.split("-", 1)[0])


STEPS = (
    StepNotebook(
        stem="00-preflight",
        title="Preflight checks",
        call="steps.run_preflight(cluster, hosts, check=check, take_over=take_over, restart_all=restart_all, rotate_key=rotate_key)",
        intro="""\
This step changes nothing. It logs in to every node over SSH, with the host key checked against
`known_hosts`, and finds out whether the node is ready: can commands run as root (directly or through
sudo), is the operating system one the runbook knows how to handle, and does the node really carry
the address the cluster file gives it. When `generation` is `auto`, it also looks at which Corosync
the node has or will get.

**Why.** The chapter starts straight away with `apt-get install` on both nodes. If the second node
turned out to be unreachable halfway through, the first one would already be modified. Checking all
nodes first means a run either goes ahead on every node or stops before touching any.

**Corosync generations.** The answer found here steers every later step:

- **1.x**: the chapter's world, Ubuntu 12.04. The chapter's files apply as written.
- **2.x**: nodes listed in a `nodelist`, quorum from votequorum, Pacemaker as a separate daemon.
- **3.x**: Debian 10 and later, Ubuntu 20.04 and later, RHEL 8 and later (from its High
  Availability repository). knet is the transport, and several
  of the chapter's instructions no longer do what the chapter intends (steps 2, 4 and 5 explain).

> **Before you run: let Corosync through the firewall.** This step checks SSH, root, the system
> and the addresses; it does not look at firewalls. Corosync needs UDP between the nodes, on each
> link's own addresses. With knet (3.x) that is one port per link: the link's `mcastport`, or
> 5405 + N for link N when the cluster file sets none (UDP 5405 for link 0, 5406 for link 1).
> With udpu (the chapter's transport on 1.x) it is the ring's `mcastport`, 5405 in the chapter;
> with udp (multicast), `mcastport` and `mcastport - 1`. For the chapter's cluster (one knet link,
> UDP 5405), on node1 accept UDP 5405 from node2, and on node2 the same from 10.0.66.201:
>
> ```sh
> # nftables (Debian's /etc/nftables.conf has table inet filter with an input chain)
> nft add rule inet filter input ip saddr 10.0.66.202 udp dport 5405 accept
> # firewalld (RHEL)
> firewall-cmd --permanent --add-rich-rule='rule family="ipv4" source address="10.0.66.202" port port="5405" protocol="udp" accept'
> firewall-cmd --reload
> # ufw (Ubuntu)
> ufw allow from 10.0.66.202 to any port 5405 proto udp
> ```
>
> A rule added with `nft add` lasts until the next boot; put it in `/etc/nftables.conf` to keep
> it. The lab hosts behind the guide's pages have no firewall. If Corosync's traffic is dropped,
> step 6 waits and then reports the members it cannot see, and Corosync's log says
> `link: host: 2 link: 0 is down`. Every port, per transport and link, is on the guide's
> *Firewall and packages* page.""",
        look="""\
**What to look for.** One line per node. A failed node stops the run here, with the reason (no
route, unknown host key, not root, address not on any interface); fix it and run the step again.
Nothing has been changed on any node yet.""",
    ),
    StepNotebook(
        stem="01-install",
        title="Install Corosync",
        call="steps.install_corosync(cluster, hosts, check=check)",
        intro="""\
Installs the `corosync` package on every node with the node's own package manager, without asking
questions. A node that already has it is left alone.

**Why.** Both of the chapter's nodes need the Corosync daemon and its tools (`corosync-keygen`,
`corosync-cfgtool`); the chapter installs them with `apt-get install corosync`.

**Corosync generations.** The package decides the generation: Ubuntu 12.04 brings 1.x; Debian 9
and Ubuntu 18.04 bring 2.x; Debian 10+, Ubuntu 20.04+ and RHEL 8+ bring 3.x. On RHEL the package is
in the High Availability repository, which must be enabled first (see Firewall and packages). Newer Debian packages also start Corosync as soon as they are
installed, with a placeholder configuration (one node listening on 127.0.0.1); that daemon is not
the cluster yet, and step 6 restarts it with the real configuration.""",
        look="""\
**What to look for.** `changed` where the package was installed, `unchanged` where it already was.
With `check = True`, `would change` marks the nodes that still lack it.""",
    ),
    StepNotebook(
        stem="02-corosync-conf",
        title="Write corosync.conf",
        call="steps.write_config(cluster, hosts, check=check)",
        intro="""\
Writes `/etc/corosync/corosync.conf` on every node, rendered for the Corosync generation the node
runs from the one cluster description in the notebook's `parameters` cell (the guide's pages leave
that cell out: their values are `clusters/chapter.yaml`, shown on the home page). The file is
replaced atomically, the old one is kept as a backup, and the report shows the difference.

**Why.** This file is the cluster: who the members are, how they reach each other, how long to
wait before declaring a node gone. The chapter writes it by hand on both nodes; the two copies differ
only in `bindnetaddr`, which has to be the address of the node the file is on: 10.0.66.201 in
node1's file, 10.0.66.202 in node2's.

**Corosync generations.**

- **1.x**: the chapter's layout exactly: `member`/`memberaddr` entries inside `interface`,
  `transport: udpu` so no multicast is needed, `rrp_mode`, and the `service`, `aisexec` and `amf`
  sections that load Pacemaker as a plugin.
- **2.x**: Corosync 2.4 still reads the chapter's file. It logs `member section is deprecated.`
  and ignores the `service`, `aisexec` and `amf` sections. What breaks is around it: 2.x loads no
  plugins, so `service { name: pacemaker }` no longer starts Pacemaker (it is a daemon of its
  own there), and a file without a `quorum` section loads no quorum provider, so every partition
  counts itself quorate.
- **3.x**: Corosync 3.1.7 rejects the chapter's file: `corosync -t` reports `member section is
  deprecated`, then `No valid name found for local host`, and exits 8.
- On both, the runbook writes the modern equivalent instead: a `nodelist` with each node's name, id
  and address, votequorum with `two_node: 1` for a two-node cluster, and no Pacemaker plugin
  sections. On 3.x the transport is knet, with `link_mode` where the chapter has `rrp_mode`.
  Corosync 3's own default is no encryption; the runbook's `crypto: auto` turns it on with knet,
  which is why step 3 matters.""",
        look="""\
**What to look for.** Under the table: the commands each node ran, then each node's whole
`corosync.conf` as it now is. Open the diff under a node to see exactly what changed. On a second
run every node says `unchanged` and runs no command: the step never rewrites a file that is
already right.""",
    ),
    StepNotebook(
        stem="03-authkey",
        title="Share the authkey",
        call="steps.distribute_authkey(cluster, hosts, check=check, rotate=rotate_key)",
        intro="""\
Makes sure every node has the same `/etc/corosync/authkey`, owned by root:root with mode 0400. The
key is generated on the primary node with `corosync-keygen` if it has none yet, then copied to the
other nodes. Its bytes pass from node to node through this controller's memory only: they are never
shown here, and the report names a key only by the start of its SHA-256 digest.

**Why.** Members of a cluster authenticate (and, when crypto is on, encrypt) their traffic with this
shared key; a node with a different key cannot take part. The chapter generates it on the primary,
copies it to the secondary and then tightens its owner and mode.

**Corosync generations.** On 1.x, `corosync-keygen` reads `/dev/random` and can sit for minutes
waiting for entropy, printing nothing new (the chapter asks you to type on the keyboard); the
runbook takes the same 128 bytes from `/dev/urandom` instead, so where the by-hand box below shows
1.x's `corosync-keygen`, `head -c 128 /dev/urandom > /etc/corosync/authkey` is the command that
does not wait. On 2.x, `corosync-keygen -l` reads `/dev/urandom`. On 3.x, `corosync-keygen` always
reads `/dev/urandom`, and its `-l` is kept only so that old scripts still run: it does nothing.
The chapter's 1.x configuration has `secauth: off`, so its key is not used for encryption. Corosync
3's own default is no encryption either; it is the runbook's `crypto: auto` that turns it on with
knet, and then the key is what protects the cluster traffic.""",
        look="""\
**What to look for.** On a first run, the primary's line says it made a key, and its commands end
with `made 256 bytes, sha256 …`: the start of the new key's digest. The other nodes say they got
the primary's key (`copied the key from node1`); a first run prints no digest for them. To compare
the digests of every node, plan the step again: `runbook plan CLUSTER --only 3` changes nothing
and reports, on every other node, `holds the same authkey as node1 (sha256 …)` with the primary's
12 hex digits (or `sha256sum /etc/corosync/authkey` on each node shows the whole digest). `changed` on a secondary means its key was missing or different and has been replaced
with the primary's.""",
    ),
    StepNotebook(
        stem="04-cfgtool",
        title="The cfgtool line in rc.local",
        call="steps.cfgtool_line(cluster, hosts, check=check)",
        intro="""\
On Corosync 1.x and 2.x, adds `/usr/sbin/corosync-cfgtool -r` to `/etc/rc.local`, just before its
`exit 0`, once. On 3.x it adds nothing, and says why.

**Why.** With redundant rings (`rrp_mode`), a ring whose traffic falls behind the others' is
marked FAULTY and left out. `corosync-cfgtool -r` clears those marks on every node of the cluster,
so that all rings are used again; the chapter runs it at every boot. Since 1.4.0 Corosync also does
this by itself: it tests a faulty ring every `rrp_autorecovery_check_timeout` milliseconds (1000 by
default) and takes it back once it answers, logging `Automatically recovered ring N`. So `-r` is
the manual reset for a ring that does not come back on its own. The chapter's cluster has a single
ring, which is never marked faulty (there is no other ring to compare it with), so even on 1.x its
line has nothing to reset. The runbook adds it on 1.x and 2.x all the same, as the chapter does:
it does no harm.

**Corosync generations.** The line can matter on 1.x and 2.x only, with two rings. Corosync 3 has no `-r`
option: `corosync-cfgtool -r` there prints the usage text and still exits 0, so the line would run
at every boot, do nothing, and report success. It is also not needed: knet notices when a link comes
back and uses it again by itself. So on 3.x this step is reported as `skipped`.""",
        look="""\
**What to look for.** On 3.x every node says `skipped`. If an older `rc.local` still carries the
line, the report says so and leaves the file as it is.""",
    ),
    StepNotebook(
        stem="05-enable-at-boot",
        title="Start Corosync at boot",
        call="steps.enable_at_boot(cluster, hosts, check=check)",
        intro="""\
Makes every node start Corosync when it boots, in whatever way that node's system expects. It does
not start Corosync now; step 6 does.

**Why.** On the chapter's Ubuntu 12.04 the init script refuses to start Corosync until
`/etc/default/corosync` says `START=yes`, so the chapter turns `START=no` into `START=yes`.

**Corosync generations.** Where the defaults file has a `START=` line, as with the chapter's 1.x
packages, the step sets it to `yes`, as the chapter does. Later packages dropped that switch: with
3.x on Debian 12, `/etc/default/corosync` has no `START=` line at all, so editing it would change
nothing. The step therefore does both things that apply: it sets `START=yes` where the line exists, and
it enables the service through the init system (`systemctl enable corosync` under systemd,
`update-rc.d` or `chkconfig` for SysV init scripts), so the node starts Corosync at its next boot.
Debian's package enables the unit when it is installed, so on Debian this step usually finds
nothing to do (and the by-hand box below has nothing to type for 3.x). On RHEL, `dnf install corosync`
leaves the unit disabled: there the step runs `systemctl enable corosync`, and by hand you type it.

**Whether to start at boot at all.** The chapter wants it, and so does a cluster that should come
back by itself after a power cut: with `two_node` Corosync also turns on `wait_for_all`, so nodes
that boot together wait for each other before they are quorate. Many HA guides (the RHEL HA guide,
Clusters from Scratch) advise the other way for clusters with fencing: a node that was fenced
(rebooted by the others) after a fault should stay out until someone has looked at it, instead of
rejoining on its own, perhaps into the same fault, and being fenced again. The runbook does what the
chapter does and enables Corosync on every node; a node you want to keep out after its next boot
takes `systemctl disable corosync` by hand, and the next `runbook run` enables it again (this step
says so as a change).""",
        look="""\
**What to look for.** The method used on each node (defaults file, systemd or SysV), and
`unchanged` where Corosync was already enabled.""",
    ),
    StepNotebook(
        stem="06-start-and-verify",
        title="Start Corosync and verify the membership",
        call="steps.start_and_verify(cluster, hosts, check=check, restart_all=restart_all)",
        intro="""\
Starts Corosync on every node where it is not running. Where a running daemon has not loaded the
files the earlier steps wrote, it compares what the daemon runs (its map, `corosync-cmapctl`) with
the new file key by key and does only what the change takes: one `corosync-cfgtool -R` for a setting
Corosync applies at run time (a token timeout, logging, a new node), a restart one node at a time
for one it reads only at start, and every node together only where nodes that differ cannot work
together (cluster_name, transport, a node's address); that last stops the cluster, so a run asks for
`--restart-all` first (the guide's page "Changing a running cluster" shows each kind). Then it waits until every
node sees every other node as a member and the cluster is quorate. The report shows the membership
as each node reports it.

**Why.** The chapter stops once the files are in place. Only a running, complete membership shows
that the configuration, the key and the network really work together.

**Corosync generations.** Two things make "start it and trust the exit code" wrong, on any
generation. Debian's sysv init script exits 0 even when Corosync fails to start (systemd's
`Type=notify` unit does report a failed start, but a daemon that started is not yet a member), so
this step checks for the daemon itself and asks it for the membership. And a restart must wait for the old daemon to be gone:
a new `corosync` started while the old one is still shutting down exits at once, leaving the node
with no Corosync at all. The membership is read with the tools of the installed generation
(`corosync-quorumtool` on 2.x/3.x, `corosync-objctl` on 1.x).""",
        look="""\
**What to look for.** Every node lists every member, and the cluster is quorate. On a second run
nothing is restarted: the ring ID stays the same.""",
    ),
    StepNotebook(
        stem="07-quorum-device",
        title="Add the quorum device",
        call="steps.setup_quorum_device(cluster, hosts, check=check)",
        intro="""\
The chapter stops at step 06. This step goes one further, and only when the cluster file names a
quorum device (`quorum.device` with `model: net` and `net.host`): it installs and starts
`corosync-qnetd` on that host, which is not a cluster member, installs `corosync-qdevice` on every
node, makes and hands out the certificates they trust each other by, starts `corosync-qdevice`, and
then waits until every node counts the device's vote. Without a device in the cluster file it only
stops a `corosync-qdevice` that an earlier run left running.

**Why.** Two nodes cannot tell "the other node died" from "the link between us died": each sees
one vote of two. `two_node: 1` (what step 02 writes for two nodes) lets either node go on alone,
which is safe only when fencing decides who survives. A third vote from a host outside the cluster
breaks the tie instead: the node that still reaches the qnetd host keeps quorum, the other loses
it. With a device, step 02 leaves `two_node` out, as Corosync requires, and step 06 reloads the
running nodes instead of restarting them.

**Corosync generations.** 1.x has no quorum device: votequorum and `corosync-qdevice` came with
2.x, so on the chapter's own Corosync this step stops with that reason if the cluster file names a
device. 2.x (corosync-qdevice 2.4 and later) and 3.x work the same way here; on 3.x adding the device
to a running cluster takes a reload, not a restart.

**The certificates.** With `tls: on` (Corosync's default) the nodes and the qnetd host trust each
other through a CA on the qnetd host. The order is fixed: the CA first, then a database on every
node that trusts it, then one certificate request from the primary, signed on the qnetd host,
imported on the primary with its private key, and copied from there to the other nodes. The file
that carries the private key (PKCS#12, with an empty password) goes only through the runbook's own
copy, never appears in this page or the run's record, is kept 0600, and is deleted once imported.""",
        look="""\
**What to look for.** Each node's line ends with "the quorum device's vote counts: 3 of 3
votes, quorate" (for two nodes with one device vote). The membership each node printed shows the
device as `Qdevice`, and the node's own flags `A,V`: Alive and Voting. On a second run nothing
changes.""",
    ),
)


def _literal(value: object) -> str:
    text = repr(value)
    if "\n" in text:  # cannot happen for the validated cluster; keep the one-line form papermill reads
        raise ValueError(f"parameter value {text[:40]!r} does not fit on one line")
    return text


def parameters_source(parameters: dict[str, object]) -> str:
    keys = list(parameters)
    if tuple(keys) != tuple(PARAMETER_KEYS) or not set(keys) == set(PARAMETER_HELP) == set(PARAMETER_TYPE):
        missing = sorted(set(keys) - (set(PARAMETER_HELP) & set(PARAMETER_TYPE)))
        raise SystemExit(
            f"make_notebooks: the cluster keys changed ({', '.join(keys)}); "
            f"add help texts for: {', '.join(missing) or '(none)'} and remove stale ones"
        )
    lines = ["# The chapter's own cluster (clusters/chapter.yaml). Papermill replaces these values;"]
    lines.append("# in Jupyter, edit them here. Nothing secret belongs here: it is recorded with the run.")
    for key in keys:
        lines.append(f"{key}: {PARAMETER_TYPE[key]} = {_literal(parameters[key])}  # {PARAMETER_HELP[key]}")
    for key, type_name, value, help_text in EXTRA_PARAMETERS:
        lines.append(f"{key}: {type_name} = {_literal(value)}  # {help_text}")
    return "\n".join(lines)


def by_hand_cell(step: StepNotebook) -> str | None:
    """The step's "by hand" box for the chapter's cluster (1.x and 3.x), from the plans the runbook applies."""
    if step.number == 0:
        return None
    if step.number == 7:
        from runbook.steps.by_hand import qdevice_markdown

        return qdevice_markdown(load_cluster(CLUSTER_FILE))
    from runbook.steps.by_hand import step_markdown

    return step_markdown(load_cluster(CLUSTER_FILE), step.stem, str(CLUSTER_FILE.relative_to(ROOT)))


def build(step: StepNotebook, parameters: dict[str, object]) -> nbformat.NotebookNode:
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell(f"# Step {step.number} — {step.title}\n\n{step.intro}", id=f"{step.stem}-intro"),
        v4.new_code_cell(parameters_source(parameters), id=f"{step.stem}-parameters", metadata={"tags": ["parameters"]}),
        v4.new_code_cell(
            f'from runbook import notebook, steps\ncluster, hosts = notebook.setup(globals(), step="{step.stem}")',
            id=f"{step.stem}-setup",
        ),
        v4.new_code_cell(f"report = notebook.record({step.call})\nreport", id=f"{step.stem}-run"),
        v4.new_markdown_cell(step.look, id=f"{step.stem}-look"),
    ]
    by_hand = by_hand_cell(step)
    if by_hand:
        cells.append(v4.new_markdown_cell(by_hand, id=f"{step.stem}-by-hand"))
    nb = v4.new_notebook(cells=cells, metadata={"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)})
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def render(step: StepNotebook, parameters: dict[str, object]) -> str:
    text = nbformat.writes(build(step, parameters), version=4)
    return text if text.endswith("\n") else text + "\n"


def generate() -> dict[str, str]:
    """File name -> exact text of every step notebook."""
    parameters = to_parameters(load_cluster(CLUSTER_FILE))
    return {f"{step.stem}.ipynb": render(step, parameters) for step in STEPS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=NOTEBOOKS, help=f"directory to write to (default {NOTEBOOKS})")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any notebook differs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = args.out / name
        data = text.encode("utf-8")
        current = path.read_bytes() if path.exists() else None
        if current == data:
            continue
        stale.append(name)
        if not args.check:
            args.out.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
    if args.check:
        if stale:
            print(f"out of date (run tools/make_notebooks.py): {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"{len(STEPS)} notebooks up to date", file=sys.stderr)
        return 0
    print(f"wrote {len(stale)} of {len(STEPS)} notebooks in {args.out}" if stale else "notebooks already up to date", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
