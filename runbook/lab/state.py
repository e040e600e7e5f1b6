"""A lab's record on this machine: its hosts, links and subnets in `state.json` under the lab root,
read and written by every lab command, and the lookups by name and address that the guard needs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from runbook.errors import LabError
from runbook.local import write_json_atomic

DEFAULT_LAB = "lab"


LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")




def labs_root() -> Path:
    """Where every lab keeps its state; RUNBOOK_LAB_ROOT moves it (must not be under /tmp, /run or /dev)."""
    return Path(os.environ.get("RUNBOOK_LAB_ROOT", "/var/lib/corosync-runbook/labs"))


@dataclass
class LabHost:
    """One test host: a node name, its address, and the kernel objects that make it."""

    name: str
    address: str
    netns: str
    veth: str
    # Links 1.. (link 0 is `address` on eth0): one address and interface (eth1, eth2, ...) per link.
    extra_addresses: list[str] = field(default_factory=list)
    extra_veths: list[str] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        """Every address of the host, link 0 first (one per link)."""
        return [self.address, *self.extra_addresses]


@dataclass
class LabLink:
    """A network of its own for link 1, 2, ... of a multi-link cluster: its bridge and subnet."""

    number: int
    bridge: str
    subnet: str
    bridge_address: str


@dataclass
class LabState:
    """What a lab is made of, written to disk before anything is made."""

    name: str
    bridge: str
    subnet: str
    bridge_address: str
    hosts: list[LabHost] = field(default_factory=list)
    created: float = 0.0
    os: str = "host"  # "host" (an overlay of this machine, no init) or a booting OS (see lab_boot)
    extra_links: list[LabLink] = field(default_factory=list)  # links 1.. (link 0 is `bridge`/`subnet`)
    # Hostnames a cluster file uses as node addresses -> the lab address chosen for each; every host
    # resolves them through its /etc/hosts.
    names: dict[str, str] = field(default_factory=dict)

    @property
    def bridges(self) -> list[str]:
        """Every bridge of the lab, link 0 first."""
        return [self.bridge, *(link.bridge for link in self.extra_links)]

    def link_names(self) -> list[str]:
        """Every network link this lab makes on this machine (bridges and host-side veths)."""
        return self.bridges + [v for h in self.hosts for v in [h.veth, *h.extra_veths]]

    @property
    def dir(self) -> Path:
        return labs_root() / self.name

    @property
    def ssh_config(self) -> Path:
        return self.dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def identity(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def cluster_file(self) -> Path:
        return self.dir / "cluster.yaml"

    def host_dir(self, host: LabHost) -> Path:
        return self.dir / "hosts" / host.name

    def host(self, name_or_address: str) -> LabHost:
        for host in self.hosts:
            if name_or_address == host.name or name_or_address in host.addresses:
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise LabError(f"lab '{self.name}' has no host '{name_or_address}' (hosts: {known})")

    def save(self) -> None:
        """Atomically (a temp file of its own, then rename): two `lab up`s never write one temp file."""
        write_json_atomic(self.dir / "state.json", asdict(self))

    @classmethod
    def load(cls, name: str) -> LabState | None:
        path = labs_root() / name / "state.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabError(f"{path}: cannot read lab state ({exc}); `runbook lab down --lab {name}` removes it") from exc
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: object, path: Path) -> LabState:
        """The state in `data` (read from `path`), checked: a key this version does not know, or one it
        needs and does not find, is named with the file, not left to a TypeError from the constructor."""
        hint = f"written by another version of the runbook? `runbook lab down --lab {path.parent.name}` removes it"
        if not isinstance(data, dict):
            raise LabError(f"{path}: not a lab state (a JSON object was expected); {hint}")
        data = dict(data)
        try:
            hosts = [_checked(LabHost, h, f"hosts[{i}]") for i, h in enumerate(data.pop("hosts", []))]
            links = [_checked(LabLink, link, f"extra_links[{i}]") for i, link in enumerate(data.pop("extra_links", []))]
            return _checked(cls, {**data, "hosts": hosts, "extra_links": links}, "")
        except (KeyError, TypeError) as exc:
            raise LabError(f"{path}: {exc.args[0]}; {hint}") from None


def _checked(kind: type, data: object, where: str):  # type: ignore[no-untyped-def]
    """kind(**data), or KeyError naming the unknown or missing key (`where` is its place in the file)."""
    if not isinstance(data, dict):
        raise TypeError(f"{where or 'the state'} is not an object")
    known = {f.name: f for f in fields(kind)}
    at = f"{where}." if where else ""
    for key in data:
        if key not in known:
            raise KeyError(f"unknown key {at}{key}")
    for f in known.values():
        if f.name not in data and f.default is MISSING and f.default_factory is MISSING:
            raise KeyError(f"missing key {at}{f.name}")
    return kind(**data)


@dataclass(frozen=True)
class HostStatus:
    """What `lab status` shows for one host."""

    name: str
    address: str
    netns: bool
    sshd: bool
    corosync: bool
    boots: int = 0
    enabled: str = "?"  # corosync at boot: "enabled", "disabled", "not installed"
    active: str = "?"  # corosync now: "active", "inactive", "failed"


def check_lab_name(name: str) -> str:
    if not LAB_NAME_RE.match(name):
        raise LabError(f"lab name {name!r}: use 1-8 lower-case letters and digits, starting with a letter")
    return name


def all_labs() -> list[LabState]:
    return Labs().all()


def lab_for_address(address: str, labs: list[LabState] | None = None) -> tuple[LabState, LabHost] | None:
    """The lab host at `address`, or the one a lab's hosts know by that hostname (`names`)."""
    for state in all_labs() if labs is None else labs:
        wanted = state.names.get(address.lower(), address)
        for host in state.hosts:
            if wanted in host.addresses:
                return state, host
    return None


class Labs:
    """The labs on this machine, as one value for a process's connections (the lab guard holds one).

    Parsed once, and again only when a state file appears, goes or changes (a stat of each, no
    parse), so a process that makes a lab while it runs (the tests do) sees it at once, and one
    that connects a hundred times reads the states once.
    """

    def __init__(self) -> None:
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._labs: list[LabState] = []

    def all(self) -> list[LabState]:
        root = labs_root()
        seen = []
        if root.is_dir():
            for entry in sorted(root.iterdir()):
                try:
                    st = (entry / "state.json").stat()
                except OSError:
                    continue
                seen.append((entry.name, st.st_mtime_ns, st.st_size))
        if tuple(seen) != self._seen:
            self._labs = [s for s in (LabState.load(name) for name, _, _ in seen) if s]
            self._seen = tuple(seen)
        return self._labs

    def for_address(self, address: str) -> tuple[LabState, LabHost] | None:
        return lab_for_address(address, self.all())


Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    pass
