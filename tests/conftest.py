"""Test-wide rules.

RUNBOOK_LAB_ONLY: the runbook refuses to connect to anything but lab hosts, whatever a test does.
Lab tests (tests/lab, and the guide's site test, which builds from a run on lab hosts) are marked
`lab`; they fail, not skip, where the lab cannot work, unless RUNBOOK_SKIP_LAB=1 asks to skip them.
"""

import os
import signal

import pytest

from runbook.lab import guard as lab_guard

# A background job (`pytest &`, a CI wrapper) inherits SIGINT ignored, and so would every `runbook run`
# the tests start: the tests that press ^C on a run would see it ignored. Catching it here makes the
# children start with the default again (exec resets caught signals, not ignored ones).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("RUNBOOK_LAB_ONLY", "1")
lab_guard.install()  # the lab's address guard for connections made by the tests themselves

LAB_TESTS = ("tests/lab/", "tests/docs/test_site.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in str(item.fspath) for part in LAB_TESTS):
            item.add_marker(pytest.mark.lab)
            if os.environ.get("RUNBOOK_SKIP_LAB"):
                item.add_marker(pytest.mark.skip(reason="RUNBOOK_SKIP_LAB is set (needs lab hosts)"))


_SECONDS_BY_FILE: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add up each test file's time (setup, call and teardown: lab hosts are made in setup)."""
    path = report.nodeid.split("::", 1)[0]
    _SECONDS_BY_FILE[path] = _SECONDS_BY_FILE.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    """How long each part of the suite took, slowest first: where `make test`'s minutes go."""
    if not _SECONDS_BY_FILE:
        return
    if os.environ.get("RUNBOOK_TEST_DURATIONS"):  # tools/run_tests.py deals files to shards by these
        import json

        with open(os.environ["RUNBOOK_TEST_DURATIONS"], "w") as out:
            json.dump({path: round(seconds, 1) for path, seconds in _SECONDS_BY_FILE.items()}, out, indent=1)
    terminalreporter.section("time per test file")
    for path, seconds in sorted(_SECONDS_BY_FILE.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    parts: dict[str, float] = {}
    for path, seconds in _SECONDS_BY_FILE.items():
        part = "/".join(path.split("/")[:2])
        parts[part] = parts.get(part, 0.0) + seconds
    terminalreporter.write_line("  " + ", ".join(f"{part}: {seconds:.0f} s" for part, seconds in sorted(parts.items())))
