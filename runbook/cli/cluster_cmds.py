"""The commands on a cluster file that log in nowhere (except migrate --from-nodes): `validate`,
`render`, `by-hand`, `migrate`.
"""

from __future__ import annotations

import argparse
import os
import sys

from runbook.cli.output import print_progress
from runbook.errors import UsageError


def cmd_validate(args: argparse.Namespace) -> int:
    from runbook.model.load import load_cluster

    cluster = load_cluster(args.cluster)
    names = ", ".join(f"{n.name} ({n.address}, nodeid {n.nodeid}{', primary' if n.is_primary else ''})" for n in cluster.nodes)
    generation = cluster.generation if cluster.generation is not None else "auto (detected on the nodes)"
    print(f"{args.cluster}: OK: cluster '{cluster.name}', {len(cluster.nodes)} nodes: {names}; Corosync generation {generation}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from runbook.conf.render import render
    from runbook.model.load import load_cluster

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
    from runbook.model.load import load_cluster
    from runbook.steps import by_hand

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
    from runbook.migrate.from_conf import migrate, takes_members
    from runbook.migrate.options import parse_node_option

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
        from runbook.lab import guard as lab_guard
        from runbook.migrate.from_nodes import parse_from_nodes, read_members
        from runbook.model.types import SshSettings

        lab_guard.install()  # as for every login: lab hosts get the lab's guard and ssh_config

        hosts = parse_from_nodes(args.from_nodes)
        if not takes_members(text, args.conf):  # the file is checked before any host is reached
            raise UsageError(f"--from-nodes: {args.conf} lists its nodes; --from-nodes is for a multicast file "
                             "that does not (migrate it without --from-nodes)")
        if args.ssh_config and not os.path.isfile(os.path.expanduser(args.ssh_config)):
            raise UsageError(f"--ssh-config: {args.ssh_config!r} does not exist or is not a file")
        settings = SshSettings(user=args.ssh_user, config=args.ssh_config, sudo=args.sudo)
        print_progress(f"reading the running cluster's membership on {', '.join(hosts)} (read-only)")
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
