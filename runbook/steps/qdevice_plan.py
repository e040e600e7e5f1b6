"""Step 7's decisions, pure: what the qnetd host and each node need for the quorum device's vote.

A quorum device (model net) is two daemons: corosync-qnetd on a host outside the cluster, which
casts the tie-breaking vote, and corosync-qdevice on every node, which asks it. With TLS (the
default, `tls: on`) they trust each other through certificates, made in an order that the
packages' tools fix and that users most often get wrong:

1. the qnetd host makes a CA (Debian's package does it at install; RHEL's does not);
2. every node makes a certificate database that trusts that CA (`-i -c qnetd-cacert.crt`);
3. one node (the primary) asks for the cluster's certificate (`-r -n CLUSTER`), the qnetd host signs
   it (`-s`), and the primary imports it with its private key and exports both as a PKCS#12 file (`-M`);
4. every other node imports that file (`-m`).

The PKCS#12 file holds the cluster's private key with an empty password: it goes from the primary to
the other nodes only through the runbook's own copy (in the staging script on SSH stdin, never
shown), is kept 0600, and is deleted once imported; its key stays only in each node's database.

The facts say which of these are already done, so a second run does none of them. Each phase is a
plan the executor applies as it applies every step's, one phase after the other, since each needs
the files the one before made.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from runbook.engine import operations
from runbook.engine.plan import NodePlan, StepPlan
from runbook.model.types import Cluster, NetDevice, Node
from runbook.steps.restart import parse_state

STEP = "07-quorum-device"
TITLE = "Add the quorum device"

NODE_DIR = "/etc/corosync/qdevice/net"
NODE_DB = f"{NODE_DIR}/nssdb"
NODE_CA = f"{NODE_DIR}/qnetd-cacert.crt"
CRQ = f"{NODE_DB}/qdevice-net-node.crq"
P12 = f"{NODE_DB}/qdevice-net-node.p12"
QNETD_DB = "/etc/corosync/qnetd/nssdb"
QNETD_CA = f"{QNETD_DB}/qnetd-cacert.crt"
QNETD_PORT = 5403
CA_NICK, CERT_NICK = "QNet CA", "Cluster Cert"


def qnetd_node(net: NetDevice) -> Node:
    """The qnetd host as the SSH layer knows hosts: a name and an address (not a cluster member)."""
    return Node(name=net.name or net.host, address=net.host, nodeid=None)


def crq_on_qnetd(cluster_name: str) -> str:
    return f"{QNETD_DB}/cluster-{cluster_name}.crq"


def crt_on_qnetd(cluster_name: str) -> str:
    """Where `corosync-qnetd-certutil -s -n NAME` writes the signed certificate."""
    return f"{QNETD_DB}/cluster-{cluster_name}.crt"


def crt_on_node(cluster_name: str) -> str:
    return f"{NODE_DB}/cluster-{cluster_name}.crt"


# One script reads every fact this step needs, on a node and on the qnetd host alike. A certificate
# is named by the first 16 hex digits of the SHA-256 of its PEM text: enough to compare hosts.
FACTS_SCRIPT = f"""export LC_ALL=C
have() {{ command -v "$1" >/dev/null 2>&1; }}
digest() {{ out=$(certutil -L -d "$1" -n "$2" -a 2>/dev/null) && printf '%s\\n' "$out" | sha256sum | cut -c1-16; }}
echo "qdevice=$(have corosync-qdevice && echo yes || echo no)"
echo "qnetd=$(have corosync-qnetd && echo yes || echo no)"
for pm in apt-get dnf yum; do have $pm && {{ echo "pm=$pm"; break; }}; done
# systemd counts only as PID 1 (as in runbook.engine.facts): /run/systemd/system can be left over in a container
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then echo init=systemd; elif [ -d /etc/init.d ]; then echo init=sysv; else echo init=none; fi
if [ -f {NODE_DB}/cert9.db ] || [ -f {NODE_DB}/cert8.db ]; then
  echo node_db=yes
  echo "node_ca=$(digest {NODE_DB} '{CA_NICK}')"
  echo "node_cert=$(digest {NODE_DB} '{CERT_NICK}')"
  echo "node_subject=$(certutil -L -d {NODE_DB} -n '{CERT_NICK}' 2>/dev/null | sed -n 's/^ *Subject: *"\\(.*\\)"/\\1/p' | head -n 1)"
