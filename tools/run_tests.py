"""Run the test suite as `make test` does: the test files split into shards, each shard in a lab world of
its own, the shards at the same time.

Why: most of a lab test's time is waiting (Corosync forming a membership, a token timing out, a host
booting), not CPU. Three shards on this 2-core machine finish in under half the time of one (two: a
little over half), and each world has its own network namespace and lab root, so the shards' labs
never meet even where two test files use the same lab names and addresses.

Files are dealt to shards by their last measured time (`tests/durations.json`, longest first, each to
the shard with the least so far). `--save-durations` writes this run's times back to that file.
Each shard's output goes to its log (`--logs`, outside the work tree); a file's progress line is
printed as it completes, prefixed with its shard, and at the end every shard's summary and failures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DURATIONS = REPO / "tests" / "durations.json"
UNIT = "tests/unit"  # many small files: one unit of work, never split (each file's own time is tiny)
DOCS = "tests/docs"  # one unit of work too: its files share one built site (a lab, a run, mkdocs: ~50 s), built once
WHOLE = (UNIT, DOCS)
DEFAULT_SECONDS = 30.0  # a file not measured yet
SLOWEST = 15  # pytest's --durations: the slowest tests, in each shard's log and summary


def test_files(repo: Path = REPO) -> list[str]:
    """The suite's parts: the unit tests as one, the guide's tests as one, then every lab test file."""
    parts = [folder for folder in WHOLE if (repo / folder).is_dir()]
    parts += sorted(str(p.relative_to(repo)) for p in (repo / "tests/lab").glob("test_*.py"))
    return parts


def deal(parts: Sequence[str], seconds: dict[str, float], shards: int) -> list[list[str]]:
    """Pure: parts into `shards` lists of about equal time (longest first, each to the lightest shard)."""
    bins: list[list[str]] = [[] for _ in range(max(1, shards))]
    loads = [0.0] * len(bins)
    for part in sorted(parts, key=lambda p: (-seconds.get(p, DEFAULT_SECONDS), p)):
        lightest = loads.index(min(loads))
        bins[lightest].append(part)
        loads[lightest] += seconds.get(part, DEFAULT_SECONDS)
    return [b for b in bins if b]


def load_seconds(path: Path = DURATIONS) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()}


def part_of(path: str) -> str:
    """The part a test file's time counts for: a unit or docs test file counts for its folder as a whole."""
    for folder in WHOLE:
        if path.startswith(folder + "/"):
            return folder
    return path


class Shard:
    """One pytest in a lab world of its own, its output in a log and its complete lines echoed."""

    def __init__(self, index: int, parts: list[str], logs: Path, runbook: str, python: str,
                 pytest_args: Sequence[str]) -> None:
        self.name = f"test{index}"
        self.parts = parts
        self.log = logs / f"{self.name}.log"
        self.times = logs / f"{self.name}.durations.json"
        env = dict(os.environ, RUNBOOK_TEST_DURATIONS=str(self.times), RUNBOOK_LAB_ONLY="1")
        self.argv = [runbook, "lab", "world", "--world", self.name, "--",
                     python, "-m", "pytest", "-p", "no:cacheprovider", f"--durations={SLOWEST}", *pytest_args, *parts]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.seconds = 0.0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log, "wb") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                text = line.decode(errors="replace").rstrip()
                if text.startswith(("tests/", "ERROR", "FAILED")) or "%]" in text:
                    print(f"[{self.name}] {text}", flush=True)

    def wait(self) -> int:
        code = self.proc.wait()
        self.reader.join()
        self.seconds = time.monotonic() - self.started
        return code

    def stop(self, signum: int) -> None:
        """Pass a ^C or SIGTERM on to the shard's `lab world`, which tears its labs down."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass


def summary(log: Path) -> str:
    """The end of a shard's log, from pytest's first summary section on (failures, -ra, times)."""
    text = log.read_text(errors="replace")
    for marker in ("= FAILURES =", "= ERRORS =", f"slowest {SLOWEST} durations", "short test summary info", "time per test file"):
        at = text.find(marker)
        if at >= 0:
            return text[text.rfind("\n", 0, at) + 1:]
    return "\n".join(text.splitlines()[-20:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the tests in shards, each in a lab world of its own, at the same time.",
        epilog="Arguments after -- go to every shard's pytest (e.g. -- -x -k boot).",
    )
    parser.add_argument("--shards", type=int, default=int(os.environ.get("TEST_SHARDS", "3")),
                        help="how many at once (default 3, or $TEST_SHARDS)")
    parser.add_argument("--logs", type=Path, default=Path(os.environ.get("TEST_LOGS", "/tmp/runbook-test-logs")),
                        help="where each shard's full output goes (default /tmp/runbook-test-logs)")
    parser.add_argument("--save-durations", action="store_true", help=f"write this run's times to {DURATIONS.relative_to(REPO)}")
    parser.add_argument("parts", nargs="*", help="test files or folders (default: the whole suite)")
    args, rest = parser.parse_known_args(argv)
    pytest_args = [a for a in rest if a != "--"]
    venv = REPO / ".venv" / "bin"
    runbook = str(venv / "runbook") if (venv / "runbook").exists() else "runbook"
    python = str(venv / "python") if (venv / "python").exists() else sys.executable

    parts = args.parts or test_files()
    known = load_seconds()
    shards = deal(parts, known, args.shards)
    args.logs.mkdir(parents=True, exist_ok=True)
    for i, group in enumerate(shards, 1):
        expected = sum(known.get(p, DEFAULT_SECONDS) for p in group)
        print(f"run_tests: test{i}: {len(group)} parts, about {expected:.0f} s by the last times: {' '.join(group)}", flush=True)
    started = time.monotonic()
    running = [Shard(i, group, args.logs, runbook, python, pytest_args) for i, group in enumerate(shards, 1)]

    def forward(signum: int, _frame: object) -> None:
        for shard in running:
            shard.stop(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    codes = [shard.wait() for shard in running]

    measured: dict[str, float] = {}
    for shard in running:
        print(f"\n===== {shard.name}: exit {shard.proc.returncode}, {shard.seconds:.0f} s; full log {shard.log} =====")
        print(summary(shard.log))
        try:
            for path, seconds in json.loads(shard.times.read_text()).items():
                measured[part_of(path)] = measured.get(part_of(path), 0.0) + float(seconds)
        except (OSError, ValueError):
            pass
    took = time.monotonic() - started
    print("run_tests: " + ", ".join(f"{s.name} {s.seconds:.0f} s (exit {c})" for s, c in zip(running, codes))
          + f"; wall {took:.0f} s, {took / 60:.1f} min")
    if args.save_durations and measured:
        merged = {**known, **{k: round(v, 1) for k, v in measured.items()}}
        DURATIONS.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")
        print(f"run_tests: times written to {DURATIONS.relative_to(REPO)}")
    # pytest's 5 (nothing collected) in a shard given explicit parts is a failure too: something was lost.
    return next((c for c in codes if c != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
