"""What a node is, read before anything changes: OS, Corosync, init system, addresses, the chapter's files.

All facts come from one remote script per node (one round trip), whose output is split into named
sections. The authkey is described by its size, mode, owner and SHA-256 digest only: its bytes never
leave the node here, so facts can be shown in a notebook safely.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from runbook.ssh.hosts import Host

CONF_PATH = "/etc/corosync/corosync.conf"
AUTHKEY_PATH = "/etc/corosync/authkey"
CONF_DIR = "/etc/corosync"  # a link here would carry every write somewhere else: preflight refuses it
RC_LOCAL_PATH = "/etc/rc.local"
DEFAULTS_PATH = "/etc/default/corosync"
TEXT_FILES = (CONF_PATH, RC_LOCAL_PATH, DEFAULTS_PATH)

_SECTION = "@@runbook-section "

# Each section prints one fact; file contents are base64 so any bytes survive (and no terminal escapes).
SECTIONS: dict[str, str] = {
    "uid": "id -u",
    "os_release": "cat /etc/os-release 2>/dev/null || cat /etc/lsb-release 2>/dev/null",
    "corosync_version": "(corosync -v 2>/dev/null || /usr/sbin/corosync -v 2>/dev/null) | head -n 1",
    "corosync_candidate": "if ! command -v corosync >/dev/null 2>&1; then if command -v apt-cache >/dev/null 2>&1; then apt-cache policy corosync 2>/dev/null | awk '/Candidate:/{print $2}'; elif command -v dnf >/dev/null 2>&1; then dnf -q info corosync 2>/dev/null | awk '/^Version/{print $3; exit}'; elif command -v yum >/dev/null 2>&1; then yum -q info corosync 2>/dev/null | awk '/^Version/{print $3; exit}'; fi; fi",
    "package_manager": "for pm in apt-get dnf yum zypper; do command -v $pm >/dev/null 2>&1 && { echo $pm; break; }; done",
    "init": 'echo "pid1=$(cat /proc/1/comm 2>/dev/null) run_systemd=$([ -d /run/systemd/system ] && echo 1 || echo 0) upstart=$(/sbin/initctl version 2>/dev/null | grep -q upstart && echo 1 || echo 0) initd=$([ -d /etc/init.d ] && echo 1 || echo 0)"',
    "update_rc": "for t in update-rc.d chkconfig systemctl; do command -v $t >/dev/null 2>&1 && echo $t; done",
    "addresses": "(ip -o addr show 2>/dev/null || ifconfig 2>/dev/null) | grep -Eo 'inet6? (addr:)?[0-9a-fA-F:.]+' | awk '{print $2}' | sed 's/^addr://'",
    "corosync_pids": "pidof corosync 2>/dev/null || true",
    "links": f"for f in {CONF_DIR} {CONF_PATH} {AUTHKEY_PATH}; do [ -L $f ] && echo \"$f $(readlink -f $f || readlink $f)\"; done; true",
    "authkey": f"if [ -e {AUTHKEY_PATH} ]; then stat -c '%s %a %U %G' {AUTHKEY_PATH}; sha256sum {AUTHKEY_PATH} | cut -d' ' -f1; fi",
    # Whether the init system starts Corosync at boot, in each way this node could say it.
    "boot_enabled": (
        'if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then echo "systemd=$(systemctl is-enabled corosync 2>&1 | head -n 1)"; fi; '
        "command -v chkconfig >/dev/null 2>&1 && { chkconfig --list corosync 2>/dev/null | grep -q '3:on' && echo chkconfig=on || echo chkconfig=off; }; "
        'echo "sysv_link=$(ls /etc/rc2.d/S[0-9][0-9]corosync /etc/rc3.d/S[0-9][0-9]corosync 2>/dev/null | head -n 1)"'
    ),
    **{
        f"file:{path}": f"if [ -e {path} ]; then stat -c '%a %U %G' {path}; base64 < {path} | tr -d '\\n'; echo; fi"
        for path in TEXT_FILES
    },
}
BASE = ("uid", "os_release", "corosync_version", "corosync_candidate", "package_manager", "init", "update_rc", "addresses", "corosync_pids", "links", "authkey")
ALL = BASE + tuple(f"file:{path}" for path in TEXT_FILES)


def facts_script(sections: tuple[str, ...] = ALL, extra: Mapping[str, str] | None = None) -> str:
    """One script printing each named section (and `extra` sections a step adds), one round trip."""
    parts = [f's() {{ echo "{_SECTION}$1"; }}']
    parts += [f"s {name}; {SECTIONS[name]}" for name in sections]
    parts += [f"s {name}\n{script}" for name, script in (extra or {}).items()]
    return "\n".join(parts) + "\ntrue\n"


FACTS_SCRIPT = facts_script()


@dataclass(frozen=True)
class FileFact:
    """A text file as it is on the node: content (bytes), mode and owner."""

    path: str
    content: bytes
    mode: int
    owner: str
    group: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class AuthkeyFact:
    """The authkey without its bytes: enough to compare nodes and check mode, never to leak it."""

    size: int
    mode: int
    owner: str
    group: str
    sha256: str


@dataclass(frozen=True)
class NodeFacts:
    node: str
    uid: int
    os_id: str
    os_version: str
    os_name: str
    corosync_version: str | None
    candidate_version: str | None
    package_manager: str | None
    init_system: str
    boot_tools: tuple[str, ...]
    addresses: tuple[str, ...]
    corosync_pids: tuple[int, ...]
    authkey: AuthkeyFact | None
    files: dict[str, FileFact] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # a managed path that is a symbolic link -> its target
    boot_enabled: dict[str, str] = field(default_factory=dict)  # systemd/chkconfig/sysv_link -> what it said
    extra: dict[str, str] = field(default_factory=dict)  # sections a step asked for itself, as printed

    @property
    def generation(self) -> int | None:
        """Corosync's major version (1, 2, 3) or None when it is not installed."""
        if not self.corosync_version:
            return None
        return int(self.corosync_version.split(".")[0])

    @property
    def candidate_generation(self) -> int | None:
        """The generation the package manager would install (for planning before step 01)."""
        return int(self.candidate_version.split(".")[0]) if self.candidate_version else None

    @property
    def corosync_running(self) -> bool:
        return bool(self.corosync_pids)

    def has_address(self, address: str) -> bool:
        if not _is_ip(address):
            return False  # a hostname: resolve it on the node first (resolve_names), then ask for its addresses
        want = ipaddress.ip_address(address)
        return any(ipaddress.ip_address(a) == want for a in self.addresses if _is_ip(a))

    def file(self, path: str) -> FileFact | None:
        return self.files.get(path)

    def summary(self) -> str:
        corosync = f"corosync {self.corosync_version}" if self.corosync_version else "corosync not installed"
        state = "running" if self.corosync_running else "stopped"
        return (
            f"{self.node}: {self.os_name or self.os_id} | {corosync} ({state}) | init {self.init_system}"
            f" | uid {self.uid} | addresses {', '.join(a for a in self.addresses if not a.startswith(('127.', '::1', 'fe80')))}"
        )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def split_sections(output: str) -> dict[str, str]:
    """Split the facts script's output into {section: text}."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith(_SECTION):
            current = line[len(_SECTION):].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {k: "\n".join(v).strip() for k, v in sections.items()}


def parse_os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


_VERSION = re.compile(r"version '?(\d+(?:\.\d+)*)")


def parse_facts(node: str, output: str) -> NodeFacts:
    """Pure: turn the facts script's output into NodeFacts (tests feed it text, no SSH needed)."""
    sec = split_sections(output)
    release = parse_os_release(sec.get("os_release", ""))
    version_match = _VERSION.search(sec.get("corosync_version", ""))
    authkey = None
    key_lines = sec.get("authkey", "").split()
    if len(key_lines) == 5:
        authkey = AuthkeyFact(int(key_lines[0]), int(key_lines[1], 8), key_lines[2], key_lines[3], key_lines[4])
    files = {}
    for path in TEXT_FILES:
        body = sec.get(f"file:{path}", "")
        if not body:
            continue
        header, _, encoded = body.partition("\n")
        mode, owner, group = header.split()
        files[path] = FileFact(path, base64.b64decode(encoded.strip() or b""), int(mode, 8), owner, group)
    uid_text = sec.get("uid", "").strip()
    return NodeFacts(
        node=node,
        uid=int(uid_text) if uid_text.isdigit() else -1,
        os_id=release.get("ID", release.get("DISTRIB_ID", "unknown")).lower(),
        os_version=release.get("VERSION_ID", release.get("DISTRIB_RELEASE", "")),
        os_name=release.get("PRETTY_NAME", release.get("DISTRIB_DESCRIPTION", "")),
        corosync_version=version_match.group(1) if version_match else None,
        candidate_version=_candidate(sec.get("corosync_candidate", "")),
        package_manager=sec.get("package_manager") or None,
        init_system=init_system_of(sec.get("init", "")),
        boot_tools=tuple(sec.get("update_rc", "").split()),
        addresses=tuple(a for a in sec.get("addresses", "").split() if _is_ip(a)),
        corosync_pids=tuple(int(p) for p in sec.get("corosync_pids", "").split() if p.isdigit()),
        authkey=authkey,
        files=files,
        links=dict(line.split(" ", 1) for line in sec.get("links", "").splitlines() if " " in line),
        boot_enabled=dict(line.split("=", 1) for line in sec.get("boot_enabled", "").splitlines() if "=" in line),
        extra={k: v for k, v in sec.items() if k not in SECTIONS},
    )


