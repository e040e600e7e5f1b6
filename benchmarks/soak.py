#!/usr/bin/env python3
"""Soak the races of tests/lab/test_concurrency.py: a controller SIGKILLed during step 06's restart, and
two controllers started together. The suite runs them once or twice; this runs them N rounds each in a
lab world of its own; it prints pytest's outcome (a failing round fails its test) and the time taken.

    python benchmarks/soak.py              # 10 rounds of each (about 10 minutes)
    python benchmarks/soak.py --rounds 3   # a quicker look

Not part of `make test`: a soak finds rare failures, it is not a timed assertion. Needs root, like the lab.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The first run sets the cluster up: the races need a running cluster (and the init script they slow down).
RACES = "a_first_run_sets_up or killed_during_step_06s_restart or started_together_exactly_one_runs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each race (default 10)")
    args = parser.parse_args()
    runbook = str(Path(sys.executable).with_name("runbook"))
    env = dict(os.environ, RUNBOOK_SOAK_ROUNDS=str(args.rounds), RUNBOOK_LAB_ONLY="1")
    started = time.monotonic()
    code = subprocess.call([runbook, "lab", "world", "--world", "soak", "--", sys.executable, "-m", "pytest", "-p",
                            "no:cacheprovider", "-q", "--durations=5", "tests/lab/test_concurrency.py", "-k", RACES],
                           cwd=REPO, env=env)
    print(f"soak: {args.rounds} rounds of each race, exit {code}, {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
