"""Conformance: real corosync.conf files written by others survive `runbook migrate` unchanged.

For every file of `../shared/corpus/` (39 files from upstream examples, pcs/crmsh fixtures, Proxmox and
Pacemaker docs and user repositories; origins in its SOURCES.md): migrate it, render the cluster file
for the file's own generation (for the node whose file it is: the owner of ring 0's bindnetaddr, else
the first node), parse both with `corosync_conf.settings` and compare key by key.

`settings` normalizes only what Corosync itself reads alike (see its docstring): comments, blank lines,
indentation and key order; repeated top-level sections merged; a repeated key's last value; an empty
section; yes/on/true/1 spellings of a switch; the order of repeated interface/member/logger_subsys
sections; totem.version and an interface's ring/link number left out (2 and 0, as Corosync reads
them). Nothing else: a key added, dropped or changed is a failure.

A multicast file lists no nodes; the test gives them as a user would (`--node NAME=ADDR`), derived
from the file's own bindnetaddr (the network's first hosts, or the host address and the next one).
The corpus is never copied into the project: the test reads it where it lies, beside the checkout.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Callable

import pytest
import yaml

from runbook.conf.parse import differences, parse_entries, settings
from runbook.conf.render import render
from runbook.errors import ClusterFileError, RunbookError
from runbook.migrate.from_conf import migrate
from runbook.migrate.options import NodeOption
from runbook.model.rules import cluster_from_mapping, to_parameters

ROOT = Path(__file__).resolve().parents[2]
# shared/ sits beside the checkout (as in CI); RUNBOOK_CORPUS points elsewhere (e.g. from a git worktree).
CORPUS = Path(os.environ.get("RUNBOOK_CORPUS") or ROOT.parent / "shared" / "corpus")
FILES = sorted(CORPUS.glob("*.conf")) if CORPUS.is_dir() else []
# Refused, each for a construct the runbook cannot hold; the message must name it and what to do.
REFUSED = {
    "27-corosync-3-example-no-ring0.conf": "no ring0_addr",  # Corosync itself: "No interfaces defined"
    "29-pcs-knet-3links-all-options.conf": "totem.token: 12",  # Corosync itself: token below 30 ms
    "38-pve-cluster-parser-fixture-dup-ids.conf": "nodeid: 1 is also",  # four nodes with node id 1
}
MIN_ACCEPTED = 36

pytestmark = pytest.mark.skipif(
    not FILES, reason=f"the corpus of real corosync.conf files is not at {CORPUS} (it sits beside the checkout in CI)"
)


def _interfaces(text: str) -> dict[int, str]:
    """Ring number -> bindnetaddr, from the file's totem.interface sections."""
    rings: dict[int, str] = {}
    for key, totem in parse_entries(text):
        if key != "totem" or not isinstance(totem, list):
            continue
        for name, body in totem:
            if name == "interface" and isinstance(body, list):
                values = {k: v for k, v in body if isinstance(v, str)}
                if "bindnetaddr" in values:
                    rings[int(values.get("ringnumber", "0"))] = values["bindnetaddr"]
    return rings


def _hosts(bindnetaddr: str, count: int) -> list[str]:
    """`count` plausible node addresses on the network of a bindnetaddr (a network or a host address)."""
    address = ipaddress.ip_address(bindnetaddr)
    first = int(address) + 1 if address.version == 4 and bindnetaddr.endswith(".0") else int(address)
    return [str(ipaddress.ip_address(first + i)) for i in range(count)]


def _listed(text: str) -> list[list[tuple[str, object]]]:
    return [n for k, s in parse_entries(text) if k == "nodelist" and isinstance(s, list)
            for name, n in s if name == "node" and isinstance(n, list)]


def node_options(text: str) -> list[NodeOption]:
    """The --node values a user gives for a multicast file's members it does not list."""
    rings = _interfaces(text)
    listed = _listed(text)
    if len(listed) == 1:  # a multicast file listing one member (to fix its node id): the other one
        first = dict((k, v) for k, v in listed[0] if isinstance(v, str))["ring0_addr"]
        return [NodeOption("node2", (str(ipaddress.ip_address(first) + 1),))]
    if listed or not rings:
        return []
    per_ring = [_hosts(rings[r], 2) for r in sorted(rings)]
    return [NodeOption(f"node{i + 1}", tuple(ring[i] for ring in per_ring)) for i in range(2)]


