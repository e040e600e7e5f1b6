"""`runbook`: validate, render and migrate cluster files, run the chapter's steps, manage the lab.

Every error the runbook raises on purpose ends as one line (or a short list) on stderr and an exit
code: 2 for bad input (cluster file, ssh_config, arguments: argparse's usage errors included), 1 for a
failure on a node or in the lab (and for `membership` or `lab status` finding the cluster incomplete or
the lab not up), 75 when another run holds the cluster (`run`, `plan`), 130 for ^C, 143 for SIGTERM
during `run`/`plan`.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence

from runbook import __version__
from runbook.errors import LabError, RunbookError, UsageError


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# cluster files


def cmd_validate(args: argparse.Namespace) -> int:
    from runbook.cluster import load_cluster

    cluster = load_cluster(args.cluster)
    names = ", ".join(f"{n.name} ({n.address}, nodeid {n.nodeid}{', primary' if n.is_primary else ''})" for n in cluster.nodes)
    generation = cluster.generation if cluster.generation is not None else "auto (detected on the nodes)"
    print(f"{args.cluster}: OK: cluster '{cluster.name}', {len(cluster.nodes)} nodes: {names}; Corosync generation {generation}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from runbook.cluster import load_cluster
    from runbook.corosync_conf import render

    cluster = load_cluster(args.cluster)
    node = cluster.node(args.node).name
    generation = args.generation if args.generation is not None else cluster.generation
    if generation is None:
        from runbook.errors import ClusterFileError

        raise ClusterFileError(
            "generation: 'auto' is detected on the nodes; pass --generation 1, 2 or 3 to render offline", args.cluster
        )
    sys.stdout.write(render(cluster, node, generation))
    return 0


def cmd_by_hand(args: argparse.Namespace) -> int:
    from runbook import by_hand
    from runbook.cluster import load_cluster

    cluster = load_cluster(args.cluster)
    generation = args.generation if args.generation is not None else cluster.generation
    if generation is None:
        from runbook.errors import ClusterFileError

        raise ClusterFileError("generation: 'auto' is detected on the nodes; pass --generation 1, 2 or 3", args.cluster)
    render = by_hand.render_markdown if args.markdown else by_hand.render_text
    sys.stdout.write(render(cluster, generation))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from runbook.errors import ClusterFileError
    from runbook.migrate import migrate, parse_node_option, takes_members

    if args.node and args.from_nodes:
        raise UsageError("migrate: give the nodes with --node or read them with --from-nodes, not both")
    if not args.from_nodes and (args.ssh_config or args.ssh_user or args.sudo):
        raise UsageError("migrate: --ssh-config, --ssh-user and --sudo are for --from-nodes")
    nodes = [parse_node_option(text) for text in args.node or []]
    try:
        with open(args.conf, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ClusterFileError(f"cannot read {args.conf}: {exc}") from exc
    from_nodes = None
    if args.from_nodes:
        from runbook import lab_guard
        from runbook.cluster_model import SshSettings
        from runbook.running_members import parse_from_nodes, read_members

        lab_guard.install()  # as for every login: lab hosts get the lab's guard and ssh_config

        hosts = parse_from_nodes(args.from_nodes)
        if not takes_members(text, args.conf):  # the file is checked before any host is reached
            raise UsageError(f"--from-nodes: {args.conf} lists its nodes; --from-nodes is for a multicast file "
                             "that does not (migrate it without --from-nodes)")
        if args.ssh_config and not os.path.isfile(os.path.expanduser(args.ssh_config)):
            raise UsageError(f"--ssh-config: {args.ssh_config!r} does not exist or is not a file")
        settings = SshSettings(user=args.ssh_user, config=args.ssh_config, sudo=args.sudo)
        _progress(f"reading the running cluster's membership on {', '.join(hosts)} (read-only)")
        nodes, from_nodes = read_members(hosts, settings)
    output, migration = migrate(text, source=args.conf, cluster_name=args.name, generation=args.generation,
                                nodes=nodes, from_nodes=from_nodes)
    for item in ["the file's comments (a cluster file has its own)", *migration.lost]:
        print(f"not carried: {item}", file=sys.stderr)
    if args.output:
        try:
            with open(args.output, "x", encoding="utf-8") as handle:
                handle.write(output)
        except FileExistsError:
            raise UsageError(f"-o {args.output}: the file exists; migrate never overwrites (choose another name)") from None
        except OSError as exc:
            raise UsageError(f"-o {args.output}: cannot write it: {exc.strerror or exc}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(output)
    return 0


# ---------------------------------------------------------------------------------------------
# lab


def cmd_lab_up(args: argparse.Namespace) -> int:
    from runbook import lab

    if args.cluster and args.nodes is not None:
        raise UsageError("lab up: give a cluster file or --nodes N [--subnet CIDR], not both")
    names: dict[str, str] = {}
    try:
        if args.cluster:
            from runbook.cluster import load_cluster

            cluster = load_cluster(args.cluster)
            given = [(n.name, list(n.addresses)) for n in cluster.nodes]  # one address per link
            nodes, names = lab.place_named_nodes(given, args.subnet)  # hostnames get lab addresses
            if args.subnet and not names:
                raise UsageError(f"lab up: --subnet is for nodes named by hostnames; {args.cluster} gives every "
                                 "node's address, and the hosts are made there")
        else:
            nodes = lab.generated_nodes(2 if args.nodes is None else args.nodes, args.subnet)
        lab.plan_lab(args.lab, nodes)  # pure: names, addresses and subnet are checked before anything is made
    except LabError as exc:
        raise UsageError(f"lab up: {exc}") from exc
    state = lab.up(args.lab, nodes, progress=_progress, os_name=args.os, names=names)
    _print_status(state)
    if names:
        print("hostnames (in every host's /etc/hosts): " + ", ".join(f"{n} {a}" for n, a in names.items()))
    print(f"\nssh config: {state.ssh_config}   (runbook lab ssh {state.hosts[0].name})")
    if not args.cluster:
        print(f"cluster file for these hosts: {state.cluster_file}")
    return 0


def _print_status(state) -> None:  # type: ignore[no-untyped-def]
    from runbook import lab

    rows = lab.status(state)
    print(f"lab '{state.name}' ({state.os}): bridge {state.bridge} ({state.bridge_address}, {state.subnet})")
    print(f"  {'HOST':<12} {'ADDRESS':<16} {'NETNS':<6} {'SSHD':<6} {'BOOTS':<6} {'COROSYNC':<9} {'ACTIVE':<10} AT BOOT")
    for row in rows:
        yes = {True: "up", False: "down"}
        print(
            f"  {row.name:<12} {row.address:<16} {yes[row.netns]:<6} {yes[row.sshd]:<6} {row.boots:<6} "
            f"{'running' if row.corosync else 'stopped':<9} {row.active:<10} {row.enabled}"
        )


def cmd_lab_status(args: argparse.Namespace) -> int:
    from runbook import lab

    labs = lab.all_labs() if args.lab is None else [s for s in [lab.LabState.load(args.lab)] if s]
    if not labs:
        print("no lab is up" if args.lab is None else f"lab '{args.lab}' is not up")
        return 0 if args.lab is None else 1
    for state in labs:
        _print_status(state)
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    from runbook import lab

    lab.require_lab_support()
    names = [s.name for s in lab.all_labs()] if args.all else [args.lab]
    removed = [name for name in names if lab.down(name, progress=_progress)]
    print("removed: " + ", ".join(removed) if removed else "nothing to remove")
    return 0


def cmd_lab_prepare(args: argparse.Namespace) -> int:
    from runbook import lab, lab_rootfs

    names = [part.strip() for part in args.os.split(",") if part.strip()]
    booting = [n for n in names if n != lab_rootfs.HOST_OS]
    oses = lab_rootfs.parse_os_list(",".join(booting)) if booting else []  # every name checked first
    lab.require_lab_support()
    lab.prepare_packages(progress=_progress)  # `host` hosts install from this machine's apt cache
    for os_ in oses:
        lab_rootfs.prepare(os_, progress=_progress, force=args.force)
    ready = ["host (corosync's packages in this machine's apt cache)"]
    ready += [f"{o.name} ({lab_rootfs.tree(o)})" for o in oses]
    print("ready: " + ", ".join(ready))
    return 0


def cmd_lab_world(args: argparse.Namespace) -> int:
    from runbook import world

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    return world.run_in_world(args.world, command, progress=_progress)


def cmd_lab_reboot(args: argparse.Namespace) -> int:
    from runbook import lab, lab_boot

    state = lab.LabState.load(args.lab)
    if state is None:
        raise RunbookError(f"lab '{args.lab}' is not up; run `runbook lab up CLUSTER` first")
    names = [state.host(n).name for n in args.nodes]  # every name checked before anything reboots
    from runbook.steps._common import parallel

    results = parallel(names, lambda n: lab_boot.reboot(state, n, hard=args.hard, progress=_progress))
    failed = [r for r in results if isinstance(r, Exception)]
    for error in failed:
        print(f"runbook: error: {error}", file=sys.stderr)
    _print_status(state)
    return 1 if failed else 0


def cmd_lab_ssh(args: argparse.Namespace) -> int:
    from runbook import lab

    state = lab.LabState.load(args.lab)
    if state is None:
        raise RunbookError(f"lab '{args.lab}' is not up; run `runbook lab up CLUSTER` first")
    try:
        host = state.host(args.node)
    except LabError as exc:
        raise UsageError(str(exc)) from exc
    lab.guard_address(host.address)
    argv = lab.lab_exec_argv(state, host.name, args.command)
    os.execvp(argv[0], argv)
    return 127  # not reached


# ---------------------------------------------------------------------------------------------
# nodes


def cmd_facts(args: argparse.Namespace) -> int:
    from runbook.cluster import load_cluster
    from runbook.facts import gather
    from runbook import lab_guard
    from runbook.hosts import hosts_for
    from runbook.report import clean
    from runbook.steps._common import parallel

    cluster = load_cluster(args.cluster)
    lab_guard.install()
    with hosts_for(cluster) as hosts:
        results = parallel(list(cluster.nodes), lambda n: gather(hosts[n.name]))
    for node, result in zip(cluster.nodes, results):
        if isinstance(result, Exception):
            print(f"{node.name}: unreachable: {_unprefixed(clean(str(result)), node.name)}")
        else:
            print(clean(result.summary()))  # the OS name and addresses come from the node: no escapes
    return 1 if any(isinstance(r, Exception) for r in results) else 0


def _unprefixed(message: str, node: str) -> str:
    return message.removeprefix(f"{node}: ")


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from runbook import lab_guard, status
    from runbook.cluster import load_cluster
    from runbook.hosts import hosts_for
    from runbook.report import clean

    cluster = load_cluster(args.cluster)
    lab_guard.install()
    with hosts_for(cluster) as hosts:
        found = status.status(cluster, hosts)
    if args.json:
        print(json.dumps(status.to_json(cluster, found), indent=1))
    else:
        for line in status.lines(cluster, found):
            print(clean(line))  # details come from the nodes: no terminal escapes
    return 0 if all(s.ok for s in found) else 1


def cmd_membership(args: argparse.Namespace) -> int:
    """Each node's own view, also when some nodes cannot be reached: a partition is what this shows."""
    from runbook.cluster import load_cluster
    from runbook.facts import gather
    from runbook import lab_guard
    from runbook.hosts import hosts_for
    from runbook.report import clean
    from runbook.steps._common import parallel
    from runbook.steps.start import read_links, read_view

    cluster = load_cluster(args.cluster)
    expected = len(cluster.nodes)
    links = {}

    def view_of(node):  # type: ignore[no-untyped-def]
        host = hosts[node.name]
        generation = gather(host).generation or 3
        view = read_view(host, generation)
        if view.running:
            links[node.name] = read_links(host, generation)  # each link's state as this node sees it
        return view

    lab_guard.install()
    with hosts_for(cluster) as hosts:
        views = parallel(list(cluster.nodes), view_of)
    complete = True
    for node, view in zip(cluster.nodes, views):
        if isinstance(view, Exception):
            print(f"== {node.name}: unreachable: {_unprefixed(clean(str(view)), node.name)}")
            complete = False
            continue
        complete &= view.complete(expected)
        print(f"== {node.name}: {clean(view.describe(expected))}")
        for link in links[node.name].links if node.name in links else ():
            print(f"   {clean(link.describe())}")
        if args.verbose:
            print(clean(view.raw.rstrip()))
        else:
            for member in view.members:
                print(f"   nodeid {member.nodeid:<4} votes {member.votes}  {clean(member.name)}{' (local)' if member.local else ''}")
    print(f"cluster '{cluster.name}': " + ("all members present and quorate" if complete else "NOT complete"))
    return 0 if complete else 1