def init_system_of(probe: str) -> str:
    """Pure: 'systemd', 'upstart', 'sysv' or 'none' from the init probe (or an already decided word).

    systemd counts only when it is PID 1: /run/systemd/system alone can be left over or bind-mounted
    into a container whose PID 1 is something else (a shell, tini), where `systemctl` cannot work.
    """
    probe = probe.strip()
    if "=" not in probe:
        return probe or "none"
    values = dict(token.partition("=")[::2] for token in probe.split())
    pid1 = values.get("pid1", "")
    if pid1 == "systemd" or (not pid1 and values.get("run_systemd") == "1"):
        return "systemd"
    if values.get("upstart") == "1":
        return "upstart"
    if values.get("initd") == "1":
        return "sysv"
    return "none"


def _candidate(text: str) -> str | None:
    """apt's "1:3.1.7-1" or dnf's "3.1.8" -> "3.1.7"; None for "(none)" or nothing."""
    match = re.search(r"(?:\d+:)?(\d+(?:\.\d+)+)", text.strip())
    return match.group(1) if match and not text.strip().startswith("(none)") else None


def gather(host: Host, sections: tuple[str, ...] = ALL, extra: Mapping[str, str] | None = None) -> NodeFacts:
    """One node's facts in one round trip: only the sections a step needs (all by default).

    Steps read every node's at once with steps._common.gather_facts."""
    script = facts_script(sections, extra)
    shown = "gather facts (" + ", ".join(list(sections) + list(extra or {})) + ")"
    result = host.run(script, display=shown if len(shown) < 160 else "gather facts")
    return parse_facts(host.name, result.text)



