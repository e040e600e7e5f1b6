"""Doing one thing on every node at once: each result is the value or the RunbookError raised."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from runbook.errors import RunbookError

T = TypeVar("T")


def parallel(items: Sequence[T], func: Callable[[T], object]) -> list[object]:
    """func(item) for every item at once; each result is the return value or the exception raised."""

    def safe(item: T) -> object:
        try:
            return func(item)
        except RunbookError as exc:
            return exc

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(items))) as pool:
        return list(pool.map(safe, items))
