"""`runbook run`, `plan` and `rotate-key`: their arguments, and the lab guard installed before the run
works out its logins (the runner itself knows no lab).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from runbook.lab import guard as lab_guard
from runbook.run.runner import DEFAULT_OUT, DEFAULT_TIMEOUT, run


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cluster", help="cluster file (YAML)")
    parser.add_argument(
        "--only", action="append", metavar="STEP",
        help="run only this step: number (2, 02), name (corosync-conf) or file stem (02-corosync-conf); repeatable",
    )
    parser.add_argument("--out", metavar="DIR", help=f"where run records go (default ./{DEFAULT_OUT})")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
        help=f"longest one notebook cell may run, in seconds (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--take-over", action="store_true",
        help="move nodes that are members of another running cluster (another cluster_name, other members) into "
        "this one; without it preflight refuses them, naming the cluster, and changes nothing",
    )
    parser.add_argument(
        "--restart-all", action="store_true",
        help="allow a change that restarts every node together (cluster_name, transport, a node's address...), which "
        "stops the running cluster until they are back; without it preflight refuses such a change, naming the keys",
    )


def cmd_run(args: argparse.Namespace) -> int:
    lab_guard.install()  # before the logins are worked out: a lab host's ssh_config is its lab's
    return run(args.cluster, check=bool(getattr(args, "check", False)), only=args.only, out=args.out, timeout=args.timeout,
               take_over=args.take_over, restart_all=args.restart_all)


def cmd_plan(args: argparse.Namespace) -> int:
    lab_guard.install()  # before the logins are worked out: a lab host's ssh_config is its lab's
    return run(args.cluster, check=True, only=args.only, out=args.out, timeout=args.timeout, take_over=args.take_over,
               restart_all=args.restart_all)


ROTATE_STEPS = ("preflight", "authkey", "start-and-verify")


def cmd_rotate_key(args: argparse.Namespace) -> int:
    lab_guard.install()  # before the logins are worked out: a lab host's ssh_config is its lab's
    return run(args.cluster, check=bool(args.check), only=list(ROTATE_STEPS), out=args.out, timeout=args.timeout,
               restart_all=args.restart_all, rotate_key=True)


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `run` and `plan` to the runbook CLI (`add(name, help, examples, func)`)."""
    p = add(
        "run",
        "Run the step notebooks in order for a cluster file; the executed notebooks are the record. "
        "One run per cluster at a time (a lock here and on every node). Exit 0 done, 1 failed, 2 bad input, "
        "75 another run holds the cluster, 130 ^C, 143 SIGTERM.",
        "runbook run clusters/chapter.yaml                       # every step, records in ./runs/chapter/<time>/\n"
        "runbook run clusters/chapter.yaml --check               # dry run: what would change, per node\n"
        "runbook run clusters/chapter.yaml --only 2 --only authkey\n"
        "runbook run clusters/lab3.yaml --out /var/tmp/runs --timeout 300",
        cmd_run,
    )
    _add_common(p)
    p.add_argument("--check", action="store_true", help="dry run: show what would change and change nothing")

    p = add(
        "plan",
        "Dry run of every step (same as `run --check`): what would change on each node, nothing changed. "
        "Takes no lock, but is refused (exit 75) while a run (from this or another controller) holds the cluster or a node.",
        "runbook plan clusters/chapter.yaml\n"
        "runbook plan clusters/chapter.yaml --only corosync-conf",
        cmd_plan,
    )
    _add_common(p)

    p = add(
        "rotate-key",
        "Replace the cluster's authkey: the primary makes a new one, every node gets it, and Corosync takes it "
        "(one reload on Corosync 3.1+ with the membership kept; before 3.1 every node restarts together, which needs "
        "--restart-all). Runs steps 00, 03 and 06; the old key stays on each node as a root-only backup. The key's "
        "bytes appear in no output or record: reports name a key by the start of its SHA-256.",
        "runbook rotate-key clusters/chapter.yaml --check   # what it would do, per node\n"
        "runbook rotate-key clusters/chapter.yaml\n"
        "runbook rotate-key clusters/old.yaml --restart-all # Corosync 2.x/3.0: the cluster stops while the nodes restart",
        cmd_rotate_key,
    )
    p.add_argument("cluster", help="cluster file (YAML)")
    p.add_argument("--check", action="store_true", help="dry run: show what would change and change nothing")
    p.add_argument("--out", metavar="DIR", help=f"where run records go (default ./{DEFAULT_OUT})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S", help="longest one notebook cell may run, in seconds")
    p.add_argument("--restart-all", action="store_true",
                   help="where Corosync cannot take a key at run time (before 3.1), restart every node together")
