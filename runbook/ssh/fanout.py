"""Doing one thing on every node at once, and what it gave: fabric's GroupResult, for plain functions.

`each(items, func)` runs func(item) for every item in threads and returns NodeResults: the value of
each item that succeeded and the RunbookError of each that failed, in the items' order, so that no
caller unpacks a list of values-or-exceptions or strips a host's name off an error's text by hand.
Errors that are not RunbookErrors are bugs: they propagate.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from runbook.errors import RunbookError

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
MAX_THREADS = 32


@dataclass
class NodeResults(Generic[K, T]):
    """The outcome per item: `ok[item]` its value, or `failed[item]` its error (never both)."""

    order: list[K]
    ok: dict[K, T] = field(default_factory=dict)
    failed: dict[K, RunbookError] = field(default_factory=dict)

    def __iter__(self) -> Iterator[K]:
        return iter(self.order)

    def value_or_error(self, item: K) -> T | RunbookError:
        return self.ok[item] if item in self.ok else self.failed[item]

    def why(self, item: K) -> str:
        """The error of `item` in words, without the host's name in front (the caller names it)."""
        error = self.failed[item]
        host = getattr(error, "host", None)  # HostError, RunLocked, ControllerDiskError: "host: message"
        return str(error).removeprefix(f"{host}: ") if host else str(error)

    def reasons(self) -> dict[K, str]:
        return {item: self.why(item) for item in self.order if item in self.failed}


def each(items: Sequence[K], func: Callable[[K], T]) -> NodeResults[K, T]:
    """func(item) for every item at once (at most MAX_THREADS at a time)."""

    def safe(item: K) -> tuple[bool, object]:
        try:
            return True, func(item)
        except RunbookError as exc:
            return False, exc

    results: NodeResults[K, T] = NodeResults(list(items))
    if not items:
        return results
    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(items))) as pool:
        for item, (ok, value) in zip(items, pool.map(safe, items)):
            if ok:
                results.ok[item] = value  # type: ignore[assignment]
            else:
                results.failed[item] = value  # type: ignore[assignment]
    return results
