"""Fan-out's result: values and errors by item, in order, with the host's name taken off the error's words once."""

from __future__ import annotations

import pytest

from runbook.errors import CommandFailed, RunbookError, UsageError
from runbook.ssh.fanout import each


def work(name: str) -> int:
    if name == "node2":
        raise CommandFailed(name, "corosync-cmapctl", 1, "Failed to initialize the cmap API")
    if name == "node3":
        raise UsageError("not a node")
    return len(name)


def test_each_keeps_the_order_and_splits_values_from_errors() -> None:
    results = each(["node1", "node2", "node3", "node10"], work)
    assert list(results) == ["node1", "node2", "node3", "node10"]
    assert results.ok == {"node1": 5, "node10": 6}
    assert set(results.failed) == {"node2", "node3"} and not set(results.ok) & set(results.failed)
    assert results.why("node2").startswith("command exited 1") and "node2:" not in results.why("node2")
    assert results.why("node3") == "not a node"
    assert list(results.reasons()) == ["node2", "node3"]
    assert isinstance(results.value_or_error("node2"), RunbookError) and results.value_or_error("node1") == 5


def test_a_bug_is_not_taken_for_a_node_failure() -> None:
    with pytest.raises(ZeroDivisionError):
        each(["node1"], lambda _: 1 // 0)


def test_nothing_to_do_does_nothing() -> None:
    results = each([], work)
    assert not results.ok and not results.failed and list(results) == []