fi
[ -f {QNETD_CA} ] && echo "qnetd_ca=$(digest {QNETD_DB} '{CA_NICK}')"
pidof corosync-qdevice >/dev/null 2>&1 && echo qdevice_running=yes
pidof corosync-qnetd >/dev/null 2>&1 && echo qnetd_running=yes
for s in corosync-qdevice corosync-qnetd; do
  if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then echo "${{s#corosync-}}_enabled=$(systemctl is-enabled $s 2>/dev/null)"
  elif ls /etc/rc[2345].d/S*$s >/dev/null 2>&1; then echo "${{s#corosync-}}_enabled=enabled"; fi
done
true
"""


@dataclass(frozen=True)
class QFacts:
    """What one host has of the quorum device's parts (see FACTS_SCRIPT)."""

    host: str
    values: dict[str, str]

    def has(self, key: str) -> bool:
        return self.values.get(key) == "yes"

    @property
    def init(self) -> str:
        return self.values.get("init", "none")

    @property
    def pm(self) -> str | None:
        return self.values.get("pm")

    def enabled(self, service: str) -> bool:
        return self.values.get(f"{service}_enabled") == "enabled"

    @property
    def node_ca(self) -> str:
        return self.values.get("node_ca", "")

    @property
    def node_cert(self) -> str:
        return self.values.get("node_cert", "")


def parse_facts(host: str, text: str) -> QFacts:
    return QFacts(host, parse_state(text))


def install_op(pm: str | None, package: str) -> operations.Operation | None:
    if pm == "apt-get":
        command = (f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                   f"-o Dpkg::Options::=--force-confold {package}")
        hand = f"apt-get install {package}"
    elif pm in ("dnf", "yum"):
        command = hand = f"{pm} install -y {package}"
    else:
        return None
    return operations.run("install", command, f"{package} is not installed", by_hand=(hand,), timeout=900)


def start_op(f: QFacts, service: str, *, restart: bool, why: str) -> operations.Operation:
    """Enable at boot and (re)start one of the two daemons with this host's init system."""
    verb = "restart" if restart else "start"
    if f.init == "systemd":
        command = f"systemctl enable {service} && systemctl {verb} {service}"
    elif f.init == "sysv":
        command = f"update-rc.d {service} defaults >/dev/null; /etc/init.d/{service} {verb}"
    else:
        command = f"{service}"
    check = f"pidof {service} >/dev/null || {{ sleep 1; pidof {service} >/dev/null; }} || {{ echo '{service} is not running after {verb}' >&2; exit 4; }}"
    return operations.run("restart" if restart else "enable", command, why, script=f"{command}\n{check}", by_hand=(command,))


def stop_command(init: str, service: str) -> str:
    """Stop a daemon and disable it at boot, with this host's init system."""
    if init == "systemd":
        return f"systemctl disable --now {service}"
    if init in ("sysv", "upstart"):
        return f"/etc/init.d/{service} stop; update-rc.d {service} remove >/dev/null"
    return f"kill $(pidof {service}) 2>/dev/null || true"


def stop_op(f: QFacts, service: str, why: str) -> operations.Operation:
    command = stop_command(f.init, service)
    return operations.run("remove", command, why, by_hand=(command,))


def _sh(*lines: str) -> str:
    return "\n".join(("set -e", "umask 077", *lines))


