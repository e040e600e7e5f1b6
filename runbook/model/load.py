"""The cluster model: one YAML file (= the notebooks' papermill parameters) describes a cluster.

Split along its seams: `model/types.py` (the types: nodes with one address per link, links, totem,
quorum and its device, logging, verbatim extras), `model/problems.py` (naming what is wrong),
`model/sections.py` (each section's validation), `model/rules.py` (the whole file, cross-section and
per-generation rules, and back to parameters), `model/generation.py` and `model/effective.py` (what
the file means on one Corosync generation, checked once), `model/reference.py` (the docs table), and
this module, which reads the YAML file.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from runbook.errors import ClusterFileError
from runbook.model.rules import cluster_from_mapping
from runbook.model.types import MAX_NODES, Cluster
from runbook.text import clip

MAX_FILE_BYTES = 1024 * 1024


# --- loading -------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (no alias bombs, no hidden sharing) and duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in a cluster file; write the values out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _HugeInt(int):
    """An integer too long for Python to convert (over 4300 digits): kept as a stand-in of the right
    sign, far outside every range, so validation names the field instead of YAML failing as a whole."""

    def __new__(cls, digits: int, negative: bool) -> _HugeInt:
        value = super().__new__(cls, -(10**30) if negative else 10**30)
        value.digits = digits  # type: ignore[attr-defined]
        return value

    def __repr__(self) -> str:
        return f"<{'a negative ' if self < 0 else 'an '}integer of {self.digits} digits>"  # type: ignore[attr-defined]

    __str__ = __repr__


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        text = str(node.value)
        return _HugeInt(sum(c.isdigit() for c in text), text.lstrip().startswith("-"))


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_cluster(path: str | os.PathLike[str]) -> Cluster:
    """Read, parse and validate a cluster file; every failure is a ClusterFileError naming the path."""
    source = os.fspath(path)
    if os.path.isdir(source):
        raise ClusterFileError("is a directory, not a cluster file", source)
    try:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ClusterFileError("no such file", source) from None
    except PermissionError:
        raise ClusterFileError("cannot read it: permission denied", source) from None
    except OSError as error:
        raise ClusterFileError(f"cannot read it: {error.strerror or error}", source) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ClusterFileError(f"is larger than {MAX_FILE_BYTES} bytes; a cluster file is small", source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ClusterFileError(f"is not UTF-8 text (bad byte at offset {error.start})", source) from None
    if _nodes_over_limit(text):
        raise ClusterFileError(
            f"nodes: more than {MAX_NODES} nodes (counting stopped at {MAX_NODES + 1}); this runbook supports at most "
            f"{MAX_NODES}", source,
        )
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ClusterFileError(f"invalid YAML{where}: {error.problem or error.context}", source) from None
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise ClusterFileError(f"invalid YAML: {type(error).__name__}: {clip(str(error))}", source) from None
    if data is None:
        raise ClusterFileError("is empty; expected a mapping with at least cluster_name and nodes", source)
    return cluster_from_mapping(data, source)


MAX_COUNTED_DEPTH = 16  # the count stops here; `nodes` entries sit at depth 2


def _nodes_over_limit(text: str) -> int | None:
    """How many entries `nodes:` has once there are more than MAX_NODES (None: not more, or unsure).

    Why: a file under the size limit can still hold tens of thousands of nodes, and building the
    model of each (YAML objects, then validated nodes) cost 8.5 s and 150 MB before the count was
    refused. YAML's event stream is read lazily, so this stops at the first entry over the limit,
    usually a few lines into the file. A file it cannot follow (not a mapping, bad YAML) is left to
    the full load, which names the problem.
    """
    depth, key_next, nodes_next, counting, count = 0, True, False, False, 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentStartEvent, yaml.DocumentEndEvent)):
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                if depth == 1:
                    if counting:
                        return None  # the nodes list ended within the limit
                    key_next = not key_next
                continue
            if counting and depth == 2:
                count += 1
                if count > MAX_NODES:
                    return count
            if depth == 1:
                if key_next:
                    nodes_next = isinstance(event, yaml.ScalarEvent) and event.value == "nodes"
                else:
                    counting = nodes_next and isinstance(event, yaml.SequenceStartEvent)
                    nodes_next = False
                if not isinstance(event, yaml.CollectionStartEvent):
                    key_next = not key_next
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_COUNTED_DEPTH:
                    return None  # nesting no cluster file has: the full load refuses it (PyYAML's scanner is slow on deep nesting)
    except yaml.YAMLError:
        return None
    return None
