"""Test-wide rules.

RUNBOOK_LAB_ONLY: the runbook refuses to connect to anything but lab hosts, whatever a test does.
Lab tests (tests/lab, and the guide's site test, which builds from a run on lab hosts) are marked
`lab`; they fail, not skip, where the lab cannot work, unless RUNBOOK_SKIP_LAB=1 asks to skip them.
"""

import os

import pytest

os.environ.setdefault("RUNBOOK_LAB_ONLY", "1")

LAB_TESTS = ("tests/lab/", "tests/docs/test_site.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in str(item.fspath) for part in LAB_TESTS):
            item.add_marker(pytest.mark.lab)
            if os.environ.get("RUNBOOK_SKIP_LAB"):
                item.add_marker(pytest.mark.skip(reason="RUNBOOK_SKIP_LAB is set (needs lab hosts)"))
