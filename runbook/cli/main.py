"""`runbook`: validate, render and migrate cluster files, run the chapter's steps, manage the lab.

Every error the runbook raises on purpose ends as one line (or a short list) on stderr and an exit
code: 2 for bad input (cluster file, ssh_config, arguments: argparse's usage errors included), 1 for a
failure on a node or in the lab (and for `membership` or `lab status` finding the cluster incomplete or
the lab not up), 75 when another run holds the cluster (`run`, `plan`), 130 for ^C, 143 for SIGTERM
during `run`/`plan`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from runbook import __version__
from runbook.cli.cluster_cmds import cmd_by_hand, cmd_migrate, cmd_render, cmd_validate
from runbook.cli.lab_cmds import cmd_lab_down, cmd_lab_prepare, cmd_lab_reboot, cmd_lab_ssh, cmd_lab_status, cmd_lab_up, cmd_lab_world, lab_name_of
from runbook.cli.node_cmds import cmd_facts, cmd_membership, cmd_status
from runbook.errors import RunbookError

# ---------------------------------------------------------------------------------------------
# cluster files


# ---------------------------------------------------------------------------------------------
# lab


# ---------------------------------------------------------------------------------------------
# nodes


# ---------------------------------------------------------------------------------------------


EPILOG = """\
examples:
  runbook validate clusters/chapter.yaml
  runbook render clusters/chapter.yaml --node node1 --generation 1
  runbook migrate /etc/corosync/corosync.conf -o clusters/legacy.yaml
  runbook lab up clusters/chapter.yaml && runbook facts clusters/chapter.yaml
  runbook lab down
"""


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
    from runbook.lab.rootfs import OS_CHOICES
    from runbook.lab.state import DEFAULT_LAB

    p = lab_sub.add_parser("up", help="make hosts for a cluster file's nodes, or N generated hosts")
    p.add_argument("cluster", nargs="?", help="cluster file: one host per node, at the node's address (a hostname gets a lab address, resolvable on every host)")
    p.add_argument("--nodes", type=int, help="make N hosts (node1..nodeN at .11, .12, ...) instead; writes a cluster file for them")
    p.add_argument("--subnet", help="IPv4 /24 for --nodes hosts (default 10.0.77.0/24), or for the nodes a cluster file "
                   "names only by hostnames (default 10.0.88.0/24, link k the k-th /24 above); labs on different subnets coexist")
    p.add_argument("--lab", type=lab_name_of, default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})")
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
    p.add_argument("--lab", type=lab_name_of, default=None, help="only this lab (default: all)")
    p.set_defaults(func=cmd_lab_status)
    p = lab_sub.add_parser("down", help="remove everything the lab made; safe to run twice")
    p.add_argument("--lab", type=lab_name_of, default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})")
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
    p.add_argument("--lab", type=lab_name_of, default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})")
    p.set_defaults(func=cmd_lab_ssh)

    from runbook.cli import run_cmds  # `run` and `plan` execute the step notebooks

    run_cmds.add_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from runbook.cli.startup import skip_slow_optional_imports

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