@dataclass(frozen=True)
class Needs:
    """Which certificate work the facts leave to do."""

    tls: bool
    new_cert: bool  # the primary asks qnetd for a (new) cluster certificate
    reinit: tuple[str, ...]  # nodes whose database is missing or trusts another CA: made again
    imports: tuple[str, ...]  # nodes (not the primary) that import the primary's certificate and key


def needs(cluster: Cluster, nodes: dict[str, QFacts], qnetd: QFacts, qnetd_ca_known: bool) -> Needs:
    """Pure: compare each node's database with the qnetd CA and the primary's certificate."""
    net = _net(cluster)
    if net.tls == "off":
        return Needs(False, False, (), ())
    ca = qnetd.values.get("qnetd_ca", "") if qnetd_ca_known else ""
    primary = cluster.primary.name
    reinit = tuple(n for n, f in nodes.items() if not f.has("node_db") or not ca or f.node_ca != ca)
    p = nodes[primary]
    new_cert = primary in reinit or not p.node_cert or p.values.get("node_subject") != f"CN={cluster.name}"
    imports = tuple(
        n for n, f in nodes.items()
        if n != primary and (new_cert or n in reinit or f.node_cert != p.node_cert)
    )
    return Needs(True, new_cert, reinit, imports)


def _net(cluster: Cluster) -> NetDevice:
    device = cluster.quorum.device
    assert device is not None and device.net is not None
    return device.net


def plan_phases(cluster: Cluster, nodes: dict[str, QFacts], qnetd: QFacts) -> list[StepPlan]:
    """Pure: the phases, in order; a phase with nothing to do on any host is left out."""
    net = _net(cluster)
    qname = qnetd_node(net).name
    name = cluster.name
    primary = cluster.primary.name
    phases: list[StepPlan] = []

    q = NodePlan(qname)
    if not qnetd.has("qnetd"):
        op = install_op(qnetd.pm, "corosync-qnetd")
        if op is None:
            q.failed = "corosync-qnetd is not installed and there is no apt-get, dnf or yum to install it"
        else:
            q.operations.append(op)
    ca_known = qnetd.has("qnetd") and "qnetd_ca" in qnetd.values
    if net.tls != "off" and not ca_known:
        q.operations.append(operations.run(
            "run", "corosync-qnetd-certutil -i", "the qnetd host has no CA yet (Debian's package makes one at install)",
            script=f"[ -f {QNETD_CA} ] || corosync-qnetd-certutil -i",
            by_hand=(f"[ -f {QNETD_CA} ] || corosync-qnetd-certutil -i   # Debian's package makes the CA at install; RHEL's does not",)))
    if not qnetd.has("qnetd_running") or not qnetd.enabled("qnetd"):
        q.operations.append(start_op(qnetd, "corosync-qnetd", restart=False, why="corosync-qnetd is not running (or not enabled at boot)"))
    q.summary = "corosync-qnetd runs and is enabled at boot"
    done = {"install": "installed corosync-qnetd", "run": "made its CA", "enable": "started it, enabled at boot"}
    q.change = ", ".join(done[op.kind] for op in q.operations)
    q.would = "would " + ", ".join(done[op.kind].replace("installed", "install").replace("made", "make").replace("started", "start")
                                   for op in q.operations)
    phases.append(StepPlan(STEP, TITLE, {qname: q}))

    need = needs(cluster, nodes, qnetd, ca_known)
    phase_b = {n: _node_setup(n, f, need, qname, name, primary) for n, f in nodes.items()}
    phases.append(StepPlan(STEP, TITLE, phase_b))
    if need.new_cert:
        phases.append(StepPlan(STEP, TITLE, {qname: _sign(qname, primary, name)}))
    if need.imports or need.new_cert:
        phases.append(StepPlan(STEP, TITLE, {primary: _export(primary, qname, name, need.new_cert)}))
    if need.imports:
        phases.append(StepPlan(STEP, TITLE, {n: _import(n, primary) for n in need.imports}))
    changed_certs = set(need.imports) | ({primary} if need.new_cert else set())
    phases.append(StepPlan(STEP, TITLE, {n: _start(n, f, n in changed_certs, n == primary and bool(need.imports or need.new_cert))
                                         for n, f in nodes.items()}))
    return [p for p in phases if any(np.operations or np.failed for np in p.nodes.values())]


