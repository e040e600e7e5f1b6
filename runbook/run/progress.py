"""What a run shows while it runs: one line per step on the terminal, the same in the run's log.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from runbook.run.messages import clean


class Progress:
    """Progress lines on stderr, and the same lines in run.log.

    A run.log that cannot be written (the controller's disk is full) is given up, and the first
    error kept in `error`: the terminal still gets every line, and the runner reports the disk.
    """

    def __init__(self, stream: IO[str], log_path: Path | None = None) -> None:
        self.stream = stream
        self.error: OSError | None = None
        self.log: IO[str] | None = None
        if log_path:
            try:
                self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                self.error = exc
        self._partial = ""

    def begin(self, text: str) -> None:
        """Start a line that `end` completes (`[2/7] 02-corosync-conf ... ` then `ok (1.8s)`)."""
        self._partial = text
        self.stream.write(text)
        self.stream.flush()

    def end(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._log(self._partial + text)
        self._partial = ""

    def line(self, text: str = "") -> None:
        if self._partial:
            self.end("")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._log(text)

    def _log(self, text: str) -> None:
        if self.log:
            try:
                self.log.write(text + "\n")
                self.log.flush()
            except OSError as exc:
                self.error = self.error or exc
                self._drop_log()

    def _drop_log(self) -> None:
        log, self.log = self.log, None
        try:
            if log is not None:
                log.close()
        except OSError:
            pass

    def close(self) -> None:
        self._drop_log()


class ToRunLog(logging.Handler):
    """papermill's own warnings (e.g. "Passed unknown parameter") go to run.log, not between progress lines."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.WARNING)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.progress._log(f"  {record.name}: {clean(record.getMessage())}")
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)