def conform(path: Path) -> tuple[str, str]:
    """('same' | 'changed' | 'refused', detail) for one corpus file; any other exception propagates."""
    text = path.read_text(encoding="utf-8")
    try:
        try:
            output, migration = migrate(text, path.name)
        except ClusterFileError as error:
            if "lists no nodes" not in str(error) and "lists only 1 node" not in str(error):
                raise
            output, migration = migrate(text, path.name, nodes=node_options(text))
    except RunbookError as error:
        return "refused", str(error)
    cluster = cluster_from_mapping(yaml.safe_load(output), f"{path.name} (migrated)")
    assert cluster_from_mapping(to_parameters(cluster)) == cluster  # as papermill parameters, the same cluster
    assert not [item for item in migration.lost if "the render writes it so" in item]
    rendered = render(cluster, cluster.primary.name, migration.generation)
    changed = differences(settings(text, path.name), settings(rendered))
    return ("changed", "; ".join(changed)) if changed else ("same", f"generation {migration.generation}")


@pytest.fixture(scope="module")
def outcomes() -> dict[str, tuple[str, str]]:
    results = {path.name: conform(path) for path in FILES}
    width = max(len(name) for name in results)
    print(f"\ncorpus conformance ({CORPUS}):")
    for name, (outcome, detail) in results.items():
        print(f"  {name:<{width}}  {outcome:<8} {detail[:160]}")
    return results


def test_the_corpus_is_all_there() -> None:
    assert len(FILES) == 39


@pytest.mark.parametrize("path", FILES, ids=[p.name[:2] for p in FILES])
def test_each_file_comes_back_unchanged_or_is_refused_by_name(path: Path, outcomes: dict[str, tuple[str, str]]) -> None:
    outcome, detail = outcomes[path.name]
    expected = REFUSED.get(path.name)
    if expected:
        assert outcome == "refused", f"{path.name}: expected a refusal naming {expected!r}, got {outcome}: {detail}"
        assert expected in detail, detail
        assert "\n" not in detail or "problems" in detail.splitlines()[0]
    else:
        assert outcome == "same", f"{path.name}: {outcome}: {detail}"


def test_at_least_36_of_39_come_back_with_nothing_lost_or_changed(outcomes: dict[str, tuple[str, str]]) -> None:
    same = [name for name, (outcome, _) in outcomes.items() if outcome == "same"]
    assert len(same) >= MIN_ACCEPTED, sorted(set(outcomes) - set(same))


def test_the_conformance_check_sees_a_change() -> None:
    """The comparison is not blind: one value changed in a render is reported, key and values."""
    path = next(p for p in FILES if p.name.startswith("31-"))
    output, migration = migrate(path.read_text(), path.name)
    data = yaml.safe_load(output)
    data["nodes"][0]["addresses"][1] = "10.20.20.99"
    cluster = cluster_from_mapping(data)
    changed = differences(settings(path.read_text()), settings(render(cluster, cluster.primary.name, 3)))
    assert changed == ["nodelist.node[0].ring1_addr: 10.20.20.2 -> 10.20.20.99"]


# --- generation 3 of every accepted file, with its addresses mapped (for `corosync -t` on a lab host) ----


def generation_3_render(path: Path, address_of: Callable[[int, int], str]) -> str:
    """The file migrated with `--generation 3` (every change listed by migrate), its node addresses
    replaced by `address_of(node_index, link)` (and IPv6 to IPv4 with them: ip_version follows), rendered
    for node 0. Addresses only: the lab cannot hold the file's own networks or resolve its hostnames."""
    text = path.read_text(encoding="utf-8")
    try:
        output, _ = migrate(text, path.name, generation=3)
    except ClusterFileError as error:
        if "lists no nodes" not in str(error) and "lists only 1 node" not in str(error):
            raise
        output, _ = migrate(text, path.name, generation=3, nodes=node_options(text))
    data = yaml.safe_load(output)
    for index, node in enumerate(data["nodes"]):
        count = len(node.pop("addresses", None) or [node.pop("address")])
        node["addresses"] = [address_of(index, link) for link in range(count)]
    if data.get("totem", {}).get("ip_version") == "ipv6":
        data["totem"]["ip_version"] = "ipv4"
    cluster = cluster_from_mapping(data, f"{path.name} (generation 3, lab addresses)")
    return render(cluster, cluster.nodes[0].name, 3)


ACCEPTED = [p for p in FILES if p.name not in REFUSED]


@pytest.mark.parametrize("path", ACCEPTED, ids=[p.name[:2] for p in ACCEPTED])
def test_every_accepted_file_converts_to_generation_3(path: Path) -> None:
    text = generation_3_render(path, lambda node, link: f"10.0.{93 + link}.{11 + node}")
    parsed = settings(text)
    assert parsed["totem"].get("transport", "knet") == "knet"
    assert parsed["nodelist"]["node"][0]["ring0_addr"] == "10.0.93.11"
