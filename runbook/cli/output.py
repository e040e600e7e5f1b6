"""What the CLI prints while it works: progress lines on stderr.
"""

from __future__ import annotations

import sys


def print_progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)
