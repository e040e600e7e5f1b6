"""Root file systems for booting lab hosts: made once with debootstrap, cached, shared read-only.

A booting lab host (`lab up --os debian12|debian13`) is a systemd-nspawn machine whose `/` is an
overlay over one of these trees. Making a tree needs Debian's mirror (about 40 s); using one never
does, so `lab up` works in a network namespace with no route out once `runbook lab prepare` has run.

Corosync is *not* installed in the tree (the runbook's install step must have real work to do): its
packages are only downloaded into the tree's apt cache, with the apt lists beside them, so that
`apt-get install corosync` inside a host installs it offline. The tree keeps no SSH host keys and no
machine id: each host gets its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import LabError
from runbook.local import run_local

MIRROR = "http://deb.debian.org/debian"
# What a Debian server has beyond minbase that the runbook meets on real nodes: a standard install
# brings python3 (the link check's probe) and nftables (Priority: important; its service off by default).
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "procps", "python3", "nftables")
HOST_OS = "host"
# What every lab host may install offline: Corosync, and the quorum device's two daemons (step 07). Host labs
# take them from this machine's apt cache (runbook.lab.up.prepare_packages), booting hosts from their tree's.
CLUSTER_PACKAGES = ("corosync", "corosync-qdevice", "corosync-qnetd")
# A tree's apt cache also holds Pacemaker, which the guide's "After Corosync" page starts on booting hosts
# (tools/pacemaker_page.py).
DOWNLOADS = (*CLUSTER_PACKAGES, "pacemaker", "pacemaker-cli-utils")


@dataclass(frozen=True)
class BootOS:
    """One operating system the lab can boot: its name on the command line and its Debian suite."""

    name: str
    suite: str
    pretty: str


BOOT_OSES = {
    "debian12": BootOS("debian12", "bookworm", "Debian 12 (bookworm)"),
    "debian13": BootOS("debian13", "trixie", "Debian 13 (trixie)"),
}
OS_CHOICES = (HOST_OS, *BOOT_OSES)


def cache_root() -> Path:
    """Where the trees live; RUNBOOK_ROOTFS_CACHE moves it (not under /tmp or /run: overlays need a disk)."""
    return Path(os.environ.get("RUNBOOK_ROOTFS_CACHE", "/var/cache/corosync-runbook/rootfs"))


def boot_os(name: str) -> BootOS:
    """The BootOS for `--os NAME`, or a LabError naming the choices."""
    try:
        return BOOT_OSES[name]
    except KeyError:
        raise LabError(f"--os: {name!r} is not one of {', '.join(OS_CHOICES)}") from None


def parse_os_list(text: str) -> list[BootOS]:
    """`--os debian12,debian13` -> [BootOS, BootOS] (pure; `host` needs no preparing and is refused here)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise LabError(f"--os: give one or more of {', '.join(BOOT_OSES)}, separated by commas")
    if HOST_OS in names:
        raise LabError("--os: 'host' hosts are an overlay of this machine and need no preparing")
    return [boot_os(name) for name in dict.fromkeys(names)]


def tree(os_: BootOS) -> Path:
    return cache_root() / os_.name


def _marker(os_: BootOS) -> Path:
    return cache_root() / f"{os_.name}.ready"


def is_ready(os_: BootOS) -> bool:
    """The tree is made, and made with today's BASE_PACKAGES and DOWNLOADS (a tree from older lists is made again)."""
    try:
        info = json.loads(_marker(os_).read_text())
    except (OSError, ValueError):
        return False
    return (info.get("packages") == list(BASE_PACKAGES) and info.get("downloads") == list(DOWNLOADS)
            and (tree(os_) / "usr/lib/os-release").exists())


def require_ready(os_: BootOS) -> Path:
    """The cached tree for os_, or a LabError that says what to run (lab up never goes to the network)."""
    if not is_ready(os_):
        raise LabError(
            f"no cached root file system for {os_.name} in {cache_root()} made with today's packages ({', '.join(BASE_PACKAGES)}; {', '.join(DOWNLOADS)} downloaded); make it (needs Debian's mirror, "
            f"about a minute): `runbook lab prepare --os {os_.name}`"
        )
    return tree(os_)


