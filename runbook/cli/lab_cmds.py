"""`runbook lab ...`: make, inspect, reboot and remove the local test hosts.
"""

from __future__ import annotations

import argparse
import os
import sys

from runbook.cli.output import print_progress
from runbook.errors import LabError, RunbookError, UsageError


def cmd_lab_up(args: argparse.Namespace) -> int:
    from runbook.lab import plan, up

    if args.cluster and args.nodes is not None:
        raise UsageError("lab up: give a cluster file or --nodes N [--subnet CIDR], not both")
    names: dict[str, str] = {}
    try:
        if args.cluster:
            from runbook.model.load import load_cluster

            cluster = load_cluster(args.cluster)
            given = [(n.name, list(n.addresses)) for n in cluster.nodes]  # one address per link
            given += plan.qnetd_spec(cluster, given)  # the quorum device's host, when the file names one
            nodes, names = plan.place_named_nodes(given, args.subnet)  # hostnames get lab addresses
            if args.subnet and not names:
                raise UsageError(f"lab up: --subnet is for nodes named by hostnames; {args.cluster} gives every "
                                 "node's address, and the hosts are made there")
        else:
            nodes = plan.generated_nodes(2 if args.nodes is None else args.nodes, args.subnet)
        plan.plan_lab(args.lab, nodes)  # pure: names, addresses and subnet are checked before anything is made
    except LabError as exc:
        raise UsageError(f"lab up: {exc}") from exc
    state = up.up(args.lab, nodes, progress=print_progress, os_name=args.os, names=names)
    _print_status(state)
    if names:
        print("hostnames (in every host's /etc/hosts): " + ", ".join(f"{n} {a}" for n, a in names.items()))
    print(f"\nssh config: {state.ssh_config}   (runbook lab ssh {state.hosts[0].name})")
    if not args.cluster:
        print(f"cluster file for these hosts: {state.cluster_file}")
    return 0


def _print_status(state) -> None:  # type: ignore[no-untyped-def]
    from runbook.lab import up

    rows = up.status(state)
    print(f"lab '{state.name}' ({state.os}): bridge {state.bridge} ({state.bridge_address}, {state.subnet})")
    print(f"  {'HOST':<12} {'ADDRESS':<16} {'NETNS':<6} {'SSHD':<6} {'BOOTS':<6} {'COROSYNC':<9} {'ACTIVE':<10} AT BOOT")
    for row in rows:
        yes = {True: "up", False: "down"}
        print(
            f"  {row.name:<12} {row.address:<16} {yes[row.netns]:<6} {yes[row.sshd]:<6} {row.boots:<6} "
            f"{'running' if row.corosync else 'stopped':<9} {row.active:<10} {row.enabled}"
        )


def cmd_lab_status(args: argparse.Namespace) -> int:
    from runbook.lab import state as lab_state

    labs = lab_state.all_labs() if args.lab is None else [s for s in [lab_state.LabState.load(args.lab)] if s]
    if not labs:
        print("no lab is up" if args.lab is None else f"lab '{args.lab}' is not up")
        return 0 if args.lab is None else 1
    for state in labs:
        _print_status(state)
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    from runbook.lab import netns, up
    from runbook.lab import state as lab_state

    netns.require_lab_support()
    names = [s.name for s in lab_state.all_labs()] if args.all else [args.lab]
    removed = [name for name in names if up.down(name, progress=print_progress)]
    print("removed: " + ", ".join(removed) if removed else "nothing to remove")
    return 0


def cmd_lab_prepare(args: argparse.Namespace) -> int:
    from runbook.lab import netns, up
    from runbook.lab import rootfs as lab_rootfs

    names = [part.strip() for part in args.os.split(",") if part.strip()]
    booting = [n for n in names if n != lab_rootfs.HOST_OS]
    oses = lab_rootfs.parse_os_list(",".join(booting)) if booting else []  # every name checked first
    netns.require_lab_support()
    up.prepare_packages(progress=print_progress)  # `host` hosts install from this machine's apt cache
    for os_ in oses:
        lab_rootfs.prepare(os_, progress=print_progress, force=args.force)
    ready = ["host (corosync's packages in this machine's apt cache)"]
    ready += [f"{o.name} ({lab_rootfs.tree(o)})" for o in oses]
    print("ready: " + ", ".join(ready))
    return 0


def cmd_lab_world(args: argparse.Namespace) -> int:
    from runbook.lab import world

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    return world.run_in_world(args.world, command, progress=print_progress)


def cmd_lab_reboot(args: argparse.Namespace) -> int:
    from runbook.lab import boot as lab_boot
    from runbook.lab import state as lab_state

    state = lab_state.LabState.load(args.lab)
    if state is None:
        raise RunbookError(f"lab '{args.lab}' is not up; run `runbook lab up CLUSTER` first")
    names = [state.host(n).name for n in args.nodes]  # every name checked before anything reboots
    from runbook.ssh.fanout import each

    results = each(names, lambda n: lab_boot.reboot(state, n, hard=args.hard, progress=print_progress))
    failed = list(results.failed.values())
    for error in failed:
        print(f"runbook: error: {error}", file=sys.stderr)
    _print_status(state)
    return 1 if failed else 0


def cmd_lab_ssh(args: argparse.Namespace) -> int:
    from runbook.lab import netns, up
    from runbook.lab import state as lab_state

    state = lab_state.LabState.load(args.lab)
    if state is None:
        raise RunbookError(f"lab '{args.lab}' is not up; run `runbook lab up CLUSTER` first")
    try:
        host = state.host(args.node)
    except LabError as exc:
        raise UsageError(str(exc)) from exc
    up.guard_address(host.address)
    argv = netns.lab_exec_argv(state, host.name, args.command)
    os.execvp(argv[0], argv)
    return 127  # not reached


def lab_name_of(text: str) -> str:
    """argparse type for --lab: a bad name is a usage error (exit 2) before anything runs."""
    from runbook.lab import state as lab_state

    try:
        return lab_state.check_lab_name(text)
    except LabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
