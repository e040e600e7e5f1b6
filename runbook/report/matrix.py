"""A node x node table (from row to column), as the terminal, the step page and the run record show it.

The link check fills one per link: each cell says whether what the row node sent reached the column
node. It lives in the report layer, apart from the check, so that a step report can carry any such
table without knowing what it means.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from runbook.text import clean

CORNER = "from \\ to"
# status -> (colour, short word in the terminal's grid)
_LOOK = {
    "ok": ("#1f7a1f", "ok"),
    "failed": ("#b00020", "BLOCKED"),
    "warning": ("#8a6d00", "warn"),
    "unknown": ("#555", "?"),
}


@dataclass(frozen=True)
class Cell:
    status: str  # ok | failed | warning | unknown
    text: str  # what a reader needs: 'ok', 'nothing arrived', 'knet: connected', ...


@dataclass
class Matrix:
    """Rows send, columns receive; the diagonal is empty. `caption` says how the cells were found."""

    title: str
    names: tuple[str, ...]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    caption: str = ""

    def cell(self, sender: str, receiver: str) -> Cell:
        return self.cells.get((sender, receiver), Cell("unknown", "not checked"))

    @property
    def failed(self) -> list[tuple[str, str]]:
        return [pair for pair, cell in self.cells.items() if cell.status == "failed"]

    def text(self) -> str:
        """The grid as plain text: `from \\ to` rows, one short word per cell."""
        width = max([len(CORNER)] + [len(n) for n in self.names] + [7])
        head = f"{CORNER:<{width}}  " + "  ".join(f"{n:<{width}}" for n in self.names)
        rows = [f"{self.title}", "  " + head.rstrip()]
        for sender in self.names:
            words = ["-" if sender == receiver else _LOOK[self.cell(sender, receiver).status][1] for receiver in self.names]
            rows.append("  " + (f"{sender:<{width}}  " + "  ".join(f"{w:<{width}}" for w in words)).rstrip())
        odd = [f"  {s} -> {r}: {clean(c.text)}" for (s, r), c in sorted(self.cells.items()) if c.status != "ok"]
        return "\n".join(rows + odd + ([f"  ({clean(self.caption)})"] if self.caption else []))

    def html(self) -> str:
        esc = html.escape
        head = "".join(f"<th><code>{esc(n)}</code></th>" for n in self.names)
        rows = []
        for sender in self.names:
            cells = []
            for receiver in self.names:
                if sender == receiver:
                    cells.append('<td class="runbook-self">&mdash;</td>')
                    continue
                cell = self.cell(sender, receiver)
                colour = _LOOK[cell.status][0]
                cells.append(f'<td data-status="{esc(cell.status)}" style="color:{colour}">{esc(clean(cell.text))}</td>')
            rows.append(f"<tr><th><code>{esc(sender)}</code></th>{''.join(cells)}</tr>")
        caption = f"<p><em>{esc(clean(self.caption))}</em></p>" if self.caption else ""
        return (
            f'<div class="runbook-matrix"><p><strong>{esc(clean(self.title))}</strong> (row sends, column receives)</p>'
            f'<table class="runbook-matrix-grid"><thead><tr><th>{esc(CORNER)}</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{caption}</div>'
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": clean(self.title),
            "names": list(self.names),
            "caption": clean(self.caption),
            "cells": [{"from": s, "to": r, "status": c.status, "text": clean(c.text)} for (s, r), c in sorted(self.cells.items())],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Matrix | None:
        """A matrix back from a run record (None for anything that is not one: a record is input)."""
        try:
            cells = {(str(c["from"]), str(c["to"])): Cell(str(c["status"]) if c["status"] in _LOOK else "unknown", str(c["text"]))
                     for c in data["cells"]}
            return cls(str(data["title"]), tuple(str(n) for n in data["names"]), cells, str(data.get("caption", "")))
        except (KeyError, TypeError, AttributeError):
            return None
