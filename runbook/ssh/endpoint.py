"""Where and how to log in to a node: the cluster file's `ssh` settings and ssh_config, combined.

Pure: files are read, nothing is connected. Every jump host of ProxyJump is resolved through
ssh_config as a host of its own (fabric's gateway model), and a value the runbook cannot use stops
here with SshConfigError (exit 2) naming the file, the host and the key, before any node is touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from runbook.errors import ClusterFileError, SshConfigError

if TYPE_CHECKING:
    from runbook.model.types import Node, SshSettings

SSH_CONFIG_ENV = "RUNBOOK_SSH_CONFIG"

__all__ = ["SSH_CONFIG_ENV", "Endpoint", "JumpHop", "parse_port", "parse_proxy_jump", "resolve_endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """Where and how to log in to one node (or one jump host on the way), after the cluster file and
    ssh_config are combined.

    `jump` is the last jump host before this one, itself an Endpoint with its own user, port, keys,
    known_hosts and `jump` (fabric's gateway model): `ProxyJump a,b` is b with a as b's jump.
    `hop` is the name a jump host has in ProxyJump (None for the node itself); `node` is always the
    node the connection is for, so every error names it.
    """

    node: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    known_hosts_files: tuple[str, ...]
    identities_only: bool
    proxy_jump: str | None
    connect_timeout: float
    sudo: bool
    trust_unknown: bool
    jump: Endpoint | None = None
    hop: str | None = None

    @property
    def known_hosts_name(self) -> str:
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    @property
    def route(self) -> tuple[Endpoint, ...]:
        """Every jump host in the order they are reached, then this endpoint."""
        return (*(self.jump.route if self.jump else ()), self)


@dataclass(frozen=True)
class JumpHop:
    """One hop of a ProxyJump value: `[user@]host[:port]`, host may be a bracketed IPv6 address."""

    host: str
    user: str | None = None
    port: int | None = None


def parse_port(value: object, *, path: str | None, host: str, key: str = "Port") -> int:
    """An ssh_config port as a number 1-65535, or SshConfigError naming the file, host and key."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise SshConfigError(path, host, key, f"{text!r} is not a port number (1-65535)")
    return int(text)


def parse_proxy_jump(value: str, *, path: str | None = None, host: str = "?") -> tuple[JumpHop, ...]:
    """ProxyJump as OpenSSH reads it: `none` (no jump), or hops `[user@]host[:port]` separated by commas,
    each optionally as `ssh://[user@]host[:port]`; an IPv6 address goes in brackets: `[2001:db8::1]:22`.
    """
    text = value.strip()
    if text.lower() == "none":
        return ()
    hops = []
    for raw in text.split(","):
        spec = raw.strip()
        if spec.lower().startswith("ssh://"):
            spec = spec[len("ssh://"):].removesuffix("/")
        user, at, hostport = spec.rpartition("@")
        port_text: str | None = None
        if hostport.startswith("["):
            address, bracket, rest = hostport[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise SshConfigError(path, host, "ProxyJump", f"{raw.strip()!r}: write an IPv6 jump host as [address] or [address]:port")
            name = address
            port_text = rest[1:] if rest else None
        elif hostport.count(":") > 1:
            raise SshConfigError(path, host, "ProxyJump", f"{raw.strip()!r}: an IPv6 jump host goes in brackets, e.g. [{hostport}] or [{hostport}]:22")
        else:
            name, colon, after = hostport.partition(":")
            port_text = after if colon else None
        if not name or any(c.isspace() for c in name) or (at and not user):
            raise SshConfigError(path, host, "ProxyJump", f"{raw.strip()!r} is not a jump host ([user@]host[:port])")
        port = parse_port(port_text, path=path, host=host, key="ProxyJump") if port_text is not None else None
        hops.append(JumpHop(host=name, user=user or None, port=port))
    return tuple(hops)


# Where else an address's ssh_config may be found, before ~/.ssh/config: (address) -> a file or None.
# The SSH layer knows no lab; the lab adds its own hosts' file from outside (runbook.lab.guard.install()).
SSH_CONFIG_FINDERS: list[Callable[[str], Path | None]] = []


def _ssh_config_path(settings: SshSettings, address: str) -> Path | None:
    """The ssh_config to read: the cluster file's, $RUNBOOK_SSH_CONFIG, a lab's for lab hosts, ~/.ssh/config.

    A file named on purpose (ssh.config, the environment variable) must exist: silently reading
    another one instead would log in with settings nobody chose.
    """
    if settings.config:
        if not Path(settings.config).expanduser().is_file():
            raise ClusterFileError(f"ssh.config: {settings.config!r} does not exist or is not a file")
        return Path(settings.config).expanduser()
    named = os.environ.get(SSH_CONFIG_ENV)
    if named:
        if not Path(named).expanduser().is_file():
            raise SshConfigError(named, None, None, f"does not exist or is not a file (named by ${SSH_CONFIG_ENV})")
        return Path(named).expanduser()
    found = next((path for finder in SSH_CONFIG_FINDERS if (path := finder(address)) is not None), None)
    candidates = ([found] if found else []) + [Path.home() / ".ssh" / "config"]
    return next((c for c in candidates if c.is_file()), None)


class _NodeConfig(paramiko.SSHConfig):
    """paramiko's ssh_config, where a `Host` line may match a node by its name or by its address.

    The node is looked up as one host with two names, in one pass, so the first value in the file
    wins as in ssh (`Host node1` then `Host *`: node1's ProxyJump, User... beat the defaults, also
    when another line names the node by address). paramiko's own matcher decides each name.
    """

    alias: str | None = None

    def _pattern_matches(self, patterns, target):  # type: ignore[no-untyped-def]
        match = super()._pattern_matches
        return match(patterns, target) or (self.alias is not None and match(patterns, self.alias))

    def lookup_node(self, name: str, address: str) -> dict[str, object]:
        self.alias = address
        try:
            return dict(self.lookup(name))
        finally:
            self.alias = None


def _read_ssh_config(path: Path | None) -> _NodeConfig | None:
    if path is None:
        return None
    try:
        return _NodeConfig.from_path(str(path))
    except Exception as exc:  # paramiko raises several types for a bad file
        raise SshConfigError(str(path), None, None, f"cannot read it: {exc}") from exc


class _SshConfig:
    """One ssh_config file (or none) and the cluster file's `ssh` settings: what every lookup needs."""

    def __init__(self, settings: SshSettings, path: Path | None) -> None:
        self.settings = settings
        self.path = str(path) if path is not None else None
        self.config = _read_ssh_config(path)

    def lookup(self, name: str) -> dict[str, object]:
        return dict(self.config.lookup(name)) if self.config is not None else {}

    def node_options(self, node: Node) -> dict[str, object]:
        """Entries naming the node or its address (the lab writes `Host node1 10.0.77.11`); without a
        HostName the node is reached at its address (lookup() sets hostname to the name then)."""
        if self.config is None:
            return {}
        options = self.config.lookup_node(node.name, node.address)
        if options.get("hostname") == node.name:
            options["hostname"] = node.address
        return options

    def port(self, options: Mapping[str, object], host: str) -> int | None:
        return parse_port(options["port"], path=self.path, host=host) if options.get("port") else None

    def known_hosts(self, options: Mapping[str, object], *, cluster_first: bool) -> tuple[str, ...]:
        from_config = str(options.get("userknownhostsfile", "")).split()
        mine = [self.settings.known_hosts] if self.settings.known_hosts else []
        files = (mine + from_config) if cluster_first else (from_config + mine)
        files.append(str(Path.home() / ".ssh" / "known_hosts"))
        return tuple(dict.fromkeys(str(Path(p).expanduser()) for p in files if p))

    def jump(self, value: object, node: str, owner: str, seen: tuple[str, ...]) -> Endpoint | None:
        """The endpoint of the last hop of a ProxyJump value (each earlier hop its `jump`), or None."""
        if not value:
            return None
        previous: Endpoint | None = None
        for index, hop in enumerate(parse_proxy_jump(str(value), path=self.path, host=owner)):
            previous = self.hop(hop, node, seen, via=previous, first=index == 0)
        return previous

    def hop(self, hop: JumpHop, node: str, seen: tuple[str, ...], *, via: Endpoint | None, first: bool) -> Endpoint:
        """A jump host resolved through ssh_config like any host: its own user, port, keys, known_hosts.

        The cluster file's user, port and identity_file are for the nodes (as `ssh -i/-l/-p` are for the
        destination, not the -J hosts); its known_hosts file is trusted for jump hosts too. As with
        `ssh -J a,b`, b is reached through a whatever b's own ProxyJump says; only the first hop's own
        ProxyJump is followed.
        """
        if hop.host in seen:
            loop = " -> ".join((*seen, hop.host))
            raise SshConfigError(self.path, seen[-1], "ProxyJump", f"jump hosts go round in a loop ({loop}); exclude jump hosts from patterns like `Host *` (e.g. `Host * !{hop.host}`)")
        options = self.lookup(hop.host)
        jump = self.jump(options.get("proxyjump"), node, hop.host, (*seen, hop.host)) if first else via
        return Endpoint(
            node=node,
            hostname=str(options.get("hostname") or hop.host),
            port=hop.port or self.port(options, hop.host) or 22,
            user=hop.user or str(options.get("user") or "root"),
            identity_files=tuple(str(Path(p).expanduser()) for p in options.get("identityfile", []) if p),  # type: ignore[attr-defined]
            known_hosts_files=self.known_hosts(options, cluster_first=False),
            identities_only=str(options.get("identitiesonly", "no")).lower() == "yes",
            proxy_jump=str(options["proxyjump"]) if first and options.get("proxyjump") else None,
            connect_timeout=float(self.settings.connect_timeout),
            sudo=False,
            trust_unknown=False,
            jump=jump,
            hop=hop.host,
        )


def resolve_endpoint(node: Node, settings: SshSettings) -> Endpoint:
    """Combine the cluster file's `ssh` settings with ssh_config (cluster file wins where it says something).

    Pure (reads files, connects nowhere): a bad ssh_config value stops here with SshConfigError.
    """
    ssh = _SshConfig(settings, _ssh_config_path(settings, node.address))
    options = ssh.node_options(node)
    identity = [settings.identity_file] if settings.identity_file else list(options.get("identityfile", []))  # type: ignore[call-overload]
    config_port = ssh.port(options, node.name)  # checked even when the cluster file's port wins
    jump = ssh.jump(options.get("proxyjump"), node.name, node.name, (node.name,))
    return Endpoint(
        node=node.name,
        hostname=str(options.get("hostname") or node.address),
        port=settings.port or config_port or 22,
        user=settings.user or str(options.get("user") or "root"),
        identity_files=tuple(str(Path(p).expanduser()) for p in identity if p),
        known_hosts_files=ssh.known_hosts(options, cluster_first=True),
        identities_only=str(options.get("identitiesonly", "no")).lower() == "yes",
        proxy_jump=str(options["proxyjump"]) if jump is not None else None,
        connect_timeout=float(settings.connect_timeout),
        sudo=bool(settings.sudo),
        trust_unknown=node.name in settings.trust_unknown_hosts,
        jump=jump,
    )
