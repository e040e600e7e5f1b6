"""Host keys: refuse a node whose SSH host key is unknown or changed, and say how to check and trust it.

Only a node named in the cluster file's `ssh.trust_unknown_hosts` is accepted on first sight, and
only for this process. Messages show OpenSSH's SHA256 fingerprints, the form `ssh-keygen -lf` shows
on the node's console.
"""

from __future__ import annotations

import base64
import hashlib

import paramiko

from runbook.errors import HostKeyError
from runbook.ssh.endpoint import Endpoint


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, the form `ssh-keygen -lf` and `ssh` itself show."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class VerifyHostKey(paramiko.MissingHostKeyPolicy):
    """Refuse unknown host keys, unless this node was named in ssh.trust_unknown_hosts."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.accepted: str | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if self.endpoint.trust_unknown:
            self.accepted = fingerprint(key)
            return
        ep = self.endpoint
        files = ", ".join(ep.known_hosts_files) or "(none)"
        where = "on the jump host" if ep.hop else "on the node"
        last = (
            f"  then add it to one of those files: `ssh-keyscan -p {ep.port} {ep.hostname} >> {ep.known_hosts_files[0]}`."
            if ep.hop and ep.known_hosts_files
            else f"  then add it: `ssh-keyscan -p {ep.port} {ep.hostname} >> ~/.ssh/known_hosts`,\n"
            f"  or name the node in ssh.trust_unknown_hosts to accept it for one run."
        )
        raise HostKeyError(
            ep.node,
            f"{via(ep)}unknown SSH host key for {hostname} ({key.get_name()} {fingerprint(key)}); not found in {files}.\n"
            f"  To trust it, check that fingerprint out of band ({where}: `ssh-keygen -lf /etc/ssh/ssh_host_{key_type(key)}_key.pub`),\n"
            + last,
        )


def via(ep: Endpoint) -> str:
    """How an error names a jump host: the node is the error's host, the hop is where it happened."""
    return f"jump host {ep.hop} ({ep.hostname}:{ep.port}): " if ep.hop else ""


def key_type(key: paramiko.PKey) -> str:
    name = key.get_name()
    return {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}.get(name, "ecdsa" if "ecdsa" in name else name)
