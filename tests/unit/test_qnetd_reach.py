"""Preflight's probe of the qnetd host's TCP port: the verdict per answer, and the probe itself on this machine."""

from __future__ import annotations

import socket
import subprocess

from runbook.steps.qnetd_reach import probe_command, verdict


def test_only_silence_or_no_route_fails_preflight_naming_node_host_and_port():
    assert verdict("n1", "open\n", "10.0.66.203", "qnetd", 5403) == (None, None)
    problem, note = verdict("n1", "refused\n", "10.0.66.203", "qnetd", 5403)
    assert problem is None and note is not None and note.startswith("n1 -> qnetd (10.0.66.203) TCP 5403: the host answers")
    problem, _ = verdict("n2", "timeout\n", "10.0.66.203", "qnetd", 5403)
    assert problem is not None and problem.startswith("n2 -> qnetd (10.0.66.203) TCP 5403: no answer within 3s: a firewall drops it")
    problem, _ = verdict("n2", "unreachable Network is unreachable\n", "10.0.66.203", "10.0.66.203", 5403)
    assert problem == "n2 -> 10.0.66.203 TCP 5403: Network is unreachable: check the route from n2 to 10.0.66.203"
    assert verdict("n1", "nopython\n", "h", "h", 5403)[0] is None


def test_the_probe_tells_a_listening_port_from_a_closed_one():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        said = subprocess.run(["sh", "-c", probe_command("127.0.0.1", port)], capture_output=True, text=True, timeout=20).stdout
        assert said.strip() == "open"
    finally:
        server.close()
    said = subprocess.run(["sh", "-c", probe_command("127.0.0.1", port)], capture_output=True, text=True, timeout=20).stdout
    assert said.strip() == "refused"
