"""Test-wide safety: with RUNBOOK_LAB_ONLY set, the runbook refuses to connect to anything but lab hosts."""

import os

os.environ.setdefault("RUNBOOK_LAB_ONLY", "1")