# ---------------------------------------------------------------------------------------------
# Name resolution: a hostname in the cluster file must mean the same address on every node


def is_hostname(address: str) -> bool:
    """A cluster-file address that Corosync resolves itself (not an IPv4 or IPv6 literal)."""
    return not _is_ip(address)


def resolve_script(names: Iterable[str]) -> str:
    """One round trip: each name as the node's resolver sees it (`getent ahosts`: /etc/hosts, then DNS)."""
    return "".join(
        f"echo {shlex.quote(_SECTION + 'resolve:' + name)}; getent ahosts {shlex.quote(name)} | awk '{{print $1}}' | uniq; true\n"
        for name in names
    )


def parse_resolution(output: str) -> dict[str, tuple[str, ...]]:
    """Pure: {name: addresses in the resolver's order, without repeats}; () for a name that does not resolve."""
    resolved: dict[str, tuple[str, ...]] = {}
    for section, text in split_sections(output).items():
        if section.startswith("resolve:"):
            found = [a for a in text.split() if _is_ip(a)]
            resolved[section[len("resolve:"):]] = tuple(dict.fromkeys(found))
    return resolved


def resolve_names(host: Host, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """How `host` resolves each name (read only)."""
    names = list(names)
    if not names:
        return {}
    result = host.run(resolve_script(names), display=f"getent ahosts {' '.join(names)}")
    return parse_resolution(result.text)


def is_loopback(address: str) -> bool:
    return _is_ip(address) and ipaddress.ip_address(address).is_loopback


def resolution_problems(name: str, by_node: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Pure: per node, why `name` cannot be a Corosync address there ({} when it resolves the same,
    to no loopback address, on every node). The classic failure: a hostname on the 127.0.1.1 line
    of /etc/hosts, so Corosync binds to loopback and the node forms a cluster of its own."""
    problems: dict[str, str] = {}
    for node, addresses in by_node.items():
        loop = [a for a in addresses if is_loopback(a)]
        if not addresses:
            problems[node] = f"the name {name!r} does not resolve on node {node} (getent ahosts {name} finds nothing)"
        elif loop:
            problems[node] = (
                f"the name {name!r} resolves to loopback {', '.join(loop)} on node {node} (getent ahosts); "
                f"Corosync would bind there and form a cluster of one. Fix /etc/hosts on {node} (the "
                f"'127.0.1.1 {name}' line) to give {name} its real address, or use the address in the cluster file"
            )
    seen = {node: addrs for node, addrs in by_node.items() if addrs and node not in problems}
    if len({_first_per_family(a) for a in seen.values()}) > 1:
        shown = "; ".join(f"{node}: {', '.join(addrs)}" for node, addrs in seen.items())
        for node in seen:
            problems[node] = (
                f"the name {name!r} resolves differently on different nodes ({shown}); make /etc/hosts "
                f"or DNS agree on every node, or use the address in the cluster file"
            )
    return problems


def _first_per_family(addresses: tuple[str, ...]) -> tuple[str, ...]:
    """What Corosync would bind to: the first IPv4 and the first IPv6 address a name resolves to."""
    first: dict[int, str] = {}
    for address in addresses:
        first.setdefault(ipaddress.ip_address(address).version, str(ipaddress.ip_address(address)))
    return tuple(sorted(first.values()))