# ---------------------------------------------------------------------------------------------


EPILOG = """\
examples:
  runbook validate clusters/chapter.yaml
  runbook render clusters/chapter.yaml --node node1 --generation 1
  runbook migrate /etc/corosync/corosync.conf -o clusters/legacy.yaml
  runbook lab up clusters/chapter.yaml && runbook facts clusters/chapter.yaml
  runbook lab down
"""


def _lab_name(text: str) -> str:
    """argparse type for --lab: a bad name is a usage error (exit 2) before anything runs."""
    from runbook import lab

    try:
        return lab.check_lab_name(text)
    except LabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook",
        description="Stand up a Corosync cluster the way the chapter does, safely, on any Corosync generation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help: str, examples: str, func) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog="examples:\n" + textwrap.indent(examples.strip(), "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    p = add("validate", "Check a cluster file; every problem is named by field and value (exit 2).",
            "runbook validate clusters/chapter.yaml", cmd_validate)
    p.add_argument("cluster", help="cluster file (YAML)")

    p = add("render", "Print one node's corosync.conf for a Corosync generation.",
            "runbook render clusters/chapter.yaml --node node1 --generation 1   # the chapter's own file\n"
            "runbook render clusters/chapter.yaml --node node2 --generation 3   # the same cluster on Corosync 3",
            cmd_render)
    p.add_argument("cluster", help="cluster file (YAML)")
    p.add_argument("--node", required=True, help="node name from the cluster file")
    p.add_argument("--generation", type=int, choices=(1, 2, 3), help="Corosync generation (default: the cluster file's)")

    p = add("by-hand", "Print the whole setup as an operator would type it on fresh nodes, from the plans `run` applies.",
            "runbook by-hand clusters/chapter.yaml --generation 1   # the chapter's own commands (Ubuntu 12.04)\n"
            "runbook by-hand clusters/chapter.yaml --generation 3 --markdown > by-hand.md   # with the files",
            cmd_by_hand)
    p.add_argument("cluster", help="cluster file (YAML)")
    p.add_argument("--generation", type=int, choices=(1, 2, 3), help="Corosync generation (default: the cluster file's)")
    p.add_argument("--markdown", action="store_true", help="Markdown with every file written, as the guide shows it")

    p = add("migrate", "Turn an existing corosync.conf (1.x, 2.x or 3.x) into a cluster file, losing nothing.",
            "runbook migrate /etc/corosync/corosync.conf                 # print the cluster file\n"
            "runbook migrate old.conf --name web -o clusters/web.yaml    # write it (never overwrites)\n"
            "runbook migrate mcast.conf --node n1=10.0.0.1 --node n2=10.0.0.2   # a multicast file lists no nodes\n"
            "runbook migrate mcast.conf --from-nodes web1,web2          # ... or read them from the running cluster\n"
            "runbook migrate old-1x.conf --generation 3                  # convert (every change is listed)",
            cmd_migrate)
    p.add_argument("conf", help="an existing corosync.conf")
    p.add_argument("--name", help="cluster name (default: the file's cluster_name, else 'cluster')")
    p.add_argument("--generation", type=int, choices=(1, 2, 3),
                   help="target Corosync generation (default: the file's own, read from its keys: lossless)")
    p.add_argument("--node", action="append", metavar="NAME=ADDR[,ADDR2]",
                   help="a node of a multicast file that lists none (repeat per node; one address per ring)")
    p.add_argument("--from-nodes", action="append", metavar="HOST[,HOST...]",
                   help="read the nodes of a multicast file from the running cluster: log in to these hosts over SSH "
                   "(ssh_config, host keys checked) and read the membership, read-only")
    p.add_argument("--ssh-config", help="ssh_config for --from-nodes (default: $RUNBOOK_SSH_CONFIG, a lab's, ~/.ssh/config)")
    p.add_argument("--ssh-user", help="user for --from-nodes (default: ssh_config's User, else root)")
    p.add_argument("--sudo", action="store_true", help="--from-nodes: run the read-only Corosync tools through sudo")
    p.add_argument("-o", "--output", help="write the cluster file here (refuses to overwrite)")

    p = add("facts", "Connect to every node and show what it is: OS, Corosync, init system, addresses.",
            "runbook facts clusters/chapter.yaml", cmd_facts)
    p.add_argument("cluster", help="cluster file (YAML)")

    p = add("status", "Does the running cluster agree with its cluster file? Per node: file, running config, key, "
            "membership, links, boot. Read only; exit 0 when all agree, 1 on drift (each drift names what to run).",
            "runbook status clusters/chapter.yaml\nrunbook status clusters/chapter.yaml --json   # for monitoring",
            cmd_status)
    p.add_argument("cluster", help="cluster file (YAML)")
    p.add_argument("--json", action="store_true", help="print the answers as JSON (same exit status)")

    p = add("membership", "Show each node's view of the membership and quorum (exit 1 unless complete).",
            "runbook membership clusters/chapter.yaml\nrunbook membership clusters/chapter.yaml -v   # full corosync-quorumtool -s",
            cmd_membership)
    p.add_argument("cluster", help="cluster file (YAML)")
    p.add_argument("-v", "--verbose", action="store_true", help="print corosync-quorumtool -s in full")

    lab_parser = sub.add_parser(
        "lab",
        help="Local test hosts (network namespaces with sshd) for trying the runbook safely.",
        description="Local test hosts: one network namespace per node with its own address, hostname, "
        "PID and mount namespaces, an overlay of / as root, and sshd with its own host key; or, with "
        "--os debian12|debian13, systemd-nspawn machines that boot systemd. Needs root.",
        epilog="examples:\n  runbook lab up clusters/chapter.yaml   # hosts at 10.0.66.201 and .202\n"
        "  runbook lab up --nodes 5 --lab five\n"
        "  runbook lab prepare --os debian12,debian13   # once, with the network\n"
        "  runbook lab up clusters/chapter.yaml --os debian12   # hosts that boot systemd\n"
        "  runbook lab reboot node1 [--hard]\n  runbook lab status\n  runbook lab ssh node1\n  runbook lab down --all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lab_sub = lab_parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    from runbook.lab import DEFAULT_LAB
    from runbook.lab_rootfs import OS_CHOICES

    p = lab_sub.add_parser("up", help="make hosts for a cluster file's nodes, or N generated hosts")
    p.add_argument("cluster", nargs="?", help="cluster file: one host per node, at the node's address (a hostname gets a lab address, resolvable on every host)")
    p.add_argument("--nodes", type=int, help="make N hosts (node1..nodeN at .11, .12, ...) instead; writes a cluster file for them")
    p.add_argument("--subnet", help="IPv4 /24 for --nodes hosts (default 10.0.77.0/24), or for the nodes a cluster file "
                   "names only by hostnames (default 10.0.88.0/24, link k the k-th /24 above); labs on different subnets coexist")
    p.add_argument("--lab", type=_lab_name, default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})")
    p.add_argument(
        "--os", default="host", choices=OS_CHOICES,
        help="host: an overlay of this machine with no init (fast, the default); debian12/debian13: "
        "systemd-nspawn machines booting systemd (needs `runbook lab prepare --os ...` once)",
    )
    p.set_defaults(func=cmd_lab_up)
    p = lab_sub.add_parser("reboot", help="reboot hosts: `systemctl reboot` inside (or a boot's rc scripts on host hosts)")
    p.add_argument("nodes", nargs="+", metavar="NODE", help="host name(s); several reboot together")
    p.add_argument("--hard", action="store_true", help="pull the plug: kill the machine and boot it again")
    p.add_argument("--lab", default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})")
    p.set_defaults(func=cmd_lab_reboot)
    p = lab_sub.add_parser("status", help="hosts, addresses, sshd and corosync state")
    p.add_argument("--lab", type=_lab_name, default=None, help="only this lab (default: all)")
    p.set_defaults(func=cmd_lab_status)
    p = lab_sub.add_parser("down", help="remove everything the lab made; safe to run twice")
    p.add_argument("--lab", type=_lab_name, default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})")
    p.add_argument("--all", action="store_true", help="remove every lab")
    p.set_defaults(func=cmd_lab_down)
    p = lab_sub.add_parser(
        "prepare", help="fetch what lab hosts need (corosync's packages, booting hosts' root file systems)",
        description="Fill this machine's apt cache with corosync's packages, so that `host` lab hosts install "
        "it offline, and make the cached root file systems of booting hosts (debootstrap, about a minute each "
        "the first time, then instant). `lab up` never fetches a root file system; inside a lab world (no "
        "route out) nothing can be fetched, so prepare first.",
        epilog="examples:\n  runbook lab prepare                              # host hosts only\n"
        "  runbook lab prepare --os host,debian12,debian13  # what `make test` does",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--os", default="host", help="comma-separated: host, debian12, debian13 (default host)")
    p.add_argument("--force", action="store_true", help="make the root file systems again even when cached")
    p.set_defaults(func=cmd_lab_prepare)
    p = lab_sub.add_parser(
        "world", help="run a command with labs of its own, in a network namespace of its own",
        description="Run COMMAND in a lab world: a network namespace and a lab root of its own. Labs made "
        "inside it may use any subnet, the chapter's included, even while a lab of yours holds it here; "
        "they are removed with the world when COMMAND ends. The world has no route off this machine: "
        "run `runbook lab prepare` first. Exit status: COMMAND's.",
        epilog="examples:\n  runbook lab world -- python -m pytest tests/lab      # what `make test` does\n"
        "  runbook lab world --world docs -- python tools/build_docs.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--world", default="test", help="world name (default test); one command per world at a time")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command (after --)")
    p.set_defaults(func=cmd_lab_world)
    p = lab_sub.add_parser("ssh", help="open a shell (or run a command) on a lab host")
    p.add_argument("node", help="host name")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command to run instead of a shell")
    p.add_argument("--lab", type=_lab_name, default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})")
    p.set_defaults(func=cmd_lab_ssh)

    from runbook import runner  # `run` and `plan` execute the step notebooks

    runner.add_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from runbook.startup import skip_slow_optional_imports

    skip_slow_optional_imports()  # before runner/papermill are imported (see runbook/startup.py)
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: argparse prints the usage and exits 2
    try:
        return int(args.func(args) or 0)
    except RunbookError as exc:
        print(f"runbook: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("runbook: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