def _node_setup(node: str, f: QFacts, need: Needs, qname: str, cluster_name: str, primary: str) -> NodePlan:
    plan = NodePlan(node, summary="corosync-qdevice is installed" + (" and trusts the qnetd CA" if need.tls else ""))
    if not f.has("qdevice"):
        op = install_op(f.pm, "corosync-qdevice")
        if op is None:
            plan.failed = "corosync-qdevice is not installed and there is no apt-get, dnf or yum to install it"
            return plan
        plan.operations.append(op)
    if node in need.reinit:
        plan.operations.append(operations.copy_file(
            NODE_CA, qname, QNETD_CA, "the node's certificate database must trust the qnetd host's CA", mode=0o644,
            by_hand=(f"scp {qname}:{QNETD_CA} {NODE_CA}",), secret=False))
        why = "has no certificate database" if not f.has("node_db") else "has a certificate database that trusts another CA"
        plan.operations.append(operations.run(
            "run", f"corosync-qdevice-net-certutil -i -c {NODE_CA}", f"the node {why}",
            script=_sh(f'if [ -d {NODE_DB} ]; then mv {NODE_DB} {NODE_DB}.runbook-$(date -u +%Y%m%dT%H%M%SZ).bak; fi',
                       f"corosync-qdevice-net-certutil -i -c {NODE_CA}"),
            by_hand=(f"corosync-qdevice-net-certutil -i -c {NODE_CA}",)))
    if node == primary and need.new_cert:
        plan.operations.append(operations.run(
            "run", f"corosync-qdevice-net-certutil -r -n {cluster_name}",
            f"the cluster needs a certificate for {cluster_name!r}, signed by the qnetd CA",
            script=_sh(f"rm -f {CRQ}", f"corosync-qdevice-net-certutil -r -n {shlex.quote(cluster_name)}")))
    said = []
    if not f.has("qdevice"):
        said.append("installed corosync-qdevice")
    if node in need.reinit:
        said.append("made a certificate database that trusts the qnetd CA")
    if node == primary and need.new_cert:
        said.append(f"asked for the certificate of cluster {cluster_name}")
    plan.change = ", ".join(said)
    plan.would = "would " + plan.change.replace("installed", "install").replace("made", "make").replace("asked", "ask")
    return plan


def _sign(qname: str, primary: str, cluster_name: str) -> NodePlan:
    plan = NodePlan(qname)
    crq = crq_on_qnetd(cluster_name)
    plan.operations.append(operations.copy_file(crq, primary, CRQ, "the primary's certificate request, to sign", mode=0o644,
                                                by_hand=(f"scp {primary}:{CRQ} {crq}",), secret=False))
    plan.operations.append(operations.run(
        "run", f"corosync-qnetd-certutil -s -c {crq} -n {cluster_name}", "sign the cluster's certificate with the qnetd CA",
        script=_sh(f"corosync-qnetd-certutil -s -c {crq} -n {shlex.quote(cluster_name)}", f"rm -f {crq}")))
    plan.change = plan.would = f"signed the certificate of cluster {cluster_name}"
    return plan


