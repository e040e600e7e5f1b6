"""`--node NAME=ADDRESS[,ADDRESS]`: a node given on the command line for a file that does not list them.
"""

from __future__ import annotations

from typing import NamedTuple

from runbook.errors import ClusterFileError


class NodeOption(NamedTuple):
    """One `--node NAME=ADDR[,ADDR2]`, or one member read from a running cluster (`--from-nodes`, with
    its node id): a node of a multicast file that lists none."""

    name: str
    addresses: tuple[str, ...]
    nodeid: int | None = None


def parse_node_option(text: str) -> NodeOption:
    """`NAME=ADDR[,ADDR2...]` (one address per ring/link) -> NodeOption; a ClusterFileError names it."""
    name, sep, rest = text.partition("=")
    addresses = tuple(a.strip() for a in rest.split(",") if a.strip())
    if not sep or not name.strip() or not addresses:
        raise ClusterFileError(f"--node {text!r}: expected NAME=ADDR or NAME=ADDR0,ADDR1 (one address per link)")
    return NodeOption(name.strip(), addresses)