def corosync_debs(os_: BootOS) -> list[str]:
    """The corosync packages waiting in the tree's apt cache (what makes offline installs possible)."""
    archives = tree(os_) / "var/cache/apt/archives"
    return sorted(p.name for p in archives.glob("corosync_*.deb")) if archives.is_dir() else []


def prepare(os_: BootOS, progress=lambda _: None, force: bool = False) -> Path:  # type: ignore[no-untyped-def]
    """Make (once) the cached tree for os_; a half-made tree from an interrupted run is made again."""
    if is_ready(os_) and not force:
        progress(f"{os_.name}: cached root file system ready at {tree(os_)} ({', '.join(corosync_debs(os_)) or 'no corosync packages?'})")
        return tree(os_)
    for tool in ("debootstrap", "systemd-nspawn"):
        if shutil.which(tool) is None:
            raise LabError(f"booting lab hosts needs `{tool}`; install it: apt-get install debootstrap systemd-container")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    work = root / f"{os_.name}.tmp"
    if work.exists():
        shutil.rmtree(work)
    _marker(os_).unlink(missing_ok=True)
    started = time.monotonic()
    progress(f"{os_.name}: debootstrap {os_.suite} from {MIRROR} into {work} (once; about a minute)")
    _debootstrap(os_, work, progress)
    progress(f"{os_.name}: downloading corosync's packages into the tree's apt cache (not installing them)")
    _download_corosync(work)
    _make_generic(work)
    final = tree(os_)
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)
    info = {"os": os_.name, "suite": os_.suite, "mirror": MIRROR, "made": time.time(), "corosync": corosync_debs(os_),
            "packages": list(BASE_PACKAGES), "downloads": list(DOWNLOADS)}
    _marker(os_).write_text(json.dumps(info, indent=2) + "\n")
    progress(f"{os_.name}: ready in {time.monotonic() - started:.0f}s at {final} ({', '.join(info['corosync'])})")
    return final


def _debootstrap(os_: BootOS, work: Path, progress) -> None:  # type: ignore[no-untyped-def]
    argv = [
        "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", os_.suite, str(work), MIRROR,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    seen: set[str] = set()
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-10:]
        if line.startswith("I: "):
            verb = line[3:].split(" ", 1)[0]
            if verb not in seen:  # one line per stage, not one per package
                seen.add(verb)
                progress(f"{os_.name}: {line[3:]}")
    if proc.wait() != 0:
        log = work / "debootstrap/debootstrap.log"
        raise LabError(
            f"debootstrap {os_.suite} failed (exit {proc.returncode}); is {MIRROR} reachable from here?"
            f" (see {log})\n" + "\n".join(f"    {t}" for t in tail)
        )


def _download_corosync(work: Path) -> None:
    shutil.copy2("/etc/resolv.conf", work / "etc/resolv.conf")
    apt = ["chroot", str(work), "env", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"]
    run_local([*apt, "apt-get", "update", "-q"], timeout=600)
    run_local([*apt, "apt-get", "install", "-y", "-q", "--download-only", "--no-install-recommends", *DOWNLOADS], timeout=600)
    for package in DOWNLOADS:
        if not list((work / "var/cache/apt/archives").glob(f"{package}_*.deb")):
            raise LabError(f"apt-get --download-only {' '.join(DOWNLOADS)} left no {package} package in {work}/var/cache/apt/archives")


def _make_generic(work: Path) -> None:
    """Remove what must differ per host: SSH host keys, machine id, hostname, resolv.conf."""
    for key in (work / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (work / "etc/machine-id").write_text("")
    (work / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (work / "etc/hostname").write_text("localhost\n")
    (work / "etc/resolv.conf").write_text("")


def remove(os_: BootOS) -> bool:
    """Drop a cached tree (the next `lab prepare` makes it again)."""
    found = tree(os_).exists() or _marker(os_).exists()
    _marker(os_).unlink(missing_ok=True)
    for path in (tree(os_), cache_root() / f"{os_.name}.tmp"):
        if path.exists():
            shutil.rmtree(path)
    return found