def _export(primary: str, qname: str, cluster_name: str, new_cert: bool) -> NodePlan:
    """The primary imports the signed certificate (a new one) or exports the one it holds, for the others."""
    plan = NodePlan(primary)
    if new_cert:
        crt = crt_on_node(cluster_name)
        plan.operations.append(operations.copy_file(crt, qname, crt_on_qnetd(cluster_name), "the signed cluster certificate",
                                                    mode=0o644, by_hand=(f"scp {qname}:{crt_on_qnetd(cluster_name)} {crt}",), secret=False))
        plan.operations.append(operations.run(
            "run", f"corosync-qdevice-net-certutil -M -c {crt}", "import the signed certificate; export it with its key for the other nodes",
            script=_sh(f"rm -f {P12}", f"corosync-qdevice-net-certutil -M -c {crt}", f"chmod 600 {P12}", f"rm -f {crt} {CRQ}"),
            by_hand=(f"corosync-qdevice-net-certutil -M -c {crt}", f"chmod 600 {P12}   # it holds the cluster's private key, with no password")))
        plan.change = plan.would = "imported the cluster's signed certificate"
    else:
        plan.operations.append(operations.run(
            "run", f"pk12util -d {NODE_DB} -o {P12} -W '' -n '{CERT_NICK}'", "export the cluster certificate and key for the nodes that lack them",
            script=_sh(f"rm -f {P12}", f"pk12util -d {NODE_DB} -o {P12} -W '' -n '{CERT_NICK}' >/dev/null", f"chmod 600 {P12}")))
        plan.change = plan.would = "exported the cluster certificate for the other nodes"
    return plan


def _import(node: str, primary: str) -> NodePlan:
    plan = NodePlan(node)
    plan.operations.append(operations.copy_file(
        P12, primary, P12, "the cluster's certificate and private key (PKCS#12), from the primary", mode=0o600,
        by_hand=(f"scp -p {primary}:{P12} {P12}   # a private key: keep it 0600, and off other machines",), secret=True))
    plan.operations.append(operations.run(
        "run", f"corosync-qdevice-net-certutil -m -c {P12}", "import the cluster certificate and key",
        script=_sh(f"corosync-qdevice-net-certutil -m -c {P12}", f"rm -f {P12}"),
        by_hand=(f"corosync-qdevice-net-certutil -m -c {P12}", f"rm -f {P12}")))
    plan.change = plan.would = f"imported the cluster certificate from {primary}"
    return plan


def _start(node: str, f: QFacts, certs_changed: bool, drop_p12: bool) -> NodePlan:
    plan = NodePlan(node, summary="corosync-qdevice runs and is enabled at boot")
    if drop_p12:
        plan.operations.append(operations.run("remove", f"rm -f {P12}", "the exported key is not needed once every node has imported it"))
    if not f.has("qdevice_running") or not f.enabled("qdevice") or certs_changed:
        running = f.has("qdevice_running")
        why = ("its certificates changed" if certs_changed and running else
               "corosync-qdevice is not enabled at boot" if running else "corosync-qdevice is not running")
        plan.operations.append(start_op(f, "corosync-qdevice", restart=running, why=why))
        verb = "restarted" if running else "started"
        plan.change = f"{verb} corosync-qdevice ({why}), enabled at boot"
        plan.would = f"would {verb[:-2]} corosync-qdevice ({why}) and enable it at boot"
    elif drop_p12:
        plan.change, plan.would = "removed the exported key file", "would remove the exported key file"
    return plan


def plan_removal(cluster: Cluster, nodes: dict[str, QFacts]) -> StepPlan:
    """Pure: no device in the cluster file: a corosync-qdevice left running or enabled is stopped and disabled."""
    plans = {}
    for node in cluster.nodes:
        f = nodes[node.name]
        plan = NodePlan(node.name, quiet="skipped", summary="no quorum device in the cluster file")
        if f.has("qdevice_running") or f.enabled("qdevice"):
            plan.operations.append(stop_op(f, "corosync-qdevice", "the cluster file has no quorum device any more"))
            plan.change = plan.would = "stopped and disabled corosync-qdevice (the cluster file has no quorum device)"
        plans[node.name] = plan
    return StepPlan(STEP, TITLE, plans)
