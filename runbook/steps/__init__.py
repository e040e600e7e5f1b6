"""The chapter's steps, each idempotent: read facts on every node, decide per node, act on what differs.

The step functions are named apart from their modules (install_corosync in steps.install), so that
`runbook.steps.install` is always the module. Every step takes `(cluster, hosts, *, check=False)` and returns a StepReport; with `check` it only
says what it would change (with diffs). A node that fails raises StepFailed naming it.
"""

from runbook.errors import StepFailed
from runbook.steps.authkey import distribute_authkey
from runbook.steps.boot import enable_at_boot
from runbook.steps.cfgtool import cfgtool_line
from runbook.steps.config import write_config
from runbook.steps.install import install_corosync
from runbook.steps.preflight import run_preflight
from runbook.steps.qdevice import setup_quorum_device
from runbook.steps.start import start_and_verify

ALL_STEPS = (run_preflight, install_corosync, write_config, distribute_authkey, cfgtool_line, enable_at_boot, start_and_verify,
             setup_quorum_device)

__all__ = [
    "ALL_STEPS",
    "StepFailed",
    "cfgtool_line",
    "distribute_authkey",
    "enable_at_boot",
    "install_corosync",
    "run_preflight",
    "setup_quorum_device",
    "start_and_verify",
    "write_config",
]
