"""End-to-end timings of the runbook against a bare ssh baseline (not part of the test suite)."""
