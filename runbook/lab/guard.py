"""Where the lab plugs into the SSH layer from outside: its address guard and its hosts' ssh_config.

runbook.ssh.hosts and runbook.ssh.endpoint know no lab. Before any packet, a connection to a lab address needs that lab's bridges and namespace up (else the
packet would follow the machine's routes to a real network), and with RUNBOOK_LAB_ONLY set (tests,
CI, `make demo`, the docs build) every name and every address that is not a lab host is refused.

A lab host is logged in to with its lab's own ssh_config (user, key, known_hosts).

Where the runbook starts (the CLI, a notebook's set-up, the runner, the docs build, the benchmarks)
`install()` adds both when RUNBOOK_LAB_ONLY is set or when this machine has labs; a production
controller that never made a lab reads no lab state on its connections. runbook.ssh.hosts
refuses every connection when RUNBOOK_LAB_ONLY is set and no guard was installed (fail closed).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from runbook.errors import ConnectionFailed, RunbookError
from runbook.lab import state, up
from runbook.ssh import endpoint, hosts
from runbook.ssh.hosts import LAB_ONLY_ENV


class LabGuard:
    """The guard and ssh_config finder one process plugs into the SSH layer, over one view of the labs."""

    def __init__(self, labs: state.Labs) -> None:
        self.labs = labs

    def guard(self, hostname: str, node: str) -> None:
        """Refuse `hostname` (an address or a name from ssh_config) for `node` when the lab must not send to it."""
        try:
            ipaddress.ip_address(hostname)
        except ValueError:
            if os.environ.get(LAB_ONLY_ENV):
                raise ConnectionFailed(node, f"{hostname!r} is a name, not a lab address, and {LAB_ONLY_ENV} is set; refusing to connect") from None
            return
        try:
            up.guard_address(hostname, self.labs)
        except RunbookError as exc:
            raise ConnectionFailed(node, str(exc)) from exc

    def ssh_config(self, address: str) -> Path | None:
        """The ssh_config of the lab that has a host at `address` (None for any other address)."""
        found = self.labs.for_address(address)
        return found[0].ssh_config if found else None


def needed(labs: state.Labs) -> bool:
    """Whether connections from this process must pass the guard: lab-only, or labs on this machine."""
    if os.environ.get(LAB_ONLY_ENV):
        return True
    try:
        return bool(labs.all())
    except RunbookError:  # an unreadable lab state: guard, and let each connection say why it is refused
        return True


def installed() -> LabGuard | None:
    """The guard this process has installed, if any."""
    for guard in hosts.CONNECTION_GUARDS:
        owner = getattr(guard, "__self__", None)
        if isinstance(owner, LabGuard):
            return owner
    return None


def install() -> bool:
    """Add the guard and the lab's ssh_config (once each) when they are needed; whether they are in now."""
    if installed() is not None:
        return True
    labs = state.Labs()
    if not needed(labs):
        return False
    lab_guard = LabGuard(labs)
    hosts.add_connection_guard(lab_guard.guard)
    endpoint.SSH_CONFIG_FINDERS.append(lab_guard.ssh_config)
    return True
